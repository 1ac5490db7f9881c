"""The HTTP door (CONTRACT section 1), served by aiohttp.

- ``app``: the application and its route table; ``middleware``: request id, auth, limits, errors
  as JSON, metrics; ``spans``: a span per request; ``openapi``: the generated document.
- ``agents``, ``tasks``, ``system``: the JSON endpoints; ``streams``: a task's frames (WebSocket
  or SSE) and a streamed run (SSE); ``chat``: the chat socket; ``sockets``: the WebSocket and
  SSE pumps, close codes and error messages they share.
- ``limiter``: invocation slots, the bound on concurrent runs; ``state``: the worker's parts as
  the handlers see them; ``schemas``: the API's models.
"""
