"""sms.ru: form-encoded POSTs with `api_id` and `json=1`, JSON replies keyed by phone or id.

sms.ru takes no client-side message id, so a send whose reply is lost cannot
be reconciled (it becomes OutcomeUnknown) and a blind resend could deliver
twice. Code tables and reply parsers live in `providers.smsru_codes`,
delivery reports in `providers.smsru_reports`.

Validity on the wire: `ttl`, the message's lifetime in whole minutes, 1..1440
(providers.md §1.3 and the seed: "Срок жизни сообщения в минутах (от 1 до
1440)"; after it the operator drops the message, cost not refunded, and the
status is 104 "время жизни истекло"). smsq sends the remaining validity rounded
down to minutes and capped at 1440; under one minute left, nothing is sent
(ValidityExpired). Inferred, not documented: what sms.ru answers to a `ttl` out
of range (the seed's client refuses it before sending; the sandbox answers 208,
the code for a bad `time`), and that `ttl` counts from acceptance.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, ClassVar

import structlog

from providers import segments
from providers.base import Provider
from providers.capabilities import StopList
from providers.errors import GatewayUnavailable, OutcomeUnknown, ValidationError
from providers.models import (
    Balance,
    OutgoingMessage,
    SendResult,
    StatusQuery,
    StatusResult,
    to_decimal,
)
from providers.phones import digits, national_ru
from providers.smsru_codes import (
    OK_CODE,
    PROVIDER,
    CallCheck,
    CallCheckStatus,
    Counter,
    as_int,
    check_envelope,
    decode_json,
    error_for,
    items_of,
    parse_balance_reply,
    parse_callcheck_add,
    parse_callcheck_status,
    parse_counter_reply,
    parse_list_reply,
    parse_status_reply,
    parse_stoplist_reply,
)
from providers.smsru_reports import (
    CALLBACK_ACK,
    SmsRuReports,
    callback_hash,
    parse_callback,
    verify_callback,
)
from providers.validity import WireValidity, bucket

log = structlog.get_logger(__name__)

OPTION_KEYS = ("from", "ip", "time", "ttl", "daytime", "translit", "test", "partner_id")
FLAG_KEYS = frozenset({"daytime", "translit", "test"})
TTL = WireValidity("ttl", 60.0, 1, 1440)  # minutes

__all__ = ["CALLBACK_ACK", "CallCheck", "CallCheckStatus", "CostQuote", "Counter", "SmsRu",
           "callback_hash", "parse_callback", "verify_callback"]


@dataclass(frozen=True)
class CostQuote:
    """`sms/cost`: per-recipient price and segments (as SendResults), and the totals."""

    results: list[SendResult]
    total_cost: Decimal | None
    total_sms: int | None


# -- pure helpers: form building and reply parsing ---------------------------------


def option_values(options: Mapping[str, Any]) -> dict[str, str]:
    """sms.ru send options as form fields; flags become "1", false flags are left out."""
    form: dict[str, str] = {}
    for key in OPTION_KEYS:
        value = options.get(key)
        if value is None or value is False or value == "":
            continue
        form[key] = "1" if key in FLAG_KEYS else str(value)
    return form


def send_form(messages: Sequence[OutgoingMessage], options: Mapping[str, Any]) -> dict[str, str]:
    """One text -> `to`+`msg`; several texts -> `to[<phone>]=<text>` per recipient."""
    form: dict[str, str] = {}
    if len({m.text for m in messages}) == 1:
        form["to"] = ",".join(digits(m.recipient) for m in messages)
        form["msg"] = messages[0].text
    else:
        for m in messages:
            form[f"to[{digits(m.recipient)}]"] = m.text
    sender = messages[0].sender if messages else None
    form.update(option_values({"from": sender, **options}))
    return form


def split_repeats(messages: Sequence[OutgoingMessage]) -> tuple[list[OutgoingMessage], set[int]]:
    """The first message per number, and the positions of numbers seen before."""
    seen: set[str] = set()
    unique: list[OutgoingMessage] = []
    repeats: set[int] = set()
    for index, message in enumerate(messages):
        key = digits(message.recipient)
        if key in seen:
            repeats.add(index)
        else:
            seen.add(key)
            unique.append(message)
    return unique, repeats


def _item_for(sms: Mapping[str, Any], recipient: str) -> Any:
    """The reply keys by the normalised 11-digit number; accept the 10-digit form too."""
    for key in (digits(recipient), national_ru(recipient), recipient):
        if key in sms:
            return sms[key]
    return None


def recipient_result(message: OutgoingMessage, item: Any) -> SendResult:
    """One recipient's entry of a send reply (`sms[<phone>]`) as a SendResult."""
    ref, to = message.ref, message.recipient
    parts = segments.count(message.text).segments
    if not isinstance(item, dict):
        return SendResult(ref, to, error=OutcomeUnknown("recipient missing from the reply",
                                                        provider=PROVIDER))
    code = as_int(item.get("status_code"))
    raw = None if code is None else str(code)
    sms_id = item.get("sms_id")
    if item.get("status") == "OK" and isinstance(sms_id, str) and sms_id:
        return SendResult(ref, to, provider_message_id=sms_id, raw_code=raw, segments=parts)
    if item.get("status") == "ERROR" or (code is not None and code != OK_CODE):
        return SendResult(ref, to, error=error_for(item.get("status_code")), raw_code=raw)
    return SendResult(ref, to, error=OutcomeUnknown("recipient entry has no sms_id",
                                                    provider=PROVIDER), raw_code=raw)


