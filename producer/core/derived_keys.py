"""Every key songqueue signs with, derived from SONGQUEUE_CALLBACK_SECRET under a label of its own.

The secret itself signs nothing: each use gets HMAC-SHA256(secret, label + context), and
the labels are prefix-free (no label is the start of another, and each ends in ":"), so no
(label, context) pair can spell another's input. Holding one derived key (a callback
receiver holds its own) gives nothing towards the secret or any other key: HMAC is a PRF,
so its outputs under distinct inputs are independent.

| label                    | context              | signs                                           |
|--------------------------|----------------------|-------------------------------------------------|
| `songqueue-callback:`    | the receiver's origin| the callbacks to that origin (Standard Webhooks) |
| `songqueue-notify-hook:` | (none)               | the per-job notify URLs (producer/core/hook_link.py) |
"""

from __future__ import annotations

import hashlib
import hmac

CALLBACK_RECEIVER = "songqueue-callback:"
NOTIFY_HOOK = "songqueue-notify-hook:"
LABELS = (CALLBACK_RECEIVER, NOTIFY_HOOK)


def derive(master: bytes, label: str, context: str = "") -> bytes:
    """The key for `label` (one of LABELS) and its `context`."""
    if label not in LABELS:
        raise ValueError(f"unknown key label {label!r}")
    return hmac.new(master, (label + context).encode(), hashlib.sha256).digest()
