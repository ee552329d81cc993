"""Gatum's wire vocabulary: state and error tables, and the pure parsers.

Every parser takes a decoded body (or raw bytes) and returns results or raises
an smsq error, never anything else, so they can be fuzzed in isolation from
HTTP. The send reply shape smsq relies on is described in `providers/gatum.py`.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from providers import segments
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
from providers.models import Balance, OutgoingMessage, SendResult, Status, StatusResult, to_decimal

NAME = "gatum"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

# id_state `state` -> normalised status (providers.md §4.5); anything else is UNKNOWN.
STATES: dict[str, Status] = {
    "ENROUTE": Status.SENT,
    "ACCEPTD": Status.SENT,
    "DELIVRD": Status.DELIVERED,
    "EXPIRED": Status.EXPIRED,
    "UNDELIV": Status.UNDELIVERED,
    "DELETED": Status.UNDELIVERED,
    "REJECTD": Status.REJECTED,
}

# error string -> (class for a whole request, class for one recipient of a send).
ERROR_CODES: dict[str, tuple[type[SmsqError], type[SmsqError]]] = {
    "not_registr_originator": (MessageRejected, MessageRejected),
    "no_client_price": (ProviderAuthError, InvalidRecipient),
    "no_active_aggregator": (ProviderAuthError, InvalidRecipient),
    "invalid_credentials": (ProviderAuthError, ProviderAuthError),
    "unauthorized": (ProviderAuthError, ProviderAuthError),
    "invalid_number": (InvalidRecipient, InvalidRecipient),
    "black_list": (InvalidRecipient, InvalidRecipient),
}
# field of a 400 validation error -> class, when no known error string decides.
FIELD_ERRORS: dict[str, type[SmsqError]] = {
    "username": ProviderAuthError, "password": ProviderAuthError,
    "authorization_code": ProviderAuthError, "token": ProviderAuthError,
    "number": InvalidRecipient, "numbers": InvalidRecipient, "phone": InvalidRecipient,
}


def classify(http_status: int | None, errors: Any, *, per_recipient: bool = False,
             retry_after: float | None = None) -> SmsqError:
    """The one function that turns a Gatum refusal into an smsq error."""
    if http_status == 429:
        return RateLimited("throttled", provider=NAME, http_status=429,
                           retry_after=1.0 if retry_after is None else retry_after)
    if http_status is not None and http_status >= 500:
        return GatewayUnavailable("gateway error", provider=NAME, http_status=http_status,
                                  retry_after=retry_after)
    pairs = _error_pairs(errors)
    for _field, text in pairs:
        for code, classes in ERROR_CODES.items():
            if code in text.lower():
                cls = classes[1] if per_recipient else classes[0]
                return cls(f"refused: {code}", provider=NAME, http_status=http_status,
                           code=code)
    if http_status in (401, 403):
        return ProviderAuthError("authentication failed", provider=NAME,
                                 http_status=http_status)
    for field, _ in pairs:
        if field in FIELD_ERRORS:
            return FIELD_ERRORS[field](f"refused: invalid {field}", provider=NAME,
                                       http_status=http_status, code=field)
    first = pairs[0][0] if pairs else None
    return MessageRejected(f"refused: invalid {first or 'request'}", provider=NAME,
                           http_status=http_status, code=first)


def _error_pairs(errors: Any) -> list[tuple[str, str]]:
    """(field, message) pairs from `errors`, whatever shape it arrived in."""
    if isinstance(errors, str):
        return [("", errors)]
    if not isinstance(errors, dict):
        return []
    pairs: list[tuple[str, str]] = []
    for field, value in errors.items():
        items = value if isinstance(value, list) else [value]
        pairs.extend((str(field), str(item)) for item in items)
    return pairs


def status_of(state: Any) -> Status:
    return STATES.get(state.strip().upper(), Status.UNKNOWN) if isinstance(state, str) \
        else Status.UNKNOWN


def decode(http_status: int, content: bytes, retry_after: float | None = None) -> Any:
    """A reply's `data`, or the classified error; never anything else."""
    if http_status == 429 or http_status >= 500:
        raise classify(http_status, None, retry_after=retry_after)
    try:
        body = json.loads(content.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        if http_status >= 400:
            raise classify(http_status, None) from None
        raise MalformedResponse("unparseable reply", provider=NAME,
                                http_status=http_status) from None
    failed = http_status >= 400 or (isinstance(body, dict) and body.get("status") is False)
    if failed:
        errors = body.get("errors") if isinstance(body, dict) else None
        raise classify(http_status if http_status >= 400 else None, errors)
    if isinstance(body, dict) and "data" in body:
        return body["data"]
    if isinstance(body, list):
        return body
    raise MalformedResponse("reply without data", provider=NAME, http_status=http_status)


def parse_token(data: Any) -> tuple[str, float]:
    """`/v1/accesstoken` data -> (token, expires_at)."""
    token = data.get("access_token") if isinstance(data, dict) else None
    if not isinstance(token, str) or not token:
        raise MalformedResponse("no access_token", provider=NAME)
    expires = data.get("expires_at")
    if isinstance(expires, bool) or not isinstance(expires, int | float):
        return token, -1.0
    return token, float(expires)


def parse_auth_code(data: Any) -> str:
    code = data.get("authorization_code") if isinstance(data, dict) else None
    if not isinstance(code, str | int) or isinstance(code, bool) or code == "":
        raise MalformedResponse("no authorization_code", provider=NAME)
    return str(code)


def parse_send(data: Any, objects: Sequence[Sequence[str]]) -> list[deque[dict[str, Any]]]:
    """Send data -> per object, the recipient entries keyed in request order."""
    if not isinstance(data, list) or len(data) != len(objects):
        raise MalformedResponse("send reply does not match the request", provider=NAME)
    out: list[deque[dict[str, Any]]] = []
    for item in data:
        entries = item.get("messages") if isinstance(item, dict) else None
        if not isinstance(entries, list):
            raise MalformedResponse("send reply without messages", provider=NAME)
        out.append(deque(e for e in entries if isinstance(e, dict)))
    return out


def entry_result(msg: OutgoingMessage, entry: dict[str, Any] | None) -> SendResult:
    """One recipient's SendResult from its reply entry."""
    parts = segments.count(msg.text).segments
    if entry is None:
        error: SmsqError = OutcomeUnknown("recipient missing from reply", provider=NAME)
        return SendResult(msg.ref, msg.recipient, error=error, segments=parts)
    id_state = entry.get("id_state")
    if entry.get("error") or not _is_id(id_state):
        err = classify(None, {"number": [str(entry.get("error") or "invalid_number")]},
                       per_recipient=True)
        return SendResult(msg.ref, msg.recipient, error=err, raw_code=err.code)
    return SendResult(msg.ref, msg.recipient, provider_message_id=str(id_state),
                      segments=parts)


def _is_id(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, str) and value.isdigit())