def parse_send_reply(data: Any, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
    """`sms/send` as one SendResult per message; a top-level ERROR raises."""
    sms = items_of(check_envelope(data), "sms")
    return [recipient_result(m, _item_for(sms, m.recipient)) for m in messages]


def parse_cost_reply(data: Any, messages: Sequence[OutgoingMessage]) -> CostQuote:
    """`sms/cost`: the per-recipient entries carry `cost` and `sms` (segments), no id."""
    body = check_envelope(data)
    sms = items_of(body, "sms")
    results = []
    for m in messages:
        item = _item_for(sms, m.recipient)
        if isinstance(item, dict) and item.get("status") == "OK":
            results.append(SendResult(m.ref, m.recipient, raw_code=str(OK_CODE),
                                      cost=to_decimal(item.get("cost")),
                                      segments=as_int(item.get("sms"))))
        else:
            results.append(recipient_result(m, item))
    return CostQuote(results, to_decimal(body.get("total_cost")), as_int(body.get("total_sms")))


# -- the provider --------------------------------------------------------------------


class SmsRu(SmsRuReports, Provider, StopList):
    """One sms.ru account (`api_id`); every endpoint as a typed method."""

    name: ClassVar[str] = PROVIDER
    default_base_url: ClassVar[str] = "https://sms.ru"
    credential_fields: ClassVar[tuple[str, ...]] = ("api_id",)
    max_recipients: ClassVar[int] = 100
    max_status_ids: ClassVar[int] = 100
    max_segments: ClassVar[int | None] = 8
    per_recipient_texts: ClassVar[bool] = True
    default_rate: ClassVar[float | None] = None
    reports: ClassVar[bool] = True
    validity: ClassVar[WireValidity | None] = TTL

    def batch_key(self, message: OutgoingMessage) -> Hashable:
        """Texts may differ within a request, but sender, send options and the deadline's
        minute may not."""
        return (message.sender, tuple(sorted(option_values(message.options).items())),
                bucket(message, TTL))

    def _call(self, path: str, form: Mapping[str, str] | None = None,
              late: Callable[[], dict[str, str]] | None = None) -> dict[str, Any]:
        """POST one form (plus `late` fields, made as it leaves); the OK envelope back."""
        data = {"api_id": self.credential("api_id"), "json": "1", **option_values(
            {"partner_id": self.account.options.get("partner_id")}), **(form or {})}
        wire = None if late is None else (lambda: {"data": {**data, **late()}})
        response = self.request("POST", path, data=data, late=wire)
        self.check_http(response, sending=path == "/sms/send")
        if not 200 <= response.status_code < 300:
            raise GatewayUnavailable("unexpected HTTP status", provider=self.name,
                                     http_status=response.status_code)
        return check_envelope(decode_json(response.content))

    def _checked(self, messages: Sequence[OutgoingMessage]) -> None:
        if len(messages) > self.max_recipients:
            raise ValidationError(f"at most {self.max_recipients} recipients per request",
                                  field="recipients", provider=self.name)

    def send(self, messages: Sequence[OutgoingMessage], **options: Any) -> list[SendResult]:
        """One `sms/send`; a number repeated in the batch is held back (the reply keys by
        phone, so its two ids could not be told apart) and reported as never sent."""
        self._checked(messages)
        if not messages:
            return []
        unique, repeats = split_repeats(messages)
        opts = {**messages[0].options, **options}

        def ttl() -> dict[str, str]:  # the remaining validity, once the slot is granted
            value = TTL.value(unique, self.clock(), opts.get("ttl"))
            return {} if value is None else {"ttl": value}

        form = send_form(unique, opts)
        parsed = iter(parse_send_reply(self._call("/sms/send", form, ttl), unique))
        held = GatewayUnavailable("recipient repeated in one request; send it again",
                                  provider=self.name, never_reached=True, retry_after=0.0)
        final = [SendResult(m.ref, m.recipient, error=held) if i in repeats else next(parsed)
                 for i, m in enumerate(messages)]
        log.info("sms_batch_submitted", provider=self.name, recipients=len(messages),
                 accepted=sum(r.accepted for r in final))
        return final

    def cost(self, messages: Sequence[OutgoingMessage], **options: Any) -> CostQuote:
        """`sms/cost`: what `send` would charge, nothing sent."""
        self._checked(messages)
        if not messages:
            return CostQuote([], Decimal(0), 0)
        form = send_form(messages, {**messages[0].options, **options})
        form = {k: v for k, v in form.items() if k in ("to", "msg", "from", "translit")
                or k.startswith("to[")}
        return parse_cost_reply(self._call("/sms/cost", form), messages)

    def status(self, queries: Sequence[StatusQuery]) -> list[StatusResult]:
        if len(queries) > self.max_status_ids:
            raise ValidationError(f"at most {self.max_status_ids} ids per status request",
                                  field="queries", provider=self.name)
        if not queries:
            return []
        ids = [q.provider_message_id for q in queries]
        results = parse_status_reply(self._call("/sms/status", {"sms_id": ",".join(ids)}), ids)
        return [replace(r, recipient=q.recipient or None)
                for r, q in zip(results, queries, strict=True)]

    def balance(self) -> Balance:
        return parse_balance_reply(self._call("/my/balance"))

    def limit(self) -> Counter:
        return parse_counter_reply(self._call("/my/limit"), "total_limit")

    def free(self) -> Counter:
        return parse_counter_reply(self._call("/my/free"), "total_free")

    def senders(self) -> list[str]:
        return parse_list_reply(self._call("/my/senders"), "senders")

    def stoplist(self) -> dict[str, str]:
        return parse_stoplist_reply(self._call("/stoplist/get"))

    def stoplist_add(self, phone: str, comment: str = "") -> None:
        self._call("/stoplist/add", {"stoplist_phone": digits(phone), "stoplist_text": comment})

    def stoplist_del(self, phone: str) -> None:
        self._call("/stoplist/del", {"stoplist_phone": digits(phone)})

    def callbacks(self) -> list[str]:
        return parse_list_reply(self._call("/callback/get"), "callback")

    def callback_add(self, url: str) -> list[str]:
        """Registers a report URL; sms.ru answers with the full list."""
        return parse_list_reply(self._call("/callback/add", {"url": url}), "callback")

    def callback_del(self, url: str) -> list[str]:
        return parse_list_reply(self._call("/callback/del", {"url": url}), "callback")

    def callcheck_add(self, phone: str) -> CallCheck:
        return parse_callcheck_add(self._call("/callcheck/add", {"phone": digits(phone)}))

    def callcheck_status(self, check_id: str) -> CallCheckStatus:
        return parse_callcheck_status(self._call("/callcheck/status", {"check_id": check_id}))
