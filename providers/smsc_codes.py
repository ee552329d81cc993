"""SMSC's code tables and its reply parsers, as pure functions over decoded data.

Everything the gateway can answer is classified here, in one table per
vocabulary and one function that decides (`classify`), so the provider module
only moves bytes. Every parser returns a result or raises an smsq error, never
anything else: they are fuzzed with arbitrary bytes and JSON-like values.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from providers.errors import (
    GatewayUnavailable,
    InvalidRecipient,
    MalformedResponse,
    MessageRejected,
    OutcomeUnknown,
    ProviderAuthError,
    RateLimited,
    SmsqError,
)
from providers.models import (
    Balance,
    OutgoingMessage,
    SendResult,
    Status,
    StatusQuery,
    StatusResult,
    to_decimal,
)

PROVIDER = "smsc"
BUSY_RETRY = 60.0  # error 9 outside send.php: "wait a minute"
RECIPIENT_CODES = frozenset({7, 8})  # about the numbers, not the request

# send.php / status.php / balance.php `error_code` (providers.md §3.3).
ERRORS: dict[int, tuple[type[SmsqError], str]] = {
    1: (MessageRejected, "parameters error"),
    2: (ProviderAuthError, "authorise error"),
    3: (ProviderAuthError, "no money"),
    4: (RateLimited, "IP address temporarily blocked after frequent errors"),
    5: (MessageRejected, "wrong date format (or error deleting message)"),
    6: (MessageRejected, "message is denied (text or sender)"),
    7: (InvalidRecipient, "invalid number"),
    8: (InvalidRecipient, "can't deliver to this number"),
    9: (OutcomeUnknown, "duplicate request, wait a minute"),
}

# status.php / callback `status` (providers.md §3.4).
STATUSES: dict[int, Status] = {
    -3: Status.UNKNOWN, -2: Status.FAILED, -1: Status.QUEUED, 0: Status.SENT,
    1: Status.DELIVERED, 2: Status.DELIVERED, 4: Status.DELIVERED, 3: Status.EXPIRED,
    20: Status.UNDELIVERED, 25: Status.UNDELIVERED, 22: Status.REJECTED,
    23: Status.REJECTED, 24: Status.FAILED,
}

# status.php / callback `err`: delivery error codes (providers.md §3.4).
DELIVERY_ERRORS: dict[int, str] = {
    1: "subscriber does not exist", 6: "subscriber offline", 11: "cannot receive SMS",
    12: "handset error", 13: "subscriber blocked", 21: "no SMS support",
    200: "virtual send (test)", 220: "queue overflow", 240: "line busy",
    241: "sound conversion error", 242: "answering machine", 243: "no contract",
    244: "mailings forbidden", 245: "status not received", 246: "time restriction",
    247: "message limit exceeded", 248: "no route", 249: "invalid number format",
    250: "number forbidden by settings", 251: "per-number limit", 252: "number forbidden",
    253: "spam filter", 254: "unregistered sender id", 255: "rejected by operator",
}

# The seed's `format` argument (1..13) and the switch each one sends.
FORMATS: dict[int, tuple[str, str]] = {
    1: ("flash", "1"), 2: ("push", "1"), 3: ("hlr", "1"), 4: ("bin", "1"), 5: ("bin", "2"),
    6: ("ping", "1"), 7: ("mms", "1"), 8: ("mail", "1"), 9: ("call", "1"),
    10: ("viber", "1"), 11: ("soc", "1"), 13: ("tg", "1"),
}
SWITCHES = ("flash", "push", "hlr", "bin", "ping", "mms", "mail", "call", "viber", "soc", "tg")
PASSTHROUGH = ("translit", "time", "tz", "valid", "maxsms", "tinyurl")
_CLIENT_ID = re.compile(r"[A-Za-z0-9._-]{1,40}")


def classify(code: int | None, *, sending: bool) -> SmsqError:
    """The one decision: an SMSC error code becomes which smsq error.

    Error 9 on send.php means an identical request arrived within the minute and
    was most likely accepted: never resend, reconcile. Elsewhere it is throttling.
    """
    if code == 9 and not sending:
        return RateLimited("too many requests", provider=PROVIDER, code=9,
                           retry_after=BUSY_RETRY)
    known = ERRORS.get(code) if code is not None else None
    if known is None:
        kind: type[SmsqError] = OutcomeUnknown if sending else GatewayUnavailable
        return kind("unrecognised error code", provider=PROVIDER, code=code)
    cls, text = known
    # Error 4 (IP ban) says nothing of its length: no retry_after. The worker backs off
    # by the throttle streak (1 s doubling, up to SMSQ_THROTTLE_MAX), one probe at a time.
    return cls(text, provider=PROVIDER, code=code)


def status_for(code: int | None) -> Status:
    return STATUSES.get(code, Status.UNKNOWN) if code is not None else Status.UNKNOWN


def client_id(ref: str) -> str | None:
    """`ref` when SMSC accepts it as a client id (≤40 of [A-Za-z0-9._-], not "0")."""
    if not _CLIENT_ID.fullmatch(ref) or ref.strip("0") == "":
        return None
    if ref.isdigit() and int(ref) > 2_147_483_647:
        return None
    return ref


def option_params(options: Mapping[str, Any]) -> list[tuple[str, str]]:
    """send.php parameters from message options: passthroughs and format switches."""
    params = [(k, str(options[k])) for k in PASSTHROUGH if options.get(k) not in (None, "")]
    fmt = options.get("format")
    if isinstance(fmt, int) and fmt in FORMATS:
        params.append(FORMATS[fmt])
    elif isinstance(fmt, str) and fmt in SWITCHES:
        params.append((fmt, "1"))
    for switch in SWITCHES:
        value = options.get(switch)
        if value and switch not in {k for k, _ in params}:
            params.append((switch, "2" if switch == "bin" and value == 2 else "1"))
    return params


def decode_reply(raw: bytes) -> Any:
    """The body as JSON. SMSC labels fmt=3 replies windows-1251 even for charset=utf-8
    requests, so the label is ignored: UTF-8 first, windows-1251 as the fallback."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("cp1251", errors="replace")
    text = text.strip().lstrip("\ufeff")
    if not text:
        raise MalformedResponse("empty reply", provider=PROVIDER)
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise MalformedResponse("unparseable reply", provider=PROVIDER) from None


