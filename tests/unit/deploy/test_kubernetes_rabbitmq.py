"""deploy/k8s/rabbitmq: the three-node RabbitMQ StatefulSet and its objects valid against the
Kubernetes schemas (kubernetes-validate, strict); the KEDA objects, for which kubernetes-validate
has no schema (SchemaNotFoundError), checked for what they must name: a worker Deployment of the
base manifests, its own task queue, an authentication that exists."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from producer.core.task_names import ALL_QUEUES

kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate (the dev extra)")

K8S = Path(__file__).resolve().parents[3] / "deploy" / "k8s"
OVERLAY = K8S / "rabbitmq"
KUBERNETES = "1.30"


def _docs(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _base_deployments() -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in _docs(K8S / "workers.yaml") if d["kind"] == "Deployment"}


@pytest.mark.parametrize("doc", _docs(OVERLAY / "rabbitmq.yaml") + _docs(OVERLAY / "quorum.yaml"),
                         ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_valid_against_the_kubernetes_schema(doc):
    kubernetes_validate.validate(doc, KUBERNETES, strict=True)


def test_three_nodes_on_three_hosts_one_down_at_a_time():
    docs = {d["kind"]: d for d in _docs(OVERLAY / "rabbitmq.yaml")}
    sts = docs["StatefulSet"]["spec"]
    assert sts["replicas"] == 3 and sts["serviceName"] == "rabbitmq-headless"
    assert sts["template"]["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert docs["PodDisruptionBudget"]["spec"]["maxUnavailable"] == 1
    assert "pause_minority" in docs["ConfigMap"]["data"]["rabbitmq.conf"]


def test_every_worker_is_scaled_on_its_own_queue_depth():
    docs = _docs(OVERLAY / "scaledobjects.yaml")
    auths = {d["metadata"]["name"] for d in docs if d["kind"] == "TriggerAuthentication"}
    scaled = [d for d in docs if d["kind"] == "ScaledObject"]
    deployments = _base_deployments()
    workers = {name for name in deployments if name.startswith("songqueue-worker-")}
    assert {d["spec"]["scaleTargetRef"]["name"] for d in scaled} == workers
    for doc in scaled:
        assert doc["apiVersion"] == "keda.sh/v1alpha1"
        target = doc["spec"]["scaleTargetRef"]["name"]
        (trigger,) = doc["spec"]["triggers"]
        assert trigger["type"] == "rabbitmq" and trigger["authenticationRef"]["name"] in auths
        queue = trigger["metadata"]["queueName"]
        assert queue in ALL_QUEUES and target == f"songqueue-worker-{queue}"
        assert 1 <= doc["spec"]["minReplicaCount"] < doc["spec"]["maxReplicaCount"]


def test_the_overlay_switches_every_process_to_quorum_queues():
    kustomization = yaml.safe_load((OVERLAY / "kustomization.yaml").read_text())
    assert ".." in kustomization["resources"]
    for name in kustomization["resources"][1:] + [p["path"] for p in kustomization["patches"]]:
        assert (OVERLAY / name).is_file(), name
    (patch,) = _docs(OVERLAY / "quorum.yaml")
    assert patch["metadata"]["name"] == "songqueue-config"
    assert patch["data"]["SONGQUEUE_AMQP_QUEUE_TYPE"] == "quorum"
