"""The streaming door: progress frames of every run, from one event log (CONTRACT section 3).

- ``frames``: the frame format and coalescing; ``agent_events``: LangChain events to frames.
- ``log``: the pool's JetStream stream of frames; ``writer``: a run's frames into it.
- ``feed``: readers on this worker (replay from any ``seq``, then live); ``live``: the NATS
  connection of the live feeds and its fast path; ``outbox``: ``FrameQueue``, a reader's
  bounded queue.
- ``push``: the WebSocket client for a job's ``stream_url`` (through ``worker.outbound``).
- ``hub``: ``StreamHub``, what the job runner and the HTTP door's endpoints call.
- ``schemas``: the wire models of frames and of the chat socket's messages.

Nothing here speaks HTTP: the endpoints that serve frames over WebSocket and SSE are the HTTP
door's (``worker.http.streams``, ``worker.http.chat``, ``worker.http.sockets``).
"""
