"""SMS Club's documented vocabulary: message statuses, `add_info` keys, HTTP codes.

Why one module of tables: the gateway speaks in strings (SMPP-like status words,
older Russian status words, free-text errors in RU/UA/EN keyed by phone or by
field name), and deciding what each one means in exactly one function keeps the
client, the simulator and the tests agreeing (providers.md §2.3-2.4, §6, §7).
"""

from __future__ import annotations

from collections.abc import Mapping

from providers.errors import (
    GatewayUnavailable,
    InvalidRecipient,
    MalformedResponse,
    MessageRejected,
    PermanentError,
    ProviderAuthError,
    RateLimited,
    SmsqError,
)
from providers.models import Status

PROVIDER = "smsclub"

# providers.md §2.4: the documented Latin codes plus the official SDK's Russian words.
STATUSES: Mapping[str, Status] = {
    "Ожидает отправки": Status.QUEUED,
    "ENROUTE": Status.SENT,
    "Отправлено": Status.SENT,
    "DELIVRD": Status.DELIVERED,
    "Доставлено": Status.DELIVERED,
    "EXPIRED": Status.EXPIRED,
    "Просрочено": Status.EXPIRED,
    "UNDELIV": Status.UNDELIVERED,
    "Недоставляемое": Status.UNDELIVERED,
    "REJECTD": Status.REJECTED,
    "Отклонено": Status.REJECTED,
}

# `add_info` keys that name a request field (official SDK ErrorHandler 101-105, plus the
# other request fields): the whole request was refused, not one recipient.
FIELD_ERRORS: Mapping[str, type[PermanentError]] = {
    "phone": MessageRejected,  # empty or oversized phone list: the request is malformed
    "src_addr": MessageRejected,  # unknown / invalid alpha name
    "message": MessageRejected,  # empty or refused text
    "integration_id": MessageRejected,
    "lifetime": MessageRejected,
    "id_sms": MessageRejected,  # status request: empty or oversized id list
    "invalid_phone": InvalidRecipient,  # the number list as a whole was refused
    "invalid_id_sms": MessageRejected,
}

# Per-recipient texts that blame the message rather than the number [INF]; every
# other per-recipient text (blacklist, "Incorrect phone number", ...) is the number.
TEXT_HINTS: tuple[str, ...] = ("спам", "spam", "текст", "сообщени", "повідомлен", "message",
                               "text")

HTTP_CODES: Mapping[int, type[SmsqError]] = {
    400: MessageRejected,  # input validation error
    401: ProviderAuthError,  # bad token
    403: ProviderAuthError,  # [INF] blocked account
    429: RateLimited,  # more than 9 requests per second
}


def status_for(raw: object) -> Status:
    """The normalised status of one raw status value; anything undocumented is UNKNOWN."""
    if not isinstance(raw, str):
        return Status.UNKNOWN
    word = raw.strip()
    return STATUSES.get(word) or STATUSES.get(word.upper(), Status.UNKNOWN)


def is_field_key(key: str) -> bool:
    """An `add_info` key that is a field name (or anything with no digits), not a phone/id."""
    return key in FIELD_ERRORS or not any(ch in "0123456789" for ch in key)


def error_for(*, http_status: int = 200, key: str | None = None, text: str = "",
              retry_after: float | None = None) -> SmsqError | None:
    """The one function that decides: HTTP code, `add_info` key and text -> smsq error.

    None means "no error" (HTTP 200 with nothing refused).
    """
    detail = _clip(text) or f"http {http_status}"
    if http_status >= 500:
        return GatewayUnavailable(f"gateway error: {detail}", provider=PROVIDER,
                                  http_status=http_status, retry_after=retry_after)
    if http_status == 429:
        return RateLimited("throttled: more than 9 requests per second", provider=PROVIDER,
                           http_status=429, retry_after=max(1.0, retry_after or 1.0))
    if key is not None and is_field_key(key):
        cls: type[SmsqError] = FIELD_ERRORS.get(key, MessageRejected)
        return cls(f"request refused: {detail}", provider=PROVIDER, code=key[:40],
                   http_status=http_status)
    if key is not None:
        lowered = text.lower()
        cls = MessageRejected if any(h in lowered for h in TEXT_HINTS) else InvalidRecipient
        return cls(f"recipient refused: {detail}", provider=PROVIDER, http_status=http_status)
    if http_status in HTTP_CODES:
        return HTTP_CODES[http_status](f"request refused: {detail}", provider=PROVIDER,
                                       http_status=http_status)
    if 400 <= http_status < 500:
        return MessageRejected(f"request refused: {detail}", provider=PROVIDER,
                               http_status=http_status)
    if not 200 <= http_status < 300:
        return MalformedResponse(f"unexpected http status: {detail}", provider=PROVIDER,
                                 http_status=http_status)
    return None


def _clip(text: str, limit: int = 160) -> str:
    """Gateway error texts go into exceptions; keep them short and on one line."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
