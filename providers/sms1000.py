"""1000sms.ru: `method=push_msg|get_msg_report|get_profile`, one phone or id per call.

Wire choices (providers.md §5): every call asks for `format=JSON` (the XML
default has no documented layout). `push_msg` is a form POST, so the text and
the password stay out of URLs that proxies and access logs keep; the reads are
GETs, the shape the seed documents. Replies are the envelope
`{"response": {"msg": {"err_code", "text", "type"}, "data": {...}}}` where
`err_code` comes as a string or a number. The report's `data.id` is ignored
(the seed calls it the sender's user id): the queried id identifies the SMS.

Validity: none on the wire. `push_msg` documents no validity argument, and the
report's `sms_validity` field is marked "не используется" (unused); state 34
(expired) is known only from the sibling platform. `validity = None`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, ClassVar

import requests
import structlog

from providers.base import Provider
from providers.errors import (
    InvalidRecipient,
    MalformedResponse,
    SmsqError,
    ValidationError,
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
from providers.phones import digits, mask
from providers.sms1000_codes import OK, REPORT_NOT_FOUND, error_for, state_status

NAME = "sms1000"
log = structlog.get_logger(__name__)

# The gateway's clock is Moscow time (UTC+3, no DST since 2014).
MOSCOW = timezone(timedelta(hours=3))
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
# Profile fields that never go into Balance.extra: `email` is a credential here.
PRIVATE_PROFILE_FIELDS = frozenset({"email", "password", "credits", "currency", "credits_name"})

Envelope = tuple[int, Any]  # (err_code, data)
_CODE = re.compile(r"-?[0-9]{1,11}")


# -- pure parsers (bytes / values in, results or SmsqError out) -----------------


def parse_code(value: object) -> int:
    """`err_code` or `state` as an int: "0", 0 and 0.0 are all zero; junk is malformed."""
    if isinstance(value, bool):
        raise _malformed("code is a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _CODE.fullmatch(value.strip()):
        return int(value.strip())
    raise _malformed("code is not an integer")


def parse_envelope(body: bytes) -> Envelope:
    """The reply body as (err_code, data); anything but the documented envelope is malformed."""
    try:
        doc = json.loads(body.decode("utf-8-sig"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise _malformed("body is not JSON") from None
    response = doc.get("response") if isinstance(doc, dict) else None
    msg = response.get("msg") if isinstance(response, dict) else None
    if not isinstance(response, dict) or not isinstance(msg, dict) or "err_code" not in msg:
        raise _malformed("no response.msg.err_code")
    return parse_code(msg["err_code"]), response.get("data")


def parse_send(body: bytes, message: OutgoingMessage, http_status: int | None = None
               ) -> SendResult:
    """A push_msg reply as the one recipient's SendResult, or the request-level error."""
    code, data = parse_envelope(body)
    if code != OK:
        error = error_for(code, NAME, http_status)
        if isinstance(error, InvalidRecipient):
            return SendResult(message.ref, message.recipient, error=error, raw_code=str(code))
        raise error
    if not isinstance(data, dict) or not _is_id(data.get("id")):
        raise _malformed("accepted without an SMS id")
    parts = _optional_int(data.get("n_raw_sms"))
    cost = _cost(data.get("credits"), parts)
    return SendResult(message.ref, message.recipient, provider_message_id=str(data["id"]),
                      raw_code=str(code), cost=cost, segments=parts)


def parse_report(body: bytes, query: StatusQuery, http_status: int | None = None
                 ) -> StatusResult:
    """A get_msg_report reply as a StatusResult; ids the gateway does not know are UNKNOWN."""
    code, data = parse_envelope(body)
    msg_id = query.provider_message_id
    if code in REPORT_NOT_FOUND:
        return StatusResult(msg_id, Status.UNKNOWN, raw_code=f"err{code}",
                            recipient=query.recipient or None)
    if code != OK:
        raise error_for(code, NAME, http_status)
    if not isinstance(data, dict) or "state" not in data:
        raise _malformed("report without a state")
    state = parse_code(data["state"])
    status = state_status(state)
    failed = status in (Status.UNDELIVERED, Status.FAILED, Status.EXPIRED)
    return StatusResult(
        msg_id, status, raw_code=str(state),
        updated_at=parse_time(data.get("last_update")),
        sent_at=parse_time(data.get("start_time")),
        cost=_report_cost(data),
        error=_short_text(data.get("state_text")) if failed else None,
        recipient=query.recipient or None,
    )


