"""The provider base class: one gateway account behind an injected `requests.Session`.

A provider never builds its own session (the registry's builder does, with
timeouts and a connection pool; tests mount a simulator into it). Transport
failures are translated into smsq's error tree in exactly one place,
`Provider._transport`, and every HTTP request passes the `throttle` hook first,
so the global rate limiter sees each request, including re-authentication and
mirror attempts.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Sequence
from typing import Any, ClassVar

import requests
import urllib3.exceptions

from providers.errors import (
    GatewayUnavailable,
    MalformedResponse,
    OutcomeUnknown,
    ProviderAuthError,
    RateLimited,
    SmsqError,
)
from providers.models import (
    AccountConfig,
    Balance,
    OutgoingMessage,
    SendResult,
    StatusQuery,
    StatusResult,
)
from providers.reports import ParsedReport
from providers.validity import WireValidity, bucket

# Called before every request; what it returns (if anything) is called once the request
# is over, reply or error alike (the rate limiter logs when the reply came back).
Throttle = Callable[[], Callable[[], None] | None]
DEFAULT_TIMEOUT = (3.05, 15.0)  # connect, read (seconds)


class Provider(ABC):
    """One gateway account. Subclasses implement the gateway's wire format only."""

    name: ClassVar[str]
    default_base_url: ClassVar[str]
    credential_fields: ClassVar[tuple[str, ...]] = ()
    max_recipients: ClassVar[int] = 100  # per send request
    max_status_ids: ClassVar[int] = 100  # per status request
    max_segments: ClassVar[int | None] = None  # gateway refuses longer texts
    per_recipient_texts: ClassVar[bool] = False  # one request may carry different texts
    default_rate: ClassVar[float | None] = None  # requests per second, when documented
    reports: ClassVar[bool] = False  # the gateway pushes delivery reports
    # The gateway's validity/TTL parameter (None: it takes none, the deadline stays ours).
    validity: ClassVar[WireValidity | None] = None

    def __init__(
        self,
        session: requests.Session,
        account: AccountConfig,
        *,
        throttle: Throttle | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    ) -> None:
        self.session = session
        self.account = account
        self.throttle = throttle
        self.timeout = timeout
        self.base_url = (account.base_url or self.default_base_url).rstrip("/")
        self.clock: Callable[[], float] = time.time  # what remaining validity is counted by

    # -- what the pipeline calls -------------------------------------------------

    def batch_key(self, message: OutgoingMessage) -> Hashable:
        """Messages with equal keys may share one send request (deadlines within one
        validity unit of each other: see providers.validity.bucket)."""
        due = bucket(message, self.validity)
        if self.per_recipient_texts:
            return (message.sender, due)
        return (message.sender, message.text, due)

    @abstractmethod
    def send(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        """Send one request (`max_recipients` at most, one batch key).

        Returns one result per message. Raises for request-level outcomes:
        TransientError (nothing sent), PermanentError (nothing sent, never will
        be), OutcomeUnknown (may have been sent).
        """

    @abstractmethod
    def status(self, queries: Sequence[StatusQuery]) -> list[StatusResult]:
        """Look up `max_status_ids` messages at most; unknown ids come back UNKNOWN."""

    @abstractmethod
    def balance(self) -> Balance: ...

    def lookup(self, message: OutgoingMessage, sent_after: float) -> StatusResult | None:
        """Find a message whose send outcome is unknown; None when the gateway cannot say."""
        return None

    @classmethod
    def report_key(cls, provider_message_id: str, recipient: str | None) -> str:
        """What identifies one message in this gateway's reports (SMSC: id and phone)."""
        return provider_message_id

    @classmethod
    def parse_report(cls, body: bytes, content_type: str) -> ParsedReport:
        """A pushed delivery report -> (results, the reply the gateway expects).

        Only for gateways with `reports = True`; raises an SmsqError on a bad body.
        """
        raise NotImplementedError(f"{cls.name} does not push delivery reports")

    @classmethod
    def verify_report(cls, body: bytes, content_type: str,
                      accounts: Sequence[AccountConfig]) -> bool:
        """True when the report is signed by one of `accounts` (gateways that sign override)."""
        return True

    def secrets(self) -> list[str]:
        """Every secret value this provider may put on the wire (for log scrubbing tests)."""
        return self.account.secret_values()

    # -- HTTP plumbing -------------------------------------------------------------

    def credential(self, key: str) -> str:
        value = self.account.credentials.get(key)
        return value.reveal() if value is not None else ""

    def request(
        self,
        method: str,
        path: str,
        *,
        base_url: str | None = None,
        late: Callable[[], dict[str, Any]] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """One HTTP request through the throttle, with transport failures classified.

        `late` gives request arguments (`data=`, `params=`, `json=`) that depend on the
        moment the request leaves: it runs after the throttle's wait, right before the
        request goes out (a remaining validity is counted then, not before the wait).
        """
        url = (base_url or self.base_url).rstrip("/") + "/" + path.lstrip("/")
        done = self.throttle() if self.throttle is not None else None
        kwargs.setdefault("timeout", self.timeout)
        try:
            if late is not None:
                kwargs.update(late())
            return self._transport(method, url, **kwargs)
        finally:
            if done is not None:
                done()

    def _transport(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """The one place low-level failures become smsq errors."""
        try:
            return self.session.request(method, url, **kwargs)
        except requests.exceptions.ConnectTimeout:
            raise GatewayUnavailable(
                "connect timeout", provider=self.name, never_reached=True
            ) from None
        except requests.exceptions.ReadTimeout:
            raise OutcomeUnknown("read timeout after the request was sent",
                                 provider=self.name) from None
        except requests.exceptions.ChunkedEncodingError:
            raise OutcomeUnknown("connection dropped mid-reply", provider=self.name) from None
        except requests.exceptions.ConnectionError as exc:
            if _never_reached(exc):
                raise GatewayUnavailable(
                    "connection refused or host unreachable", provider=self.name,
                    never_reached=True,
                ) from None
            raise OutcomeUnknown("connection dropped after the request was sent",
                                 provider=self.name) from None
        except requests.exceptions.RequestException as exc:
            raise GatewayUnavailable(f"request failed: {type(exc).__name__}",
                                     provider=self.name, never_reached=True) from None

    # -- helpers for subclasses --------------------------------------------------

    def check_http(self, response: requests.Response, *, sending: bool) -> None:
        """Classify HTTP-level failures every gateway shares (401/403, 429, 5xx)."""
        code = response.status_code
        if code in (401, 403):
            raise ProviderAuthError("authentication failed", provider=self.name,
                                    http_status=code)
        if code == 429:
            raise RateLimited("throttled by the gateway", provider=self.name,
                              http_status=429, retry_after=_retry_after(response, 1.0))
        if code >= 500:
            raise GatewayUnavailable("gateway error", provider=self.name, http_status=code,
                                     retry_after=_retry_after(response, None))

    def parse_json(self, response: requests.Response) -> Any:
        """The body as JSON, or MalformedResponse (never a crash)."""
        try:
            return json.loads(response.content.decode(response.encoding or "utf-8"))
        except (ValueError, UnicodeDecodeError, LookupError):
            raise MalformedResponse("unparseable reply", provider=self.name,
                                    http_status=response.status_code) from None

    def malformed(self, what: str, response: requests.Response | None = None) -> SmsqError:
        return MalformedResponse(
            f"unexpected reply: {what}", provider=self.name,
            http_status=None if response is None else response.status_code,
        )


def _never_reached(exc: BaseException) -> bool:
    """True when the TCP connection was never established (refused, DNS, unreachable)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, urllib3.exceptions.NewConnectionError | ConnectionRefusedError):
            return True
        if isinstance(current, urllib3.exceptions.NameResolutionError):
            return True
        if isinstance(current, urllib3.exceptions.MaxRetryError):
            current = current.reason
            continue
        nxt = current.args[0] if current.args and isinstance(current.args[0],
                                                             BaseException) else None
        current = nxt or current.__cause__ or current.__context__
    return False


def _retry_after(response: requests.Response, default: float | None) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        return default
