"""Gatum REST API (restapi.gatum.io and its white labels): JSON in, JSON out, token auth.

Auth is two steps (`/v1/authorize` -> `/v1/accesstoken`); the token rides in
`X-Access-Token` and is cached per provider instance until shortly before its
`expires_at`. A 401 drops it and re-authenticates once, because tokens can be
destroyed server-side (logout, rotation) while we still hold them.

Real response bodies are mostly undocumented (providers.md §4.4), so smsq and
its sandbox agree on this send reply, one item per message object sent::

    {"status": true, "data": [
      {"sending": {"details": {"number": ["79161234501"], "senderID": "smsq", "sentID": 7}},
       "messages": [{"number": "79161234501", "id_state": 1000},
                    {"number": "79161230000", "id_state": null, "error": "invalid_number"}]}]}

`id_state` is the per-recipient message id; sms-full-data rows and DLR webhook
objects carry the same `id_state`, which is how status, lookup and reports
correlate. Errors are `{"status": false, "error_code": N, "errors": {field: [msg]}}`.

Validity on the wire: `lifetime`, "how many seconds this SMS will live, by
default: '86400'" (the seed; a string there). It is per message object, so
objects of one request may differ. smsq sends the remaining validity in whole
seconds, rounded down; under one second left, nothing is sent. Inferred: the
range, as the default is the only documented value; smsq never asks for more
than 86400 s (the default), and the sandbox refuses 0, non-numbers and more
than 86400 with a 400 naming `lifetime`.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from providers import phones
from providers.base import Provider
from providers.capabilities import BlackList, BulkSend, ServerGroups
from providers.errors import ProviderAuthError
from providers.gatum_codes import (
    NAME,
    TIME_FORMAT,
    decode,
    entry_result,
    merge,
    parse_auth_code,
    parse_balance,
    parse_dlr,
    parse_rows,
    parse_send,
    parse_token,
)
from providers.gatum_groups import GatumEndpoints
from providers.models import (
    Balance,
    OutgoingMessage,
    SendResult,
    Status,
    StatusQuery,
    StatusResult,
)
from providers.reports import ParsedReport, ReportReply
from providers.validity import WireValidity, bucket

LIFETIME = WireValidity("lifetime", 1.0, 1, 86400)  # seconds

TOKEN_MARGIN = 60.0  # refresh this long before expires_at: clocks drift, requests take time
DEFAULT_TOKEN_LIFE = 3000.0  # when expires_at is missing (a third-party client uses ~50 min)

__all__ = ["Gatum", "parse_dlr"]


class Gatum(GatumEndpoints, Provider, BlackList, ServerGroups, BulkSend):
    """Gatum REST: cached two-step token, grouped array sends, status via sms-full-data."""

    name: ClassVar[str] = NAME
    default_base_url: ClassVar[str] = "https://restapi.gatum.io"
    credential_fields: ClassVar[tuple[str, ...]] = ("username", "password")
    max_recipients: ClassVar[int] = 100
    max_status_ids: ClassVar[int] = 100
    max_segments: ClassVar[int | None] = None
    per_recipient_texts: ClassVar[bool] = True
    default_rate: ClassVar[float | None] = None
    reports: ClassVar[bool] = True
    validity: ClassVar[WireValidity | None] = LIFETIME

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.clock: Callable[[], float] = time.time
        self._token: tuple[str, float] | None = None
        self._token_lock = threading.Lock()

    def secrets(self) -> list[str]:
        """The password and the live token; the username is a login name, not a secret."""
        with self._token_lock:
            token = [self._token[0]] if self._token else []
        password = self.credential("password")
        return ([password] if password else []) + token

    # -- auth ----------------------------------------------------------------------

    def access_token(self) -> str:
        """The cached token, fetched anew when missing or about to expire."""
        with self._token_lock:
            if self._token is None or self.clock() >= self._token[1] - TOKEN_MARGIN:
                self._token = self._authenticate()
            return self._token[0]

    def _authenticate(self) -> tuple[str, float]:
        creds = {"username": self.credential("username"),
                 "password": self.credential("password")}
        code = parse_auth_code(self.call("POST", "/v1/authorize", creds, auth=False))
        token, expires = parse_token(self.call("POST", "/v1/accesstoken",
                                               {"authorization_code": code}, auth=False))
        return token, expires if expires > 0 else self.clock() + DEFAULT_TOKEN_LIFE

    def drop_token(self, token: str | None = None) -> None:
        """Forget the token (only if it is still `token`, so a fresh one survives)."""
        with self._token_lock:
            if self._token is not None and token in (None, self._token[0]):
                self._token = None

    def call(self, method: str, path: str, payload: Any = None, *, auth: bool = True,
             late: Callable[[], Any] | None = None) -> Any:
        """One API call -> its `data`; a 401 re-authenticates once and retries once.
        `late` makes the JSON body as the request leaves (after the throttle)."""
        extra: dict[str, Any] = {} if payload is None else {"json": payload}
        if late is not None:
            extra["late"] = lambda: {"json": late()}
        if not auth:
            return self._decode(self.request(method, path, **extra))
        token = self.access_token()
        resp = self.request(method, path, headers={"X-Access-Token": token}, **extra)
        if resp.status_code == 401:
            self.drop_token(token)
            token = self.access_token()
            resp = self.request(method, path, headers={"X-Access-Token": token}, **extra)
            if resp.status_code == 401:
                self.drop_token(token)
                raise ProviderAuthError("token refused twice", provider=NAME, http_status=401)
        return self._decode(resp)

    def _decode(self, resp: Any) -> Any:
        retry_after: float | None = None
        try:
            retry_after = float(resp.headers.get("Retry-After"))
        except (TypeError, ValueError):
            retry_after = None
        return decode(resp.status_code, resp.content, retry_after)

    # -- what the pipeline calls -----------------------------------------------------

    def send(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        """One POST /v1/send: an array with one object per (sender, text, deadline) group,
        each object's `lifetime` counted when the request leaves."""
        if not messages:
            return []
        keys: list[tuple[str, str, int | str | None]] = []
        for m in messages:
            if self._key(m) not in keys:
                keys.append(self._key(m))
        groups = [[m for m in messages if self._key(m) == key] for key in keys]
        objects = [[phones.digits(m.recipient) for m in group] for group in groups]
        options = messages[0].options

        def payload() -> list[dict[str, Any]]:
            now, given = self.clock(), options.get("lifetime")
            out = []
            for group, numbers, (sender, text, _) in zip(groups, objects, keys, strict=True):
                obj = self.message_object(numbers, sender, text, options)
                lifetime = LIFETIME.value(group, now, given)
                out.append(obj if lifetime is None else {**obj, "lifetime": lifetime})
            return out

        entries = parse_send(self.call("POST", "/v1/send", late=payload), objects)
        return [entry_result(m, _take(entries[keys.index(self._key(m))],
                                      phones.digits(m.recipient))) for m in messages]

    def _key(self, message: OutgoingMessage) -> tuple[str, str, int | str | None]:
        return self.sender_of(message), message.text, bucket(message, LIFETIME)

    def message_object(self, numbers: list[str], sender: str, text: str,
                       options: Mapping[str, Any]) -> dict[str, Any]:
        """One element of the send array; schedule fields only when the producer set them."""
        obj: dict[str, Any] = {"number": numbers, "senderID": sender, "text": text,
                               "type": "sms", "delivery": True}
        for key, wire in (("lifetime", "lifetime"), ("begin_date", "beginDate"),
                          ("begin_time", "beginTime")):
            if options.get(key) is not None:
                obj[wire] = str(options[key])
        return obj

    def sender_of(self, message: OutgoingMessage) -> str:
        return message.sender or str(self.account.options.get("sender") or "SMS")

    def status(self, queries: Sequence[StatusQuery]) -> list[StatusResult]:
        """sms-full-data filtered by the queries' phones, rows matched by id_state."""
        numbers = sorted({phones.digits(q.recipient) for q in queries})
        filters: dict[str, Any] = {} if "" in numbers else {"phone": numbers}
        found = merge(parse_rows(self.call("POST", "/v1/sms-full-data", filters)))
        return [found.get(q.provider_message_id)
                or StatusResult(q.provider_message_id, Status.UNKNOWN) for q in queries]

    def lookup(self, message: OutgoingMessage, sent_after: float) -> StatusResult | None:
        """Reconcile an unknown send: same phone and text, sent since `sent_after`."""
        period = f"{_fmt(sent_after - 1)} - {_fmt(self.clock() + 60)}"
        rows = self.call("POST", "/v1/sms-full-data", {
            "phone": [phones.digits(message.recipient)], "time_period": period})
        matches = parse_rows(rows, text=message.text)
        return max(matches, key=lambda r: int(r.provider_message_id), default=None)

    def balance(self) -> Balance:
        return parse_balance(self.account_info())

    @classmethod
    def parse_report(cls, body: bytes, content_type: str) -> ParsedReport:
        """A pushed DLR array; Gatum wants the id_state strings back as a JSON array."""
        results, ack = parse_dlr(body)
        return results, ReportReply("application/json", json.dumps(ack).encode())


def _take(entries: deque[dict[str, Any]], number: str) -> dict[str, Any] | None:
    """The first unused reply entry for `number` (duplicates are answered in order)."""
    for entry in entries:
        if str(entry.get("number", "")).lstrip("+") == number:
            entries.remove(entry)
            return entry
    return None


def _fmt(ts: float) -> str:
    return datetime.fromtimestamp(max(0.0, ts), UTC).strftime(TIME_FORMAT)
