"""Campaign tasks: `smsq.campaign` (create / pause / resume / cancel by name) and the tick.

`smsq.campaign` kwargs (see README): action ("create" by default, or "pause",
"resume", "cancel", "schedule"), campaign_id, and for create: text, one of
recipients (list of numbers or of {phone, field...}) / csv (a path under the
worker's SMSQ_IMPORT_DIR: see worker.campaigns.intake) / group / gatum_group
(+ gatum_exclude), account or route, sender, start (ISO 8601, epoch seconds,
"now" or "+10m"), window ("09:00-21:00"), zone, rate (messages/s),
failure_threshold, phone_column, encoding, draft.
Bad input never vanishes: it is logged and the task returns the error.
"""

from __future__ import annotations

from typing import Any

import structlog

from providers.errors import SmsqError
from worker.api import engine
from worker.campaigns import intake
from worker.campaigns import service as campaigns
from worker.campaigns import tick as campaign_tick
from worker.celery_app import app

log = structlog.get_logger("smsq.tasks")
ACTIONS = {"pause": campaigns.pause, "resume": campaigns.resume, "cancel": campaigns.cancel}


@app.task(name="smsq.campaign")
def campaign(action: str = "create", campaign_id: Any = None, **kwargs: Any) -> dict[str, Any]:
    try:
        if action == "create":
            made = intake.create(engine(), campaign_id, kwargs)
            return {"campaign_id": made["id"], "status": made["status"], "total": made["total"]}
        if action == "schedule":
            return campaigns.schedule(engine(), str(campaign_id), kwargs.get("start"))
        if action in ACTIONS:
            return ACTIONS[action](engine(), str(campaign_id))
        raise SmsqError(f"unknown action {action!r} (create, schedule, pause, resume, cancel)")
    except (SmsqError, TypeError) as exc:
        log.error("campaign_task_refused", action=action, campaign=campaign_id, error=str(exc))
        return {"error": str(exc)}


@app.task(name="smsq.campaign_tick")
def tick() -> dict[str, int]:
    return campaign_tick.tick(engine())
