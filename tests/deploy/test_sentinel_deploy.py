"""deploy/compose.sentinel.yaml and deploy/sentinel.conf: the override merges with
compose.yaml under Compose's own schema, every smsq process is pointed at exactly the
sentinels it defines (and at the service name they monitor), and the shipped sentinel.conf
and redis.conf really start a primary, a replica and three sentinels that agree."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from providers.sandbox.server import free_port
from tests.deploy.conftest import DEPLOY
from tests.deploy.test_run import compose_binary
from tests.integration.conftest import wait_for
from worker import settings
from worker.local.embedded import die_with_parent, redis_binary
from worker.transport.connection import sentinel_parts, target

PROFILES = [a for p in ("live", "sandbox", "flower", "monitoring") for a in ("--profile", p)]
SMSQ_ROLES = ("worker", "beat", "webhooks")


def conf_lines(name: str) -> list[list[str]]:
    return [line.split() for line in (DEPLOY / name).read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def monitor() -> tuple[str, str, int, int]:
    """sentinel.conf's `sentinel monitor <name> <host> <port> <quorum>`."""
    found = [w for w in conf_lines("sentinel.conf") if w[:2] == ["sentinel", "monitor"]]
    assert len(found) == 1, found
    _, _, name, host, port, quorum = found[0]
    return name, host, int(port), int(quorum)


def merged(tmp: Path | None = None) -> subprocess.CompletedProcess[str]:
    where = tmp or DEPLOY
    return subprocess.run([compose_binary(), "-f", "compose.yaml", "-f", "compose.sentinel.yaml",
                           *PROFILES, "config", "--format", "json"],
                          capture_output=True, text=True, cwd=where)


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    result = merged()
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
    found: dict[str, dict[str, Any]] = json.loads(result.stdout)["services"]
    return found


def test_the_override_passes_the_compose_schema_and_can_fail(tmp_path: Path) -> None:
    """compose.yaml + compose.sentinel.yaml pass `docker compose config`; a misspelt key in
    the override is rejected (the check can fail)."""
    for name in ("compose.yaml", "sandbox.env", "redis.conf", "sentinel.conf"):
        shutil.copy(DEPLOY / name, tmp_path / name)
    text = (DEPLOY / "compose.sentinel.yaml").read_text()
    (tmp_path / "compose.sentinel.yaml").write_text(text.replace("stop_grace_period: 30s",
                                                                 "stop_grace_perod: 30s"))
    result = merged(tmp_path)
    assert result.returncode != 0 and "stop_grace_perod" in result.stderr


def _sentinels(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in services.items() if "--sentinel" in " ".join(s.get("command") or [])}


def test_every_smsq_process_names_exactly_the_sentinels(
        services: dict[str, dict[str, Any]]) -> None:
    """Each worker, beat and receiver (every profile) gets a sentinel:// URL naming the three
    sentinel services on Sentinel's port and the service name sentinel.conf monitors, WAITs
    for one replica, and starts only once every sentinel is healthy."""
    sentinels = _sentinels(services)
    assert len(sentinels) == 3
    port = next(int(w[1]) for w in conf_lines("sentinel.conf") if w[0] == "port")
    name, _, _, quorum = monitor()
    assert quorum == 2  # a majority of three
    smsq = {n: s for n, s in services.items() if (s.get("command") or [""])[0] in SMSQ_ROLES}
    assert len(smsq) >= 10, sorted(smsq)
    for service_name, service in smsq.items():
        env = service["environment"]
        found = sentinel_parts(env["SMSQ_REDIS_URL"])
        assert set(found.hosts) == {(s, port) for s in sentinels}, service_name
        assert found.service == name
        assert env["SMSQ_REDIS_MIN_REPLICAS"] == "1"
        for s in sentinels:
            assert service["depends_on"][s]["condition"] == "service_healthy", service_name
    for s in sentinels.values():
        assert s["healthcheck"]["test"][-2:] == ["ckquorum", name]
        assert any(v["target"] == "/data" and v["type"] == "volume" for v in s["volumes"])


def test_the_sentinels_watch_the_primary_and_the_replica_follows_it(
        services: dict[str, dict[str, Any]]) -> None:
    """sentinel.conf monitors the compose service `redis` on its port; `redis-replica` is its
    replica; both announce their service names (container IPs change on restart)."""
    _, host, port, _ = monitor()
    assert host in services and host != "redis-replica"
    primary, replica = services[host]["command"], services["redis-replica"]["command"]
    assert primary[primary.index("--replica-announce-ip") + 1] == host
    assert replica[replica.index("--replicaof") + 1: replica.index("--replicaof") + 3] == \
        [host, str(port)]
    assert replica[replica.index("--replica-announce-ip") + 1] == "redis-replica"
    assert "resolve-hostnames" in {w[1] for w in conf_lines("sentinel.conf") if len(w) > 2}


