"""Outbound connections to addresses a job names: callbacks and ``stream_url`` pushes.

- ``ssrf``: which targets are allowed (``WORKER_CALLBACK_ALLOW``) and the resolver that keeps
  connections to them;
- ``session``: ``checked_session``, the one factory of client sessions, whose every request and
  WebSocket goes through both.
"""
