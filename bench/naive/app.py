"""The baseline a user would write: one Celery task per message, one `requests` call each.

No batching, no ledger, no global limiter; its own tiny Celery app on the
same private Redis as smsq (queue `naive`). `send_limited` adds Celery's own
`rate_limit="9/s"`, which is enforced per worker node, not globally.
"""

from __future__ import annotations

import os

import requests
from celery import Celery

app = Celery("naive", broker=os.environ["SMSQ_REDIS_URL"])
app.conf.update(task_default_queue="naive", task_ignore_result=True, result_backend=None,
                worker_hijack_root_logger=False, worker_prefetch_multiplier=1,
                task_acks_late=True, broker_connection_retry_on_startup=True)

SMSRU_URL = os.environ.get("SMSQ_SMSRU_BASE_URL", "")
SMSRU_API_ID = os.environ.get("SMSQ_SMSRU_API_ID", "")
SMSCLUB_URL = os.environ.get("SMSQ_SMSCLUB_BASE_URL", "")
SMSCLUB_TOKEN = os.environ.get("SMSQ_SMSCLUB_TOKEN", "")


@app.task(name="naive.smsru_send")
def smsru_send(phone: str, text: str) -> str:
    reply = requests.post(f"{SMSRU_URL}/sms/send", timeout=15,
                          data={"api_id": SMSRU_API_ID, "to": phone, "msg": text, "json": 1})
    reply.raise_for_status()
    return str(reply.json()["sms"][phone]["sms_id"])


def _smsclub(phone: str, text: str) -> int:
    reply = requests.post(f"{SMSCLUB_URL}/sms/send", timeout=15,
                          headers={"Authorization": f"Bearer {SMSCLUB_TOKEN}"},
                          json={"phone": [phone], "message": text, "src_addr": "smsq"})
    return reply.status_code


@app.task(name="naive.smsclub_send")
def smsclub_send(phone: str, text: str) -> int:
    return _smsclub(phone, text)


@app.task(name="naive.smsclub_send_limited", rate_limit="9/s")
def smsclub_send_limited(phone: str, text: str) -> int:
    return _smsclub(phone, text)
