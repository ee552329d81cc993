"""Gatum's account-side endpoints: account info, registration, search, groups, black list.

Kept apart from the send path in `providers/gatum.py` because the pipeline never
calls them; operators and tests do. Each method is one request whose JSON body
matches what gatum-rest-py 1.0.0 sends, and returns the reply's `data`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, time
from typing import Any

from providers import phones
from providers.capabilities import BulkReceipt


def _without_none(**fields: Any) -> dict[str, Any]:
    """Optional filters are omitted, not sent as null (the gateway reads null as a value)."""
    return {key: value for key, value in fields.items() if value is not None}


class GatumEndpoints:
    """Typed wrappers around every Gatum REST endpoint except auth and send, and the
    capabilities built on them (`BlackList`, `ServerGroups`, `BulkSend`)."""

    group_upload_chunk: int = 500  # contacts per group-number-add request

    def call(self, method: str, path: str, payload: Any = None, *, auth: bool = True) -> Any:
        raise NotImplementedError

    def drop_token(self, token: str | None = None) -> None:
        raise NotImplementedError

    def account_info(self) -> Any:
        """GET /v1/me: balance, limits, block flags."""
        return self.call("GET", "/v1/me")

    def register_customer(self, login: str, password: str, name: str, phone: str, email: str,
                          company_name: str | None = None, skype: str | None = None) -> Any:
        """POST /v1/register: a new sub-account; needs no token."""
        body = _without_none(login=login, password=password, name=name, phone=phone,
                             email=email, company_name=company_name, skype=skype)
        return self.call("POST", "/v1/register", body, auth=False)

    def sms_full_data(self, *, mcc: int | None = None, mnc: int | None = None,
                      sender: str | None = None, phone: Sequence[str] | None = None,
                      id_base: Sequence[int] | None = None, time_period: str | None = None,
                      type_sms: str | None = None, limit: int | None = None,
                      state: Sequence[str] | None = None, offset: int | None = None) -> Any:
        """POST /v1/sms-full-data with any of its filters (no filters: the last few days)."""
        body = _without_none(
            MCC=mcc, MNC=mnc, sender=sender, phone=None if phone is None else list(phone),
            id_base=None if id_base is None else list(id_base), time_period=time_period,
            type_sms=type_sms, limit=limit, state=None if state is None else list(state),
            offset=offset)
        return self.call("POST", "/v1/sms-full-data", body)

    def list_groups(self, *, id_group: int | None = None, limit: int = 10,
                    offset: int = 0) -> Any:
        """POST /v1/group: `offset` is a page index, not a row count."""
        body = _without_none(limit=limit, offset=offset, id_group=id_group)
        return self.call("POST", "/v1/group", body)

    def create_group(self, name_group: str, *, time_birth: str | bool = False,
                     originator_birth: str | bool = False, text_birth: str | bool = False,
                     on_birth: bool = False) -> Any:
        """POST /v1/group-create; the birthday fields are `false` when unused."""
        return self.call("POST", "/v1/group-create", {
            "name_group": name_group, "time_birth": time_birth,
            "originator_birth": originator_birth, "text_birth": text_birth,
            "on_birth": on_birth})

    def delete_groups(self, id_group: Sequence[int]) -> Any:
        return self.call("POST", "/v1/group-delete", {"id_group": list(id_group)})

    def group_number_add(self, id_group: int, numbers: Sequence[dict[str, Any]]) -> Any:
        """Numbers are objects: `number` (int) required, name/surname/notes optional."""
        return self.call("POST", "/v1/group-number-add",
                         {"id_group": id_group, "numbers": [dict(n) for n in numbers]})

    def group_number_search(self, id_group: int, numbers: Sequence[int]) -> Any:
        return self.call("POST", "/v1/group-number-search",
                         {"id_group": id_group, "numbers": list(numbers)})

    def group_number_delete(self, id_group: int, numbers: Sequence[int]) -> Any:
        return self.call("POST", "/v1/group-number-delete",
                         {"id_group": id_group, "numbers": list(numbers)})

    def send_bulk(self, sender_id: str, text: str, id_group: Sequence[int], *,
                  id_group_excluded: Sequence[int] | None = None,
                  phone: Sequence[str] | None = None, date_start: str | None = None,
                  time_start: str | None = None, time_stop: str | None = None) -> Any:
        """POST /v1/send-bulk: groups (+ phones) minus excluded groups, maybe spread in time."""
        body = _without_none(
            senderID=sender_id, text=text, id_group=list(id_group),
            id_group_excluded=None if id_group_excluded is None else list(id_group_excluded),
            phone=None if phone is None else list(phone), dateStart=date_start,
            timeStart=time_start, timeStop=time_stop)
        return self.call("POST", "/v1/send-bulk", body)

    def black_list_add(self, numbers: Sequence[int]) -> Any:
        return self.call("POST", "/v1/black-list-add", {"numbers": list(numbers)})

    def black_list_search(self, numbers: Sequence[int]) -> Any:
        return self.call("POST", "/v1/black-list-search", {"numbers": list(numbers)})

    def black_list_delete(self, numbers: Sequence[int]) -> Any:
        return self.call("POST", "/v1/black-list-delete", {"numbers": list(numbers)})

    # -- capabilities (providers.capabilities) ------------------------------------

    def blacklisted(self, numbers: Sequence[str]) -> set[str]:
        """BlackList: those of `numbers` that black-list-search finds."""
        found = self.black_list_search([int(phones.digits(n)) for n in numbers])
        listed = {str(x) for x in (found or {}).get("list", [])}
        return {n for n in numbers if phones.digits(n) in listed}

    def new_group(self, name: str) -> int:
        """ServerGroups: a new group's id_group."""
        return int(self.create_group(name)["id_group"])

    def add_to_group(self, group_id: int,
                     members: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
        """ServerGroups: one group-number-add of (phone, fields) pairs."""
        self.group_number_add(group_id, [{"number": int(phones.digits(phone)), **fields}
                                         for phone, fields in members])

    def send_to_groups(self, sender: str, text: str, groups: Sequence[int], *,
                       excluded: Sequence[int], start: datetime,
                       window: tuple[time, time] | None) -> BulkReceipt:
        """BulkSend: one send-bulk from `start`'s day, inside `window` when given."""
        kwargs: dict[str, Any] = {"date_start": start.strftime("%Y-%m-%d")}
        if window is not None:
            kwargs.update(time_start=f"{window[0]:%H:%M}", time_stop=f"{window[1]:%H:%M}")
        reply = self.send_bulk(sender, text, list(groups),
                               id_group_excluded=list(excluded) or None, **kwargs)
        details = (reply or {}).get("details", {}) if isinstance(reply, dict) else {}
        return BulkReceipt(details.get("sentID"), details.get("count"))

    def logout(self) -> Any:
        """GET /v1/logout destroys the token server-side, so we forget it too."""
        try:
            return self.call("GET", "/v1/logout")
        finally:
            self.drop_token()
