"""The error tree (shared with providers) plus the worker's own conditions."""

from __future__ import annotations

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
    """Redis (the ledger and broker) cannot be reached; nothing was accepted."""


__all__ = [
    "ConfigurationError", "GatewayUnavailable", "InvalidRecipient", "LedgerUnavailable",
    "MalformedResponse", "MessageRejected", "OutcomeUnknown", "PermanentError",
    "ProviderAuthError", "RateLimited", "SmsqError", "TransientError", "ValidationError",
]
