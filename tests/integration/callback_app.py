"""A producer's own Celery app, as a second real app on smsq's broker: it receives smsq's
status events as its task `billing.sms_status` on its queue `billing` and records them."""

from __future__ import annotations

import json
import os

import redis
from celery import Celery

app = Celery("billing", broker=os.environ["BILLING_BROKER"])
app.conf.update(task_default_queue="billing", worker_hijack_root_logger=False,
                broker_connection_retry_on_startup=True)
_r = redis.Redis.from_url(os.environ["BILLING_BROKER"])


@app.task(name="billing.sms_status")
def sms_status(**event):
    _r.rpush("billing:events", json.dumps(event))
