"""SMS Club (im.smsclub.mobi): JSON over POST, a Bearer token, partial success per number.

Every reply goes through small pure functions (`read_reply`, `parse_*`) so that
hypothesis can feed them anything: what comes out is a result or an smsq error.
Why phones, not positions, correlate a send: the gateway answers `info`
{message id: phone} and `add_info` {phone: error text}, never in request order.

Validity: none on the wire. SMS Club's documentation has no validity or TTL
field (its EXPIRED status says the gateway has one of its own); one third-party
client sends `lifetime`, with unknown unit and meaning, so smsq does not guess
(`validity = None`): a deadline is enforced by smsq alone, up to the request.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import structlog

from providers.base import Provider
from providers.errors import MalformedResponse, OutcomeUnknown, SmsqError, ValidationError
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
from providers.smsclub_codes import PROVIDER, error_for, is_field_key, status_for

log = structlog.get_logger(__name__)

SEND_PATH = "/sms/send"
STATUS_PATH = "/sms/status"
ORIGINATOR_PATH = "/sms/originator"
BALANCE_PATH = "/sms/balance"


class SmsClub(Provider):
    """One SMS Club account: send, status, originators and balance, all POST + JSON."""

    name: ClassVar[str] = PROVIDER
    default_base_url: ClassVar[str] = "https://im.smsclub.mobi"
    credential_fields: ClassVar[tuple[str, ...]] = ("token",)
    max_recipients: ClassVar[int] = 100
    max_status_ids: ClassVar[int] = 100
    max_segments: ClassVar[int | None] = None  # no documented limit
    per_recipient_texts: ClassVar[bool] = False  # /v2/sms/send's reply is undocumented
    default_rate: ClassVar[float | None] = 9.0
    reports: ClassVar[bool] = False  # no delivery webhooks for the SMS JSON API

    def send(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        if not messages:
            return []
        self._check_batch(messages)
        body = send_body(messages, self.account.options.get("integration_id"))
        results = parse_send(self._call(SEND_PATH, body), messages)
        for result in results:
            if result.error is not None:
                log.info("sms_recipient_refused", provider=self.name,
                         recipient=mask(result.recipient), error=type(result.error).__name__)
        return results

    def status(self, queries: Sequence[StatusQuery]) -> list[StatusResult]:
        if not queries:
            return []
        if len(queries) > self.max_status_ids:
            raise ValidationError(f"at most {self.max_status_ids} ids per status request",
                                  field="queries", provider=self.name)
        ids = [q.provider_message_id for q in queries]
        return parse_status(self._call(STATUS_PATH, {"id_sms": ids}), ids)

    def balance(self) -> Balance:
        return parse_balance(self._call(BALANCE_PATH))

    def originators(self) -> list[str]:
        """The account's active alpha names (senders)."""
        return parse_originators(self._call(ORIGINATOR_PATH))

    def _check_batch(self, messages: Sequence[OutgoingMessage]) -> None:
        if len(messages) > self.max_recipients:
            raise ValidationError(f"at most {self.max_recipients} recipients per request",
                                  field="messages", provider=self.name)
        if len({(m.sender, m.text) for m in messages}) > 1:
            raise ValidationError("one request carries one sender and one text",
                                  field="messages", provider=self.name)

    def _call(self, path: str, body: Mapping[str, Any] | None = None) -> Any:
        """POST `body` as JSON (no body for balance/originator) and read the reply."""
        headers = {"Authorization": f"Bearer {self.credential('token')}",
                   "Accept": "application/json", "Content-Type": "application/json"}
        data = b"" if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
        response = self.request("POST", path, headers=headers, data=data)
        return read_reply(response.status_code, response.content,
                          response.headers.get("Retry-After"))


# -- request bodies --------------------------------------------------------------------


def send_body(messages: Sequence[OutgoingMessage], integration_id: object = None) -> dict[str, Any]:
    """The documented send body: phone digits as strings, one alpha name, one text."""
    first = messages[0]
    body: dict[str, Any] = {
        "phone": [digits(m.recipient) for m in messages],
        "src_addr": first.sender or "",
        "message": first.text,
    }
    if isinstance(integration_id, int) and not isinstance(integration_id, bool):
        body["integration_id"] = integration_id
    return body


# -- pure reply parsers ----------------------------------------------------------------