def as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d{1,12}\s*", value):
        return int(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e12:
        return int(value)
    return None


def as_float(value: Any) -> float | None:
    number = as_int(value)
    return float(number) if number is not None else None


def digits_of(value: Any) -> str:
    return "".join(ch for ch in str(value) if ch.isdigit()) if isinstance(value, str | int) \
        else ""


def error_code(data: Any) -> int | None:
    """None for a normal reply; the error code of an error reply (0 when unreadable)."""
    if isinstance(data, dict) and ("error_code" in data or "error" in data):
        code = as_int(data.get("error_code"))
        return code if code is not None else 0
    return None


def raise_on_error(data: Any) -> None:
    code = error_code(data)
    if code is not None:
        raise classify(code, sending=False)


def _id_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) or (isinstance(value, str) and value.strip()):
        return str(value).strip()
    return None


def parse_send(data: Any, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
    """send.php (fmt=3, op=1) reply -> one SendResult per message, in order."""
    code = error_code(data)
    if code in RECIPIENT_CODES:
        refusal = classify(code, sending=True)
        return [SendResult(m.ref, m.recipient, error=refusal, raw_code=str(code))
                for m in messages]
    if code is not None:
        raise classify(code, sending=True)
    if not isinstance(data, dict) or (msg_id := _id_text(data.get("id"))) is None:
        raise MalformedResponse("send reply without id", provider=PROVIDER)
    rows = data.get("phones")
    by_phone = {digits_of(r.get("phone")): r for r in rows if isinstance(r, dict)} \
        if isinstance(rows, list) else None
    single = as_int(data.get("cnt")) if len(messages) == 1 else None
    return [_send_result(m, msg_id, by_phone, single) for m in messages]


def _send_result(message: OutgoingMessage, msg_id: str,
                 by_phone: dict[str, Any] | None, segments: int | None) -> SendResult:
    if by_phone is None:
        return SendResult(message.ref, message.recipient, msg_id, segments=segments)
    row = by_phone.get(digits_of(message.recipient))
    if row is None:
        missing = OutcomeUnknown("recipient missing from the reply", provider=PROVIDER)
        return SendResult(message.ref, message.recipient, error=missing)
    err = as_int(row.get("error"))
    if err:
        return SendResult(message.ref, message.recipient, error=classify(err, sending=True),
                          raw_code=str(err))
    return SendResult(message.ref, message.recipient, msg_id, cost=to_decimal(row.get("cost")),
                      segments=segments)


@dataclass(frozen=True)
class CostEstimate:
    """send.php?cost=1: what a send would cost, nothing sent."""

    cost: Decimal | None
    segments: int | None


def parse_cost(data: Any) -> CostEstimate:
    code = error_code(data)
    if code is not None:
        raise classify(code, sending=False)
    if not isinstance(data, dict) or "cost" not in data:
        raise MalformedResponse("cost reply without cost", provider=PROVIDER)
    return CostEstimate(to_decimal(data.get("cost")), as_int(data.get("cnt")))


def parse_balance(data: Any) -> Balance:
    """balance.php reply; the amount arrives as a string ("1871.62")."""
    raise_on_error(data)
    amount = to_decimal(data.get("balance")) if isinstance(data, dict) else None
    if amount is None or not isinstance(data, dict):
        raise MalformedResponse("balance reply without balance", provider=PROVIDER)
    currency = data.get("currency")
    extra = {"credit": str(data["credit"])} if "credit" in data else {}
    return Balance(amount, currency if isinstance(currency, str) else None, extra)


def parse_status(data: Any, queries: Sequence[StatusQuery]) -> list[StatusResult]:
    """status.php reply (array form echoing id and phone, or one object) -> in query order."""
    raise_on_error(data)
    if isinstance(data, dict) and len(queries) == 1:
        return [status_row(queries[0], data)]
    if not isinstance(data, list):
        raise MalformedResponse("status reply is not a list", provider=PROVIDER)
    rows = [r for r in data if isinstance(r, dict)]
    by_pair = {(_id_text(r.get("id")), digits_of(r.get("phone"))): r for r in rows}
    results = []
    for q in queries:
        row = by_pair.get((q.provider_message_id, digits_of(q.recipient)))
        if row is None:
            same_id = [r for r in rows if _id_text(r.get("id")) == q.provider_message_id]
            row = same_id[0] if len(same_id) == 1 else {"status": -3}
        results.append(status_row(q, row))
    return results


def status_row(query: StatusQuery, row: Mapping[str, Any]) -> StatusResult:
    code = as_int(row.get("status"))
    if code is None:
        raise MalformedResponse("status row without status", provider=PROVIDER)
    err = as_int(row.get("err"))
    return StatusResult(
        provider_message_id=query.provider_message_id, status=status_for(code),
        raw_code=str(code), updated_at=as_float(row.get("last_timestamp")),
        sent_at=as_float(row.get("send_timestamp")), cost=to_decimal(row.get("cost")),
        error=DELIVERY_ERRORS.get(err, f"err {err}") if err else None,
        recipient=query.recipient or None,
    )
