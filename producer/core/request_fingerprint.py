"""What a job was asked to be, as one hash: how an Idempotency-Key is bound to one request.

The fingerprint covers everything the caller chose: the provider, the request as the
provider will get it (canonical JSON: sorted keys, no spaces, UTF-8), and the options
(callback URL and progress, album, playlist run). The same key with the same fingerprint
is the same request again (the first job answers); with another it is another request,
and `IdempotencyConflict` refuses it, naming the key (producer/core/store/job_store.py).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


class IdempotencyConflict(ValueError):
    """An idempotency key already used for a different request."""

    def __init__(self, key: str) -> None:
        super().__init__(f"idempotency_key: {key!r} was already used for another request (a different provider, "
                         "request or callback); send that request again with it, or use a new key")
        self.key = key


def fingerprint(provider: str, model: str, request: dict[str, Any], **options: Any) -> str:
    document = {"provider": provider, "model": model, "request": request, "options": options}
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()
