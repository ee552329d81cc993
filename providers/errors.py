"""smsq's error tree, shared by every layer.

Errors are classified once, at the provider boundary, so that the pipeline
decides retry / fail / reconcile from the class alone::

    SmsqError
    ├── ConfigurationError      bad settings: fail at start-up, never per message
    ├── ValidationError         bad input from a producer: clear message, nothing enqueued
    ├── PermanentError          never retried -> failed / rejected
    │   ├── InvalidRecipient
    │   ├── MessageRejected
    │   └── ProviderAuthError   also: no money, blocked account (fail over to next account)
    ├── TransientError          retried with backoff; carries retry_after
    │   ├── RateLimited
    │   └── GatewayUnavailable  the request provably never reached the gateway, or 5xx
    └── OutcomeUnknown          the request may have been processed -> unknown, reconcile
        └── MalformedResponse   the gateway answered something we cannot parse

Exceptions carry data (provider, HTTP status, provider code, retry_after) and
never credentials or message bodies.
"""

from __future__ import annotations

from typing import Any


class SmsqError(Exception):
    """Base of every error smsq raises on purpose."""

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        http_status: int | None = None,
        code: str | int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.http_status = http_status
        self.code = None if code is None else str(code)
        self.retry_after = retry_after

    def __str__(self) -> str:
        parts = [self.message]
        if self.provider:
            parts.append(f"provider={self.provider}")
        if self.http_status is not None:
            parts.append(f"http={self.http_status}")
        if self.code is not None:
            parts.append(f"code={self.code}")
        return " ".join(parts) if len(parts) == 1 else f"{parts[0]} ({', '.join(parts[1:])})"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe summary for the ledger's `last_error`."""
        return {
            "class": type(self).__name__,
            "message": self.message,
            "provider": self.provider,
            "http_status": self.http_status,
            "code": self.code,
        }


class ConfigurationError(SmsqError):
    """Settings are missing or wrong; raised at start-up, not per message."""


class ValidationError(SmsqError):
    """A producer's input is bad; `field` names what is wrong."""

    def __init__(self, message: str, *, field: str | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.field = field

    def __str__(self) -> str:
        base = super().__str__()
        return f"{self.field}: {base}" if self.field else base

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "field": self.field}


class PermanentError(SmsqError):
    """Retrying cannot help: the message ends failed or rejected."""


class InvalidRecipient(PermanentError):
    """The gateway refuses this recipient (bad number, no route, stop list)."""


class MessageRejected(PermanentError):
    """The gateway refuses the message itself (text, sender, too long)."""


class ProviderAuthError(PermanentError):
    """The account cannot send: bad credentials, no money, blocked."""


class ValidityExpired(PermanentError):
    """Less validity is left than the gateway's smallest validity value: nothing was sent
    (the worker ends the message `expired`, reason `validity`; see providers.validity)."""


class TransientError(SmsqError):
    """Worth retrying later; `retry_after` is a hint in seconds."""


class RateLimited(TransientError):
    """The gateway throttled us."""


class GatewayUnavailable(TransientError):
    """The gateway could not be reached, or answered 5xx."""

    def __init__(self, message: str, *, never_reached: bool = False, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.never_reached = never_reached


class OutcomeUnknown(SmsqError):
    """The request may have been processed; never resend blindly, reconcile."""


class MalformedResponse(OutcomeUnknown):
    """The gateway's reply could not be parsed."""


def never_left(error: BaseException) -> bool:
    """The request provably never reached the gateway (connect refused or timed out, DNS):
    the one error worth another try within the same call (a moment later, another host).
    What every other error means is decided in one place, `worker.retry.outcome`."""
    return isinstance(error, GatewayUnavailable) and error.never_reached
