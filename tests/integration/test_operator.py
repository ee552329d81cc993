"""Operator surprises designed out: the demo is private and tidy, health names its Redis,
beat keeps state out of the working directory, metrics bind to loopback by default, and
metrics survive Flower being installed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import redis

from tests.deploy.conftest import ROOT
from worker import settings
from worker.local.embedded import EmbeddedRedis

pytestmark = pytest.mark.integration


def test_flower_is_installed_so_the_metrics_tests_run_under_it():
    """Flower's celery command is installed (dev extras): the worker metrics tests in
    test_ops.py run with prometheus_client imported before worker_init, as in production."""
    assert "flower" in {e.name for e in entry_points(group="celery.commands")}


def test_demo_ignores_the_operators_redis_and_cleans_up(tmp_path):
    """With SMSQ_REDIS_URL set, the demo says it ignores it, leaves that Redis untouched,
    and removes its own directory when it passes."""
    users = EmbeddedRedis().start()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SMSQ_")}
        env.update(SMSQ_REDIS_URL=f"redis://:operator-pass@127.0.0.1:{users.port}/0",
                   PYTHONPATH=str(ROOT))
        done = subprocess.run([sys.executable, "-m", "worker.cli.main", "demo", "--messages",
                               "20", "--json"], env=env, capture_output=True, text=True,
                              timeout=240, cwd=tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr[-3000:]
        assert json.loads(done.stdout)["match"] is True
        assert f"Ignoring SMSQ_REDIS_URL (127.0.0.1:{users.port})" in done.stderr
        assert "operator-pass" not in done.stdout + done.stderr
        assert redis.Redis(port=users.port).dbsize() == 0
        logs = re.search(r"logs in (\S+?)\)", done.stderr)
        assert logs and not Path(logs.group(1)).exists()
        assert not list(tmp_path.iterdir())  # nothing left in the working directory
    finally:
        users.cleanup()


def test_health_names_the_redis_it_checked_without_the_password():
    """`smsq health` against a dead Redis names host:port and never prints the password."""
    dead = EmbeddedRedis().start()
    port = dead.port
    dead.cleanup()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMSQ_")}
    env.update(SMSQ_REDIS_URL=f"redis://:pw-hunter2@127.0.0.1:{port}/0", PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "worker.cli.main", "health", "--check",
                           "redis", "--timeout", "1"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1
    assert f"redis unreachable at redis://127.0.0.1:{port}" in done.stdout
    assert "pw-hunter2" not in done.stdout + done.stderr


def test_health_says_when_the_redis_is_only_the_default():
    """With SMSQ_REDIS_URL unset, the Redis named is marked as the default, not silently used."""
    from worker.ops.health import redis_name

    assert redis_name(settings.load({})) == \
        "redis://127.0.0.1:6379 (the default: SMSQ_REDIS_URL is not set)"
    assert "default" not in redis_name(settings.load({"SMSQ_REDIS_URL": "redis://h:7/0"}))


def test_beat_state_defaults_to_the_users_state_directory():
    """Beat's schedule goes to $XDG_STATE_HOME/smsq (or SMSQ_STATE_DIR), not the cwd."""
    assert settings.load({"XDG_STATE_HOME": "/srv/state"}).state_dir == "/srv/state/smsq"
    assert settings.load({"SMSQ_STATE_DIR": "/var/lib/x"}).state_dir == "/var/lib/x"


def test_metrics_bind_to_loopback_unless_told_otherwise():
    """The metrics server's default address is 127.0.0.1; the image opts into 0.0.0.0."""
    assert settings.load({}).metrics_addr == "127.0.0.1"
    docker = (ROOT / "deploy" / "Dockerfile").read_text()
    assert "SMSQ_METRICS_ADDR=0.0.0.0" in docker


def test_a_redis_password_in_two_places_is_refused():
    """A password in both SMSQ_REDIS_URL and SMSQ_REDIS_PASSWORD is a start-up error."""
    from providers.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="one place"):
        settings.load({"SMSQ_REDIS_URL": "redis://:a@h:1/0", "SMSQ_REDIS_PASSWORD": "b"})
