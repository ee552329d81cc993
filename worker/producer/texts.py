"""The checks on what a job sends: the recipients-or-messages shape, and each text
(empty, invalid Unicode, too long, control characters, more SMS segments than allowed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from providers import segments
from providers.errors import ValidationError
from worker.producer import controls

MAX_TEXT = 5_000


def limit(gateway: int | None, configured: int) -> tuple[int, str] | None:
    """The segment limit that applies and who sets it (the gateway's, or SMSQ_MAX_SEGMENTS
    when lower; 0 there = the gateway's only)."""
    if configured and (gateway is None or configured < gateway):
        return configured, "SMSQ_MAX_SEGMENTS allows"
    return (gateway, "the gateway allows") if gateway is not None else None


def pairs(recipients: Sequence[Any] | None, text: Any,
          messages: Mapping[str, str] | Sequence[Mapping[str, Any]] | None
          ) -> list[tuple[Any, Any, Any]]:
    """(recipient as given, text, the message's own callback or None) per message, from
    either form of the call."""
    if messages is not None and recipients is not None:
        raise ValidationError("give either recipients + text or messages, not both",
                              field="messages")
    if messages is not None:
        if isinstance(messages, Mapping):
            return [(to, body, None) for to, body in messages.items()]
        if not isinstance(messages, Sequence) or isinstance(messages, str):
            raise ValidationError("messages must be a list of {to, text}", field="messages")
        out = []
        for i, item in enumerate(messages):
            if not isinstance(item, Mapping) or "to" not in item:
                raise ValidationError(f"messages[{i}] must be an object with 'to' and 'text'",
                                      field="messages")
            out.append((item["to"], item.get("text", text), item.get("callback")))
        return out
    if recipients is None or isinstance(recipients, str | bytes) or not isinstance(
            recipients, Sequence):
        raise ValidationError("recipients must be a list of phone numbers", field="recipients")
    return [(r, text, None) for r in recipients]


def printable(value: str) -> str:
    """`value` with lone surrogates escaped: what Redis, JSON and logs can all carry."""
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def check(text: Any, max_segments: tuple[int, str] | None) -> str:
    if not isinstance(text, str) or not text.strip():
        raise ValidationError("text is empty", field="text")
    if printable(text) != text:
        raise ValidationError("text contains a lone surrogate (not valid Unicode)", field="text")
    if len(text) > MAX_TEXT:
        raise ValidationError(f"text is longer than {MAX_TEXT} characters", field="text")
    controls.check(text, "text")
    info = segments.count(text)
    if max_segments is not None and info.segments > max_segments[0]:
        raise ValidationError(f"text takes {info.segments} SMS segments ({info.encoding}); "
                              f"{max_segments[1]} {max_segments[0]}", field="text")
    return text
