"""A message's life at a simulated gateway: queued -> sent -> its outcome, by elapsed time,
cut short by the message's validity when that runs out before the delivery would end.

A gateway with a validity parameter (sms.ru `ttl`, SMSC `valid`, Gatum
`lifetime`) keeps trying a message until its validity is over, then gives up
with its expired status (104, 3, EXPIRED). The sandbox does the same: a message
whose validity ends before its simulated delivery would (`final_after` after
acceptance) stays queued/sent until the validity ends, then is `expired`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class SimMessage:
    """One message a simulator accepted; the record tests compare the ledger against."""

    gateway: str
    id: str
    phone: str
    text: str
    sender: str | None
    time: float
    host: str
    outcome: str
    client_ref: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    reported: set[str] = field(default_factory=set)
    valid_until: float | None = None  # when the gateway stops trying (None: no validity)

    def cut_short(self, final_after: float) -> bool:
        """The validity ends before the delivery would: the message will expire."""
        return self.valid_until is not None and self.valid_until < self.time + final_after

    def stage(self, now: float, queued_for: float, final_after: float) -> str:
        """queued -> sent -> the outcome, by elapsed time (expired at the validity's end
        when that comes first)."""
        if self.cut_short(final_after) and now >= (self.valid_until or 0.0):
            return "expired"
        age = now - self.time
        if age < queued_for:
            return "queued"
        if age < final_after:
            return "sent"
        return self.outcome

    def changed_at(self, stage: str, queued_for: float, final_after: float) -> float:
        """When the message entered `stage` (as its current stage)."""
        if stage == "queued":
            return self.time
        if stage == "sent":
            return self.time + queued_for
        if self.cut_short(final_after) and stage == "expired":
            return self.valid_until or self.time
        return self.time + final_after

    def public(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("reported")
        return data
