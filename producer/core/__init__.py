"""The kernel: what the producer side and the workers both need, and nothing else.

Request and record models (`models/`), the job, playlist and key stores with their Redis
keys (`store/`), settings, task names, the broker and its queues (`broker.py`,
`quorum_queues.py`), creating and cancelling a job (`enqueue.py`), playlists
(`playlists/`), stored objects' addresses (`objects/`), the outbound URL guard
(`url_guard.py`), callback signing (`callbacks.py`) and signed hook links (`hook_link.py`).

`workers/` imports only this package of `producer/`; this package imports nothing of the
SDK (`producer.client`), the servers (`producer.api`) or the operator tools
(`producer.cli`, `producer.doctor`, `producer.ops`). tests/unit/architecture checks both.
"""
