"""sms.ru simulator, part two: the account-side endpoints (my/*, stoplist, callbacks, callcheck).

Split from `providers/sandbox/smsru.py` to keep modules short; the pipeline
never calls these, operators, third-party clients and tests do.
"""

from __future__ import annotations

from typing import Any

from providers.sandbox.core import SandboxState, SimRequest
from providers.sandbox.smsru_wire import (
    CALL_PHONE,
    CHECK_EXPIRES,
    CHECK_TEXTS,
    CONFIRM_AFTER,
    Body,
    Refusal,
    error_body,
    national,
    normalize,
    ok,
)


class AccountRoutes:
    """Account handlers; SmsRuSim supplies `name`, `state` and `data()`."""

    name: str
    state: SandboxState

    def data(self) -> dict[str, Any]:
        raise NotImplementedError

    def my(self, req: SimRequest, params: dict[str, str]) -> Body:
        data, what = self.data(), req.path.rstrip("/").rsplit("/", 1)[-1]
        if what == "balance":
            return ok(balance=float(data["balance"]))
        if what == "senders":
            return ok(senders=list(data["senders"]))
        if what == "free":
            return ok(total_free=data["total_free"], used_today=None)
        with self.state.lock:
            today = int(self.state.clock() // 86400)
            used = sum(1 for m in self.state.messages if m.gateway == self.name
                       and int(m.time // 86400) == today and not m.meta.get("test"))
        return ok(total_limit=data["total_limit"], used_today=used)

    def stoplist(self, req: SimRequest, params: dict[str, str]) -> Body:
        stoplist: dict[str, str] = self.data()["stoplist"]
        action = req.path.rstrip("/").rsplit("/", 1)[-1]
        if action == "get":
            with self.state.lock:
                return ok(stoplist=dict(stoplist))
        phone = normalize(params.get("stoplist_phone", ""))
        if phone is None:
            raise Refusal(202)
        with self.state.lock:
            if action == "add":
                stoplist[national(phone)] = params.get("stoplist_text", "")
            else:
                stoplist.pop(national(phone), None)
        return ok()

    def callback(self, req: SimRequest, params: dict[str, str]) -> Body:
        action, url = req.path.rstrip("/").rsplit("/", 1)[-1], params.get("url", "")
        with self.state.lock:
            urls = self.state.callbacks.setdefault(self.name, [])
            if action == "add":
                if not url.startswith(("http://", "https://")):
                    raise Refusal(901)
                if url not in urls:
                    urls.append(url)
            elif action == "del":
                if url not in urls:
                    raise Refusal(902)
                urls.remove(url)
            return ok(callback=list(urls))

    def callcheck(self, req: SimRequest, params: dict[str, str]) -> Body:
        checks: dict[str, tuple[str, float]] = self.data()["checks"]
        if req.path.rstrip("/").endswith("/add"):
            phone = normalize(params.get("phone", ""))
            if phone is None:
                raise Refusal(202)
            n = self.state.next_id(self.name + "-check", start=201737)
            check_id = f"{n}-{542 + n % 100}"
            with self.state.lock:
                checks[check_id] = (phone, self.state.clock())
            pretty = "+7 (800) 500-8275"
            html = f'&lt;a href="callto:{CALL_PHONE}"&gt;{pretty}&lt;\\a&gt;'
            return ok(check_id=check_id, call_phone=CALL_PHONE, call_phone_pretty=pretty,
                      call_phone_html=html)
        entry = checks.get(params.get("check_id", ""))
        if entry is None:
            return error_body(-1)
        phone, created = entry
        age = self.state.clock() - created
        code = ("402" if age >= CHECK_EXPIRES else "400") if phone.endswith("0000") \
            else ("401" if age >= CONFIRM_AFTER else "400")
        return ok(check_status=code, check_status_text=CHECK_TEXTS[code])

    def auth(self, req: SimRequest, params: dict[str, str]) -> Body:
        return ok()
