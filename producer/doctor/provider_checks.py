"""Each provider: its API key set, and its base URL answering (any HTTP answer counts).

Driven by the provider table, so a new provider with `SONGQUEUE_{NAME}_API_KEY` and
`_BASE_URL` settings is checked without a change here.
"""

from __future__ import annotations

import requests
from pydantic import SecretStr

from producer.core.settings import Settings
from producer.doctor.report import Line, failed, passed


def provider(settings: Settings, name: str) -> Line:
    env = f"SONGQUEUE_{name.upper()}"
    key = getattr(settings, f"{name}_api_key", None)
    base_url = getattr(settings, f"{name}_base_url", "")
    problems, fixes = [], []
    if not isinstance(key, SecretStr) or not key.get_secret_value():
        problems.append(f"{env}_API_KEY is not set")
        fixes.append(f"set {env}_API_KEY (the local sandbox of `make sandbox` takes 'sandbox-key', or $SONGQUEUE_SANDBOX_API_KEY)")
    try:
        answer = requests.get(base_url, timeout=3, allow_redirects=False)
        reached = f"{base_url} answers (HTTP {answer.status_code})"
    except requests.RequestException as exc:
        problems.append(f"{base_url} does not answer ({type(exc).__name__})")
        fixes.append(f"check {env}_BASE_URL and the network (for the local sandbox: `make sandbox`)")
    if problems:
        return failed(f"provider {name}", "; ".join(problems), "; ".join(fixes))
    return passed(f"provider {name}", f"key set; {reached}")
