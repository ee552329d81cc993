"""sms.ru simulator, its vocabulary: codes and their texts, envelopes, number forms.

Shared by the send side (`providers/sandbox/smsru.py`) and the account side
(`providers/sandbox/smsru_account.py`).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

API_ID = "sandbox-smsru-api-id"
PRICE = Decimal("0.50")  # per segment
MAX_RECIPIENTS, MAX_SEGMENTS = 100, 8
CALL_PHONE = "78005008275"
CONFIRM_AFTER, CHECK_EXPIRES = 5.0, 300.0
STAGE_CODES = {"queued": 100, "sent": 102, "delivered": 103, "expired": 104,
               "undelivered": 106, "rejected": 108, "failed": 150}
TEXTS = {
    -1: "Сообщение не найдено", 100: "Сообщение находится в нашей очереди",
    102: "Сообщение отправлено (в пути)", 103: "Сообщение доставлено",
    104: "Не может быть доставлено: время жизни истекло",
    106: "Не может быть доставлено: сбой в телефоне", 108: "Не может быть доставлено: отклонено",
    150: "Не может быть доставлено: не найден маршрут на данный номер",
    200: "Неправильный api_id", 201: "Не хватает средств на лицевом счету",
    202: "Неправильно указан номер получателя", 203: "Нет текста сообщения",
    204: "Имя отправителя не согласовано с администрацией",
    205: "Сообщение слишком длинное (превышает 8 СМС)",
    206: "Будет превышен или уже превышен дневной лимит на отправку сообщений",
    207: "На этот номер (или один из номеров) нельзя отправлять сообщения",
    208: "Параметр time указан неправильно", 209: "Вы добавили этот номер в стоп-лист",
    211: "Метод не найден", 213: "Указано более 100 номеров в списке получателей",
    901: "Callback: URL неверный (не начинается на http://)",
    902: "Callback: Обработчик не найден (возможно был удален ранее)",
}
CHECK_TEXTS = {"400": "Авторизация по звонку: номер пока не подтвержден",
               "401": "Авторизация по звонку: номер подтвержден",
               "402": "Авторизация по звонку: истекло время ожидания"}
KEYED = re.compile(r"(?:to|multi)\[(.*)\]")

Body = dict[str, Any]


class Refusal(Exception):
    """A request-level sms.ru error; the handler answers it as the ERROR envelope."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def error_body(code: int) -> Body:
    return {"status": "ERROR", "status_code": code, "status_text": TEXTS.get(code, "Ошибка")}


def ok(**fields: Any) -> Body:
    return {"status": "OK", "status_code": 100, **fields}


def normalize(raw: str) -> str | None:
    """9161234567, 89161234567, +79161234567 -> 79161234567; None when not a number."""
    d = re.sub(r"\D", "", raw)
    if len(d) == 10:
        return "7" + d
    if len(d) == 11 and d[0] == "8":
        return "7" + d[1:]
    return d if 11 <= len(d) <= 15 else None


def national(phone: str) -> str:
    """Stop-list keys are shown as 10 national digits for Russian numbers."""
    return phone[1:] if len(phone) == 11 and phone.startswith("7") else phone


def plain(body: Body) -> str:
    """The line format of replies without json=1 (providers.md §1.3)."""
    lines = [str(body.get("status_code"))]
    if body.get("status") != "OK":
        return lines[0]
    if "total_cost" in body:
        return "\n".join([*lines, str(body["total_cost"]), str(body["total_sms"])])
    for item in (body.get("sms") or {}).values():
        lines.append(str(item.get("sms_id") or item.get("status_code")))
    for key, value in body.items():
        if key not in ("status", "status_code", "sms") and not isinstance(value, list | dict):
            lines.append(f"{key}={value}")
    return "\n".join(lines)