def parse_profile(body: bytes, http_status: int | None = None) -> Balance:
    """A get_profile reply as a Balance; the other profile fields go to `extra`."""
    code, data = parse_envelope(body)
    if code != OK:
        raise error_for(code, NAME, http_status)
    if not isinstance(data, dict):
        raise _malformed("profile without data")
    amount = to_decimal(data.get("credits"))
    if amount is None:
        raise _malformed("profile without a credits balance")
    currency = data.get("currency") or data.get("credits_name")
    extra = {str(k): v for k, v in data.items() if k not in PRIVATE_PROFILE_FIELDS
             and isinstance(v, str | int | float | type(None))}
    return Balance(amount, str(currency) if isinstance(currency, str) else None, extra)


def parse_time(value: object) -> float | None:
    """A "yyyy-MM-dd HH:mm:ss" Moscow time as a Unix timestamp; empty or junk is None."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        moment = datetime.strptime(value.strip(), TIME_FORMAT).replace(tzinfo=MOSCOW)
        return moment.timestamp()
    except (ValueError, OverflowError, OSError):
        return None


def _report_cost(data: Mapping[str, Any]) -> Decimal | None:
    try:
        parts = _optional_int(data.get("n_raw_sms"))
    except SmsqError:
        parts = None
    return _cost(data.get("credits"), parts)


def _cost(credits: object, parts: int | None) -> Decimal | None:
    """`credits` is the price of one part, so the message costs credits x parts."""
    price = to_decimal(credits)
    if price is None or parts is None:
        return None
    try:
        return price * parts
    except ArithmeticError:
        return None


def _optional_int(value: object) -> int | None:
    return None if value is None or value == "" else parse_code(value)


def _is_id(value: object) -> bool:
    if isinstance(value, bool):
        return False
    return (isinstance(value, int) and value >= 0) or (isinstance(value, str)
                                                       and value.strip() != "")


def _short_text(value: object) -> str | None:
    return value[:100] if isinstance(value, str) and value else None


def _malformed(what: str) -> MalformedResponse:
    return MalformedResponse(f"unexpected reply: {what}", provider=NAME)


# -- the provider ------------------------------------------------------------------


class Sms1000(Provider):
    """1000sms.ru client: one recipient per push_msg, one id per get_msg_report."""

    name: ClassVar[str] = NAME
    default_base_url: ClassVar[str] = "http://api.1000sms.ru"
    credential_fields: ClassVar[tuple[str, ...]] = ("email", "password")
    max_recipients: ClassVar[int] = 1
    max_status_ids: ClassVar[int] = 1
    max_segments: ClassVar[int | None] = None
    per_recipient_texts: ClassVar[bool] = False
    default_rate: ClassVar[float | None] = None
    reports: ClassVar[bool] = False

    def send(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        if not messages:
            return []
        if len(messages) > self.max_recipients:
            raise ValidationError("1000sms.ru takes one recipient per request",
                                  field="recipient", provider=self.name)
        message = messages[0]
        params = {"method": "push_msg", "phone": digits(message.recipient),
                  "text": message.text}
        if message.sender:
            params["sender_name"] = message.sender
        response = self.call("POST", params, sending=True)
        result = parse_send(response.content, message, response.status_code)
        log.info("sms1000_send_answered", recipient=mask(message.recipient),
                 accepted=result.accepted, code=result.raw_code,
                 provider_message_id=result.provider_message_id)
        return [result]

    def status(self, queries: Sequence[StatusQuery]) -> list[StatusResult]:
        # One id per get_msg_report: a longer list costs one GET per id, in order.
        results = []
        for query in queries:
            response = self.call("GET", {"method": "get_msg_report",
                                         "id": query.provider_message_id}, sending=False)
            results.append(parse_report(response.content, query, response.status_code))
        return results

    def balance(self) -> Balance:
        response = self.call("GET", {"method": "get_profile"}, sending=False)
        return parse_profile(response.content, response.status_code)

    def call(self, http_method: str, params: dict[str, str], *, sending: bool
             ) -> requests.Response:
        """One API call with format and credentials added; HTTP-level failures classified."""
        full = {**params, "format": "JSON", "email": self.credential("email"),
                "password": self.credential("password")}
        if http_method == "POST":
            response = self.request("POST", "/", data=full)
        else:
            response = self.request("GET", "/", params=full)
        self.check_http(response, sending=sending)
        return response
