"""The error tree (shared with providers) plus the worker's own conditions.

Redis errors become `LedgerUnavailable` here and only here (`maps_redis_errors`
on the Ledger), as httpx maps its transport's exceptions in one place: callers
above the ledger see smsq's error tree, never redis-py's.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import redis

from providers.errors import (
    ConfigurationError,
    GatewayUnavailable,
    InvalidRecipient,
    MalformedResponse,
    MessageRejected,
    OutcomeUnknown,
    PermanentError,
    ProviderAuthError,
    RateLimited,
    SmsqError,
    TransientError,
    ValidationError,
)


class LedgerUnavailable(TransientError):
    """Redis (the ledger and broker) cannot be reached or did not answer in time."""


C = TypeVar("C", bound=type)
UNREACHABLE = (redis.ConnectionError, redis.TimeoutError)


def _mapped(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except UNREACHABLE as exc:
            raise LedgerUnavailable(f"Redis is unreachable: {type(exc).__name__}") from None

    return call


def maps_redis_errors(cls: C) -> C:
    """Every public method of `cls` raises LedgerUnavailable where Redis is unreachable."""
    for name, member in list(vars(cls).items()):
        if callable(member) and not name.startswith("_"):
            setattr(cls, name, _mapped(member))
    return cls


__all__ = [
    "ConfigurationError", "GatewayUnavailable", "InvalidRecipient", "LedgerUnavailable",
    "MalformedResponse", "MessageRejected", "OutcomeUnknown", "PermanentError",
    "ProviderAuthError", "RateLimited", "SmsqError", "TransientError", "ValidationError",
    "maps_redis_errors",
]
