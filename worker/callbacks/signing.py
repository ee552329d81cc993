"""HTTP callbacks signed per Standard Webhooks (`webhook-id`, `-timestamp`, `-signature`).

The receiver verifies with any Standard Webhooks library and the secret it
shares with this deployment. The secret is looked up by name in the worker's
settings at the moment of signing; it never leaves this function except as
an HMAC.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import requests
from standardwebhooks.webhooks import Webhook

from providers.errors import ConfigurationError, TransientError
from worker.callbacks import guard
from worker.callbacks.subscription import Subscription
from worker.settings import Settings

_local = threading.local()


class SubscriberFailed(TransientError):
    """The subscriber did not take the event (no answer, or not a 2xx)."""


def secret_for(cfg: Settings, name: str) -> str:
    value = cfg.callback_secret if name == "default" else cfg.callback_secrets.get(name, "")
    if not value:
        raise ConfigurationError(f"callback secret {name!r} is not configured "
                                 "(SMSQ_CALLBACK_SECRET / SMSQ_CALLBACK_SECRETS)")
    return value


def message(events: Sequence[dict[str, Any]], batch: bool) -> tuple[str, str]:
    """The webhook id and JSON body for one event, or for a batch of them."""
    if not batch:
        return str(events[0]["id"]), json.dumps(events[0], separators=(",", ":"))
    ids = ",".join(str(e["id"]) for e in events)
    msg_id = "batch_" + hashlib.sha256(ids.encode()).hexdigest()[:24]
    return msg_id, json.dumps({"type": "batch", "data": list(events)}, separators=(",", ":"))


def headers(secret: str, msg_id: str, body: str, when: datetime | None = None
            ) -> dict[str, str]:
    when = when or datetime.now(tz=UTC)
    try:
        signature = Webhook(secret).sign(msg_id, when, body)
    except Exception:
        raise ConfigurationError("a callback secret is not a Standard Webhooks secret "
                                 "(whsec_ + base64)") from None
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(when.timestamp())),
            "webhook-signature": signature, "content-type": "application/json",
            "user-agent": "smsq-callbacks/1"}


def _session() -> requests.Session:
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
        session.trust_env = False  # no proxy from the environment: the guard checked the host
    return session


def post(cfg: Settings, sub: Subscription, events: Sequence[dict[str, Any]]) -> None:
    """POST the events; raises SubscriberFailed (retry) or a PermanentError (park)."""
    guard.check_before_send(sub.target, cfg)
    msg_id, body = message(events, sub.batch > 1)
    hdrs = headers(secret_for(cfg, sub.secret), msg_id, body)
    try:
        resp = _session().post(sub.target, data=body.encode(), headers=hdrs,
                               timeout=(min(3.05, cfg.callback_timeout), cfg.callback_timeout),
                               allow_redirects=False)
    except requests.RequestException as exc:
        raise SubscriberFailed(f"no answer ({type(exc).__name__})") from None
    resp.close()
    if not 200 <= resp.status_code < 300:
        raise SubscriberFailed(f"HTTP {resp.status_code}", http_status=resp.status_code)
