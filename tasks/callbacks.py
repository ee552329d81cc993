"""Status callbacks' tasks, on their own queue (`smsq.callbacks`) so a slow subscriber
never holds a sending or polling worker."""

from __future__ import annotations

from typing import Any

from worker.api import engine
from worker.callbacks import delivery, sweep
from worker.celery_app import app


@app.task(name="smsq.callback_flush")
def callback_flush(sub: Any = None) -> dict[str, int]:
    if not isinstance(sub, str) or not sub.isalnum():
        return {}
    return delivery.flush(engine(), sub)


@app.task(name="smsq.callbacks_tick")
def callbacks_tick() -> dict[str, int]:
    return sweep.tick(engine())
