"""SMS Club simulator: POST-only JSON API, Bearer token, 9 requests per second per token.

Speaks the documented bodies (`success_request` with `info` / `add_info`) and
Yii-style error bodies ({"name", "message", "code", "status"}) for 401/404/405/429.
Why the rate limit is a sliding window of admitted requests: the seed says "no
more than 9 requests per second"; refused requests are not counted, so a client
that backs off for one second always gets through again.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from providers.sandbox.core import GatewaySimulator, SimRequest, SimResponse

RATE_LIMIT = 9  # requests
RATE_WINDOW = 1.0  # seconds
MAX_ITEMS = 100  # phones per send, ids per status query
MAX_SRC_ADDR = 11

BLACKLISTED = "Данный номер находится в черном списке"
BAD_PHONE = "Некорректный номер телефона"
BAD_SRC_ADDR = "Некорректное Альфа Имя"
NOT_FOUND = "Сообщение не найдено"

STATUS_CODES = {"queued": "ENROUTE", "sent": "ENROUTE", "delivered": "DELIVRD",
                "undelivered": "UNDELIV", "expired": "EXPIRED", "rejected": "REJECTD"}
ORIGINATORS = ["smsq", "SmsClub"]
BALANCE = {"money": "8111.1700", "currency": "UAH"}


def yii_error(status: int, name: str, message: str) -> SimResponse:
    """The framework-style error body SMS Club's clients read `message` from."""
    return SimResponse.json({"name": name, "message": message, "code": 0, "status": status},
                            status=status)


def refused(add_info: dict[str, str], status: int = 400) -> SimResponse:
    return SimResponse.json({"success_request": {"add_info": add_info}}, status=status)


class SmsClubSim(GatewaySimulator):
    """im.smsclub.mobi's `/sms/*` JSON endpoints."""

    name = "smsclub"
    hosts = ("smsclub",)
    credentials = {"token": "sandbox-smsclub-token"}  # noqa: RUF012 - base declares it plain
    base_path = ""
    send_path = "/sms/send"
    number_prefix = "+38097"  # a Ukrainian gateway

    def handle(self, req: SimRequest) -> SimResponse:
        if req.method != "POST":
            resp = yii_error(405, "Method Not Allowed", "Method Not Allowed. This URL can "
                             "only handle the following request methods: POST.")
            resp.headers["Allow"] = "POST"
            return resp
        token = self._bearer(req)
        if token != self.credentials["token"]:
            return yii_error(401, "Unauthorized",
                             "Your request was made with invalid credentials.")
        if not self.admit(token):
            return self.throttle_response(req)
        route = {"/sms/send": self._send, "/sms/status": self._status,
                 "/sms/originator": self._originator, "/sms/balance": self._balance}
        handler = route.get(req.path.rstrip("/"))
        if handler is None:
            return yii_error(404, "Not Found", "Page not found.")
        return handler(req)

    def throttle_response(self, req: SimRequest) -> SimResponse:
        resp = yii_error(429, "Too Many Requests", "Rate limit exceeded.")
        resp.headers.update({"Retry-After": "1", "X-Rate-Limit-Limit": str(RATE_LIMIT),
                             "X-Rate-Limit-Remaining": "0"})
        return resp

    def admit(self, token: str) -> bool:
        """At most RATE_LIMIT admitted requests in any window (now - 1 s, now]."""
        with self.state.lock:
            windows = self.state.extra.setdefault(self.name, {}).setdefault("windows", {})
            window: deque[float] = windows.setdefault(token, deque())
            now = self.state.clock()
            while window and window[0] <= now - RATE_WINDOW:
                window.popleft()
            if len(window) >= RATE_LIMIT:
                return False
            window.append(now)
            return True

    @staticmethod
    def _bearer(req: SimRequest) -> str:
        scheme, _, token = req.header("authorization").partition(" ")
        return token.strip() if scheme.lower() == "bearer" else ""

    # -- endpoints ---------------------------------------------------------------------

    def _send(self, req: SimRequest) -> SimResponse:
        data = req.json()
        data = data if isinstance(data, dict) else {}
        errors = _send_errors(data)
        if errors:
            return refused(errors)
        info: dict[str, str] = {}
        add_info: dict[str, str] = {}
        for raw in data["phone"]:
            phone = _phone_text(raw)
            problem = _phone_problem(phone)
            if problem is not None:
                add_info[phone or str(raw)] = problem
                continue
            msg_id = str(self.state.next_id(self.name, start=100))
            self.state.accept(self.name, req.host, msg_id, phone, data["message"],
                              data["src_addr"], integration_id=data.get("integration_id"))
            info[msg_id] = phone
        body: dict[str, Any] = {}
        if info:
            body["info"] = info
        if add_info:
            body["add_info"] = add_info
        return SimResponse.json({"success_request": body})

    def _status(self, req: SimRequest) -> SimResponse:
        data = req.json()
        ids = data.get("id_sms") if isinstance(data, dict) else None
        if not isinstance(ids, list) or not ids:
            return refused({"id_sms": "Необходимо заполнить «Id Sms»."})
        if len(ids) > MAX_ITEMS:
            return refused({"id_sms": f"Не более {MAX_ITEMS} идентификаторов за запрос"})
        info: dict[str, str] = {}
        add_info: dict[str, str] = {}
        for raw in ids:
            key = str(raw).strip()
            msg = self.state.find(self.name, key) if _id_like(raw) else None
            if msg is None:
                add_info[key] = NOT_FOUND
            else:
                info[key] = STATUS_CODES.get(self.state.stage(msg), "ENROUTE")
        body: dict[str, Any] = {"info": info} if info else {}
        if add_info:
            body["add_info"] = add_info
        return SimResponse.json({"success_request": body})

    def _originator(self, req: SimRequest) -> SimResponse:
        return SimResponse.json({"success_request": {"info": list(ORIGINATORS)}})

    def _balance(self, req: SimRequest) -> SimResponse:
        return SimResponse.json({"success_request": {"info": dict(BALANCE)}})


def _send_errors(data: dict[str, Any]) -> dict[str, str]:
    """Request-level validation, every field at once (as the real API reports them)."""
    errors: dict[str, str] = {}
    phones = data.get("phone")
    if not isinstance(phones, list) or not phones:
        errors["phone"] = "Необходимо заполнить «Phone»."
    elif len(phones) > MAX_ITEMS:
        errors["phone"] = f"Не более {MAX_ITEMS} номеров за запрос"
    src_addr = data.get("src_addr")
    if not isinstance(src_addr, str) or not 0 < len(src_addr) <= MAX_SRC_ADDR:
        errors["src_addr"] = BAD_SRC_ADDR
    message = data.get("message")
    if not isinstance(message, str) or not message:
        errors["message"] = "Необходимо заполнить «Message»."
    return errors


def _phone_text(raw: object) -> str:
    """Phones arrive as strings or ints; anything else is no phone at all."""
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        return ""
    return str(raw).strip()


def _phone_problem(phone: str) -> str | None:
    """Sandbox rule: 10-15 ASCII digits, and numbers ending in 0000 are blacklisted."""
    if not (phone.isascii() and phone.isdigit() and 10 <= len(phone) <= 15):
        return BAD_PHONE
    if phone.endswith("0000"):
        return BLACKLISTED
    return None


def _id_like(raw: object) -> bool:
    return isinstance(raw, str | int) and not isinstance(raw, bool)
