"""A job's validity period, from the producer's `valid_for` / `valid_until` or the OTP
default: the epoch second after which none of its messages may leave (see
worker.ledger.validity for where it is enforced)."""

from __future__ import annotations

import math
import time
from typing import Any

from providers.errors import ValidationError
from worker.engine import Engine

MAX_VALIDITY = 7 * 86400.0


def valid_until(engine: Engine, lane: str, valid_for: Any, until: Any) -> float | None:
    """The epoch second after which the job must not be sent (None: no limit)."""
    if valid_for is not None and until is not None:
        raise ValidationError("give valid_for or valid_until, not both", field="valid_for")
    now = time.time()
    for name, value in (("valid_for", valid_for), ("valid_until", until)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                  or not math.isfinite(value)):
            raise ValidationError(f"{name} must be a number of seconds", field=name)
    if until is not None:
        if not now < until <= now + MAX_VALIDITY:
            raise ValidationError("valid_until must lie within the next 7 days",
                                  field="valid_until")
        return float(until)
    if valid_for is None and lane == "otp" and engine.cfg.otp_valid_for > 0:
        valid_for = engine.cfg.otp_valid_for
    if valid_for is None:
        return None
    if not 0 < valid_for <= MAX_VALIDITY:
        raise ValidationError("valid_for must be 1 s to 7 days", field="valid_for")
    return now + float(valid_for)
