"""The Python producer API: `submit`, `get_status`, `job_status`.

    from worker.api import submit, get_status
    job = submit(["+79161234567"], "Your code is 1234", account="smsru")
    get_status(job.ids)

Runs in the producer's process: it needs `SMSQ_REDIS_URL` and the account
names (credentials only where `balance` or the workers run).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from worker.engine import Engine, Enqueue
from worker.producer import submit as producer
from worker.producer.estimate import Estimate
from worker.producer.submit import Submitted
from worker.settings import Settings

_engine: Engine | None = None
_worker: Enqueue | None = None  # set in Celery worker and beat processes (worker.celery_app)
_setup: Callable[[], None] | None = None


def engine() -> Engine:
    """This process's engine, the one way to get it: made on first use from the current
    settings. In a Celery process it publishes through the Celery app; anywhere else
    (producers, the CLI) through a bare publisher with the producer's short timeouts."""
    global _engine
    if _engine is None:
        from worker.engine import redis_client
        from worker.settings import get

        cfg = get()
        if _worker is not None:
            if _setup is not None:
                _setup()
            _engine = Engine(cfg, enqueue=_worker)
        else:
            _engine = Engine(cfg, client=redis_client(cfg, timeout=cfg.producer_timeout),
                             enqueue=_publisher(cfg, cfg.producer_timeout))
    return _engine


def serve_tasks(enqueue: Enqueue, *, setup: Callable[[], None] | None = None) -> None:
    """This process runs Celery tasks: its engine hands work on through `enqueue`, and
    `setup` (logging) runs just before the engine is made."""
    global _worker, _setup
    _worker, _setup = enqueue, setup
    forget()


def forget() -> None:
    """Drop this process's engine (after a fork: connections are not shared across it)."""
    global _engine
    _engine = None


def _publisher(cfg: Settings, timeout: float) -> Enqueue:
    """A bare Celery client for publishing: the producer needs no task code or worker config."""
    from celery import Celery

    from worker.transport.connection import target

    client = Celery("smsq-producer", set_as_current=False)
    conf = target(cfg).celery_conf()
    url_options = conf.pop("broker_transport_options")
    client.conf.update(**conf)
    client.conf.update(
        broker_connection_timeout=timeout, broker_connection_retry=False,
        broker_transport_options={"socket_timeout": timeout, "socket_connect_timeout": timeout,
                                  **url_options},
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0.2,
                                   "interval_step": 0.5, "interval_max": 1.0})

    def enqueue(name: str, kwargs: Mapping[str, Any], queue: str) -> None:
        client.send_task(name, kwargs=dict(kwargs), queue=queue)

    return enqueue


def reset() -> None:
    """Forget the settings and the engine (after the environment changed)."""
    from worker import settings

    settings.reset()
    forget()


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
    callback: Mapping[str, Any] | str | bool | None = None,
    lane: str | None = None,
    valid_for: float | None = None,
    valid_until: float | None = None,
) -> Submitted:
    """Validate, record and enqueue; returns the job id and one message id per recipient.

    Bad input raises ValidationError naming the field, and nothing is written.
    With `reject_invalid=True` an invalid number becomes a `rejected` message
    instead of an error. `callback` subscribes the job to its status events
    ({"url": ..., "secret": NAME} or {"task": ..., "queue": ...}; None takes the
    default of the route's first account, SMSQ_<ACCOUNT>_CALLBACK, else the
    deployment's SMSQ_CALLBACK; False opts out of them). A message in `messages` may
    carry its own "callback", which goes before the job's. `lane`: "otp" /
    "transactional" (the default) go ahead of "bulk" on every account. `valid_for`
    (seconds) / `valid_until` (epoch seconds): a message not on the wire by then ends
    `expired` (reason `validity`); an OTP gets SMSQ_OTP_VALID_FOR by default. A
    recipient over its lane's cap (SMSQ_CAP_*) gets a `rejected` message (reason
    recipient_cap) and the rest of the job goes on. The result's `estimate` has the SMS
    segments of each message and the estimated cost.
    """
    eng = engine()
    plan = producer.plan(eng, recipients, text, messages=messages, account=account,
                         route=route, sender=sender, options=options,
                         strict=not reject_invalid, callback=callback, lane=lane,
                         valid_for=valid_for, valid_until=valid_until)
    return producer.write(eng, plan, job_id=job_id, idempotency_key=idempotency_key)


def estimate(
    recipients: Sequence[str] | None = None,
    text: str | None = None,
    *,
    messages: Mapping[str, str] | Sequence[Mapping[str, Any]] | None = None,
    account: str | None = None,
    route: str | Sequence[str] | None = None,
    sender: str | None = None,
    options: Mapping[str, Any] | None = None,
    reject_invalid: bool = False,
    lane: str | None = None,
    valid_for: float | None = None,
    valid_until: float | None = None,
) -> Estimate:
    """What `submit` with these arguments would send, without queueing anything: the same
    checks (bad input raises ValidationError naming the field), then the SMS segments of
    each message and the estimated cost at the first account's SMSQ_<ACCOUNT>_PRICE.
    Per-recipient caps are not counted here: only `submit` knows what they refuse."""
    plan = producer.plan(engine(), recipients, text, messages=messages, account=account,
                         route=route, sender=sender, options=options,
                         strict=not reject_invalid, callback=False, lane=lane,
                         valid_for=valid_for, valid_until=valid_until)
    return plan.estimate


def get_status(ids: Sequence[str]) -> list[dict[str, Any]]:
    """Each message's status, raw code, gateway id, attempts, timestamps, cost, last error."""
    return producer.status(engine(), ids)


def job_status(job_id: str) -> dict[str, Any]:
    return producer.job_status(engine(), job_id)
