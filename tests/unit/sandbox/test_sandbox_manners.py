"""The relays' manners the sandbox models (issue 23): early statuses, progress models, HTML
429s, answers lost after the task was created, the batch id cap and `action`, MiniMax's
passing rate limits, the Bearer scheme, and the realistic profile that mixes them."""

from __future__ import annotations

import contextlib
import uuid
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
import requests

from deploy.local import stack
from sandbox import server
from sandbox.audio import song_mp3
from sandbox.profiles import PROFILES, REALISTIC

UDIO_SUBMIT = "/udio/submit/music"


@pytest.fixture
def call(sandbox):
    auth = {"Authorization": f"Bearer {sandbox.api_key}"}

    def send(method: str, path: str, body: object = None, **kwargs: Any) -> requests.Response:
        return requests.request(method, sandbox.url + path, json=body, headers=auth, timeout=30,
                                allow_redirects=False, **kwargs)

    return send


def _prompt(directives: str) -> str:
    return f"song {uuid.uuid4().hex[:8]} {directives}"


def _udio_task(call, directives: str) -> str:
    answer = call("POST", UDIO_SUBMIT, {"gen_params": {"prompt": _prompt(directives)}})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["data"])


def _udio_data(call, task_id: str) -> dict[str, Any]:
    return call("GET", f"/udio/fetch/{task_id}").json()["data"]


@pytest.mark.parametrize(("name", "shown"), [("QUEUED", "QUEUED"), ("NOT_START", "NOT_START"),
                                             ("UNKNOWN", "UNKNOWN"), ("EMPTY", "")])
def test_status_before_in_progress(call, name: str, shown: str) -> None:
    task_id = _udio_task(call, f"sandbox:status_before={name} sandbox:gen_time=60")
    assert _udio_data(call, task_id)["status"] == shown


def test_suno_refuses_unknown_as_an_early_status_and_shows_the_others(call) -> None:
    refused = call("POST", "/suno/submit/music", {"gpt_description_prompt": _prompt("sandbox:status_before=UNKNOWN")})
    assert refused.status_code == 400 and "final" in refused.json()["message"]
    ok = call("POST", "/suno/submit/music", {"gpt_description_prompt": _prompt("sandbox:status_before=NOT_START "
                                                                                 "sandbox:gen_time=60")})
    assert call("GET", f"/suno/fetch/{ok.json()['data']}").json()["data"]["status"] == "NOT_START"


def test_progress_models(call) -> None:
    stuck, steps, none = (_udio_task(call, f"sandbox:progress={m} sandbox:gen_time=2") for m in
                          ("stuck", "stepwise", "none"))
    seen: dict[str, set[str]] = {"stuck": set(), "stepwise": set()}

    def finished() -> bool:
        for key, task_id in (("stuck", stuck), ("stepwise", steps)):
            seen[key].add(_udio_data(call, task_id)["progress"])
        assert "progress" not in _udio_data(call, none)
        return "100%" in seen["stuck"] and "100%" in seen["stepwise"]

    stack.wait_until(finished, 20, "both tasks done", interval=0.05)
    assert seen["stuck"] == {"0%", "100%"}
    assert seen["stepwise"] <= {"0%", "25%", "50%", "75%", "100%"} and len(seen["stepwise"]) >= 3


@pytest.mark.parametrize("kind", ["html", "date"])
def test_html_429_with_retry_after_in_seconds_or_as_a_date(call, sandbox, kind: str) -> None:
    prompt = _prompt(f"sandbox:submit_429_{kind}")
    first = call("POST", UDIO_SUBMIT, {"gen_params": {"prompt": prompt}})
    assert first.status_code == 429 and first.headers["Content-Type"].startswith("text/html")
    retry = first.headers["Retry-After"]
    if kind == "html":
        assert retry == "2"
    else:
        assert parsedate_to_datetime(retry).tzinfo is not None
    assert call("POST", UDIO_SUBMIT, {"gen_params": {"prompt": prompt}}).status_code == 200
    assert sandbox.stats()["faults_by_prompt"][prompt] == {f"submit_429_{kind}": 1}


@pytest.mark.parametrize(("name", "status"), [("submit_accept_504", 504), ("submit_accept_4xx", 400),
                                              ("submit_accept_garbled", 200), ("submit_accept_502", 502)])
@pytest.mark.parametrize("provider", ["udio", "suno"])
def test_answers_lost_after_the_task_was_created(call, sandbox, name: str, status: int, provider: str) -> None:
    prompt = _prompt(f"sandbox:{name}")
    if provider == "udio":
        answer = call("POST", UDIO_SUBMIT, {"gen_params": {"prompt": prompt}})
    else:
        answer = call("POST", "/suno/submit/music", {"gpt_description_prompt": prompt})
    assert answer.status_code == status
    if status == 200:
        with pytest.raises(ValueError):
            answer.json()
    stats = sandbox.stats()
    assert stats["submits_by_prompt"][prompt] == 1  # the task exists: it was paid for
    [task_id] = [t for t, row in stats["tasks"].items() if row["prompt"] == prompt]
    assert stats["faults_by_task"][task_id] == {name: 1}


