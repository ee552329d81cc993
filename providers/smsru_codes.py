"""sms.ru's vocabulary: its code tables and the pure functions that read its replies.

Everything here takes plain values (bytes, decoded JSON, form fields) and
returns results or raises an smsq error, never anything else, so the whole
module can be fuzzed without a network. The provider in `providers.smsru` only
does HTTP around these functions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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
from providers.models import Balance, Status, StatusResult, to_decimal

PROVIDER = "smsru"
OK_CODE = 100

# Message state codes (sms/status, callbacks): providers.md §1.4 and §6.
STATUS_CODES: dict[int, Status] = {
    -1: Status.UNKNOWN,
    100: Status.QUEUED,
    101: Status.QUEUED,
    102: Status.SENT,
    103: Status.DELIVERED,
    104: Status.EXPIRED,
    105: Status.UNDELIVERED,
    106: Status.UNDELIVERED,
    107: Status.UNDELIVERED,
    108: Status.REJECTED,
    110: Status.DELIVERED,
    150: Status.FAILED,
}

_HOUR = 3_600.0  # "next day" codes are retried hourly: the limits reset at an unknown hour

# Request / recipient error codes -> (class, retry_after hint, meaning), providers.md §1.4, §7.
ERROR_CODES: dict[int, tuple[type[SmsqError], float | None, str]] = {
    200: (ProviderAuthError, None, "invalid api_id"),
    201: (ProviderAuthError, None, "not enough money on the account"),
    202: (InvalidRecipient, None, "invalid recipient number"),
    203: (MessageRejected, None, "no message text"),
    204: (MessageRejected, None, "sender name not approved"),
    205: (MessageRejected, None, "message longer than 8 SMS"),
    206: (RateLimited, _HOUR, "daily sending limit reached"),
    207: (InvalidRecipient, None, "no route to this number"),
    208: (MessageRejected, None, "invalid time parameter"),
    209: (InvalidRecipient, None, "number is in the account stop list"),
    210: (PermanentError, None, "GET used where POST is required"),
    211: (PermanentError, None, "method not found"),
    212: (PermanentError, None, "text must be UTF-8"),
    213: (MessageRejected, None, "too many recipients in one request"),
    214: (InvalidRecipient, None, "number abroad while 'Russia only' is on"),
    215: (InvalidRecipient, None, "number is in the sms.ru spam stop list"),
    216: (MessageRejected, None, "forbidden word in the text"),
    217: (MessageRejected, None, "credit advert without the mandatory phrase"),
    220: (GatewayUnavailable, 60.0, "service temporarily unavailable"),
    221: (MessageRejected, None, "a letter sender matching the site is required"),
    230: (RateLimited, _HOUR, "daily message limit for this number"),
    231: (RateLimited, 60.0, "identical messages to this number per minute"),
    232: (RateLimited, _HOUR, "identical messages to this number per day"),
    233: (RateLimited, 600.0, "repeated code messages limit (anti-fraud)"),
    300: (ProviderAuthError, None, "invalid token"),
    301: (ProviderAuthError, None, "invalid api_id or login/password"),
    302: (ProviderAuthError, None, "account not confirmed"),
    303: (MessageRejected, None, "confirmation code is wrong"),
    304: (RateLimited, 600.0, "too many confirmation codes"),
    305: (RateLimited, 600.0, "too many wrong code entries"),
    500: (GatewayUnavailable, 10.0, "server error"),
    501: (RateLimited, _HOUR, "anti-fraud limit (country)"),
    502: (RateLimited, _HOUR, "anti-fraud limit (IP)"),
    503: (RateLimited, _HOUR, "anti-fraud limit"),
    504: (RateLimited, _HOUR, "anti-fraud limit"),
    505: (RateLimited, _HOUR, "anti-fraud limit (foreign authorisations)"),
    506: (RateLimited, 600.0, "too many messages from hosting IP ranges"),
    507: (MessageRejected, None, "invalid or private end-user IP"),
    508: (RateLimited, 300.0, "too many calls in 5 minutes"),
    550: (InvalidRecipient, None, "country blocked"),
    901: (PermanentError, None, "callback URL invalid (must start with http://)"),
    902: (PermanentError, None, "callback handler not found"),
}


def error_for(code: object) -> SmsqError:
    """The one function that classifies an sms.ru error code (request or recipient level)."""
    number = as_int(code)
    entry = ERROR_CODES.get(number) if number is not None else None
    if entry is None:
        return PermanentError("unrecognised sms.ru error code", provider=PROVIDER,
                              code=str(code)[:16])
    cls, retry_after, meaning = entry
    return cls(meaning, provider=PROVIDER, code=number, retry_after=retry_after)


def status_for(code: object) -> Status:
    """A message state code as the normalised Status; anything unknown is UNKNOWN."""
    number = as_int(code)
    return STATUS_CODES.get(number, Status.UNKNOWN) if number is not None else Status.UNKNOWN


def as_int(value: object) -> int | None:
    """sms.ru codes arrive as ints or digit strings ("401"); anything else is None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d{1,9}\s*", value):
        return int(value)
    return None


