"""Celery task hooks: the counts each task returns, its gateway time, its limiter wait."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import structlog

from providers import REGISTRY as PROVIDERS
from worker.ledger.lifecycle import Status
from worker.ops.metrics.counters import (
    OUTCOMES,
    count_outcomes,
    count_request,
    gateway_of,
    prom,
    rolling,
)
from worker.settings import get as get_settings

log = structlog.get_logger("smsq.metrics")
QUEUED, SENT = Status.QUEUED.value, Status.SENT.value  # keys of a task's returned counts
_started: dict[str, tuple[float, float]] = {}


def task_started(task_id: str, waited: float) -> None:
    _started[task_id] = (time.monotonic(), waited)


def task_finished(task_id: str, name: str, kwargs: dict[str, Any], retval: Any,
                  waited: float) -> None:
    t0, w0 = _started.pop(task_id, (time.monotonic(), waited))
    account = kwargs.get("account")
    if not isinstance(account, str) or not isinstance(retval, dict):
        return
    gateway, slept = gateway_of(account), max(0.0, waited - w0)
    p = prom()
    if name == "smsq.deliver":
        count_outcomes(gateway, retval)
        rolling.add(f"g:{gateway}", "retry", int(retval.get(QUEUED, 0)))
        if p is not None:
            p.retries.labels(gateway).inc(int(retval.get(QUEUED, 0)))
            p.deferred.labels(account).inc(int(retval.get("throttled", 0)))
            if any(retval.get(k) for k in (*OUTCOMES, QUEUED)):
                p.send_seconds.labels(gateway).observe(
                    max(0.0, time.monotonic() - t0 - slept))
    elif name == "smsq.check_status":
        count_outcomes(gateway, {k: v for k, v in retval.items() if k != SENT})
        size = PROVIDERS[gateway].max_status_ids if gateway in PROVIDERS else 1
        count_request(account, "status", math.ceil(len(kwargs.get("ids") or []) / max(1, size)))
    else:
        return
    if p is not None:
        p.limiter_wait.labels(account).observe(slept)


def connect_celery(engine: Callable[[], Any]) -> None:
    """Wire the task signals and the worker's metrics server; `engine` is this process's."""
    from celery.signals import task_postrun, task_prerun, worker_init

    def waited() -> float:
        return float(engine().limiter.waited)

    @task_prerun.connect(weak=False)  # type: ignore[untyped-decorator]
    def _pre(task_id: str = "", **_: Any) -> None:
        task_started(task_id, waited())

    @task_postrun.connect(weak=False)  # type: ignore[untyped-decorator]
    def _post(task_id: str = "", task: Any = None, kwargs: Any = None, retval: Any = None,
              **_: Any) -> None:
        try:
            task_finished(task_id, getattr(task, "name", ""), kwargs or {}, retval, waited())
            rolling.flush(engine().r)
        except Exception:
            log.warning("metrics_task_hook_failed", exc_info=True)

    @worker_init.connect(weak=False)  # type: ignore[untyped-decorator]
    def _init(**_: Any) -> None:
        from worker.ops.metrics.serve import start_worker_server

        start_worker_server(get_settings())
