"""deploy/systemd units, parsed with configparser."""

from __future__ import annotations

import configparser

import pytest

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


def test_worker_unit_consumes_its_instance_queue():
    """`smsq-worker@<queue>` consumes exactly that queue."""
    assert " -Q %i " in unit("smsq-worker@.service")["Service"]["ExecStart"]


def test_beat_is_one_unit_not_a_template():
    """Beat is a plain unit: it cannot be started twice on a host by instance name."""
    assert not [u for u in UNITS if u.startswith("smsq-beat@")]
    assert "celery -A worker beat" in unit("smsq-beat.service")["Service"]["ExecStart"]
