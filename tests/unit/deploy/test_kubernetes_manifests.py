"""The Kubernetes manifests check themselves: valid against the Kubernetes schemas
(kubernetes-validate, strict: no unknown fields), and every Deployment with probes, a
non-root read-only container, requests and limits; PodDisruptionBudgets; a pinned image."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate (the dev extra)")

K8S = Path(__file__).resolve().parents[3] / "deploy" / "k8s"
KUSTOMIZATION = yaml.safe_load((K8S / "kustomization.yaml").read_text())
FILES = [*KUSTOMIZATION["resources"], "secret.example.yaml"]
KUBERNETES = "1.30"


def _docs() -> list[dict]:
    return [doc for name in FILES for doc in yaml.safe_load_all((K8S / name).read_text()) if doc]


def _deployments() -> list[dict]:
    return [doc for doc in _docs() if doc["kind"] == "Deployment"]


@pytest.mark.parametrize("doc", _docs(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_valid_against_the_kubernetes_schema(doc):
    kubernetes_validate.validate(doc, KUBERNETES, strict=True)


@pytest.mark.parametrize("deployment", _deployments(), ids=lambda d: d["metadata"]["name"])
def test_every_deployment_checks_itself_and_runs_locked_down(deployment):
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    mounts = {volume["name"]: volume for volume in pod.get("volumes", [])}
    for container in pod["containers"]:
        assert "livenessProbe" in container, container["name"]
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        resources = container["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"]) and {"cpu", "memory"} <= set(resources["limits"])
        # A read-only root needs a writable /tmp.
        assert any(m["mountPath"] == "/tmp" and "emptyDir" in mounts[m["name"]] for m in container["volumeMounts"])


def test_workers_spool_to_an_empty_dir_and_keep_replicas_through_disruptions():
    budgets = {doc["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"]
               for doc in _docs() if doc["kind"] == "PodDisruptionBudget"}
    for deployment in _deployments():
        component = deployment["metadata"]["labels"]["app.kubernetes.io/component"]
        if deployment["spec"]["replicas"] > 1:
            assert component in budgets, component
        if component.startswith("worker-"):
            container = deployment["spec"]["template"]["spec"]["containers"][0]
            spool = next(e["value"] for e in container["env"] if e["name"] == "SONGQUEUE_SPOOL_DIR")
            assert any(m["mountPath"] == spool for m in container["volumeMounts"])
            assert f"-d {component.removeprefix('worker-')}@$HOSTNAME" in " ".join(
                container["livenessProbe"]["exec"]["command"])


def test_image_is_pinned_and_the_callback_secret_is_provided():
    tags = {image["name"]: str(image["newTag"]) for image in KUSTOMIZATION["images"]}
    assert tags["songqueue"] not in ("", "latest")
    secret = yaml.safe_load((K8S / "secret.example.yaml").read_text())
    assert "SONGQUEUE_CALLBACK_SECRET" in secret["stringData"]
