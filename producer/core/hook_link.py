"""The per-job notify URL a submit hands the gateway, and its check when the gateway calls it.

`<SONGQUEUE_NOTIFY_HOOK_URL>?job=<job id>&sig=<hex HMAC-SHA256 over "provider\\njob id\\nrun">`,
keyed with the notify hook's own key (`derived_keys.NOTIFY_HOOK`, producer/core/derived_keys.py):
no callback receiver's secret opens it, and the master secret is used for nothing but
derivation. The signature proves the URL is one songqueue made for that run of that job
of that provider; it lets its holder (the gateway) name the job's upstream task while the
job has none, nothing more (producer/api/notify_hook.py). The run is not in the URL: the
hook checks the signature against the job's current run, so a late call about a run a
replay replaced is refused. It goes into the submit body only, never into task arguments
or logs.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from producer.core import derived_keys
from producer.core.models.providers import provider_spec
from producer.core.settings import Settings


def _key(settings: Settings) -> bytes:
    return derived_keys.derive(settings.callback_secret.get_secret_value().encode(), derived_keys.NOTIFY_HOOK)


def signed(settings: Settings) -> bool:
    """Whether per-job hook URLs are made: a hook URL and a secret to sign it with."""
    return bool(settings.notify_hook_url and settings.callback_secret.get_secret_value())


def signature(settings: Settings, provider: str, job_id: str, run: int) -> str:
    return hmac.new(_key(settings), f"{provider}\n{job_id}\n{run}".encode(), hashlib.sha256).hexdigest()


def job_hook_url(settings: Settings, provider: str, job_id: str, run: int) -> str:
    """The notify URL for one job's submit; "" when the provider's gateway calls no hook.

    Without SONGQUEUE_CALLBACK_SECRET the bare hook URL is sent: the hook still triggers
    early polls of known tasks, but cannot reconcile an uncertain submit.
    """
    if not settings.notify_hook_url or not provider_spec(provider).notify_hook:
        return ""
    if not signed(settings):
        return settings.notify_hook_url
    parts = urlsplit(settings.notify_hook_url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query += [("job", job_id), ("sig", signature(settings, provider, job_id, run))]
    return urlunsplit(parts._replace(query=urlencode(query)))


def verify(settings: Settings, provider: str, job_id: str, run: int, sig: str) -> bool:
    """Constant-time check of a hook call's `job`/`sig` against the job's current `run`; False without a secret.

    Only the secret is needed here: the hook server need not know its own public URL."""
    if not settings.callback_secret.get_secret_value() or not job_id or not sig:
        return False
    # As bytes: compare_digest refuses non-ASCII str, and the query is the caller's.
    return hmac.compare_digest(signature(settings, provider, job_id, run).encode(), sig.encode("utf-8", "replace"))
