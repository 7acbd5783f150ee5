"""Checks of the configuration itself: settings in effect, unknown variables, storage,
callbacks, and each provider (its API key set, its base URL answering).

The provider check is driven by the provider table and the typed provider settings, so a
new provider is checked without a change here."""

from __future__ import annotations

import os
import secrets
import uuid
from pathlib import Path
from urllib.parse import unquote, urlparse

import requests
from pydantic import SecretStr

from producer.core.fleet import mask_url
from producer.core.models.providers import provider_spec
from producer.core.settings import Settings
from producer.core.unknown_settings import FAULT_POINT, TEST_FAULTS, unknown_variables
from producer.doctor.report import Line, failed, passed


def settings_in_effect(settings: Settings) -> Line:
    """Every setting that differs from its default, secrets masked."""
    changed: dict[str, str] = {}
    for name, info in Settings.model_fields.items():
        value = getattr(settings, name)
        default = info.default
        if isinstance(value, SecretStr):
            if value.get_secret_value():
                changed[name] = "****"
            continue
        if value != default:
            changed[name] = mask_url(value) if isinstance(value, str) and "://" in value else str(value)
    shown = ", ".join(f"{k}={v}" for k, v in changed.items()) or "all defaults"
    return passed("settings", f"{len(changed)} set: {shown}", settings=changed)


def unknown_settings() -> Line:
    """Every SONGQUEUE_* variable is a setting (or one of ours that is not), and no crash
    point of the fault tests is armed here."""
    unknown = unknown_variables()
    problems = [v.describe() for v in unknown]
    fixes = [f"rename {v.name} to {v.suggestion}" if v.suggestion else f"remove {v.name}" for v in unknown]
    point = os.environ.get(FAULT_POINT)
    if point:
        problems.append(f"{FAULT_POINT}={point} is set: a worker started with it crashes itself on purpose at that "
                        f"point (the fault tests' switch), and refuses to start without {TEST_FAULTS}=1")
        fixes.append(f"unset {FAULT_POINT} outside the fault tests")
    if not problems:
        return passed("variables", "every SONGQUEUE_* variable is a known setting")
    return failed("variables", "; ".join(problems), "; ".join(fixes), unknown=[v.name for v in unknown])


def storage_writable(settings: Settings) -> Line:
    url = settings.storage_url
    probe = f"_doctor/{uuid.uuid4().hex}"
    try:
        if url.startswith("s3://"):
            from producer.core.objects.s3 import S3Location, s3_client

            where = S3Location.parse(url)
            key = f"{where.key}/{probe}" if where.key else probe
            client = s3_client(settings)
            client.put_object(Bucket=where.bucket, Key=key, Body=b"doctor")
            client.delete_object(Bucket=where.bucket, Key=key)
        else:
            parsed = urlparse(url)
            root = Path(unquote(parsed.netloc + parsed.path))
            root.mkdir(parents=True, exist_ok=True)
            path = root / f".doctor-{uuid.uuid4().hex}"
            path.write_bytes(b"doctor")
            path.unlink()
    except Exception as exc:  # noqa: BLE001 - any failure to write is the finding
        return failed("storage", f"cannot write to {url}: {type(exc).__name__}: {exc}",
                      "fix the folder's permissions, or for S3 the bucket, SONGQUEUE_S3_ENDPOINT_URL and the "
                      "AWS_* credentials; or point SONGQUEUE_STORAGE_URL elsewhere")
    return passed("storage", f"{url} is writable")


def callback_secret(settings: Settings, jobs_with_callbacks: int | None) -> Line:
    """The secret is needed where callbacks are used: a setting that implies them, or jobs carrying one."""
    if settings.callback_secret.get_secret_value():
        return passed("callbacks", "SONGQUEUE_CALLBACK_SECRET is set")
    reasons = []
    if settings.callback_progress:
        reasons.append("SONGQUEUE_CALLBACK_PROGRESS=true")
    if settings.callback_allowed_hosts:
        reasons.append("SONGQUEUE_CALLBACK_ALLOWED_HOSTS is set")
    if jobs_with_callbacks:
        reasons.append(f"{jobs_with_callbacks} recent jobs have a callback_url")
    if settings.notify_hook_url:
        reasons.append("SONGQUEUE_NOTIFY_HOOK_URL is set")
    if not reasons:
        return passed("callbacks", "not in use (no recent job has a callback_url), so no secret is needed")
    return failed("callbacks", f"in use ({', '.join(reasons)}) but SONGQUEUE_CALLBACK_SECRET is unset: "
                  "no callback is ever sent, and notify URLs go unsigned (an uncertain submit cannot be "
                  "reconciled from the hook)", "set SONGQUEUE_CALLBACK_SECRET (e.g. `openssl rand -hex 32`) "
                  "on every worker and the hook server, and give the receivers their secrets")


def provider(settings: Settings, name: str) -> Line:
    """Provider `name`: its API key set and, where the gateway has a call that costs nothing,
    accepted (the fetch of a task that does not exist); else its base URL answering."""
    own = settings.provider(name)
    key = own.api_key.get_secret_value()
    if not key:
        return failed(f"provider {name}", f"{own.env('api_key')} is not set",
                      f"set {own.env('api_key')} here and on every worker (the local sandbox of `make sandbox` "
                      "takes 'sandbox-key', or $SONGQUEUE_SANDBOX_API_KEY)")
    probe = provider_spec(name).key_probe
    url = own.base_url.rstrip("/") + (probe.format(task_id="songqueue-doctor-" + secrets.token_hex(4)) if probe else "")
    try:
        answer = requests.get(url, timeout=3, allow_redirects=False, headers={"Authorization": f"Bearer {key}"})
    except requests.RequestException as exc:
        return failed(f"provider {name}", f"{own.base_url} does not answer ({type(exc).__name__})",
                      f"check {own.env('base_url')} and the network (for the local sandbox: `make sandbox`)")
    verdict = key_verdict(probe is not None, answer.status_code)
    if verdict == "refused":
        return failed(f"provider {name}", f"{own.base_url} refused the key (HTTP {answer.status_code})",
                      f"check {own.env('api_key')}: the gateway does not accept it")
    if verdict == "accepted":
        return passed(f"provider {name}", f"key accepted: the fetch of an unknown task answered HTTP "
                      f"{answer.status_code}, not 401/403 ({own.base_url})")
    return passed(f"provider {name}", f"key set; {own.base_url} answers (HTTP {answer.status_code}), but this "
                  "gateway has no free call that checks a key: the first job will tell")


def key_verdict(probed: bool, status: int) -> str:
    """What an answer says of the key: refused (401/403), accepted (a probe's unknown task: 404,
    or 400 `task_not_exist` as new-api relays answer it), or unknown."""
    if status in (401, 403):
        return "refused"
    if probed and status in (400, 404):
        return "accepted"
    return "unknown"
