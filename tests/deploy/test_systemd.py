"""deploy/systemd units, parsed with configparser."""

from __future__ import annotations

import configparser
import re

import pytest

from providers import REGISTRY
from tests.deploy.conftest import DEPLOY, longest_stop, seconds

UNITS = sorted(p.name for p in (DEPLOY / "systemd").glob("*.service"))


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(DEPLOY / "systemd" / name)
    return parser


def test_units_for_worker_beat_and_webhooks():
    """There is a unit for workers (one per queue), beat and the receiver."""
    assert {"smsq-worker@.service", "smsq-beat.service", "smsq-webhooks.service"} <= set(UNITS)


@pytest.mark.parametrize("name", UNITS)
def test_unit_restarts_and_stops_gracefully(name):
    """Every unit restarts always, stops the main process first (KillMode=mixed), runs as smsq."""
    service = unit(name)["Service"]
    assert service["Restart"] == "always"
    assert service["KillMode"] == "mixed"
    assert service["User"] == "smsq"
    assert service["ExecStart"].startswith("/opt/smsq/venv/bin/")
    assert service["EnvironmentFile"].lstrip("-").startswith("/etc/smsq/")
    assert seconds(service["TimeoutStopSec"]) > 0


def test_worker_stop_timeout_outlasts_the_longest_gateway_call():
    """systemd waits longer than a send can take before it kills a worker."""
    assert seconds(unit("smsq-worker@.service")["Service"]["TimeoutStopSec"]) >= longest_stop()


def test_worker_instances_between_them_consume_every_queue():
    """`smsq-worker@<name>` runs `smsq worker <name>`; the instances OPERATIONS.md enables
    (and the unit's own comment lists) consume every queue, bulk and callbacks included, and
    the priority instance only high lanes. The command is run for real (--dry-run)."""
    import shlex
    import subprocess
    import sys

    from tests.deploy.conftest import PRIORITY_QUEUES, QUEUES, ROOT

    start = unit("smsq-worker@.service")["Service"]["ExecStart"]
    assert start.startswith("/opt/smsq/venv/bin/smsq worker %i ")
    doc = (ROOT / "docs" / "OPERATIONS.md").read_text()
    listed = sorted(set(re.findall(r"smsq-worker@([a-z0-9]+)\b", doc)))
    assert set(listed) == {"control", "callbacks", "priority", *REGISTRY}, listed
    consumed: dict[str, list[str]] = {}
    for name in listed:
        argv = shlex.split(start.replace("%i", name))[2:]
        done = subprocess.run([sys.executable, "-m", "worker.cli.main", "worker", *argv,
                               "--dry-run"], capture_output=True, text=True, cwd=ROOT,
                              timeout=60)
        assert done.returncode == 0, done.stderr
        shown = done.stdout.split()
        consumed[name] = shown[shown.index("-Q") + 1].split(",")
    every = {q for qs in consumed.values() for q in qs}
    assert every == QUEUES | {f"smsq.{g}.bulk" for g in REGISTRY}
    assert ",".join(consumed["priority"]) == PRIORITY_QUEUES
    assert consumed["smsclub"] == ["smsq.smsclub", "smsq.smsclub.bulk"]  # high lane first


def test_beat_is_one_unit_not_a_template():
    """Beat is a plain unit: it cannot be started twice on a host by instance name."""
    assert not [u for u in UNITS if u.startswith("smsq-beat@")]
    assert "celery -A worker beat" in unit("smsq-beat.service")["Service"]["ExecStart"]
