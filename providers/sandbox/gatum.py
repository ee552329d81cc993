"""Gatum REST simulator: two-step tokens, array sends, sms-full-data, groups, black list, DLRs.

Bodies follow providers.md §4; where the real ones are undocumented the shapes
are the ones `providers/gatum.py` documents (each recipient of a send gets an
`id_state`, which sms-full-data rows and DLR objects repeat). Sandbox-only
routes: POST `/sandbox/gatum/config` `{"token_ttl": s}` and POST
`/sandbox/gatum/expire-tokens`, so tests can expire tokens mid-run. A message
object's `lifetime` (seconds, default 86400) must be 1..86400 (inferred range)
or the send is a 400 naming `lifetime`; a message whose lifetime runs out before
its delivery would end is EXPIRED.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from providers import segments
from providers.sandbox.core import GatewaySimulator, SimRequest, SimResponse
from providers.sandbox.gatum_groups import GroupRoutes, digits, fail, mcc_of, ok
from providers.sandbox.lifetimes import gatum_lifetime
from providers.sandbox.timeline import SimMessage

Handler = Callable[[SimRequest, Any], SimResponse]
STAGE_STATES = {"queued": "ACCEPTD", "sent": "ENROUTE", "delivered": "DELIVRD",
                "undelivered": "UNDELIV", "expired": "EXPIRED", "rejected": "REJECTD",
                "failed": "UNDELIV"}
SENDER_RE = re.compile(r"^(\d{3,15}|[A-Za-z0-9 ._-]{1,11})$")
RECENT = 3 * 86400.0  # "data on all sms for the last few days"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def stamp(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime(TIME_FORMAT)


def period(value: Any) -> tuple[float, float] | None:
    try:
        start, end = (datetime.strptime(p.strip(), TIME_FORMAT).replace(tzinfo=UTC).timestamp()
                      for p in str(value).split(" - "))
    except ValueError:
        return None
    return start, end


class GatumSim(GroupRoutes, GatewaySimulator):
    name = "gatum"
    hosts = ("gatum",)
    credentials = {"username": "sandbox", "password": "sandbox-gatum-pass"}  # noqa: RUF012
    base_path = ""
    send_path = "/v1/send"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.routes: dict[str, tuple[str, bool, Handler]] = {
            "/v1/authorize": ("POST", False, self.authorize),
            "/v1/accesstoken": ("POST", False, self.accesstoken),
            "/v1/register": ("POST", False, self.register),
            "/v1/me": ("GET", True, self.me),
            "/v1/logout": ("GET", True, self.logout),
            "/v1/send": ("POST", True, self.send),
            "/v1/sms-full-data": ("POST", True, self.full_data),
            "/v1/group": ("POST", True, self.group_list),
            "/v1/group-create": ("POST", True, self.group_create),
            "/v1/group-delete": ("POST", True, self.group_delete),
            "/v1/group-number-add": ("POST", True, self.number_add),
            "/v1/group-number-search": ("POST", True, self.number_search),
            "/v1/group-number-delete": ("POST", True, self.number_delete),
            "/v1/send-bulk": ("POST", True, self.send_bulk),
            "/v1/black-list-add": ("POST", True, self.black_add),
            "/v1/black-list-search": ("POST", True, self.black_search),
            "/v1/black-list-delete": ("POST", True, self.black_delete),
        }

    # -- plumbing ---------------------------------------------------------------------

    @property
    def db(self) -> dict[str, Any]:
        """This simulator's tables inside the shared state (recreated after a reset)."""
        with self.state.lock:
            db: dict[str, Any] = self.state.extra.setdefault(self.name, {
                "codes": set(), "tokens": {}, "token_ttl": 10 * 365 * 86400.0,
                "groups": {}, "black": set(), "logins": set(), "sent_id": 0})
            return db

    def handle(self, req: SimRequest) -> SimResponse:
        path = req.path.rstrip("/")
        if path.startswith("/sandbox/gatum/"):
            return self.control(path, req.json())
        route = self.routes.get(path)
        if route is None:
            return fail(404, "path", "Page not found.")
        method, needs_token, handler = route
        if req.method != method:
            return fail(405, "method", "Method Not Allowed.")
        if needs_token and not self.token_ok(req.header("x-access-token")):
            return fail(401, "token", "Invalid or expired token")
        body = req.json() if method == "POST" else None
        if method == "POST" and not isinstance(body, list if path == self.send_path else dict):
            return fail(400, "body", "Request body has the wrong JSON type.")
        try:
            with self.state.lock:
                return handler(req, body)
        except (TypeError, ValueError, AttributeError, KeyError):
            return fail(400, "body", "Invalid request.")

    def control(self, path: str, data: Any) -> SimResponse:
        with self.state.lock:
            if path.endswith("/expire-tokens"):
                self.db["tokens"].clear()
                return ok({"expired": True})
            if path.endswith("/config") and isinstance(data, dict) and "token_ttl" in data:
                self.db["token_ttl"] = float(data["token_ttl"])
                return ok({"token_ttl": self.db["token_ttl"]})
        return fail(404, "path", "Page not found.")

    def configure(self, *, token_ttl: float) -> None:
        with self.state.lock:
            self.db["token_ttl"] = float(token_ttl)

    def expire_tokens(self) -> None:
        with self.state.lock:
            self.db["tokens"].clear()

    def token_ok(self, token: str) -> bool:
        with self.state.lock:
            expires = self.db["tokens"].get(token)
        return expires is not None and self.state.clock() < expires

    def throttle_response(self, req: SimRequest) -> SimResponse:
        return fail(429, "request", "Too many requests.")

    # -- auth and account ---------------------------------------------------------------

    def authorize(self, req: SimRequest, body: Any) -> SimResponse:
        if not isinstance(body, dict) or not body.get("username"):
            return fail(400, "username", "Username cannot be blank.")
        if (body.get("username"), body.get("password")) != tuple(self.credentials.values()):
            return fail(400, "password", "Incorrect username or password.")
        code = secrets.token_urlsafe(16)
        self.db["codes"].add(code)
        return ok({"authorization_code": code})

    def accesstoken(self, req: SimRequest, body: Any) -> SimResponse:
        code = body.get("authorization_code") if isinstance(body, dict) else None
        if not isinstance(code, str) or code not in self.db["codes"]:
            return fail(400, "authorization_code", "Invalid authorization code.")
        self.db["codes"].discard(code)
        token = secrets.token_urlsafe(22)
        expires = int(self.state.clock() + self.db["token_ttl"])
        self.db["tokens"][token] = expires
        return ok({"access_token": token, "expires_at": expires})

    def logout(self, req: SimRequest, body: Any) -> SimResponse:
        self.db["tokens"].pop(req.header("x-access-token"), None)
        return ok({"logout": True})

    # -- sending ------------------------------------------------------------------------

    def send(self, req: SimRequest, body: Any) -> SimResponse:
        if not isinstance(body, list) or not body:
            return fail(400, "body", "Body must be a non-empty array of messages.")
        for obj in body:
            problem = self.check_object(obj)
            if problem is not None:
                return fail(400, *problem)
        return ok([self.send_object(req, obj) for obj in body])

    def check_object(self, obj: Any) -> tuple[str, str] | None:
        """(field, message) of the first validation error in one message object."""
        if not isinstance(obj, dict):
            return "body", "Each message must be an object."
        numbers = obj.get("number")
        if not isinstance(numbers, list) or not numbers or None in map(digits, numbers):
            return "number", "Number must be a list of MSISDNs."
        if not isinstance(obj.get("senderID"), str) or not SENDER_RE.match(obj["senderID"]):
            return "senderID", "not_registr_originator"
        if not isinstance(obj.get("text"), str) or not obj["text"]:
            return "text", "Text cannot be blank."
        if obj.get("type", "sms") not in ("sms", "hlr", "mnp"):
            return "type", "Type must be one of sms, hlr, mnp."
        try:
            gatum_lifetime(obj.get("lifetime"))
        except ValueError:
            return "lifetime", "Lifetime must be a whole number of seconds, 1 to 86400."
        return None

    def send_object(self, req: SimRequest, obj: dict[str, Any]) -> dict[str, Any]:
        sent_id = self.db["sent_id"] = self.db["sent_id"] + 1
        entries: list[dict[str, Any]] = []
        accepted: list[str] = []
        for number in (str(digits(n)) for n in obj["number"]):
            refusal = self.refusal(number)
            if refusal:
                entries.append({"number": number, "id_state": None, "error": refusal})
                continue
            msg = self.accept(req, number, obj["text"], obj["senderID"], sent_id=sent_id,
                              type=obj.get("type", "sms"), delivery=obj.get("delivery", True),
                              valid_for=gatum_lifetime(obj.get("lifetime")))
            entries.append({"number": number, "id_state": int(msg.id)})
            accepted.append(number)
        details = {"number": accepted, "senderID": obj["senderID"], "sentID": sent_id}
        return {"sending": {"details": details}, "messages": entries}

    def wire_validity(self, req: SimRequest) -> list[Any] | None:
        """Each message object's `lifetime` as sent (None where it had none)."""
        body = req.json() if req.path.rstrip("/") == self.send_path else None
        if not isinstance(body, list):
            return None
        found = [obj.get("lifetime") if isinstance(obj, dict) else None for obj in body]
        return found if any(v is not None for v in found) else None

    def refusal(self, number: str) -> str | None:
        if number.endswith("0000"):
            return "invalid_number"
        return "black_list" if number in self.db["black"] else None

    def accept(self, req: SimRequest, number: str, text: str, sender: str,
               **meta: Any) -> SimMessage:
        msg_id = self.state.next_id(self.name, 598933000)
        return self.state.accept(self.name, req.host, str(msg_id), number, text, sender,
                                 num_parts=segments.count(text).segments, **meta)

    def send_bulk(self, req: SimRequest, body: Any) -> SimResponse:
        groups, excluded = body.get("id_group"), body.get("id_group_excluded") or []
        if not isinstance(groups, list) or not groups:
            return fail(400, "id_group", "Id Group cannot be blank.")
        problem = self.check_object({"number": ["1000000001"], "senderID": body.get("senderID"),
                                     "text": body.get("text")})
        if problem is not None or not isinstance(excluded, list):
            return fail(400, *(problem or ("id_group_excluded", "Must be a list.")))
        skip = self.db["black"] | {n for g in excluded for n in self.numbers(g)}
        wanted = [n for g in groups for n in self.numbers(g)]
        wanted += [d for d in map(digits, body.get("phone") or []) if d]
        chosen = [n for n in dict.fromkeys(wanted) if n not in skip and not self.refusal(n)]
        sent_id = self.db["sent_id"] = self.db["sent_id"] + 1
        for number in chosen:
            self.accept(req, number, body["text"], body["senderID"], bulk=True,
                        groups=list(groups), sent_id=sent_id, type="sms",
                        schedule=[body.get(k) for k in ("dateStart", "timeStart", "timeStop")])
        return ok({"details": {"id_group": groups, "senderID": body["senderID"],
                               "sentID": sent_id, "count": len(chosen)}})

    # -- sms-full-data and reports --------------------------------------------------------

    def row(self, msg: SimMessage) -> dict[str, Any]:
        stage = self.state.stage(msg)
        when = msg.time if stage in ("queued", "sent") else self.state.changed_at(msg, stage)
        return {"id_state": int(msg.id), "originator": msg.sender, "phone": msg.phone,
                "type_sms": msg.meta.get("type", "sms"), "text_sms": msg.text,
                "num_parts": msg.meta.get("num_parts", 1), "part_no": 1,
                "state": STAGE_STATES.get(stage, "UNKNOWN"), "time": stamp(when),
                "mcc": mcc_of(msg.phone), "mnc": 1}

    def full_data(self, req: SimRequest, body: Any) -> SimResponse:
        if not isinstance(body, dict):
            return fail(400, "body", "Filters must be an object.")
        window = period(body["time_period"]) if "time_period" in body else \
            (self.state.clock() - RECENT, float("inf"))
        if window is None:
            return fail(400, "time_period", "Time period format is invalid.")
        match = self.matcher(body, window)
        rows = [self.row(m) for m in self.state.messages if m.gateway == self.name and match(m)]
        rows = [r for r in rows if not body.get("state") or r["state"] in
                {str(s).replace("DELIVERD", "DELIVRD") for s in body["state"]}]
        limit, page = body.get("limit"), body.get("offset") or 0
        if isinstance(limit, int) and limit > 0 and isinstance(page, int):
            rows = rows[page * limit:(page + 1) * limit]
        return ok(rows)

    def matcher(self, f: dict[str, Any], window: tuple[float, float]) -> Callable[..., bool]:
        phones = {digits(p) for p in f.get("phone") or []}
        bases = set(f.get("id_base") or [])

        def match(m: SimMessage) -> bool:
            return (window[0] <= m.time <= window[1]
                    and (not phones or m.phone in phones)
                    and (not bases or bool(bases & set(m.meta.get("groups", []))))
                    and f.get("sender") in (None, m.sender)
                    and f.get("type_sms") in (None, m.meta.get("type", "sms"))
                    and f.get("MCC") in (None, mcc_of(m.phone))
                    and f.get("MNC") in (None, 1))
        return match

    def report_request(self, msgs: list[SimMessage]) -> tuple[str, bytes]:
        return "application/json", json.dumps([self.row(m) for m in msgs]).encode()

    def report_acked(self, status: int, body: bytes, msgs: list[SimMessage]) -> bool:
        try:
            acked = json.loads(body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return False
        return 200 <= status < 300 and isinstance(acked, list) and \
            {m.id for m in msgs} <= {a for a in acked if isinstance(a, str)}
