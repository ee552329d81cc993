"""`smsq worker NAME` becomes a real Celery worker on NAME's queues (what the systemd
template runs), and stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest

from tests.deploy.conftest import ROOT
from tests.integration.conftest import wait_for
from worker.local.embedded import EmbeddedRedis

pytestmark = pytest.mark.integration


def test_smsq_worker_priority_runs_celery_on_the_high_lanes_only():
    with EmbeddedRedis() as redis:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SMSQ_")}
        env.update(SMSQ_REDIS_URL=redis.url, PYTHONPATH=str(ROOT),
                   SMSQ_STATE_DIR=str(ROOT / ".pytest_cache" / "worker-cmd"),
                   SMSQ_WORKER_STALL_AFTER="1")  # the watchdog on a hair trigger
        proc = subprocess.Popen([sys.executable, "-m", "worker.cli.main", "worker", "priority",
                                 "-c", "1", "-P", "solo"], env=env, cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        lines: list[str] = []

        def read() -> None:
            assert proc.stdout is not None
            for raw in proc.stdout:
                lines.append(raw.decode(errors="replace"))

        threading.Thread(target=read, daemon=True).start()
        try:
            assert wait_for(lambda: any("ready." in ln for ln in lines), timeout=60), lines
            banner = "".join(lines)
            for gateway in ("smsru", "smsclub", "smsc", "gatum", "sms1000"):
                assert f"smsq.{gateway} " in banner or f"smsq.{gateway}\n" in banner, banner
            assert ".bulk" not in banner
            assert "priority@" in banner
            assert wait_for(lambda: any("worker_watchdog_started" in ln for ln in lines), 10)
            # idle with empty queues for several stall periods: not a stall, it stays up
            assert not wait_for(lambda: proc.poll() is not None, timeout=5)
            assert not any("worker_consumer_stalled" in ln for ln in lines)
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=60)
        assert code == 0, "".join(lines[-20:])
