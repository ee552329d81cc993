"""Shared facts for the deployment checks: where deploy/ is and what the code implies."""

from __future__ import annotations

import re
from pathlib import Path

from providers import REGISTRY
from worker.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
QUEUES = {"smsq", "smsq.callbacks", *(f"smsq.{name}" for name in REGISTRY),
          *(f"smsq.{name}.bulk" for name in REGISTRY)}
# One worker per gateway, taking its high lane before its bulk lane (`-Q` order).
WORKER_QUEUES = ["smsq", "smsq.callbacks",
                 *(f"smsq.{name},smsq.{name}.bulk" for name in REGISTRY)]
# The priority worker's -Q: every gateway's high-lane queue, no bulk, no control.
PRIORITY_QUEUES = ",".join(f"smsq.{name}" for name in REGISTRY)
SECRET = re.compile(r"(PASSWORD|TOKEN|API_ID|APIKEY|SECRET)$")
SMSC_HOSTS = 5  # main host + www2..www5, each may cost a connect timeout


def longest_stop() -> float:
    """Seconds a worker may need to stop cleanly: the longest gateway call plus soft shutdown."""
    import celeryconfig

    cfg = Settings()
    call = cfg.connect_timeout * SMSC_HOSTS + cfg.read_timeout + cfg.limiter_max_wait
    return call + float(celeryconfig.worker_soft_shutdown_timeout)


def seconds(value: str | int) -> float:
    """'90s', '2m', '1m30s' or a bare number of seconds."""
    if isinstance(value, int):
        return float(value)
    total = 0.0
    for amount, unit in re.findall(r"(\d+(?:\.\d+)?)(h|m|s|ms)?", value):
        total += float(amount) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "": 1}[unit]
    return total
