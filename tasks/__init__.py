"""Thin Celery tasks with stable names; each loads, calls `worker`, and returns a summary.

Task names and kwargs are a public interface (see README): other applications
enqueue them with `app.send_task("smsq.send", kwargs={...})`.
"""

from __future__ import annotations

from typing import Any

import structlog

from worker import polling, reconcile, sending
from worker.api import engine
from worker.celery_app import app
from worker.ledger.errors import LedgerUnavailable
from worker.producer import intake

log = structlog.get_logger("smsq.tasks")


def _ids(value: Any) -> list[str] | None:
    if isinstance(value, list) and value and all(isinstance(i, str) for i in value):
        return value
    log.error("task_kwargs_invalid", field="ids")
    return None


# Redis unreachable: retried under the same task id, which intake turns into the same job.
@app.task(name="smsq.send", bind=True, autoretry_for=(LedgerUnavailable,), max_retries=None,
          retry_backoff=True, retry_backoff_max=30)
def send(self: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    result = intake.intake(engine(), args, kwargs, self.request.id)
    return {"job_id": result.job_id, "count": len(result.ids)} if result else {"rejected": True}


@app.task(name="smsq.deliver")
def deliver(ids: Any = None, account: Any = None) -> dict[str, int]:
    valid = _ids(ids)
    if valid is None or not isinstance(account, str):
        return {}
    return sending.deliver(engine(), valid, account)


@app.task(name="smsq.check_status")
def check_status(ids: Any = None, account: Any = None) -> dict[str, int]:
    valid = _ids(ids)
    if valid is None:
        return {}
    if isinstance(account, str):
        return polling.check_status(engine(), valid, account)
    return polling.hand_to_accounts(engine(), valid)


@app.task(name="smsq.poll_pending")
def poll_pending() -> dict[str, int]:
    return polling.poll_pending(engine())


@app.task(name="smsq.release")
def release() -> int:
    return reconcile.release(engine())


@app.task(name="smsq.reconcile")
def reconcile_task() -> dict[str, int]:
    return reconcile.reconcile(engine())
