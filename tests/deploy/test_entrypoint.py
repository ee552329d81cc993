"""deploy/entrypoint.sh starts each role far enough to answer: a worker answers a ping, beat
sends its release sweep, the receiver answers /healthz, the sandbox its control port."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
import requests

from providers.sandbox.server import free_port
from tests.deploy.conftest import DEPLOY, ROOT
from worker.local.embedded import EmbeddedRedis

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis().start()
    yield server
    server.cleanup()


def run_role(tmp_path: Path, role: str, *args: str, **env: str) -> subprocess.Popen[bytes]:
    """The entrypoint as the image runs it, with this venv's `celery` and `smsq` on PATH."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("SMSQ_")}
    base.update(PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
                PYTHONPATH=str(ROOT), SMSQ_STATE_DIR=str(tmp_path / "state"), **env)
    log = open(tmp_path / f"{role}.log", "wb")
    return subprocess.Popen(["sh", str(DEPLOY / "entrypoint.sh"), role, *args], env=base,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def answers(proc: subprocess.Popen[bytes], probe: Callable[[], bool],
            timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if probe():
                return True
        except (OSError, redis.RedisError, requests.RequestException):
            pass
        time.sleep(0.25)
    return False


def stop(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_worker_role_answers_a_ping(broker, tmp_path):
    """`entrypoint.sh worker -Q smsq -n NAME` starts a Celery worker that answers a ping."""
    from celery import Celery

    node = f"probe{os.getpid()}@{socket.gethostname()}"
    proc = run_role(tmp_path, "worker", "-Q", "smsq", "-n", node, "-c", "1",
                    SMSQ_REDIS_URL=broker.url)
    app = Celery("probe", broker=broker.url, set_as_current=False)
    try:
        assert answers(proc, lambda: bool(app.control.ping([node], timeout=1.0))), \
            (tmp_path / "worker.log").read_text()[-3000:]
    finally:
        stop(proc)


def test_beat_role_sends_the_release_sweep_and_keeps_state_out_of_cwd(broker, tmp_path):
    """`entrypoint.sh beat` publishes smsq.release and keeps its schedule in SMSQ_STATE_DIR."""
    r = redis.Redis.from_url(broker.url)
    r.delete("smsq")

    def released() -> bool:
        return any(json.loads(m)["headers"]["task"] == "smsq.release"
                   for m in r.lrange("smsq", 0, -1))

    proc = run_role(tmp_path, "beat", SMSQ_REDIS_URL=broker.url)
    try:
        assert answers(proc, released), (tmp_path / "beat.log").read_text()[-3000:]
    finally:
        stop(proc)
    assert list((tmp_path / "state").glob("celerybeat-schedule*"))


def test_webhooks_role_answers_healthz(broker, tmp_path):
    """`entrypoint.sh webhooks` serves the receiver on SMSQ_WEBHOOK_PORT."""
    port = free_port()
    proc = run_role(tmp_path, "webhooks", SMSQ_REDIS_URL=broker.url, SMSQ_WEBHOOK_TOKEN="t0k3n",
                    SMSQ_WEBHOOK_HOST="127.0.0.1", SMSQ_WEBHOOK_PORT=str(port))
    try:
        assert answers(proc, lambda: requests.get(f"http://127.0.0.1:{port}/healthz",
                                                  timeout=1).ok), \
            (tmp_path / "webhooks.log").read_text()[-3000:]
    finally:
        stop(proc)


def free_block(size: int = 10) -> int:
    """A first port with `size` free ports after it."""
    for _ in range(50):
        first = free_port()
        try:
            for port in range(first, first + size):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
    raise OSError("no block of free ports")


def test_sandbox_role_serves_the_simulators(tmp_path):
    """`entrypoint.sh sandbox` serves the simulators from SANDBOX_PORT and control at +9."""
    first = free_block()
    proc = run_role(tmp_path, "sandbox", SANDBOX_PORT=str(first), SANDBOX_HOST="127.0.0.1")

    def serving() -> bool:
        control = requests.get(f"http://127.0.0.1:{first + 9}/__sandbox__/messages", timeout=1)
        return control.json() == [] and requests.get(f"http://127.0.0.1:{first}/",
                                                     timeout=1).status_code < 500

    try:
        assert answers(proc, serving), (tmp_path / "sandbox.log").read_text()[-3000:]
    finally:
        stop(proc)