def as_float(value: object) -> float | None:
    """Unix times and counters, sent as numbers or strings."""
    amount = to_decimal(value)
    return None if amount is None else float(amount)


def decode_json(body: bytes) -> Any:
    """The body as JSON, or MalformedResponse."""
    try:
        return json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise MalformedResponse("unparseable reply", provider=PROVIDER) from None


def check_envelope(data: Any) -> dict[str, Any]:
    """The reply as a dict with status OK/100; a top-level ERROR raises its classified error."""
    if not isinstance(data, dict):
        raise MalformedResponse("reply is not a JSON object", provider=PROVIDER)
    status, code = data.get("status"), as_int(data.get("status_code"))
    if status == "OK" and code in (None, OK_CODE):
        return data
    if status == "ERROR" or (code is not None and code != OK_CODE):
        raise error_for(data.get("status_code"))
    raise MalformedResponse("reply has no status", provider=PROVIDER)


def items_of(data: Mapping[str, Any], key: str) -> dict[str, Any]:
    """A keyed sub-object (`sms`), or MalformedResponse when it is not an object."""
    value = data.get(key)
    if not isinstance(value, dict):
        raise MalformedResponse(f"reply has no {key!r} object", provider=PROVIDER)
    return value


def parse_status_item(msg_id: str, item: Any) -> StatusResult:
    """One entry of `sms/status`'s `sms` object."""
    if not isinstance(item, dict):
        return StatusResult(msg_id, Status.UNKNOWN, error="missing from the reply")
    code = item.get("status_code")
    status = status_for(code)
    text = item.get("status_text")
    return StatusResult(
        provider_message_id=msg_id, status=status,
        raw_code=None if as_int(code) is None else str(as_int(code)),
        updated_at=as_float(item.get("status_time")), sent_at=as_float(item.get("send_time")),
        cost=to_decimal(item.get("cost")),
        error=str(text)[:200] if item.get("status") == "ERROR" and text is not None else None,
    )


def parse_status_reply(data: Any, ids: list[str]) -> list[StatusResult]:
    """`sms/status` as one StatusResult per asked id, in order."""
    sms = items_of(check_envelope(data), "sms")
    return [parse_status_item(msg_id, sms.get(msg_id)) for msg_id in ids]


# -- account endpoints ----------------------------------------------------------


@dataclass(frozen=True)
class Counter:
    """`my/limit` and `my/free`: the allowance and today's use (None when sms.ru says null)."""

    total: int | None
    used_today: int | None


@dataclass(frozen=True)
class CallCheck:
    """`callcheck/add`: the user must call `call_phone` from their own number."""

    check_id: str
    call_phone: str
    call_phone_pretty: str


@dataclass(frozen=True)
class CallCheckStatus:
    """`callcheck/status`: "400" waiting, "401" confirmed, "402" expired."""

    code: str
    text: str | None

    @property
    def confirmed(self) -> bool:
        return self.code == "401"


def parse_balance_reply(data: Any) -> Balance:
    """`my/balance`: the amount may be a number or a string."""
    amount = to_decimal(check_envelope(data).get("balance"))
    if amount is None:
        raise _malformed("balance is missing")
    return Balance(amount=amount, currency="RUB")


def parse_counter_reply(data: Any, total_key: str) -> Counter:
    """`my/limit` (`total_limit`) and `my/free` (`total_free`), `used_today` may be null."""
    body = check_envelope(data)
    return Counter(as_int(body.get(total_key)), as_int(body.get("used_today")))


def parse_list_reply(data: Any, key: str) -> list[str]:
    """`my/senders` (`senders`) and the callback endpoints (`callback`): lists of strings."""
    value = check_envelope(data).get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _malformed(f"{key} is not a list of strings")
    return list(value)


def parse_stoplist_reply(data: Any) -> dict[str, str]:
    """`stoplist/get`: phone -> comment (the reply may use `[]` for an empty list)."""
    value = check_envelope(data).get("stoplist") or {}
    if not isinstance(value, dict):
        raise _malformed("stoplist is not an object")
    return {str(k): "" if v is None else str(v) for k, v in value.items()}


def parse_callcheck_add(data: Any) -> CallCheck:
    body = check_envelope(data)
    check_id, phone = body.get("check_id"), body.get("call_phone")
    if not isinstance(check_id, str) or not check_id or not isinstance(phone, str | int):
        raise _malformed("callcheck reply has no check_id / call_phone")
    return CallCheck(check_id, str(phone), str(body.get("call_phone_pretty") or phone))


def parse_callcheck_status(data: Any) -> CallCheckStatus:
    """`check_status` is a string in sms.ru's replies; numbers are accepted too."""
    body = check_envelope(data)
    code = as_int(body.get("check_status"))
    if code is None:
        raise _malformed("callcheck status has no check_status")
    text = body.get("check_status_text")
    return CallCheckStatus(str(code), text if isinstance(text, str) else None)


def _malformed(what: str) -> MalformedResponse:
    return MalformedResponse(f"unexpected reply: {what}", provider=PROVIDER)