def decode_json(content: bytes) -> Any:
    """The body as JSON, or MalformedResponse."""
    try:
        return json.loads(content.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise MalformedResponse("unparseable reply", provider=PROVIDER) from None


def read_reply(http_status: int, content: bytes, retry_after: str | None = None) -> Any:
    """The decoded body of a 2xx reply; every other status raises its classified error."""
    if 200 <= http_status < 300:
        return decode_json(content)
    hint = _seconds(retry_after)
    if http_status == 400:
        _raise_field_errors(content)
    error = error_for(http_status=http_status, text=_error_text(content), retry_after=hint)
    raise error or MalformedResponse("unexpected reply", provider=PROVIDER,
                                     http_status=http_status)


def envelope(data: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """`success_request` split into (info, add_info); PHP's empty `[]` reads as `{}`."""
    if not isinstance(data, dict) or not isinstance(data.get("success_request"), dict):
        raise MalformedResponse("reply without success_request", provider=PROVIDER)
    inner = data["success_request"]
    return _mapping(inner.get("info"), "info"), _mapping(inner.get("add_info"), "add_info")


def parse_send(data: Any, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
    """One SendResult per message, matched by phone; raises when the whole request failed."""
    info, add_info = envelope(data)
    accepted = accepted_ids(info)
    refused = {k: v for k, v in add_info.items() if not is_field_key(k)}
    request_error = _first_field_error(add_info)
    if request_error is not None and not accepted:
        raise request_error
    refused_by_phone = {p: v for k, v in refused.items() if (p := _phone_digits(k))}
    return [_send_result(m, accepted, refused_by_phone, request_error) for m in messages]


def accepted_ids(info: Mapping[str, Any]) -> dict[str, deque[str]]:
    """phone digits -> message ids in issue order (a phone sent twice gets two ids)."""
    pairs = [(key.strip(), _phone_digits(value)) for key, value in info.items()]
    pairs.sort(key=lambda pair: _id_order(pair[0]))
    by_phone: dict[str, deque[str]] = {}
    for msg_id, phone in pairs:
        if msg_id and phone:
            by_phone.setdefault(phone, deque()).append(msg_id)
    return by_phone


def parse_status(data: Any, ids: Sequence[str]) -> list[StatusResult]:
    """One StatusResult per id, in order; an id the gateway leaves out is UNKNOWN."""
    info, add_info = envelope(data)
    wanted = {str(k).strip(): v for k, v in info.items()}
    notes = {str(k).strip(): v for k, v in add_info.items()}
    results = []
    for msg_id in ids:
        key = str(msg_id).strip()
        if key in wanted:
            raw = wanted[key]
            results.append(StatusResult(msg_id, status_for(raw),
                                        raw_code=raw if isinstance(raw, str) else None))
        else:
            note = notes.get(key)
            results.append(StatusResult(msg_id, Status.UNKNOWN,
                                        error=note[:200] if isinstance(note, str) else None))
    return results


def parse_balance(data: Any) -> Balance:
    """`money` is a string with four decimals ("8111.1700"); `currency` e.g. "UAH"."""
    info, _ = envelope(data)
    money = info.get("money")
    amount = to_decimal(money) if isinstance(money, str | int | float) else None
    if amount is None:
        raise MalformedResponse("balance without money", provider=PROVIDER)
    currency = info.get("currency")
    return Balance(amount, currency if isinstance(currency, str) else None)


def parse_originators(data: Any) -> list[str]:
    """The alpha names from `info`, a JSON list (or a PHP assoc array read as its values)."""
    if not isinstance(data, dict) or not isinstance(data.get("success_request"), dict):
        raise MalformedResponse("reply without success_request", provider=PROVIDER)
    info = data["success_request"].get("info")
    if isinstance(info, dict):
        info = list(info.values())
    if info is None:
        return []
    if not isinstance(info, list):
        raise MalformedResponse("originator list is not a list", provider=PROVIDER)
    return [name for name in info if isinstance(name, str)]


# -- helpers ---------------------------------------------------------------------------


def _send_result(message: OutgoingMessage, accepted: dict[str, deque[str]],
                 refused: Mapping[str, Any], request_error: SmsqError | None) -> SendResult:
    phone = digits(message.recipient)
    ids = accepted.get(phone)
    if ids:
        return SendResult(message.ref, message.recipient, provider_message_id=ids.popleft())
    if phone in refused:
        text = refused[phone] if isinstance(refused[phone], str) else ""
        error = error_for(key=phone, text=text)
        return SendResult(message.ref, message.recipient, error=error, raw_code=text[:100])
    error = request_error or OutcomeUnknown("gateway did not mention this recipient",
                                            provider=PROVIDER)
    return SendResult(message.ref, message.recipient, error=error)


def _first_field_error(add_info: Mapping[str, Any], http_status: int = 200) -> SmsqError | None:
    for key, text in add_info.items():
        if is_field_key(key):
            return error_for(http_status=http_status, key=key,
                             text=text if isinstance(text, str) else "")
    return None


def _raise_field_errors(content: bytes) -> None:
    """A 400 carrying `add_info` {field: text} raises that field's error."""
    try:
        _, add_info = envelope(decode_json(content))
    except MalformedResponse:
        return
    error = _first_field_error(add_info, http_status=400)
    if error is not None:
        raise error


def _error_text(content: bytes) -> str:
    """The `message` of a Yii-style error body ({"name", "message", "code", "status"})."""
    try:
        data = decode_json(content)
    except MalformedResponse:
        return ""
    message = data.get("message") if isinstance(data, dict) else None
    return message if isinstance(message, str) else ""


def _mapping(value: Any, what: str) -> dict[str, Any]:
    if value is None or value == []:
        return {}
    if not isinstance(value, dict):
        raise MalformedResponse(f"{what} is not an object", provider=PROVIDER)
    return {str(k): v for k, v in value.items()}


def _phone_digits(value: Any) -> str | None:
    """A phone as the gateway echoes it (string or int) reduced to ASCII digits."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = value if isinstance(value, str) else (str(value) if abs(value) < 10**20 else "")
    found = "".join(ch for ch in text if ch in "0123456789")
    return found or None


def _id_order(msg_id: str) -> tuple[int, int, str]:
    """Numeric ids in numeric order without int() (ids may be arbitrarily long)."""
    numeric = msg_id.isascii() and msg_id.isdigit()
    return (0 if numeric else 1, len(msg_id) if numeric else 0, msg_id)


def _seconds(value: str | None) -> float | None:
    try:
        return min(3600.0, max(0.0, float(value))) if value is not None else None
    except ValueError:
        return None
