"""`songqueue doctor` on a fresh machine with nothing running, and on a real running stack;
the submit-side refusals and hints that point at the same problems."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import redis
import stack

from producer.core.task_names import ALL_QUEUES

pytestmark = pytest.mark.integration

CHECKS = ["settings", "variables", "redis", "broker", "workers", "fleet", "watchdog", "clock", "storage",
          "provider minimax", "provider suno", "provider udio", "callbacks"]


def _songqueue(env: dict[str, str], *args: str, cwd=stack.ROOT, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "producer.cli.main", *args], env={**env, "PYTHONPATH": str(stack.ROOT)},
                          capture_output=True, text=True, timeout=timeout, cwd=cwd)


def _doctor(env: dict[str, str], cwd=stack.ROOT) -> tuple[int, dict[str, dict]]:
    done = _songqueue(env, "doctor", "--json", cwd=cwd)
    report = json.loads(done.stdout)
    assert report["ok"] == (done.returncode == 0)
    return done.returncode, {line["check"]: line for line in report["checks"]}


def test_doctor_on_a_fresh_machine_names_every_failure_with_a_fix(tmp_path):
    closed = stack.free_port()
    env = stack.worker_env({
        "SONGQUEUE_BROKER_URL": f"redis://:hunter2@127.0.0.1:{closed}/0",
        "SONGQUEUE_UDIO_BASE_URL": f"http://127.0.0.1:{closed}",
        "SONGQUEUE_MINIMAX_BASE_URL": f"http://127.0.0.1:{closed}",
        "SONGQUEUE_SUNO_BASE_URL": f"http://127.0.0.1:{closed}",
        "SONGQUEUE_UDIO_APIKEY": "typo",
    })
    code, checks = _doctor(env, cwd=tmp_path)
    assert code == 1
    assert list(checks) == CHECKS
    failing = {name for name, line in checks.items() if not line["ok"]}
    assert failing == {"variables", "redis", "broker", "workers", "fleet", "watchdog", "clock", "provider minimax",
                       "provider suno", "provider udio"}
    assert all(checks[name]["fix"] for name in failing)
    assert "did you mean SONGQUEUE_UDIO_API_KEY?" in checks["variables"]["detail"]
    assert "SONGQUEUE_UDIO_API_KEY is not set" in checks["provider udio"]["detail"]
    assert checks["storage"]["ok"] and (tmp_path / "var" / "objects").is_dir()
    assert "hunter2" not in json.dumps(checks)  # the broker's password is masked

    text = _songqueue(env, "doctor", cwd=tmp_path)
    assert text.returncode == 1
    assert text.stdout.count("FAIL") == len(failing) and text.stdout.count("fix: ") == len(failing)
    assert "hunter2" not in text.stdout


def test_callback_url_without_a_secret_is_refused_before_anything_is_sent(tmp_path):
    # Exit 2 rather than 4 (unreachable): refused before Redis or the broker is touched.
    env = stack.worker_env({"SONGQUEUE_BROKER_URL": f"redis://127.0.0.1:{stack.free_port()}/0"})
    done = _songqueue(env, "submit", "--prompt", "x", "--callback-url", "https://receiver.example/hook", cwd=tmp_path)
    assert done.returncode == 2
    assert "--callback-url 'https://receiver.example/hook'" in done.stderr and "SONGQUEUE_CALLBACK_SECRET" in done.stderr


def test_submit_wait_hints_when_no_worker_takes_submits(make_stack):
    s = make_stack()
    done = s.cli("submit", "--prompt", "nobody home", "--wait", "--timeout", "6")
    assert done.returncode == 3
    assert "no worker consumes the 'submit' queue" in done.stderr and "make worker" in done.stderr


def test_doctor_passes_on_a_running_stack(make_stack):
    s = make_stack(callback_secret="doctor-secret", watchdog_interval="1")
    s.start_worker(concurrency=1)
    beat = stack.start_beat(s.env, s.tmp / "beat.log")
    try:
        store = redis.Redis.from_url(s.env["SONGQUEUE_REDIS_URL"])
        last_round = f"{s.env['SONGQUEUE_KEY_PREFIX']}:watchdog:last_round"
        stack.wait_until(lambda: store.get(last_round), 60, "a watchdog round")
        code, checks = _doctor(s.env)
    finally:
        stack.stop(beat)
    assert code == 0, {name: line for name, line in checks.items() if not line["ok"]}
    assert list(checks) == CHECKS
    assert all(checks["workers"]["data"]["consumers"][queue] for queue in ALL_QUEUES)
    assert "doctor-secret" not in json.dumps(checks)
    assert checks["settings"]["data"]["settings"]["callback_secret"] == "****"

    assert checks["fleet"]["ok"] and checks["fleet"]["data"]["workers"] == 1
    assert "key accepted" in checks["provider udio"]["detail"] and "key accepted" in checks["provider suno"]["detail"]
    assert "no free call" in checks["provider minimax"]["detail"]  # said plainly: it cannot tell


def test_doctor_checks_the_keys_and_the_fleet_not_only_this_shell(make_stack):
    """A wrong key is refused by the gateway itself, and a worker started without a key (or
    with another) is named, though this shell's settings look fine."""
    s = make_stack(watchdog_interval="1")
    s.start_worker(concurrency=1, SONGQUEUE_SUNO_API_KEY="")
    store = redis.Redis.from_url(s.env["SONGQUEUE_REDIS_URL"])
    stack.wait_until(lambda: list(store.scan_iter(f"{s.env['SONGQUEUE_KEY_PREFIX']}:fleet:*")), 60,
                     "the worker's card")
    assert "provider suno cannot be served by this worker: SONGQUEUE_SUNO_API_KEY is not set" in s.worker_logs()

    code, checks = _doctor({**s.env, "SONGQUEUE_UDIO_API_KEY": "not-the-key"})
    assert code == 1
    assert not checks["provider udio"]["ok"] and "refused the key (HTTP 401)" in checks["provider udio"]["detail"]
    fleet = checks["fleet"]
    assert not fleet["ok"] and "cannot serve suno" in fleet["detail"]
    assert "suno: the workers' key differs from this shell's" in fleet["detail"]
    assert "udio: the workers' key differs from this shell's" in fleet["detail"]
    assert "not-the-key" not in json.dumps(checks) and s.env["SONGQUEUE_UDIO_API_KEY"] not in json.dumps(checks)
