"""Validity on the wire, gateway-neutral: how long a gateway may keep trying a message.

A message carries its deadline (`OutgoingMessage.valid_until`, epoch seconds),
not a number of seconds: the remaining validity is only known when the
request leaves, after the rate limiter's wait, so a gateway that takes a
validity parameter computes it in its late-bound request body (the
`late` hook of `Provider.request`, run after the throttle).

The value on the wire is never longer than what remains: the remaining
seconds are rounded down to the gateway's unit and clamped to its range.
When less than the gateway's smallest value remains, nothing is sent and
`ValidityExpired` says so (a code that arrives late is worse than none; the
worker ends the message `expired`, reason `validity`).

One request carries one value, so the messages in it share the earliest
deadline; `bucket` keeps messages whose deadlines lie more than one unit
apart out of the same request.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from providers.errors import ValidityExpired
from providers.models import OutgoingMessage

CHUNK = 60.0  # bucket width for gateways without a validity parameter (see `bucket`)

__all__ = ["CHUNK", "ValidityExpired", "WireValidity", "bucket", "deadline", "hhmm",
           "parse_hhmm"]


def _int(value: str) -> int | None:
    value = value.strip()
    return int(value) if value.isdigit() else None


@dataclass(frozen=True)
class WireValidity:
    """A gateway's validity parameter: its name, its unit in seconds, its range in units,
    how a number of units is written, and how a producer's own value for it is read."""

    param: str
    unit: float
    low: int
    high: int
    render: Callable[[int], str] = str
    parse: Callable[[str], int | None] = _int

    def units(self, remaining: float) -> int:
        """Whole units, rounded down, clamped to the range; ValidityExpired below it."""
        if math.isnan(remaining):
            whole = 0
        else:
            whole = self.high if remaining == math.inf else math.floor(remaining / self.unit)
        if whole < self.low:
            raise ValidityExpired(f"{remaining:.1f} s of validity left, below the gateway's "
                                  f"minimum {self.param}", code="validity")
        return min(whole, self.high)

    def value(self, messages: Iterable[OutgoingMessage], now: float,
              given: Any = None) -> str | None:
        """The parameter's value for one request (None: no deadline, nothing to add).

        `given` is the producer's own option for the parameter, if any: the shorter
        of it and the deadline wins (an unreadable one gives way to the deadline).
        """
        end = deadline(messages)
        mine = None if given in (None, "") else self.parse(str(given))
        if end is None:
            return None if mine is None else self.render(mine)
        units = self.units(end - now)
        return self.render(units if mine is None or mine < self.low else min(units, mine))


def deadline(messages: Iterable[OutgoingMessage]) -> float | None:
    """The earliest deadline among `messages` (None when none has one)."""
    ends = [m.valid_until for m in messages if m.valid_until is not None]
    return min(ends) if ends else None


def bucket(message: OutgoingMessage, wire: WireValidity | None) -> int | str | None:
    """Messages with equal buckets may share a request: their deadlines lie within one unit
    of each other (one chunk of CHUNK seconds where the gateway takes no parameter, as the
    worker expires a whole request once its earliest deadline passes). None: no deadline."""
    if message.valid_until is None:
        return None
    if not math.isfinite(message.valid_until):
        return str(message.valid_until)  # "inf" / "nan": apart from every real deadline
    width = wire.unit if wire is not None else CHUNK
    return math.floor(message.valid_until / width)


def hhmm(minutes: int) -> str:
    """SMSC's `valid` form: 90 -> "01:30", 1440 -> "24:00"."""
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def parse_hhmm(value: str) -> int | None:
    """SMSC's `valid` as minutes: "hh:mm", or whole hours ("3" -> 180)."""
    head, sep, tail = value.strip().partition(":")
    if not sep:
        hours = _int(head)
        return None if hours is None else hours * 60
    hours, minutes = _int(head), _int(tail)
    if hours is None or minutes is None or len(tail.strip()) != 2 or minutes > 59:
        return None
    return hours * 60 + minutes
