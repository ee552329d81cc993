"""Gatum simulator, part two: account details and registration, groups of numbers and
the personal black list.

Split from `providers/sandbox/gatum.py` to keep modules short; the bodies are
the third-party-described shapes from providers.md §4.4 (`groupDetails`,
`blacklistDetails`), since Gatum documents none of them.
"""

from __future__ import annotations

from typing import Any, ClassVar

from providers.sandbox.core import SandboxState, SimRequest, SimResponse

MCC = {"7": 250, "380": 255, "1": 310, "44": 234, "49": 262}  # country prefix -> MCC


def ok(data: Any) -> SimResponse:
    return SimResponse.json({"status": True, "data": data})


def fail(status: int, field: str, message: str) -> SimResponse:
    return SimResponse.json({"status": False, "error_code": status,
                             "errors": {field: [message]}}, status=status)


def digits(value: Any) -> str | None:
    """A number as the gateway stores it (10-15 digits), or None."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip().lstrip("+")
    return text if text.isdigit() and 10 <= len(text) <= 15 else None


def mcc_of(phone: str) -> int | None:
    return next((mcc for cc, mcc in MCC.items() if phone.startswith(cc)), None)


class GroupRoutes:
    """Account, group and black-list handlers; GatumSim supplies `db`, `state` and
    `credentials`."""

    state: SandboxState
    credentials: ClassVar[dict[str, str]]

    @property
    def db(self) -> dict[str, Any]:
        raise NotImplementedError


    def me(self, req: SimRequest, body: Any) -> SimResponse:
        return ok({"login": self.credentials["username"], "name": "Sandbox", "phone": "",
                   "e_mail": "sandbox@example.com", "company_name": "smsq sandbox",
                   "balance_units": "1000.00", "balance_limit": "0", "balance_daily_block": 0,
                   "block": False, "can_send_bulk": True, "can_send_restapi": True,
                   "confirmed": True, "currency": "EUR", "id_subparent": None,
                   "finance": {"balance": "1000.00", "credit": "0.00"}})

    def register(self, req: SimRequest, body: Any) -> SimResponse:
        for field in ("login", "password", "name", "phone", "email"):
            if not isinstance(body, dict) or not body.get(field):
                return fail(400, field, f"{field.capitalize()} cannot be blank.")
        if body["login"] in self.db["logins"]:
            return fail(400, "login", "This login is already taken.")
        self.db["logins"].add(body["login"])
        return ok({"id_user": self.state.next_id("gatum-user", 500), "login": body["login"]})

    def numbers(self, id_group: Any) -> list[str]:
        group = self.db["groups"].get(id_group)
        return list(group["numbers"]) if group else []

    def group_view(self, group: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in group.items() if k != "numbers"} | \
            {"count_numbers": len(group["numbers"])}

    def group_list(self, req: SimRequest, body: Any) -> SimResponse:
        groups = list(self.db["groups"].values())
        if body.get("id_group") is not None:
            groups = [g for g in groups if g["id_group"] == body["id_group"]]
        limit, page = body.get("limit", 10), body.get("offset", 0)
        if isinstance(limit, int) and isinstance(page, int) and limit > 0:
            groups = groups[page * limit:(page + 1) * limit]
        return ok({"total": len(self.db["groups"]), "list": list(map(self.group_view, groups))})

    def group_create(self, req: SimRequest, body: Any) -> SimResponse:
        if not isinstance(body.get("name_group"), str) or not body["name_group"]:
            return fail(400, "name_group", "Name Group cannot be blank.")
        group_id = self.state.next_id("gatum-group", 950)
        keys = ("time_birth", "originator_birth", "text_birth", "on_birth")
        self.db["groups"][group_id] = {"id_group": group_id, "name_group": body["name_group"],
                                       **{k: body.get(k, False) for k in keys}, "numbers": {}}
        return ok(self.group_view(self.db["groups"][group_id]))

    def group_delete(self, req: SimRequest, body: Any) -> SimResponse:
        ids = body.get("id_group")
        if not isinstance(ids, list):
            return fail(400, "id_group", "Id Group must be a list.")
        deleted = [i for i in ids if self.db["groups"].pop(i, None) is not None]
        return ok({"deleted": deleted, "not_found": [i for i in ids if i not in deleted]})

    def group_for(self, body: Any) -> tuple[dict[str, Any] | None, SimResponse | None]:
        group = self.db["groups"].get(body.get("id_group"))
        if group is None:
            return None, fail(400, "id_group", "Group not found.")
        if not isinstance(body.get("numbers"), list):
            return None, fail(400, "numbers", "Numbers must be a list.")
        return group, None

    def details(self, group: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {"id_group": group["id_group"], "name_group": group["name_group"], **extra}

    def number_add(self, req: SimRequest, body: Any) -> SimResponse:
        group, error = self.group_for(body)
        if group is None:
            return error or fail(400, "id_group", "Group not found.")
        rows = [n for n in body["numbers"] if isinstance(n, dict) and digits(n.get("number"))]
        for row in rows:
            group["numbers"][digits(row["number"])] = {k: v for k, v in row.items()}
        return ok({"groupDetails": self.details(group, addedPhone=len(rows),
                                                countNumbers=len(group["numbers"])),
                   "invalid": len(body["numbers"]) - len(rows)})

    def found(self, group: dict[str, Any], numbers: list[Any]) -> list[dict[str, Any]]:
        keys = [d for d in map(digits, numbers) if d is not None and d in group["numbers"]]
        return [{"phone": int(k), "name": group["numbers"][k].get("name", ""),
                 "surname": group["numbers"][k].get("surname", ""), "mcc": mcc_of(k),
                 "mnc": 1} for k in keys]

    def number_search(self, req: SimRequest, body: Any) -> SimResponse:
        group, error = self.group_for(body)
        if group is None:
            return error or fail(400, "id_group", "Group not found.")
        return ok({"groupDetails": self.details(group), "list": self.found(group,
                                                                            body["numbers"])})

    def number_delete(self, req: SimRequest, body: Any) -> SimResponse:
        group, error = self.group_for(body)
        if group is None:
            return error or fail(400, "id_group", "Group not found.")
        rows = self.found(group, body["numbers"])
        for row in rows:
            group["numbers"].pop(str(row["phone"]), None)
        return ok({"groupDetails": self.details(group, deletedPhone=len(rows)), "list": rows})

    def black_numbers(self, body: Any) -> list[str] | None:
        numbers = body.get("numbers")
        if not isinstance(numbers, list):
            return None
        return [d for d in map(digits, numbers) if d]

    def black_change(self, body: Any, add: bool) -> SimResponse:
        numbers = self.black_numbers(body)
        if numbers is None:
            return fail(400, "numbers", "Numbers must be a list.")
        before = len(self.db["black"])
        (self.db["black"].update if add else self.db["black"].difference_update)(numbers)
        return ok({"blacklistDetails": {"countBefore": before,
                                        "countAfter": len(self.db["black"])}})

    def black_add(self, req: SimRequest, body: Any) -> SimResponse:
        return self.black_change(body, True)

    def black_delete(self, req: SimRequest, body: Any) -> SimResponse:
        return self.black_change(body, False)

    def black_search(self, req: SimRequest, body: Any) -> SimResponse:
        numbers = self.black_numbers(body)
        if numbers is None:
            return fail(400, "numbers", "Numbers must be a list.")
        return ok({"list": [int(n) for n in numbers if n in self.db["black"]]})
