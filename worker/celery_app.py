"""The Celery app: `celery -A worker worker` and `celery -A worker beat`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from celery import Celery
from celery.signals import worker_process_init

from worker import api
from worker.ops import health, metrics, watchdog
from worker.ops.logs import configure
from worker.settings import get as get_settings

app = Celery("smsq", include=["tasks", "tasks.campaigns", "tasks.callbacks"])
app.config_from_object("celeryconfig")


def send_task(name: str, kwargs: Mapping[str, Any], queue: str) -> None:
    app.send_task(name, kwargs=dict(kwargs), queue=queue)


# This process's engine (api.engine) publishes through the app; logs are set up when it
# is made (after the prefork fork).
api.serve_tasks(send_task, setup=configure)
metrics.connect_celery(api.engine)  # task outcomes -> metrics; metrics server in worker_init
watchdog.connect_celery(lambda: health.client(get_settings(), timeout=2.0),
                        get_settings().worker_stall_after)  # a node that stops consuming


@worker_process_init.connect
def _fresh_engine(**_: Any) -> None:
    api.forget()