def test_suno_accept_then_drop_creates_the_task(call, sandbox) -> None:
    prompt = _prompt("sandbox:submit_accept_drop")
    with pytest.raises(requests.ConnectionError):
        call("POST", "/suno/submit/music", {"gpt_description_prompt": prompt})
    assert sandbox.stats()["submits_by_prompt"][prompt] == 1


def test_batch_id_cap_and_action(call, sandbox) -> None:
    ids = [call("POST", "/suno/submit/music", {"gpt_description_prompt": _prompt("")}).json()["data"]
           for _ in range(3)]
    sandbox.configure(batch_id_cap=2)
    try:
        refused = call("POST", "/suno/fetch", {"ids": ids, "action": "MUSIC"})
        assert refused.status_code == 400 and "at most 2" in refused.json()["message"]
        assert len(call("POST", "/suno/fetch", {"ids": ids[:2], "action": "MUSIC"}).json()["data"]) == 2
    finally:
        sandbox.configure(batch_id_cap=0)
    assert call("POST", "/suno/fetch", {"ids": ids, "action": "LYRICS"}).json()["data"] is None
    assert call("POST", "/suno/fetch", {"ids": ids, "action": "VIDEO"}).status_code == 400


@pytest.mark.parametrize("code", [1002, 1039])
def test_minimax_rate_limit_then_success(sandbox, code: int) -> None:
    auth = {"Authorization": f"Bearer {sandbox.api_key}"}
    upload = requests.post(sandbox.url + "/minimaxi/v1/music_upload", headers=auth, timeout=10,
                           files={"purpose": (None, "voice"), "file": ("v.mp3", song_mp3(1.0, 2), "audio/mpeg")})
    voice = upload.json()["voice_id"]
    lyrics = f"la {uuid.uuid4().hex[:8]} sandbox:minimax_{code}"
    form = {"model": (None, "music-01"), "lyrics": (None, lyrics), "refer_voice": (None, voice)}
    before = sandbox.stats()["minimax_generations"]
    first = requests.post(sandbox.url + "/minimaxi/v1/music_generation", files=form, headers=auth, timeout=30)
    assert first.json()["base_resp"]["status_code"] == code
    assert sandbox.stats()["minimax_generations"] == before  # refused, not billed
    second = requests.post(sandbox.url + "/minimaxi/v1/music_generation", files=form, headers=auth, timeout=30)
    assert second.json()["base_resp"]["status_code"] == 0
    assert sandbox.stats()["minimax_generations"] == before + 1


def test_a_bare_key_is_refused_on_every_endpoint(sandbox) -> None:
    before = sandbox.stats()["unauthorized"]
    gated = [(m, p) for m, p, _ in server.ROUTES if not p.startswith(("/_sandbox", "/files", "/images",
                                                                       "/minimax/audio", "/suno/stream"))]
    for method, pattern in gated:
        path = pattern.replace("(?:music|MUSIC)", "music").replace("(?P<task_id>[^/]+)", "x")
        answer = requests.request(method, sandbox.url + path, headers={"Authorization": sandbox.api_key},
                                  json={}, timeout=10)
        assert answer.status_code == 401, path
    assert sandbox.stats()["unauthorized"] == before + len(gated)


def test_profile_is_data_and_its_draw_is_reproducible() -> None:
    assert PROFILES["realistic"] is REALISTIC
    groups: dict[tuple[str, str], float] = {}
    for manner in REALISTIC.manners:
        for provider in manner.providers:
            groups[(manner.group, provider)] = groups.get((manner.group, provider), 0) + manner.rate
    assert all(total <= 1 for total in groups.values()), groups
    prompts = [f"p{i}" for i in range(300)]
    first = [REALISTIC.draw(7, "udio", p) for p in prompts]
    assert first == [REALISTIC.draw(7, "udio", p) for p in reversed(prompts)][::-1]
    assert first != [REALISTIC.draw(8, "udio", p) for p in prompts]
    drawn = {m.name for d in first for m in d}
    assert {"status_queued", "progress_stuck", "unknown_for", "submit_429_html"} <= drawn


def test_profile_through_config_adds_its_manners_and_knobs(call, sandbox) -> None:
    sandbox.configure(profile="realistic", seed=23)
    try:
        assert requests.get(sandbox.url + "/_sandbox/config", timeout=5).json()["batch_id_cap"] == 50
        prompts = [f"profile probe {i}" for i in range(12)]  # fixed: the draws are seeded by the prompt
        for prompt in prompts:
            # A drawn accept-then-drop manner loses the answer by design.
            with contextlib.suppress(requests.ConnectionError):
                call("POST", UDIO_SUBMIT, {"gen_params": {"prompt": prompt}})
        draws = sandbox.stats()["profile_draws"]
        assert all(p in draws for p in prompts)
        assert any(draws[p] for p in prompts)
    finally:
        sandbox.configure(profile="", batch_id_cap=0, seed=None)
    refused = requests.post(sandbox.url + "/_sandbox/config", json={"profile": "kind"}, timeout=5)
    assert refused.status_code == 400


def test_profile_flag_on_the_command_line() -> None:
    args = server.build_parser().parse_args(["--profile", "realistic", "--seed", "5"])
    assert (args.profile, args.seed) == ("realistic", 5)
