"""What each simulated gateway accepts as a validity parameter, in seconds.

Written apart from the clients' own rounding (`providers.validity`), so that a
client bug is refused here rather than mirrored. Each function returns the
validity in seconds, None when the parameter was not given, and raises
ValueError when the gateway would refuse it (the simulator answers with the
gateway's error: sms.ru 208, SMSC error 1, Gatum HTTP 400 on `lifetime`).
"""

from __future__ import annotations

import re
from typing import Any

SMSC_FORM = re.compile(r"(\d{1,2})(?::(\d{2}))?")
GATUM_DEFAULT = 86400.0  # seconds, "by default: '86400'" (the seed)
GATUM_MAX = 86400


def smsru_ttl(raw: str | None) -> float | None:
    """`ttl`: whole minutes, 1..1440 (the seed)."""
    if raw is None:
        return None
    value = raw.strip()
    if not value.isdigit() or not 1 <= int(value) <= 1440:
        raise ValueError(raw)
    return int(value) * 60.0


def smsc_valid(raw: str | None) -> float | None:
    """`valid`: whole hours 1..24, or `hh:mm` 00:01..24:00."""
    if raw is None:
        return None
    found = SMSC_FORM.fullmatch(raw.strip())
    minutes = int(found.group(1)) * 60 + int(found.group(2) or 0) if found else 0
    if found is None or int(found.group(2) or 0) > 59 or not 1 <= minutes <= 24 * 60:
        raise ValueError(raw)
    return minutes * 60.0


def gatum_lifetime(raw: Any) -> float:
    """`lifetime`: seconds, as a string or a number; absent -> the default 86400.
    Accepted: whole seconds 1..86400 (the range is inferred, see providers/gatum.py)."""
    if raw is None:
        return GATUM_DEFAULT
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise ValueError(raw)
    value = str(raw).strip()
    if not value.isdigit() or not 1 <= int(value) <= GATUM_MAX:
        raise ValueError(raw)
    return float(int(value))
