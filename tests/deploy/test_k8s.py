"""deploy/k8s manifests: parsed with PyYAML and checked for structure."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.deploy.conftest import DEPLOY, PRIORITY_QUEUES, SECRET, WORKER_QUEUES, longest_stop

DOCS: list[dict[str, Any]] = [doc for path in sorted((DEPLOY / "k8s").glob("*.yaml"))
                              for doc in yaml.safe_load_all(path.read_text()) if doc]
WORKLOADS = {d["metadata"]["name"]: d for d in DOCS if d["kind"] in ("Deployment", "StatefulSet")}


def containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    return list(workload["spec"]["template"]["spec"]["containers"])


def role(workload: dict[str, Any]) -> str | None:
    args = containers(workload)[0].get("args") or []
    return args[0] if args else None


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [d for d in DOCS if d["kind"] == kind]


def test_every_doc_has_api_version_kind_and_name():
    """Every manifest document is a complete Kubernetes object."""
    assert DOCS
    for doc in DOCS:
        assert doc.get("apiVersion") and doc.get("kind") and doc["metadata"].get("name")


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_every_container_has_liveness_and_readiness_probes(name):
    """Each container of each workload is probed."""
    for container in containers(WORKLOADS[name]):
        assert container.get("livenessProbe"), f"{name}: no livenessProbe"
        assert container.get("readinessProbe"), f"{name}: no readinessProbe"


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_selector_matches_pod_labels(name):
    """A workload's selector selects its own pods."""
    spec = WORKLOADS[name]["spec"]
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()


def test_exactly_one_beat_with_recreate_strategy():
    """Beat: one Deployment, one replica, Recreate so a rollout never runs two."""
    beats = [w for w in WORKLOADS.values() if role(w) == "beat"]
    assert len(beats) == 1
    assert beats[0]["spec"]["replicas"] == 1
    assert beats[0]["spec"]["strategy"]["type"] == "Recreate"


def test_a_worker_deployment_per_queue():
    """One worker Deployment per queue (control + each gateway), plus one priority worker on
    every gateway's high-lane queue only."""
    queues = []
    for workload in WORKLOADS.values():
        args = containers(workload)[0].get("args") or []
        if role(workload) == "worker":
            queues.append(args[args.index("-Q") + 1])
    assert sorted(queues) == sorted([*WORKER_QUEUES, PRIORITY_QUEUES])


def test_smsq_pods_probe_with_smsq_health():
    """Workers' readiness and beat's probes run `smsq health`."""
    for workload in WORKLOADS.values():
        if role(workload) in ("worker", "beat"):
            probe = containers(workload)[0]["readinessProbe"]["exec"]["command"]
            assert probe[:2] == ["smsq", "health"]


def test_workers_grace_period_outlasts_the_longest_gateway_call():
    """Kubernetes waits longer than a send can take before killing a worker pod."""
    for workload in WORKLOADS.values():
        if role(workload) == "worker":
            grace = workload["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
            assert grace >= longest_stop()


def test_receiver_service_routes_to_the_receiver_port():
    """The receiver Service selects receiver pods and targets a port they declare."""
    services = {s["metadata"]["name"]: s for s in of_kind("Service")}
    receiver = services["smsq-receiver"]
    pods = [w for w in WORKLOADS.values() if role(w) == "webhooks"]
    assert len(pods) == 1
    labels = pods[0]["spec"]["template"]["metadata"]["labels"]
    assert receiver["spec"]["selector"].items() <= labels.items()
    ports = {p["name"] for p in containers(pods[0])[0]["ports"]}
    assert {p["targetPort"] for p in receiver["spec"]["ports"]} <= ports


def test_config_comes_from_configmap_and_secret_without_values():
    """smsq pods load a ConfigMap and a Secret; the Secret ships no values, the ConfigMap no
    secrets."""
    secret_names = {s["metadata"]["name"] for s in of_kind("Secret")}
    config_names = {c["metadata"]["name"] for c in of_kind("ConfigMap")}
    for secret in of_kind("Secret"):
        assert all(v == "" for v in (secret.get("stringData") or {}).values())
        assert not secret.get("data")
    for config in of_kind("ConfigMap"):
        assert not [k for k in config["data"] if SECRET.search(k)]
    for workload in WORKLOADS.values():
        if role(workload) in ("worker", "beat", "webhooks"):
            refs = containers(workload)[0]["envFrom"]
            assert {r["secretRef"]["name"] for r in refs if "secretRef" in r} <= secret_names
            assert {r["configMapRef"]["name"] for r in refs if "configMapRef" in r} \
                <= config_names


def test_smsq_containers_run_as_non_root():
    """smsq containers run as a non-root user without privilege escalation."""
    for workload in WORKLOADS.values():
        if role(workload) in ("worker", "beat", "webhooks"):
            ctx = containers(workload)[0]["securityContext"]
            assert ctx["runAsNonRoot"] is True and ctx["allowPrivilegeEscalation"] is False
