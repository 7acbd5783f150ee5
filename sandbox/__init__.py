"""A local HTTP gateway that speaks the Udio and MiniMax upstream contracts, for demo, tests and benchmarks.

Run it with ``python -m sandbox [--port N]`` (or ``sandbox.server.main(argv)``),
or in-process with ``sandbox.server.start(port=0)``. It answers both gateway
dialects (302.ai ``/udio/generate-proxy`` and openai-hk ``/udio/submit/music``)
and ``/udio/fetch/{task_id}``, MiniMax's ``/minimaxi/v1/music_upload`` and
``/minimaxi/v1/music_generation`` (synchronous: hex or URL audio), serves real
MP3s and PNG covers, injects faults on request (``sandbox:NAME[=VALUE]`` tokens
in the prompt or lyrics, or global rates via
``POST /_sandbox/config``) and counts every request (``GET /_sandbox/stats``).

Modules: ``server`` (routing, sockets, CLI), ``udio`` (submit/fetch answers),
``minimax`` (upload/generation answers and URL audio),
``files`` (MP3/cover downloads), ``admin`` (``/_sandbox/*``), ``tasks`` (task
table, timeline), ``faults`` (directives), ``config`` (runtime knobs), ``stats``
(accounting), ``audio`` (MP3 making), ``cover`` (PNG making), ``wire``
(Request/Response), ``app`` (the shared state behind one lock).
"""
