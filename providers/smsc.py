"""SMSC (smscentre.com / smsc.ru): send.php, status.php, balance.php over mirror hosts.

SMSC answers HTTP 200 to everything and puts errors in the body, keys messages
by the (id, phone) pair, and lets the client name a send with its own `id` —
smsq passes its message ref, so an ambiguous send can be reconciled through
`lookup` without ever resending. Mirrors (www2..www5) are tried in the seed
library's order, but only while the failure proves the request never left.

Validity on the wire: `valid`, the message's lifetime. The seed shows the
`hh:mm` form (`valid=01:00`); third-party clients send whole hours (`valid=1`,
"lifetime in hours"). Inferred, not in a source we hold: the range 1..24 hours,
00:01..24:00. smsq always sends `hh:mm`: the remaining validity rounded down to
the minute, capped at 24:00; under one minute left, nothing is sent
(ValidityExpired). A producer's own `valid` option stays when it is shorter.
Status 3 "Просрочено" is what an expired message reports.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import urlencode, urlsplit, urlunsplit

import requests
import structlog
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_none

from providers.base import DEFAULT_TIMEOUT, Provider, Throttle
from providers.errors import (
    ConfigurationError,
    GatewayUnavailable,
    MalformedResponse,
    ValidationError,
    never_left,
)
from providers.models import (
    AccountConfig,
    Balance,
    OutgoingMessage,
    SendResult,
    Status,
    StatusQuery,
    StatusResult,
)
from providers.phones import digits, mask
from providers.reports import ParsedReport, ReportReply, form_pairs
from providers.smsc_codes import (
    DELIVERY_ERRORS,
    PROVIDER,
    CostEstimate,
    as_float,
    as_int,
    client_id,
    decode_reply,
    digits_of,
    option_params,
    parse_balance,
    parse_cost,
    parse_send,
    parse_status,
    status_for,
)
from providers.validity import WireValidity, deadline, hhmm, parse_hhmm

log = structlog.get_logger(__name__)

POST_THRESHOLD = 2000  # the seed and the PHP library switch to POST above this
MIRROR_PREFIXES = ("www2", "www3", "www4", "www5")  # the seed's real order; www1 never
LOOKUP_SLACK = 120.0  # clock skew allowed between smsq and SMSC in `lookup`
VALID = WireValidity("valid", 60.0, 1, 24 * 60, render=hhmm, parse=parse_hhmm)  # minutes

__all__ = ["CostEstimate", "Smsc", "derive_mirrors", "list_param", "parse_callback"]


class Smsc(Provider):
    """One SMSC account: login+psw when a login is set, else the API key."""

    name: ClassVar[str] = PROVIDER
    default_base_url: ClassVar[str] = "https://smscentre.com/sys"
    credential_fields: ClassVar[tuple[str, ...]] = ("login", "password", "apikey")
    max_recipients: ClassVar[int] = 100  # undocumented; long lists go out as POST anyway
    max_status_ids: ClassVar[int] = 100
    max_segments: ClassVar[int | None] = None  # the limit is 1000 characters, not parts
    per_recipient_texts: ClassVar[bool] = True  # `list=phone:text` lines
    default_rate: ClassVar[float | None] = None  # undocumented; error 9/4 enforce it
    reports: ClassVar[bool] = True  # status callbacks to the account's handler URL
    validity: ClassVar[WireValidity | None] = VALID

    def __init__(self, session: requests.Session, account: AccountConfig, *,
                 throttle: Throttle | None = None,
                 timeout: tuple[float, float] = DEFAULT_TIMEOUT) -> None:
        super().__init__(session, account, throttle=throttle, timeout=timeout)
        mirrors = [m.rstrip("/") for m in account.mirrors] or derive_mirrors(self.base_url)
        self.hosts: tuple[str, ...] = (self.base_url, *mirrors)

    # -- what the pipeline calls -------------------------------------------------

    def send(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        """One send.php request; error 9 here means "probably already accepted"."""
        if not messages:
            return []
        if len(messages) > self.max_recipients:
            raise ValidationError(f"at most {self.max_recipients} recipients per request",
                                  field="recipients")
        params = self._send_params(messages, [("cost", "3"), ("op", "1")])
        late = None
        if deadline(messages) is not None:  # `valid` is counted once the slot is granted
            given = dict(params).get("valid")
            params = [p for p in params if p[0] != "valid"]

            def late() -> list[tuple[str, str]]:
                return [("valid", VALID.value(messages, self.clock(), given) or "")]
        data = self._call("send", params, late)
        results = parse_send(data, messages)
        log.info("smsc_send_answered", recipients=len(messages),
                 accepted=sum(r.accepted for r in results),
                 refused=[mask(r.recipient) for r in results if not r.accepted])
        return results

    def cost(self, messages: Sequence[OutgoingMessage]) -> CostEstimate:
        """What sending `messages` would cost (cost=1): nothing is sent."""
        if not messages:
            raise ValidationError("no messages to price", field="recipients")
        return parse_cost(self._call("send", self._send_params(messages, [("cost", "1")])))

    def status(self, queries: Sequence[StatusQuery]) -> list[StatusResult]:
        """status.php by (id, phone), batched as comma lists in the multi-format."""
        results: list[StatusResult] = []
        for start in range(0, len(queries), self.max_status_ids):
            results.extend(self._status_chunk(queries[start:start + self.max_status_ids]))
        return results

    def balance(self) -> Balance:
        return parse_balance(self._call("balance", [("cur", "1")]))

    def secrets(self) -> list[str]:
        """The password and the API key. The login is the account's name, not a secret
        (and the sandbox's login "sandbox" is part of every sandbox host name)."""
        return [v for v in (self.credential("password"), self.credential("apikey")) if v]

    @classmethod
    def report_key(cls, provider_message_id: str, recipient: str | None) -> str:
        """One id covers a whole batch at SMSC: a message is its id and its phone."""
        return f"{provider_message_id}:{digits_of(recipient or '')}"

    @classmethod
    def parse_report(cls, body: bytes, content_type: str) -> ParsedReport:
        """One status callback (a form, urlencoded or multipart); SMSC wants "OK" back."""
        return parse_callback(dict(form_pairs(body, content_type))), ReportReply(
            "text/plain", b"OK")

    def lookup(self, message: OutgoingMessage, sent_after: float) -> StatusResult | None:
        """Reconcile an unknown send by our client id and the phone.

        Client ids are not unique at SMSC, so a hit whose last change predates
        the send attempt belongs to an older message and is not ours.
        """
        cid = client_id(str(message.options.get("batch_ref") or message.ref))
        if cid is None:
            return None
        (result,) = self.status([StatusQuery(cid, message.recipient)])
        if result.status is Status.UNKNOWN:
            return None
        if result.updated_at is not None and result.updated_at < sent_after - LOOKUP_SLACK:
            return None
        return result

    # -- wire format ---------------------------------------------------------------

    def _send_params(self, messages: Sequence[OutgoingMessage],
                     extra: list[tuple[str, str]]) -> list[tuple[str, str]]:
        first = messages[0]
        params = list(extra)
        if len({m.text for m in messages}) == 1:
            params += [("phones", ",".join(digits(m.recipient) for m in messages)),
                       ("mes", first.text)]
        else:
            params.append(("list", list_param(messages)))
        if first.sender:
            params.append(("sender", first.sender))
        cid = client_id(first.ref)
        if cid is not None:
            params.append(("id", cid))
        return params + option_params(first.options)

    def _status_chunk(self, chunk: Sequence[StatusQuery]) -> list[StatusResult]:
        askable = [q for q in chunk if _askable(q)]
        answers: dict[int, StatusResult] = {}
        if askable:
            tail = "," if len(askable) == 1 else ""  # forces the array answer
            params = [("id", ",".join(q.provider_message_id for q in askable) + tail),
                      ("phone", ",".join(digits_of(q.recipient) for q in askable) + tail)]
            parsed = parse_status(self._call("status", params), askable)
            answers = {id(q): r for q, r in zip(askable, parsed, strict=True)}
        return [answers.get(id(q)) or StatusResult(q.provider_message_id, Status.UNKNOWN,
                                                   recipient=q.recipient or None)
                for q in chunk]

    def _auth(self) -> list[tuple[str, str]]:
        login, apikey = self.credential("login"), self.credential("apikey")
        if login:
            return [("login", login), ("psw", self.credential("password"))]
        if apikey:
            return [("apikey", apikey)]
        raise ConfigurationError("SMSC needs login+password or an API key", provider=PROVIDER)

    def _call(self, cmd: str, params: list[tuple[str, str]],
              late: Callable[[], list[tuple[str, str]]] | None = None) -> Any:
        """One command: always fmt=3 + utf-8; the body decoded whatever its label says.
        `late` parameters are made as the request leaves (after the throttle)."""
        response = self._walk(cmd, [*self._auth(), ("fmt", "3"), ("charset", "utf-8"),
                                    *params], late)
        self.check_http(response, sending=cmd == "send")
        if response.status_code != 200:
            raise self.malformed(f"HTTP {response.status_code}", response)
        return decode_reply(response.content)

    def _walk(self, cmd: str, params: list[tuple[str, str]],
              late: Callable[[], list[tuple[str, str]]] | None = None) -> requests.Response:
        """Main host, then each mirror in order, only while the request provably never
        left (`never_left`, the same test as the engine's in-call retry): one try per
        host, no wait between hosts."""
        post = len(urlencode([*params, ("valid", "00:00")] if late else params)) > POST_THRESHOLD
        hosts = iter(self.hosts)
        key = "data" if post else "params"
        wire = None if late is None else (lambda: {key: [*params, *late()]})

        def one_host() -> requests.Response:
            base = next(hosts)
            try:
                if post:
                    return self.request("POST", f"{cmd}.php", base_url=base, data=params,
                                        late=wire)
                return self.request("GET", f"{cmd}.php", base_url=base, params=params,
                                    late=wire)
            except GatewayUnavailable as exc:
                if never_left(exc):
                    log.warning("smsc_host_unreachable", host=urlsplit(base).netloc, cmd=cmd)
                raise

        walk = Retrying(retry=retry_if_exception(never_left),
                        stop=stop_after_attempt(len(self.hosts)), wait=wait_none(),
                        sleep=_no_sleep, reraise=True)
        return walk(one_host)


def _no_sleep(_: float) -> None:
    """The next mirror is tried at once."""


def derive_mirrors(base_url: str) -> list[str]:
    """https://smscentre.com/sys -> https://www2.smscentre.com/sys … www5 (none for IPs)."""
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    if not host or host == "localhost" or host.replace(".", "").isdigit() or ":" in host:
        return []
    host = host.removeprefix("www.")
    port = f":{parts.port}" if parts.port else ""
    return [urlunsplit(parts._replace(netloc=f"{p}.{host}{port}")).rstrip("/")
            for p in MIRROR_PREFIXES]


def list_param(messages: Sequence[OutgoingMessage]) -> str:
    """`list=` lines "phone:text"; a newline inside a text travels as the two chars \\n."""
    return "\n".join(f"{digits(m.recipient)}:{m.text.replace(chr(10), chr(92) + 'n')}"
                     for m in messages)


def _askable(query: StatusQuery) -> bool:
    pid = query.provider_message_id
    return bool(pid) and "," not in pid and bool(digits_of(query.recipient))


def parse_callback(form: Mapping[str, str]) -> list[StatusResult]:
    """SMSC's status callback (form POST: id, phone, status, err, time) -> one result."""
    def field(key: str) -> str:
        value = form.get(key)
        return value.strip() if isinstance(value, str) else ""

    msg_id, code = field("id"), as_int(field("status"))
    if not msg_id or code is None:
        raise MalformedResponse("callback without id or status", provider=PROVIDER)
    phone = digits_of(field("phone"))
    err = as_int(field("err"))
    return [StatusResult(
        provider_message_id=msg_id, status=status_for(code), raw_code=str(code),
        updated_at=as_float(field("time")) or as_float(field("ts")),
        error=DELIVERY_ERRORS.get(err, f"err {err}") if err else None,
        recipient=f"+{phone}" if phone else None,
    )]
