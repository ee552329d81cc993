"""1000sms.ru simulator: `/?method=...` over GET or POST, JSON or (default) XML replies.

Sandbox decisions where the documentation is silent (providers.md §5):
- Errors answer HTTP 200 with `msg.type = "error"` and `data: null`; `err_code`
  is always rendered as a string, as both known clients read it.
- The real XML layout is unknown; without `format=JSON` (any case) the same
  envelope is rendered as plain nested elements under `<response>`.
- Unknown or missing `method`, and missing required arguments, answer 7.
- `phone` must be 11 digits (617); digits ending in "0000" are black-listed (618).
- Sender names: non-latin letters 620, other characters than latin letters,
  digits, space, "-", "." and "_" 607, longer than 11 608, shorter than 4 or
  more than two digits 621. A missing sender uses the profile's default.
- Report `state`: queued -> 4; sent -> 8 for the first half of the sent
  stage, then 0; delivered 1, undelivered 2, expired 34, rejected 16.
  `data.id` of a report is the profile's user id, as the seed documents it.
- Each part costs `PRICE`, taken from the profile balance; an empty balance
  answers 623. The throttle reply is an HTTP 429 (nothing documented).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from xml.sax.saxutils import escape

from providers import segments
from providers.sandbox.core import GatewaySimulator, SimRequest, SimResponse
from providers.sandbox.timeline import SimMessage

NAME = "sms1000"
PRICE = Decimal("1.75")
START_BALANCE = Decimal("1000000.00")  # enough for benchmarks and the demo
USER_ID = "4242"
DEFAULT_SENDER = "sandbox"
MOSCOW = timezone(timedelta(hours=3))
SENDER_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -._")

# outcome stage -> (state, state_text)
STATES = {
    "queued": ("4", "В очереди на SMSC"),
    "smsc": ("8", "Доставлено в SMSC"),
    "sent": ("0", "Отправлено"),
    "delivered": ("1", "Доставлено"),
    "undelivered": ("2", "Не доставлено"),
    "expired": ("34", "Не доставлено (просрочено)"),
    "rejected": ("16", "Не доставлено в SMSC"),
}
TEXTS = {
    0: "Выполнено успешно.", 1: "Не корректный id SMS.",
    2: "Неверный логин и(или) пароль.", 7: "Заданы не все необходимые параметры.",
    602: "SMS не существует.", 607: "Имя отправителя недопустимо.",
    608: "Не допустимая длина имени отправителя.", 617: "Неверный формат номера получателя SMS.",
    618: "Номер Абонента в Черном списке.", 620: "Имя отправителя должно быть на латинице.",
    621: "В имени отправителя более 2-цифр или общая длина менее 4-х символов.",
    623: "Не достаточно средств. Пополните баланс.",
}


class Sms1000Sim(GatewaySimulator):
    """Speaks 1000sms.ru's `method=` API; one phone per push_msg, one id per report."""

    name = NAME
    hosts = ("sms1000",)
    credentials = {  # noqa: RUF012 - the base class declares it a plain attribute
        "email": "sandbox@example.com", "password": "sandbox-sms1000-pass"}
    base_path = ""
    send_path = "/"  # every method shares the root path

    # -- per-simulator state -------------------------------------------------------

    def extra(self) -> dict[str, Any]:
        """{"balance": Decimal, "used": Decimal, "calls": [params, ...]} (call under lock)."""
        extra: dict[str, Any] = self.state.extra.setdefault(
            NAME, {"balance": START_BALANCE, "used": Decimal(0), "calls": []})
        return extra

    def set_balance(self, amount: Decimal) -> None:
        with self.state.lock:
            self.extra()["balance"] = amount

    def calls(self) -> list[dict[str, Any]]:
        """Every request as received: HTTP method, query and form (tests read wire details)."""
        with self.state.lock:
            return list(self.extra()["calls"])

    # -- dispatch ----------------------------------------------------------------

    def handle(self, req: SimRequest) -> SimResponse:
        params = req.params()
        with self.state.lock:
            self.extra()["calls"].append(
                {"http": req.method, "query": dict(req.query), "form": dict(req.form)})
        code, data = self.dispatch(req, params)
        return render(code, data, params.get("format", ""))

    def dispatch(self, req: SimRequest, params: dict[str, str]) -> tuple[int, Any]:
        method = params.get("method", "")
        if method not in ("push_msg", "get_msg_report", "get_profile"):
            return 7, None
        if not params.get("email") or not params.get("password"):
            return 7, None
        if (params["email"], params["password"]) != (
                self.credentials["email"], self.credentials["password"]):
            return 2, None
        if method == "push_msg":
            return self.push_msg(req, params)
        if method == "get_msg_report":
            return self.get_msg_report(params)
        return 0, self.profile()

    def throttle_response(self, req: SimRequest) -> SimResponse:
        return SimResponse.text("Too Many Requests", status=429)

    # -- methods -----------------------------------------------------------------

    def push_msg(self, req: SimRequest, params: dict[str, str]) -> tuple[int, Any]:
        phone, text = params.get("phone", ""), params.get("text", "")
        if not phone or not text:
            return 7, None
        sender = params.get("sender_name") or DEFAULT_SENDER
        refusal = phone_error(phone) or sender_error(sender)
        if refusal:
            return refusal, None
        parts = segments.count(text).segments
        with self.state.lock:
            extra = self.extra()
            if extra["balance"] < PRICE * parts:
                return 623, None
            extra["balance"] -= PRICE * parts
            extra["used"] += PRICE * parts
            msg_id = self.state.next_id(NAME, start=3_000_000)
        self.state.accept(NAME, req.host, str(msg_id), phone, text, sender,
                          credits=str(PRICE), parts=parts)
        return 0, {"id": msg_id, "credits": str(PRICE), "n_raw_sms": parts,
                   "sender_name": sender}

    def get_msg_report(self, params: dict[str, str]) -> tuple[int, Any]:
        raw = params.get("id", "")
        if not raw:
            return 7, None
        if not raw.isascii() or not raw.isdigit():
            return 1, None
        msg = self.state.find(NAME, raw)
        if msg is None:
            return 602, None
        return 0, self.report(msg)

    def report(self, msg: SimMessage) -> dict[str, str]:
        stage = self.stage_of(msg)
        state, state_text = STATES.get(stage, ("0", "Отправлено"))
        final = stage not in ("queued", "smsc", "sent")
        return {
            "id": USER_ID, "sender_name": msg.sender or DEFAULT_SENDER, "text": msg.text,
            "phone": msg.phone, "type": "1", "n_raw_sms": str(msg.meta.get("parts", 1)),
            "start_time": moscow(msg.time),
            "last_update": moscow(msg.time + self.state.final_after) if final else "",
            "dlr_mask": "", "dlr_url": "", "sms_validity": "", "smpp_msgdata": "",
            "state": state, "credits": str(msg.meta.get("credits", PRICE)),
            "state_text": state_text,
        }

    def stage_of(self, msg: SimMessage) -> str:
        """The framework's stage, with "sent" split into 8 (at the SMSC) then 0 (sent)."""
        stage = self.state.stage(msg)
        if stage != "sent":
            return stage
        halfway = (self.state.queued_for + self.state.final_after) / 2
        return "smsc" if self.state.clock() - msg.time < halfway else "sent"

    def profile(self) -> dict[str, str]:
        with self.state.lock:
            extra = self.extra()
            balance, used = extra["balance"], extra["used"]
        return {
            "id": USER_ID, "email": self.credentials["email"], "first_name": "Sandbox",
            "last_name": "User", "credits": f"{balance:.2f}", "credits_used": f"{used:.2f}",
            "credits_name": "руб.", "currency": "руб.", "sender_name": DEFAULT_SENDER,
            "referral_id": "0",
        }


