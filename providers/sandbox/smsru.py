"""sms.ru simulator: GET or POST, `api_id`, JSON with `json=1`, plain text lines otherwise.

Decisions where sms.ru's documentation is silent (see providers.md §1.9):
more than 100 recipients is a request-level 213; a recipient repeated in one
request is accepted once (the reply keys by number, so it cannot say more);
the throttle reply is the account's daily-limit error 206 (sms.ru documents no
request-rate limit); a call check is confirmed ("401") once the clock passes
5 s after `callcheck/add`, except for numbers ending in 0000, which never call
and expire ("402") after 300 s. A `ttl` outside 1..1440 minutes is a request-level
208 (sms.ru documents no code for it; 208 is its code for a bad `time`); a message
whose `ttl` runs out before its delivery would end is 104 (время жизни истекло).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from providers import segments
from providers.sandbox.core import GatewaySimulator, SimRequest, SimResponse
from providers.sandbox.lifetimes import smsru_ttl
from providers.sandbox.smsru_account import AccountRoutes
from providers.sandbox.smsru_wire import (
    API_ID,
    KEYED,
    MAX_RECIPIENTS,
    MAX_SEGMENTS,
    PRICE,
    STAGE_CODES,
    TEXTS,
    Body,
    Refusal,
    error_body,
    national,
    normalize,
    ok,
    plain,
)
from providers.sandbox.timeline import SimMessage

__all__ = ["API_ID", "SmsRuSim", "normalize"]


class SmsRuSim(AccountRoutes, GatewaySimulator):
    """sms.ru's HTTP API over the shared sandbox state (account endpoints: AccountRoutes)."""

    name = "smsru"
    hosts = ("smsru",)
    credentials = {"api_id": API_ID}  # noqa: RUF012 - fixed sandbox credentials
    base_path = ""
    send_path = "/sms/send"

    def data(self) -> dict[str, Any]:
        with self.state.lock:
            return self.state.extra.setdefault(self.name, {  # type: ignore[no-any-return]
                "balance": Decimal("1000000.00"), "stoplist": {}, "checks": {},
                "senders": ["smsq", "SMS.RU"], "total_limit": 5000, "total_free": 5,
            })

    def handle(self, req: SimRequest) -> SimResponse:
        params = req.params()
        route = ROUTES.get(req.path.rstrip("/"))
        if params.get("api_id") != API_ID:
            body = error_body(200)
        elif route is None:
            body = error_body(211)
        else:
            try:
                body = route(self, req, params)
            except Refusal as refusal:
                body = error_body(refusal.code)
        return reply(body, params)

    def throttle_response(self, req: SimRequest) -> SimResponse:
        return reply(error_body(206), req.params())

    # -- sms ---------------------------------------------------------------------

    def recipients(self, req: SimRequest, params: dict[str, str]) -> list[tuple[str, str]]:
        """(raw number, text) pairs from `to[..]`/`multi[..]`, or `to` with `msg`/`text`."""
        keyed = [(m.group(1), v) for k, v in req.items() if (m := KEYED.fullmatch(k))]
        if keyed:
            return keyed
        text = params.get("msg", params.get("text", ""))
        numbers = [n.strip() for n in params.get("to", "").split(",") if n.strip()]
        if numbers and not text.strip():
            raise Refusal(203)
        if numbers and segments.count(text).segments > MAX_SEGMENTS:
            raise Refusal(205)
        return [(n, text) for n in numbers]

    def checked(self, req: SimRequest, params: dict[str, str]) -> list[tuple[str, str]]:
        """Request-level checks shared by send and cost."""
        pairs = self.recipients(req, params)
        if not pairs:
            raise Refusal(202)
        if len(pairs) > MAX_RECIPIENTS:
            raise Refusal(213)
        sender = params.get("from")
        if sender and sender not in self.data()["senders"]:
            raise Refusal(204)
        if params.get("time") and not params["time"].strip().isdigit():
            raise Refusal(208)
        try:
            smsru_ttl(params.get("ttl"))
        except ValueError:
            raise Refusal(208) from None
        return pairs

    def refusal(self, phone: str | None, text: str) -> int | None:
        """A recipient's own error code, or None when it can be sent."""
        if phone is None:
            return 202
        if phone.endswith("0000"):
            return 207
        if national(phone) in self.data()["stoplist"]:
            return 209
        if not text.strip():
            return 203
        return 205 if segments.count(text).segments > MAX_SEGMENTS else None

    def send(self, req: SimRequest, params: dict[str, str]) -> Body:
        test = params.get("test") == "1"
        plan: dict[str, tuple[int | None, str]] = {}
        for raw, text in self.checked(req, params):
            phone = normalize(raw)
            plan.setdefault(phone or raw, (self.refusal(phone, text), text))
        parts = {k: segments.count(t).segments for k, (c, t) in plan.items() if c is None}
        cost = Decimal(0) if test else PRICE * sum(parts.values())
        with self.state.lock:
            if cost > self.data()["balance"]:
                raise Refusal(201)
            self.data()["balance"] -= cost
        sms = {key: error_body(code) if code is not None
               else self.accept(req, key, text, params, test) for key, (code, text) in plan.items()}
        return ok(sms=sms, balance=float(self.data()["balance"]))

    def accept(self, req: SimRequest, phone: str, text: str, params: dict[str, str],
               test: bool) -> Body:
        sms_id = f"000000-{self.state.next_id(self.name, start=10000001)}"
        meta = {k: params[k] for k in ("ip", "time", "ttl", "daytime", "translit", "partner_id")
                if k in params}
        self.state.accept(self.name, req.host, sms_id, phone, text, params.get("from") or None,
                          test=test, valid_for=smsru_ttl(params.get("ttl")), **meta)
        return {"status": "OK", "status_code": 100, "sms_id": sms_id}

    def cost(self, req: SimRequest, params: dict[str, str]) -> Body:
        sms: Body = {}
        for raw, text in self.checked(req, params):
            phone = normalize(raw)
            code, parts = self.refusal(phone, text), segments.count(text).segments
            sms[phone or raw] = error_body(code) if code is not None else ok(
                cost=float(PRICE * parts), sms=parts)
        good = [v for v in sms.values() if v["status"] == "OK"]
        return ok(sms=sms, total_cost=float(sum(Decimal(str(v["cost"])) for v in good)),
                  total_sms=sum(v["sms"] for v in good))

    def status(self, req: SimRequest, params: dict[str, str]) -> Body:
        ids = [i.strip() for i in params.get("sms_id", "").split(",") if i.strip()]
        return ok(sms={i: self.status_item(i) for i in ids[:MAX_RECIPIENTS]},
                  balance=float(self.data()["balance"]))

    def status_item(self, sms_id: str) -> Body:
        msg = self.state.find(self.name, sms_id)
        if msg is None:
            return error_body(-1)
        code = self.code_of(msg)
        changed = msg.time if code == 100 else self.state.changed_at(msg)
        price = 0 if msg.meta.get("test") else PRICE * segments.count(msg.text).segments
        return {"status": "OK", "status_code": code, "status_text": TEXTS.get(code, ""),
                "cost": float(price), "send_time": int(msg.time), "status_time": int(changed)}

    def wire_validity(self, req: SimRequest) -> str | None:
        return req.params().get("ttl") if req.path.rstrip("/") == self.send_path else None

    def code_of(self, msg: SimMessage) -> int:
        """Test messages never leave the queue; others follow the shared timeline."""
        return 100 if msg.meta.get("test") else STAGE_CODES.get(self.state.stage(msg), 107)

    # -- delivery reports --------------------------------------------------------

    def report_request(self, msgs: list[SimMessage]) -> tuple[str, bytes]:
        """Form POST of data[0..n] ("sms_status\\n<id>\\n<code>\\n<ts>") and their hash."""
        now = int(self.state.clock())
        items = [f"sms_status\n{m.id}\n{self.code_of(m)}\n{now}" for m in msgs]
        digest = hashlib.sha256((API_ID + "".join(items)).encode()).hexdigest()
        fields = [(f"data[{i}]", item) for i, item in enumerate(items)] + [("hash", digest)]
        return "application/x-www-form-urlencoded", urlencode(fields).encode()

    def report_acked(self, status: int, body: bytes, msgs: list[SimMessage]) -> bool:
        return status == 200 and body.strip() == b"100"


def reply(body: Body, params: dict[str, str]) -> SimResponse:
    """HTTP 200 always; JSON with json=1, else the plain line format."""
    if params.get("json") == "1":
        return SimResponse.json(body)
    return SimResponse.text(plain(body))


Route = Callable[[SmsRuSim, SimRequest, dict[str, str]], Body]
ROUTES: dict[str, Route] = {
    "/sms/send": SmsRuSim.send, "/sms/cost": SmsRuSim.cost, "/sms/status": SmsRuSim.status,
    "/my/balance": SmsRuSim.my, "/my/limit": SmsRuSim.my, "/my/free": SmsRuSim.my,
    "/my/senders": SmsRuSim.my, "/stoplist/add": SmsRuSim.stoplist,
    "/stoplist/del": SmsRuSim.stoplist, "/stoplist/get": SmsRuSim.stoplist,
    "/callback/add": SmsRuSim.callback, "/callback/del": SmsRuSim.callback,
    "/callback/get": SmsRuSim.callback, "/callcheck/add": SmsRuSim.callcheck,
    "/callcheck/status": SmsRuSim.callcheck, "/auth/check": SmsRuSim.auth,
}
