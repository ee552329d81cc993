"""Which subscription each message of a new job reports to.

Precedence, highest first: the message's own `callback` (in `messages=[{"to", "text",
"callback"}]`), the job's `callback=`, the default of the job's account (the first
account of its route, `SMSQ_<ACCOUNT>_CALLBACK`), the deployment's (`SMSQ_CALLBACK`).
`callback=False` on the job turns the defaults off; on a message it turns that
message's events off although the job has a subscription.

A record stores a subscription id only where the message differs from its job:
`cb` is its own subscription's id, or OFF when it opted out; otherwise the event
script falls back to the job's `cb`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from providers.errors import ValidationError
from worker.callbacks.subscription import Subscription, default, parse
from worker.settings import Settings

OFF = "-"  # a record's `cb` when the message opted out of its job's subscription
INHERIT = None  # a message that gave no callback of its own


@dataclass(frozen=True)
class Subscriptions:
    job: Subscription | None = None
    own: tuple[str | None, ...] = ()  # per message: its subscription id, OFF, or None
    by_id: dict[str, Subscription] = field(default_factory=dict)  # every one to store

    @property
    def any(self) -> bool:
        """Does any message of the job report somewhere (the job then joins the sweep)?"""
        return self.job is not None or any(o not in (None, OFF) for o in self.own)

    def digest_part(self) -> list[Any]:
        """What the idempotency digest adds: nothing for a job whose messages all follow
        it, so those digests stay as they were before per-message subscriptions."""
        part: list[Any] = [self.job.id] if self.job else []
        if any(o is not None for o in self.own):
            part.append(["own", list(self.own)])
        return part


def resolve(cfg: Settings, callback: Any, account: str, own: Sequence[Any]) -> Subscriptions:
    """The job's subscription and each message's, or ValidationError naming the field."""
    job = (None if callback is False else default(cfg, account) if callback is None
           else parse(callback, cfg))
    by_id = {job.id: job} if job else {}
    ids: list[str | None] = []
    for i, raw in enumerate(own):
        if raw is None:
            ids.append(INHERIT)
        elif raw is False:
            ids.append(OFF if job else INHERIT)
        else:
            try:
                sub = parse(raw, cfg)
            except ValidationError as exc:
                raise ValidationError(f"messages[{i}].{exc.message}",
                                      field="callback") from None
            by_id.setdefault(sub.id, sub)
            ids.append(INHERIT if job and sub.id == job.id else sub.id)
    if all(i is INHERIT for i in ids):
        ids = []
    return Subscriptions(job, tuple(ids), by_id)
