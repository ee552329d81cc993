"""deploy/compose.yaml, Dockerfile and entrypoint, checked by parsing (no Docker engine here)."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
import yaml

from providers import REGISTRY
from providers.sandbox import Sandbox
from tests.deploy.conftest import (
    DEPLOY,
    PRIORITY_QUEUES,
    QUEUES,
    SECRET,
    WORKER_QUEUES,
    longest_stop,
    seconds,
)

COMPOSE: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
PROFILES = ("live", "sandbox")


def active(profile: str) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in SERVICES.items()
            if not s.get("profiles") or profile in s["profiles"]}


def role(service: dict[str, Any]) -> str | None:
    command = service.get("command") or []
    return command[0] if command else None


def env_file(path: str) -> dict[str, str]:
    out = {}
    for line in (DEPLOY / path).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key] = value
    return out


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_service_has_a_healthcheck(name):
    """Each service declares a health check with a test command."""
    check = SERVICES[name].get("healthcheck") or {}
    assert check.get("test"), f"{name} has no healthcheck"
    assert not check.get("disable")


@pytest.mark.parametrize("profile", PROFILES)
def test_exactly_one_beat_per_profile(profile):
    """Whichever profile runs, exactly one beat runs, and it is never scaled."""
    beats = [n for n, s in active(profile).items() if role(s) == "beat"]
    assert len(beats) == 1, beats
    assert SERVICES[beats[0]].get("deploy", {}).get("replicas", 1) == 1


@pytest.mark.parametrize("profile", PROFILES)
def test_a_worker_consumes_every_queue(profile):
    """The control queue and every gateway's queue have a consumer in each profile."""
    consumed: set[str] = set()
    for service in active(profile).values():
        command = service.get("command") or []
        if role(service) == "worker":
            assert "-Q" in command, "a worker must name its queues"
            consumed |= set(command[command.index("-Q") + 1].split(","))
    assert consumed == QUEUES


def test_live_workers_have_one_service_per_queue():
    """Production runs one worker service per queue, so a slow gateway never blocks another
    (besides the priority worker, which takes the high lanes of all)."""
    queues = [s["command"][s["command"].index("-Q") + 1] for s in active("live").values()
              if role(s) == "worker" and s["command"][s["command"].index("-Q") + 1]
              != PRIORITY_QUEUES]
    assert sorted(queues) == sorted(WORKER_QUEUES)


@pytest.mark.parametrize("profile", PROFILES)
def test_a_priority_worker_takes_only_the_high_lanes(profile):
    """Each profile has a worker on every gateway's high-lane queue and nothing else, so an
    OTP never waits for a process that holds a bulk send (README "Lanes")."""
    from worker.engine import high_queues

    assert PRIORITY_QUEUES == ",".join(high_queues(list(REGISTRY)))
    priority = [s for s in active(profile).values() if role(s) == "worker"
                and s["command"][s["command"].index("-Q") + 1] == PRIORITY_QUEUES]
    assert len(priority) == 1
    assert not any(q.endswith(".bulk") for q in PRIORITY_QUEUES.split(","))


def test_no_secret_literal_in_compose():
    """Secret-looking variables never carry a value in compose.yaml (they come from env files)."""
    for name, service in SERVICES.items():
        env = service.get("environment") or {}
        items = env.items() if isinstance(env, dict) else (e.partition("=")[::2] for e in env)
        for key, value in items:
            assert not (SECRET.search(key) and value and not str(value).startswith("${")), \
                f"{name}: {key} has a literal value"
    for name in REGISTRY:
        assert f"sandbox-{name}" not in (DEPLOY / "compose.yaml").read_text()


def test_live_services_read_settings_from_the_operators_env_file():
    """Production services take settings from smsq.env, the demo from sandbox.env."""
    for name, service in SERVICES.items():
        files = [f["path"] if isinstance(f, dict) else f for f in service.get("env_file", [])]
        if "live" in service.get("profiles", []):
            assert files == ["./smsq.env"], name
        if role(service) in ("worker", "beat", "webhooks") and "sandbox" in \
                service.get("profiles", []):
            assert files == ["./sandbox.env"], name


def test_sandbox_env_matches_the_simulators():
    """sandbox.env carries the simulators' own test credentials and points at the sandbox host."""
    wired = env_file("sandbox.env")
    for key, value in Sandbox().env().items():
        assert key in wired, key
        if key.endswith(("_BASE_URL", "_MIRRORS")):
            assert all(u.startswith("http://sandbox:") for u in wired[key].split(",")), key
        else:
            assert wired[key] == value, key
    assert wired["SMSQ_WEBHOOK_TOKEN"] in SERVICES["sandbox"]["environment"][
        "SANDBOX_CALLBACK_BASE"]


def test_redis_persists_and_never_evicts():
    """Redis runs with redis.conf (append-only, noeviction) on a named volume."""
    redis = SERVICES["redis"]
    conf = (DEPLOY / "redis.conf").read_text().splitlines()
    assert "appendonly yes" in conf
    assert "maxmemory-policy noeviction" in conf
    assert any(v.startswith("redis-data:/data") for v in redis["volumes"])
    assert "redis-data" in COMPOSE["volumes"]
    assert not redis.get("profiles")


@pytest.mark.parametrize("name", sorted(n for n, s in SERVICES.items()
                                        if role(s) in ("worker", "beat", "webhooks")))
def test_smsq_services_wait_for_redis_and_restart(name):
    """smsq processes start after Redis is healthy and restart on failure."""
    service = SERVICES[name]
    assert service["depends_on"]["redis"]["condition"] == "service_healthy"
    assert service["restart"] in ("always", "unless-stopped")


def test_workers_stop_grace_outlasts_the_longest_gateway_call():
    """Docker waits longer than a send can take before it kills a worker."""
    for service in SERVICES.values():
        if role(service) == "worker":
            assert seconds(service["stop_grace_period"]) >= longest_stop()


def test_dockerfile_is_slim_non_root_and_installs_the_wheel():
    """The image: slim Python, a non-root user, the project from its wheel, role entrypoint."""
    lines = [line.strip() for line in (DEPLOY / "Dockerfile").read_text().splitlines()]
    froms = [line for line in lines if line.startswith("FROM ")]
    assert froms and all("-slim" in line for line in froms)
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    assert any(line.startswith("RUN pip wheel") for line in lines)
    assert any("--no-index --find-links /wheels smsq" in line for line in lines)
    assert 'ENTRYPOINT ["smsq-entrypoint"]' in lines


def test_entrypoint_selects_every_role_and_is_valid_sh():
    """The entrypoint parses and knows worker, beat, webhooks and sandbox."""
    path = DEPLOY / "entrypoint.sh"
    subprocess.run(["sh", "-n", str(path)], check=True)
    text = path.read_text()
    for name in ("worker)", "beat)", "webhooks)", "sandbox)"):
        assert name in text
