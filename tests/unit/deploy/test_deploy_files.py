"""deploy/: the Dockerfile, docker-compose, Prometheus and Kubernetes files parse, and every
command, module, CLI subcommand, queue and SONGQUEUE_ setting they name exists here.

No Docker engine or cluster runs here, so this is what can be checked: that the files say
what the project can do.
"""

from __future__ import annotations

import importlib
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from producer.cli.main import _parser
from producer.core import task_names
from producer.core.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
YAML_FILES = sorted([*DEPLOY.glob("*.yml"), *DEPLOY.glob("*.yaml"), *(DEPLOY / "k8s").glob("*.yaml")])
DOCKERFILE_INSTRUCTIONS = {"FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME",
                           "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL"}
SETTING = re.compile(r"\bSONGQUEUE_([A-Z0-9_]+)")
# Named in deploy files but not settings of ours: Celery's and boto3's own variables.
NOT_SETTINGS = {"REMAP_SIGTERM", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "POD_NAME"}


def _load(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _compose() -> dict[str, Any]:
    return _load(DEPLOY / "docker-compose.yml")[0]


def _k8s() -> list[dict[str, Any]]:
    return [doc for path in sorted((DEPLOY / "k8s").glob("*.yaml")) for doc in _load(path) if "kind" in doc]


def _deployments() -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in _k8s() if d["kind"] == "Deployment"}


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    lines = [line for line in (DEPLOY / "Dockerfile").read_text().splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    return [(line.split(None, 1)[0], line.split(None, 1)[1]) for line in joined.splitlines() if line.strip()]


def _commands() -> list[list[str]]:
    """Every command line a deploy file runs in the songqueue image: compose `command`,
    Kubernetes `command`+`args`, the Dockerfile's CMD."""
    found = [service["command"] for service in _compose()["services"].values()
             if str(service.get("image", "")).startswith("songqueue")]
    for doc in _deployments().values():
        for container in doc["spec"]["template"]["spec"]["containers"]:
            found.append([*container.get("command", []), *container.get("args", [])])
    found += [yaml.safe_load(args) for instruction, args in _dockerfile() if instruction == "CMD"]
    return found


def _option(argv: list[str], *names: str) -> str | None:
    for i, arg in enumerate(argv):
        for name in names:
            if arg == name:
                return argv[i + 1]
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_yaml_parses(path):
    assert _load(path), f"{path} holds no document"


def test_dockerfile_instructions_are_real_and_copy_what_exists():
    instructions = _dockerfile()
    assert instructions[0][0] == "FROM" and [i for i, _ in instructions].count("FROM") == 2
    for instruction, args in instructions:
        assert instruction in DOCKERFILE_INSTRUCTIONS, f"unknown Dockerfile instruction {instruction}"
        if instruction == "COPY" and not args.startswith("--from"):
            *sources, _ = shlex.split(args)
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: not in the build context (the repository root)"
    cmd = [args for instruction, args in instructions if instruction == "CMD"]
    assert len(cmd) == 1 and isinstance(yaml.safe_load(cmd[0]), list), "CMD in exec form"
    env = " ".join(args for instruction, args in instructions if instruction == "ENV")
    assert "REMAP_SIGTERM=SIGQUIT" in env and "SONGQUEUE_WORKER_SOFT_SHUTDOWN_TIMEOUT=" in env


def test_every_songqueue_setting_named_is_a_setting():
    named: set[str] = set()
    for path in [*YAML_FILES, DEPLOY / "Dockerfile"]:
        named |= set(SETTING.findall(path.read_text()))
    assert named, "the deploy files name settings"
    unknown = sorted(n for n in named if n.lower() not in Settings.model_fields)
    assert not unknown, f"not settings of songqueue (producer/core/settings.py): {unknown}"


def test_every_command_exists():
    subcommands = _parser()._subparsers._group_actions[0].choices  # noqa: SLF001 - the CLI's own table
    for argv in _commands():
        program, *rest = argv
        if program == "songqueue":
            assert rest[0] in subcommands, f"`songqueue {rest[0]}` is not a CLI subcommand"
            if rest[0] != "sandbox":
                _parser().parse_args(rest)  # flags and values accepted as written
        elif program == "celery":
            app = _option(argv, "-A", "--app")
            assert app is not None, argv
            importlib.import_module(app.split(":")[0])
            assert rest[2] in ("worker", "beat", "flower"), argv
            queues = _option(argv, "-Q", "--queues")
            if queues is not None:
                assert set(queues.split(",")) <= set(task_names.ALL_QUEUES), f"unknown queue in {argv}"
        else:
            pytest.fail(f"a deploy file runs {program!r}, which this project does not ship")


def test_compose_runs_every_queue_one_beat_flower_with_auth_and_prometheus():
    services = _compose()["services"]
    workers = {_option(s["command"], "-Q"): name for name, s in services.items()
               if isinstance(s.get("command"), list) and "worker" in s["command"]}
    assert set(workers) == set(task_names.ALL_QUEUES), "one worker service per queue, each on one queue"
    beats = [name for name, s in services.items() if isinstance(s.get("command"), list) and "beat" in s["command"]]
    assert beats == ["beat"]
    redis = " ".join(services["redis"]["command"])
    assert "--appendonly yes" in redis and "--requirepass" in redis
    assert services["minio"]["image"].startswith("minio/")
    flower = services["flower"]
    assert flower["command"][:2] == ["songqueue", "flower"] and "--insecure" not in flower["command"]
    assert {"SONGQUEUE_FLOWER_USER", "SONGQUEUE_FLOWER_PASSWORD"} <= set(flower["environment"])
    # Nothing that shows spend or task metrics is published beyond the host's loopback.
    published = [(name, port) for name, s in services.items() for port in s.get("ports", [])]
    assert all(str(port).startswith("127.0.0.1:") for _, port in published), published
    assert "ports" not in services["metrics"]
    assert services["worker-poll"]["environment"]["REMAP_SIGTERM"] == "SIGQUIT"
    assert "./prometheus.yml:/etc/prometheus/prometheus.yml:ro" in services["prometheus"]["volumes"]

    scrape = _load(DEPLOY / "prometheus.yml")[0]["scrape_configs"]
    targets = {c["job_name"]: c["static_configs"][0]["targets"][0] for c in scrape}
    assert targets["songqueue"] == f"metrics:{_option(services['metrics']['command'], '--port')}"
    assert targets["flower"] == f"flower:{_option(flower['command'], '--port')}"


def test_kubernetes_deployments_per_queue_single_beat_and_soft_shutdown():
    deployments = _deployments()
    config = next(d for d in _k8s() if d["kind"] == "ConfigMap")["data"]
    soft = float(config["SONGQUEUE_WORKER_SOFT_SHUTDOWN_TIMEOUT"])
    assert soft > 0
    queues = set()
    for name, doc in deployments.items():
        pod = doc["spec"]["template"]["spec"]
        container = pod["containers"][0]
        argv = container["command"]
        assert doc["spec"]["selector"]["matchLabels"].items() <= doc["spec"]["template"]["metadata"]["labels"].items()
        if "worker" in argv:
            queues.add(_option(argv, "-Q"))
            env = {e["name"]: e.get("value") for e in container.get("env", [])}
            assert env.get("REMAP_SIGTERM") == "SIGQUIT", f"{name}: SIGTERM must start a soft shutdown"
            assert pod["terminationGracePeriodSeconds"] > soft, f"{name}: the soft shutdown needs time to end"
    assert queues == set(task_names.ALL_QUEUES), "a Deployment per queue"
    beat = deployments["songqueue-beat"]["spec"]
    assert beat["replicas"] == 1 and beat["strategy"]["type"] == "Recreate"
    services = {d["metadata"]["name"]: d for d in _k8s() if d["kind"] == "Service"}
    assert {"songqueue-flower", "songqueue-metrics"} <= set(services)
    assert deployments["songqueue-flower"]["spec"]["template"]["spec"]["containers"][0]["command"][:2] == \
        ["songqueue", "flower"]
    assert "SONGQUEUE_FLOWER_USER" in config
    secret = next(d for d in _k8s() if d["kind"] == "Secret")["stringData"]
    assert "SONGQUEUE_FLOWER_PASSWORD" in secret
    listed = _load(DEPLOY / "k8s" / "kustomization.yaml")[0]["resources"]
    assert all((DEPLOY / "k8s" / name).is_file() for name in listed) and "secret.example.yaml" not in listed


def test_no_unknown_environment_names_beside_settings():
    """Every other variable the files set is one Celery or boto3 reads, or a Kubernetes field."""
    compose_env = {k for s in _compose()["services"].values() for k in (s.get("environment") or {})}
    k8s_env = {e["name"] for d in _deployments().values()
               for c in d["spec"]["template"]["spec"]["containers"] for e in c.get("env", [])}
    others = {n for n in compose_env | k8s_env if not n.startswith("SONGQUEUE_")}
    infra = {"REDIS_PASSWORD", "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"}  # for the Redis and MinIO images
    assert others <= NOT_SETTINGS | infra, others - NOT_SETTINGS - infra
