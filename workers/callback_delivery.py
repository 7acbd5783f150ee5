"""One delivery of a callback: a signed POST with short timeouts, no redirects followed,
and the receiver's body never read (only its status counts)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import requests

from producer.core.callbacks import (
    EVENT_HEADER,
    ID_HEADER,
    STANDARD_SIGNATURE_HEADER,
    STANDARD_TIMESTAMP_HEADER,
    signature_header,
)
from producer.core.url_guard import CheckedUrl
from workers.upstream.http_client import parse_retry_after
from workers.upstream.pinned_http import pinned_request

# Besides 5xx and no answer at all: worth another try later.
RETRY_STATUSES = frozenset({408, 425, 429})
# The receiver is gone for good: no more deliveries to it (Standard Webhooks).
GONE = 410


@dataclass(frozen=True)
class Delivery:
    status_code: int | None  # None: the receiver did not answer
    error: str | None
    retryable: bool
    retry_after: float | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def post(checked: CheckedUrl, body: bytes, *, secrets: list[bytes], seed: bytes | None, event: str,
         delivery: str, timeout: float) -> Delivery:
    """POST `body`, signed with this receiver's own keys (`secrets`, derived from SONGQUEUE_CALLBACK_SECRET,
    newest first; see producer.core.callbacks) and the ed25519 `seed` when one is set."""
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        ID_HEADER: delivery,
        STANDARD_TIMESTAMP_HEADER: timestamp,
        STANDARD_SIGNATURE_HEADER: signature_header(secrets, seed, delivery, timestamp, body),
        EVENT_HEADER: event,
    }
    try:
        # Redirects are not followed: the receiver is whoever the URL names, and a
        # redirect could point the signed body anywhere, other schemes included.
        # Pinned to the address the guard checked (workers/upstream/pinned_http.py).
        response = pinned_request(checked, "POST", data=body, headers=headers, timeout=(timeout, timeout),
                                  stream=True)
    except requests.Timeout:
        return Delivery(None, f"no answer within {timeout:g}s", retryable=True)
    except requests.ConnectionError:
        return Delivery(None, "could not connect", retryable=True)
    except requests.RequestException as exc:
        return Delivery(None, type(exc).__name__, retryable=True)
    with response:  # closed unread
        code = response.status_code
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if 200 <= code < 300:
        return Delivery(code, None, retryable=False)
    if 300 <= code < 400:
        return Delivery(code, f"HTTP {code}: redirects are not followed", retryable=False)
    return Delivery(code, f"HTTP {code}", retryable=code >= 500 or code in RETRY_STATUSES, retry_after=retry_after)
