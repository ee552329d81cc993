"""Send windows and start times: when a campaign may text a recipient, in the recipient's zone.

A window is a daily local-time range (`09:00-21:00`; `22:00-06:00` crosses
midnight). Recipients are bucketed by IANA zone at import, so the campaign
tick asks "is it inside the window there?" once per zone, not per message.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from providers.errors import ValidationError

ANY_ZONE = "*"  # the bucket of a campaign without a window
_WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True)
class Window:
    start: time
    end: time

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def contains(self, local: time) -> bool:
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def is_open(self, zone: str, now: float) -> bool:
        return self.contains(datetime.fromtimestamp(now, zone_info(zone)).time())

    def next_open(self, zone: str, now: float) -> float:
        """The first moment at or after `now` when the window is open in `zone`."""
        if self.is_open(zone, now):
            return now
        local = datetime.fromtimestamp(now, zone_info(zone))
        candidate = local.replace(hour=self.start.hour, minute=self.start.minute, second=0,
                                  microsecond=0)
        if candidate <= local:
            candidate += timedelta(days=1)
        return candidate.timestamp()


def parse_window(text: str | None) -> Window | None:
    """`"09:00-21:00"` -> Window; None/"" -> no window; anything else -> ValidationError."""
    if text is None or not str(text).strip():
        return None
    match = _WINDOW.match(str(text))
    if not match:
        raise ValidationError(f"window {text!r} is not HH:MM-HH:MM (e.g. 09:00-21:00)",
                              field="window")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2):
        raise ValidationError(f"window {text!r} has an impossible time", field="window")
    end = time(0, 0) if h2 == 24 else time(h2, m2)
    window = Window(time(h1, m1), end)
    if window.start == window.end:
        raise ValidationError(f"window {text!r} is empty", field="window")
    return window


def zone_info(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"unknown time zone {name!r} (use an IANA name such as "
                              "Europe/Moscow)", field="zone") from None


def check_zone(name: str) -> str:
    zone_info(name)
    return name


HORIZON = 10 * 366 * 86400.0  # a start more than ~10 years ahead is a mistake


def parse_start(value: object, now: float) -> float:
    """A start time from 1970 to ten years ahead (a past one means "now"): None/"now" ->
    now; epoch seconds; ISO 8601 (naive means UTC); "+10m". NaN and infinities refused."""
    start = _start(value, now)
    if not math.isfinite(start) or not 0 <= start <= now + HORIZON:
        raise ValidationError(f"start {str(value)[:60]!r} is not a time between 1970 and "
                              "ten years from now", field="start")
    return start


def _start(value: object, now: float) -> float:
    if value is None or value == "" or value == "now":
        return now
    if isinstance(value, bool):
        raise ValidationError("start must be a time, not a boolean", field="start")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, datetime):
        stamp = value if value.tzinfo else value.replace(tzinfo=UTC)
        return stamp.timestamp()
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("+") and text[1:-1].isdigit() and text[-1] in "smh":
            scale = {"s": 1, "m": 60, "h": 3600}[text[-1]]
            return now + float(text[1:-1][:12]) * scale if len(text) < 14 else math.inf
        try:
            return float(text)
        except ValueError:
            pass
        try:
            stamp = datetime.fromisoformat(text)
        except ValueError:
            raise ValidationError(f"start {value!r} is not a time (ISO 8601 such as "
                                  "2025-06-01T10:00+03:00, epoch seconds, 'now' or '+10m')",
                                  field="start") from None
        return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp()
    raise ValidationError(f"start must be a time, got {type(value).__name__}", field="start")
