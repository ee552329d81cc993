"""SMSC simulator: /sys/{send,status,balance}.php on the main host and mirrors www2..www5.

All five hosts share one state, as the real mirrors front one account. Speaks
fmt=3 (JSON) fully and fmt=0/1 (plain text, what the seed library reads) for the
common answers; always HTTP 200, errors in the body. One deviation, on purpose:
replies are labelled `application/json; charset=utf-8`, where the real gateway
labels them windows-1251 even for charset=utf-8 requests (the provider ignores
the label and decodes UTF-8 first, so it copes with both).

`valid` out of form or range is error 1; a message whose `valid` runs out before
its delivery would end is status 3 (Просрочено), see sandbox.lifetimes/timeline.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from providers.sandbox.core import GatewaySimulator, SimRequest, SimResponse
from providers.sandbox.lifetimes import smsc_valid
from providers.sandbox.timeline import SimMessage
from providers.segments import count as count_segments

GATEWAY = "smsc"
PRICE = Decimal("2.50")  # per SMS part
START_BALANCE = Decimal("10000.00")
DUPLICATE_WINDOW = 60.0  # seconds: identical send -> error 9
COST_REQUESTS_PER_WINDOW = 5  # identical cost=1 requests allowed per window
MSK = timezone(timedelta(hours=3))

ERROR_TEXTS = {
    1: "parameters error", 2: "authorise error", 3: "no money",
    4: "IP address is temporarily blocked", 5: "wrong date format",
    6: "message is denied", 7: "invalid number", 8: "can't to deliver",
    9: "duplicate request, wait a minute",
}
# sandbox stage -> (status, err)
STAGE_CODES = {
    "queued": (-1, 0), "sent": (0, 0), "delivered": (1, 0), "undelivered": (20, 6),
    "expired": (3, 0), "rejected": (23, 255), "failed": (24, 0),
}

Order = tuple[str, str]  # (phone as sent, text)


def error_reply(fmt: str, code: int, msg_id: str | None = None) -> SimResponse:
    """SMSC's error body in the requested format, always HTTP 200."""
    text = ERROR_TEXTS.get(code, "unknown error")
    if fmt == "3":
        body: dict[str, Any] = {"error": text, "error_code": code}
        if msg_id:
            body["id"] = wire_id(msg_id)
        return SimResponse.json(body)
    if fmt == "1":
        return SimResponse.text(f"{msg_id or 0},-{code}")
    if fmt == "2":
        return SimResponse(200, f"<result><error>{text}</error><error_code>{code}"
                           f"</error_code></result>".encode(), "text/xml; charset=utf-8")
    return SimResponse.text(f"ERROR = {code} ({text})" + (f", ID - {msg_id}" if msg_id else ""))


def wire_id(msg_id: str) -> int | str:
    return int(msg_id) if msg_id.isdigit() else msg_id


def good_phone(phone: str) -> bool:
    """The sandbox convention: digits ending in 0000 are refused as invalid numbers."""
    return phone.isdigit() and 10 <= len(phone) <= 15 and not phone.endswith("0000")


def parse_orders(params: dict[str, str]) -> list[Order] | None:
    """(phone, text) pairs from phones+mes or from list= lines; None when neither."""
    if params.get("list"):
        orders = []
        for line in params["list"].replace("\r\n", "\n").split("\n"):
            head, sep, text = line.partition(":")
            if not sep:
                return None
            text = text.replace("\\n", "\n")
            orders += [(p, text) for p in split_phones(head)]
        return orders or None
    phones = split_phones(params.get("phones", ""))
    if not phones or "mes" not in params:
        return None
    return [(p, params["mes"]) for p in phones]


def split_phones(raw: str) -> list[str]:
    return [p.strip().lstrip("+") for p in raw.replace(";", ",").split(",") if p.strip()]


def moscow(ts: float) -> str:
    return datetime.fromtimestamp(ts, MSK).strftime("%d.%m.%Y %H:%M:%S")