def parse_time(value: Any) -> float | None:
    """`YYYY-MM-DD HH:MM:SS` (GMT+0) -> unix seconds; junk -> None."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value.strip(), TIME_FORMAT).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def parse_row(row: Any) -> StatusResult | None:
    """One sms-full-data row or DLR object -> StatusResult (None without an id_state)."""
    if not isinstance(row, dict) or not _is_id(row.get("id_state")):
        return None
    state = row.get("state")
    phone = row.get("phone")
    return StatusResult(
        provider_message_id=str(row["id_state"]), status=status_of(state),
        raw_code=state if isinstance(state, str) else None,
        updated_at=parse_time(row.get("time")),
        recipient="+" + phone if isinstance(phone, str) and phone.isdigit() else None,
    )


def row_list(data: Any) -> list[dict[str, Any]]:
    """sms-full-data data (a list of rows, or {"list": rows}) -> the row objects."""
    rows = data.get("list") if isinstance(data, dict) else data
    if not isinstance(rows, list):
        raise MalformedResponse("sms-full-data without rows", provider=NAME)
    return [row for row in rows if isinstance(row, dict)]


def parse_rows(data: Any, text: str | None = None) -> list[StatusResult]:
    """sms-full-data data -> results (only rows whose `text_sms` is `text`, when given)."""
    rows = [r for r in row_list(data) if text is None or r.get("text_sms") == text]
    return [r for r in map(parse_row, rows) if r is not None]


MAX_DLR_DEPTH = 16  # a DLR is an array of flat objects: 2 levels
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_JSON_OPEN_CLOSE = re.compile(rb"[\[\]{}]")


def json_depth(body: bytes) -> int:
    """How deep a JSON text nests, without parsing it (so no recursion, linear time)."""
    depth = deepest = 0
    for mark in _JSON_OPEN_CLOSE.findall(_JSON_STRING.sub(b"", body)):
        depth = depth + 1 if mark in b"[{" else depth - 1
        deepest = max(deepest, depth)
    return deepest


def parse_dlr(body: bytes) -> tuple[list[StatusResult], list[str]]:
    """A DLR webhook body -> (results, id_state strings to answer with as the ack)."""
    depth = json_depth(body)
    if depth > MAX_DLR_DEPTH:
        raise MalformedResponse(f"DLR JSON is nested {depth} deep (at most {MAX_DLR_DEPTH})",
                                provider=NAME)
    try:
        items = json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise MalformedResponse("unparseable DLR", provider=NAME) from None
    if not isinstance(items, list):
        raise MalformedResponse("DLR is not a JSON array", provider=NAME)
    results = [r for r in map(parse_row, items) if r is not None]
    return results, [r.provider_message_id for r in results]


def parse_balance(data: Any) -> Balance:
    """`/v1/me` data -> Balance (finance.balance first, else balance_units)."""
    if not isinstance(data, dict):
        raise MalformedResponse("account info is not an object", provider=NAME)
    finance = data.get("finance")
    amount = to_decimal(finance.get("balance")) if isinstance(finance, dict) else None
    amount = amount if amount is not None else to_decimal(data.get("balance_units"))
    if amount is None:
        raise MalformedResponse("no balance in account info", provider=NAME)
    currency = data.get("currency")
    extra = {k: data[k] for k in ("block", "can_send_restapi", "balance_limit") if k in data}
    return Balance(amount, currency if isinstance(currency, str) else None, extra)


def merge(results: list[StatusResult]) -> dict[str, StatusResult]:
    """id -> result; a final status wins over a non-final one (one row per part)."""
    by_id: dict[str, StatusResult] = {}
    for r in results:
        old = by_id.get(r.provider_message_id)
        if old is None or not old.status.is_final:
            by_id[r.provider_message_id] = r
    return by_id


