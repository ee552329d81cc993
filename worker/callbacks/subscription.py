"""A subscription: where a job's status events go, validated, stored by content id.

    callback={"url": "https://app.example/sms-status", "secret": "billing"}
    callback={"task": "billing.sms_status", "queue": "billing", "finals_only": True}

The signing secret is a credential, so a subscription never holds it: `secret`
names one of the worker's `SMSQ_CALLBACK_SECRETS` (or "default", the secret in
`SMSQ_CALLBACK_SECRET`). Task messages, Redis and CLI output carry only the
subscription id and the secret's name; the value lives in the environment of
the callback workers and is read there at signing time.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import redis

from providers.errors import ConfigurationError, ValidationError
from worker.callbacks import guard
from worker.callbacks.events import text
from worker.settings import Settings

SUB_PREFIX = "smsq:hook:sub:"
TASK_NAME = re.compile(r"^[A-Za-z_][\w.:-]{0,199}$")
QUEUE_NAME = re.compile(r"^[\w.:-]{1,100}$")
SECRET_NAME = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
KEYS = {"url", "task", "queue", "secret", "finals_only", "batch"}


@dataclass(frozen=True)
class Subscription:
    kind: str  # "url" or "task"
    target: str  # the URL, or the task name
    queue: str = ""
    secret: str = "default"  # the secret's name, never its value  # noqa: S105
    finals_only: bool = False
    batch: int = 1  # events per request (or task) when the subscriber opted in

    @property
    def id(self) -> str:
        body = json.dumps(asdict(self), sort_keys=True)
        return "s" + hashlib.sha256(body.encode()).hexdigest()[:20]

    def describe(self) -> str:
        """For logs and the CLI: no query string, no secret."""
        if self.kind == "task":
            return f"task {self.target} on {self.queue}"
        return guard.display(self.target)


def parse(value: Any, cfg: Settings) -> Subscription:
    """A producer's `callback=` argument, or ValidationError naming what is wrong."""
    if isinstance(value, str):
        value = _from_text(value)
    if not isinstance(value, Mapping):
        raise ValidationError("callback must be an object with 'url' or 'task'", field="callback")
    unknown = sorted(set(value) - KEYS)
    if unknown:
        raise ValidationError(f"callback: unknown key(s) {', '.join(unknown)}", field="callback")
    finals, batch = value.get("finals_only", cfg.callback_finals_only), value.get("batch", 1)
    if not isinstance(finals, bool):
        raise ValidationError("callback.finals_only must be true or false", field="callback")
    if isinstance(batch, bool) or not isinstance(batch, int) or not \
            1 <= batch <= cfg.callback_batch_max:
        raise ValidationError(f"callback.batch must be 1-{cfg.callback_batch_max}",
                              field="callback")
    if ("url" in value) == ("task" in value):
        raise ValidationError("callback needs exactly one of 'url' or 'task'", field="callback")
    if "task" in value:
        return Subscription("task", _task(value), _queue(value), "", finals, batch)
    url = guard.check_url(value["url"], cfg)
    return Subscription("url", url, "", _secret_name(value.get("secret", "default")),
                        finals, batch)


def _from_text(text: str) -> dict[str, Any]:
    """`SMSQ_CALLBACK`: an https URL, or `task:<name>@<queue>`."""
    if text.startswith("task:"):
        name, _, queue = text[5:].partition("@")
        return {"task": name, "queue": queue}
    return {"url": text}


def _task(value: Mapping[str, Any]) -> str:
    task = value.get("task")
    if not isinstance(task, str) or not TASK_NAME.match(task):
        raise ValidationError("callback.task must be a Celery task name", field="callback")
    return task


def _queue(value: Mapping[str, Any]) -> str:
    queue = value.get("queue")
    if not isinstance(queue, str) or not QUEUE_NAME.match(queue) or queue.startswith("smsq"):
        raise ValidationError("callback.queue must name the producer's own queue "
                              "(not an smsq queue)", field="callback")
    return queue


def _secret_name(name: Any) -> str:
    if not isinstance(name, str) or not SECRET_NAME.match(name) or name.startswith("whsec"):
        raise ValidationError("callback.secret is the name of a secret configured in "
                              "SMSQ_CALLBACK_SECRETS, not the secret itself", field="callback")
    return name


def default(cfg: Settings, account: str | None = None) -> Subscription | None:
    """The default subscription of a job sent from `account`: that account's
    (`SMSQ_<ACCOUNT>_CALLBACK`), else the deployment's (`SMSQ_CALLBACK`), else None."""
    if account and cfg.callback_accounts.get(account):
        return _configured(cfg.callback_accounts[account], cfg,
                           f"SMSQ_{account.upper()}_CALLBACK")
    if cfg.callback_default:
        return _configured(cfg.callback_default, cfg, "SMSQ_CALLBACK")
    return None


def _configured(value: str, cfg: Settings, name: str) -> Subscription:
    try:
        return parse(value, cfg)
    except ValidationError as exc:
        raise ConfigurationError(f"{name}: {exc.message}") from None


def store(r: redis.Redis, sub: Subscription, ttl: int) -> str:
    store_many(r, [sub], ttl)
    return sub.id


def store_many(r: redis.Redis, subs: Iterable[Subscription], ttl: int) -> None:
    """Write subscriptions (a job's, its messages' own), 500 to a round trip."""
    batch = list(subs)
    for start in range(0, len(batch), 500):
        with r.pipeline(transaction=False) as pipe:
            for sub in batch[start:start + 500]:
                key = SUB_PREFIX + sub.id
                pipe.hset(key, mapping={"kind": sub.kind, "target": sub.target,
                                        "queue": sub.queue, "secret": sub.secret,
                                        "fo": int(sub.finals_only), "batch": sub.batch})
                pipe.expire(key, ttl)
            pipe.execute()


def load(r: redis.Redis, sub_id: str) -> Subscription | None:
    raw = r.hgetall(SUB_PREFIX + sub_id)
    if not raw:
        return None
    f = {text(k): text(v) for k, v in raw.items()}
    return Subscription(f["kind"], f["target"], f.get("queue", ""), f.get("secret", ""),
                        f.get("fo") == "1", int(f.get("batch", "1")))