def phone_error(phone: str) -> int:
    """617 for anything but 11 digits, 618 (black list) for the sandbox's refused numbers."""
    if len(phone) != 11 or not phone.isascii() or not phone.isdigit():
        return 617
    return 618 if phone.endswith("0000") else 0


def sender_error(sender: str) -> int:
    """The sender-name rules of the error table, in the order a human would check them."""
    if any(ch.isalpha() and not ch.isascii() for ch in sender):
        return 620
    if any(ch not in SENDER_CHARS for ch in sender):
        return 607
    if len(sender) > 11:
        return 608
    if len(sender) < 4 or sum(ch.isdigit() for ch in sender) > 2:
        return 621
    return 0


def moscow(ts: float) -> str:
    return datetime.fromtimestamp(ts, MOSCOW).strftime("%Y-%m-%d %H:%M:%S")


def envelope(code: int, data: Any) -> dict[str, Any]:
    text = TEXTS.get(code, "Ошибка.")
    return {"response": {"msg": {"err_code": str(code), "text": text,
                                 "type": "message" if code == 0 else "error"},
                         "data": data}}


def render(code: int, data: Any, fmt: str) -> SimResponse:
    """JSON when asked (any case), otherwise the sandbox's XML rendering of the envelope."""
    doc = envelope(code, data)
    if fmt.strip().upper() == "JSON":
        return SimResponse.json(doc)
    xml = '<?xml version="1.0" encoding="UTF-8"?>' + to_xml("response", doc["response"])
    return SimResponse(200, xml.encode("utf-8"), "text/xml; charset=utf-8")


def to_xml(tag: str, value: Any) -> str:
    if isinstance(value, dict):
        inner = "".join(to_xml(str(k), v) for k, v in value.items())
        return f"<{tag}>{inner}</{tag}>"
    if value is None:
        return f"<{tag}/>"
    return f"<{tag}>{escape(str(value))}</{tag}>"
