"""The Python producer API: `submit`, `get_status`, `job_status`.

    from worker.api import submit, get_status
    job = submit(["+79161234567"], "Your code is 1234", account="smsru")
    get_status(job.ids)

Runs in the producer's process: it needs `SMSQ_REDIS_URL` and the account
names (credentials only where `balance` or the workers run).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from worker import producer
from worker.engine import Engine
from worker.producer import Submitted

_engine: Engine | None = None


def engine() -> Engine:
    global _engine
    if _engine is None:
        from worker.celery_app import send_task
        from worker.settings import get

        cfg = get()
        from worker.engine import redis_client

        _engine = Engine(cfg, client=redis_client(cfg.redis_url, timeout=cfg.producer_timeout),
                         enqueue=send_task)
    return _engine


def submit(
    recipients: Sequence[str] | None = None,
    text: str | None = None,
    *,
    messages: Mapping[str, str] | Sequence[Mapping[str, Any]] | None = None,
    account: str | None = None,
    route: str | Sequence[str] | None = None,
    sender: str | None = None,
    options: Mapping[str, Any] | None = None,
    idempotency_key: str | None = None,
    job_id: str | None = None,
    reject_invalid: bool = False,
) -> Submitted:
    """Validate, record and enqueue; returns the job id and one message id per recipient.

    Bad input raises ValidationError naming the field, and nothing is written.
    With `reject_invalid=True` an invalid number becomes a `rejected` message
    instead of an error.
    """
    eng = engine()
    plan = producer.plan(eng, recipients, text, messages=messages, account=account,
                         route=route, sender=sender, options=options,
                         strict=not reject_invalid)
    return producer.write(eng, plan, job_id=job_id, idempotency_key=idempotency_key)


def get_status(ids: Sequence[str]) -> list[dict[str, Any]]:
    """Each message's status, raw code, gateway id, attempts, timestamps, cost, last error."""
    return producer.status(engine(), ids)


def job_status(job_id: str) -> dict[str, Any]:
    return producer.job_status(engine(), job_id)