class ShippedSentinels:
    """The shipped redis.conf as primary and replica, three sentinels from copies of the
    shipped sentinel.conf (only the port and the monitored address changed: compose's
    service names do not resolve here)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.primary, self.replica = free_port(), free_port()
        self.sentinels = [free_port() for _ in range(3)]
        self.procs: list[subprocess.Popen[bytes]] = []

    def spawn(self, *args: str) -> None:
        self.procs.append(subprocess.Popen([redis_binary(), *args], stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL,
                                           preexec_fn=die_with_parent))

    def start(self) -> ShippedSentinels:
        name, host, port, _ = monitor()
        for node, extra in ((self.primary, []), (self.replica, [
                "--replicaof", "127.0.0.1", str(self.primary)])):
            d = self.root / str(node)
            d.mkdir()
            self.spawn(str(DEPLOY / "redis.conf"), "--port", str(node), "--bind", "127.0.0.1",
                       "--dir", str(d), "--logfile", str(d / "redis.log"),
                       "--replica-announce-ip", "127.0.0.1", *extra)
        shipped = (DEPLOY / "sentinel.conf").read_text()
        assert f"sentinel monitor {name} {host} {port} " in shipped
        for sport in self.sentinels:
            d = self.root / f"s{sport}"
            d.mkdir()
            text = shipped.replace(f"sentinel monitor {name} {host} {port} ",
                                   f"sentinel monitor {name} 127.0.0.1 {self.primary} ")
            (d / "sentinel.conf").write_text(text.replace("port 26379\n", f"port {sport}\n"))
            self.spawn(str(d / "sentinel.conf"), "--sentinel", "--bind", "127.0.0.1",
                       "--dir", str(d), "--logfile", str(d / "sentinel.log"))
        return self

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=20)


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShippedSentinels]:
    s = ShippedSentinels(tmp_path_factory.mktemp("shipped-sentinel")).start()
    yield s
    s.stop()


@pytest.mark.integration
def test_the_shipped_sentinel_conf_starts_and_the_sentinels_agree(
        shipped: ShippedSentinels) -> None:
    """`redis-server sentinel.conf --sentinel` (what Debian's redis-sentinel runs) starts with
    the shipped file; the three sentinels find each other and the replica, agree on the
    primary, reach quorum, and carry the file's timings. smsq, given the compose-style URL
    for them, reads and writes through the master they name."""
    name, _, _, _ = monitor()

    def agreed() -> bool:
        try:
            for port in shipped.sentinels:
                m: Any = redis.Redis(port=port, socket_timeout=2,
                                     decode_responses=True).sentinel_master(name)
                if int(m["num-slaves"]) != 1 or int(m["num-other-sentinels"]) != 2 \
                        or int(m["port"]) != shipped.primary:
                    return False
            link = redis.Redis(port=shipped.replica, socket_timeout=2).info("replication")
            return bool(link.get("master_link_status") == "up")
        except (redis.RedisError, KeyError):
            return False

    assert wait_for(agreed, timeout=30, step=0.2), \
        [p.read_text()[-1500:] for p in shipped.root.glob("s*/sentinel.log")]
    first = redis.Redis(port=shipped.sentinels[0], socket_timeout=2, decode_responses=True)
    assert first.execute_command("SENTINEL", "CKQUORUM", name).startswith("OK")
    m: Any = first.sentinel_master(name)
    assert int(m["down-after-milliseconds"]) == 5000 and int(m["failover-timeout"]) == 60000

    hosts = ",".join(f"127.0.0.1:{p}" for p in shipped.sentinels)
    cfg = settings.load({"SMSQ_REDIS_URL": f"sentinel://{hosts}/{name}",
                         "SMSQ_REDIS_MIN_REPLICAS": "1"})
    client = target(cfg).client(timeout=3)
    client.set("smsq:deploy-check", "1")
    assert client.wait(1, 2000) == 1  # the replica acknowledges: what MIN_REPLICAS relies on
    replica = redis.Redis(port=shipped.replica, socket_timeout=2)
    assert replica.get("smsq:deploy-check") == b"1"
    assert replica.config_get("appendonly") == {"appendonly": "yes"}


# -- Kubernetes: a patch for smsq-config and a NetworkPolicy, for a Sentinel-managed Redis --

K8S = DEPLOY / "k8s" / "sentinel"


def test_k8s_config_patch_makes_a_valid_sentinel_setting() -> None:
    """The patch changes only the Redis URL and MIN_REPLICAS of smsq-config; merged onto the
    shipped ConfigMap, the settings load and name the sentinels on Sentinel's port."""
    import yaml

    patch = yaml.safe_load((K8S / "config-patch.yaml").read_text())
    assert set(patch) == {"data"}
    assert set(patch["data"]) == {"SMSQ_REDIS_URL", "SMSQ_REDIS_MIN_REPLICAS"}
    base = next(d for d in yaml.safe_load_all((DEPLOY / "k8s" / "config.yaml").read_text())
                if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "smsq-config")
    env = {**base["data"], **patch["data"]}
    cfg = settings.load({k: str(v) for k, v in env.items()})
    found = target(cfg).sentinel
    assert found is not None and all(port == 26379 for _, port in found.hosts)
    assert cfg.redis_min_replicas == 1
    example = (DEPLOY / "env.example").read_text()
    assert all(key in example for key in patch["data"])


def test_k8s_sentinel_network_policy_admits_smsq_pods_on_both_ports() -> None:
    """The policy validates against Kubernetes' schema, covers the data and sentinel ports,
    and admits exactly the label every smsq workload carries (and the Redis pods)."""
    import kubernetes_validate
    import yaml

    doc = yaml.safe_load((K8S / "networkpolicy.yaml").read_text())
    kubernetes_validate.validate(doc, "1.30.0", strict=True)
    rule = doc["spec"]["ingress"][0]
    assert {p["port"] for p in rule["ports"]} == {6379, 26379}
    admitted = [f["podSelector"]["matchLabels"] for f in rule["from"]]
    assert {"smsq.redis-client": "true"} in admitted
    assert doc["spec"]["podSelector"]["matchLabels"] in admitted  # replication, gossip
    workloads = [d for p in (DEPLOY / "k8s").glob("*.yaml") for d in yaml.safe_load_all(
        p.read_text()) if d and d["kind"] == "Deployment"]
    assert workloads
    for w in workloads:
        labels = w["spec"]["template"]["metadata"]["labels"]
        # (the callbacks worker lacked it: redis.yaml's NetworkPolicy shut it out of Redis)
        assert labels.get("smsq.redis-client") == "true", w["metadata"]["name"]
