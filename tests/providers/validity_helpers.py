"""Shared by the per-gateway validity tests: a message with `left` seconds of validity."""

from __future__ import annotations

from typing import Any

from providers.models import OutgoingMessage


def msg(phone: str, clock: Any, left: float | None, text: str = "Code 1234",
        ref: str | None = None, **options: Any) -> OutgoingMessage:
    until = None if left is None else clock.now + left
    return OutgoingMessage(ref=ref or "r" + phone[-4:], recipient=phone, text=text,
                           sender="smsq", options=options, valid_until=until)