class SmscSim(GatewaySimulator):
    """smscentre.com's HTTP API (fmt 0/1/3) plus status callbacks to registered URLs."""

    name = GATEWAY
    hosts = ("smsc", "smsc-www2", "smsc-www3", "smsc-www4", "smsc-www5")
    credentials = {  # noqa: RUF012 - base declares it plain
        "login": "sandbox", "password": "sandbox-smsc-pass", "apikey": "sandbox-smsc-apikey",
    }
    base_path = "/sys"
    send_path = "/send.php"
    report_batch = 1  # SMSC posts one callback per message

    def handle(self, req: SimRequest) -> SimResponse:
        params = req.params()
        fmt = params.get("fmt", "0")
        routes: dict[str, Callable[[SimRequest, dict[str, str], str], SimResponse]] = {
            "/sys/send.php": self._send, "/sys/status.php": self._status,
            "/sys/balance.php": self._balance,
        }
        route = routes.get(req.path)
        if route is None:
            return SimResponse.text("Not Found", 404)
        if not self.authorised(params.get("login", ""), params.get("psw", ""),
                               params.get("apikey", "")):
            return error_reply(fmt, 2)
        return route(req, params, fmt)

    def throttle_response(self, req: SimRequest) -> SimResponse:
        return error_reply(req.params().get("fmt", "0"), 4)

    # -- shared with the SMTP front ------------------------------------------------

    def authorised(self, login: str, psw: str, apikey: str) -> bool:
        password = self.credentials["password"]
        if login:
            return login == self.credentials["login"] and psw in (
                password, hashlib.md5(password.encode()).hexdigest())  # noqa: S324 - SMSC's md5
        return bool(apikey) and apikey == self.credentials["apikey"]

    def store(self) -> dict[str, Any]:
        with self.state.lock:
            return self.state.extra.setdefault(GATEWAY, {  # type: ignore[no-any-return]
                "index": {}, "seen": {}, "balance": START_BALANCE})

    def record(self, host: str, msg_id: str, orders: list[Order], sender: str | None,
               client_ref: str | None, **meta: Any) -> list[SimMessage]:
        """Accept every order under one SMSC id; index them by (id, phone)."""
        accepted = []
        for phone, text in orders:
            msg = self.state.accept(GATEWAY, host, msg_id, phone, text, sender,
                                    client_ref=client_ref, **meta)
            with self.state.lock:
                self.store()["index"][(msg_id, phone)] = msg
            accepted.append(msg)
        return accepted

    def seen_recently(self, key: tuple[Any, ...], limit: int = 1) -> bool:
        """True when `key` arrived `limit` times within the duplicate window already."""
        now = self.state.clock()
        with self.state.lock:
            seen = self.store()["seen"]
            times = [t for t in seen.get(key, []) if now - t < DUPLICATE_WINDOW]
            seen[key] = [*times, now]
            return len(times) >= limit

    # -- send.php ------------------------------------------------------------------

    def _send(self, req: SimRequest, p: dict[str, str], fmt: str) -> SimResponse:
        orders = parse_orders(p)
        if orders is None:
            return error_reply(fmt, 1)
        account = p.get("login") or p.get("apikey")
        key = (account, p.get("phones"), p.get("mes"), p.get("list"), p.get("sender"))
        if p.get("cost") == "1":
            if self.seen_recently(("cost", *key), COST_REQUESTS_PER_WINDOW):
                return error_reply(fmt, 9)
            return self._quote(orders, p, fmt)
        try:
            valid_for = smsc_valid(p.get("valid"))
        except ValueError:
            return error_reply(fmt, 1)
        if self.seen_recently(key):
            return error_reply(fmt, 9)
        cid = p.get("id", "").strip()
        msg_id = cid if cid.strip("0") else str(self.state.next_id(GATEWAY, 1))
        good = [(ph, text) for ph, text in orders if good_phone(ph)]
        if not good:
            return error_reply(fmt, 7, msg_id)
        parts = sum(count_segments(text).segments for _, text in good)
        with self.state.lock:
            if self.store()["balance"] < parts * PRICE:
                return error_reply(fmt, 3, msg_id)
            self.store()["balance"] -= parts * PRICE
            balance = self.store()["balance"]
        self.record(req.host, msg_id, good, p.get("sender"), cid or None, valid_for=valid_for,
                    **{k: p[k] for k in ("flash", "translit", "time", "valid") if k in p})
        return self._sent_reply(fmt, msg_id, parts, p, orders, balance)

    def _sent_reply(self, fmt: str, msg_id: str, parts: int, p: dict[str, str],
                    orders: list[Order], balance: Decimal) -> SimResponse:
        cost = parts * PRICE
        if fmt == "1":
            return SimResponse.text(f"{msg_id},{parts},{cost},{balance}")
        if fmt != "3":
            return SimResponse.text(f"OK - {parts} SMS, ID - {msg_id}")
        body: dict[str, Any] = {"id": wire_id(msg_id), "cnt": parts}
        if p.get("cost") in ("2", "3"):
            body["cost"] = str(cost)
        if p.get("cost") == "3":
            body["balance"] = str(balance)
        if p.get("op") == "1":
            body["phones"] = [self._phone_row(ph, text) for ph, text in orders]
        return SimResponse.json(body)

    def _phone_row(self, phone: str, text: str) -> dict[str, Any]:
        if not good_phone(phone):
            return {"phone": phone, "mccmnc": "0", "cost": "0", "status": 22, "error": 7}
        cost = count_segments(text).segments * PRICE
        return {"phone": phone, "mccmnc": "25001", "cost": str(cost), "status": -1,
                "error": 0}

    def _quote(self, orders: list[Order], p: dict[str, str], fmt: str) -> SimResponse:
        good = [(ph, text) for ph, text in orders if good_phone(ph)]
        if not good:
            return error_reply(fmt, 7)
        parts = sum(count_segments(text).segments for _, text in good)
        if fmt == "1":
            return SimResponse.text(f"{parts * PRICE},{parts}")
        body: dict[str, Any] = {"cost": str(parts * PRICE), "cnt": parts}
        if p.get("op") == "1":
            body["phones"] = [self._phone_row(ph, text) for ph, text in orders]
        return SimResponse.json(body)

    # -- status.php / balance.php ---------------------------------------------------

    def _status(self, req: SimRequest, p: dict[str, str], fmt: str) -> SimResponse:
        raw_ids, raw_phones = p.get("id", ""), p.get("phone", "")
        multi = "," in raw_ids or "," in raw_phones
        ids = [i.strip() for i in raw_ids.rstrip(",").split(",")]
        phones = [ph.strip().lstrip("+") for ph in raw_phones.rstrip(",").split(",")]
        if len(ids) != len(phones) or not all(ids) or not all(phones):
            return error_reply(fmt, 1)
        rows = [self._status_row(i, ph) for i, ph in zip(ids, phones, strict=True)]
        if fmt == "1":
            return SimResponse.text("\n".join(
                f"{r['status']},{r.get('last_timestamp', 0)},{r.get('err', 0)}" for r in rows))
        if fmt != "3":
            return SimResponse.text("\n".join(
                f"Status = {r['status']}, check_time = {r.get('last_date', '')}" for r in rows))
        if multi:
            return SimResponse.json([{**r, "id": wire_id(i), "phone": ph}
                                     for r, i, ph in zip(rows, ids, phones, strict=True)])
        return SimResponse.json(rows[0])

    def _status_row(self, msg_id: str, phone: str) -> dict[str, Any]:
        with self.state.lock:
            msg = self.store()["index"].get((msg_id, phone))
        if msg is None:
            return {"status": -3}
        stage = self.state.stage(msg)
        code, err = STAGE_CODES.get(stage, (0, 0))
        changed = self.state.changed_at(msg, stage)
        row: dict[str, Any] = {"status": code, "last_date": moscow(changed),
                               "last_timestamp": int(changed)}
        if err:
            row["err"] = err
        return row

    def wire_validity(self, req: SimRequest) -> Any:
        return req.params().get("valid") if req.path.endswith("/send.php") else None

    def _balance(self, req: SimRequest, p: dict[str, str], fmt: str) -> SimResponse:
        with self.state.lock:
            balance = str(self.store()["balance"])
        if fmt != "3":
            return SimResponse.text(balance)
        body = {"balance": balance}
        if p.get("cur") == "1":
            body["currency"] = "RUB"
        return SimResponse.json(body)

    # -- status callbacks -----------------------------------------------------------

    def report_request(self, msgs: list[SimMessage]) -> tuple[str, bytes]:
        """One form POST per message: id, phone, status, err, time (unix)."""
        msg = msgs[0]
        stage = self.state.stage(msg)
        code, err = STAGE_CODES.get(stage, (0, 0))
        form = {"id": msg.id, "phone": msg.phone, "status": str(code), "err": str(err),
                "time": str(int(self.state.changed_at(msg, stage)))}
        return "application/x-www-form-urlencoded", urlencode(form).encode()
