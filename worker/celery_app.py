"""The Celery app: `celery -A worker worker` and `celery -A worker beat`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from celery import Celery
from celery.signals import worker_process_init

from worker.ops import metrics

app = Celery("smsq", include=["tasks", "tasks.campaigns", "tasks.callbacks"])
app.config_from_object("celeryconfig")

_engine: Any = None


def engine() -> Any:
    """This process's Engine, made on first use (after the prefork fork)."""
    global _engine
    if _engine is None:
        from worker.engine import Engine
        from worker.ops.logs import configure

        configure()
        _engine = Engine(enqueue=send_task)
    return _engine


def send_task(name: str, kwargs: Mapping[str, Any], queue: str) -> None:
    app.send_task(name, kwargs=dict(kwargs), queue=queue)


metrics.connect_celery(engine)  # task outcomes -> metrics; metrics server in worker_init


@worker_process_init.connect
def _fresh_engine(**_: Any) -> None:
    global _engine
    _engine = None
