"""Normalised value objects exchanged between the pipeline and the providers."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from providers.errors import SmsqError


class Status(enum.StrEnum):
    """The normalised message states (see the mapping table in providers.md); which may
    move to which is the engine's table, `worker.ledger.lifecycle`."""

    SCHEDULED = "scheduled"  # a campaign recipient waiting for its sending window
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    EXPIRED = "expired"
    REJECTED = "rejected"
    FAILED = "failed"
    UNKNOWN = "unknown"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset(
    {
        Status.DELIVERED,
        Status.UNDELIVERED,
        Status.EXPIRED,
        Status.REJECTED,
        Status.FAILED,
        Status.CANCELLED,
    }
)


class Secret(str):
    """A credential: behaves as a string on the wire, never shows in repr or logs."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "Secret('***')"

    def reveal(self) -> str:
        return str.__str__(self)


@dataclass(frozen=True)
class AccountConfig:
    """One gateway account as the worker holds it; credentials never leave the worker."""

    name: str
    provider: str
    credentials: Mapping[str, Secret] = field(default_factory=dict, repr=False)
    base_url: str | None = None
    mirrors: tuple[str, ...] = ()
    rate_per_second: float | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def secret_values(self) -> list[str]:
        return [v.reveal() for v in self.credentials.values() if v]


@dataclass(frozen=True)
class OutgoingMessage:
    """One recipient's message, ready for a gateway.

    `ref` is smsq's own message id; gateways that take a client id (SMSC) get it.
    `valid_until` (epoch seconds) is its deadline: a gateway with a validity parameter
    gets what remains of it when the request leaves (providers.validity).
    """

    ref: str
    recipient: str  # E.164, "+79161234567"
    text: str
    sender: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    valid_until: float | None = None


@dataclass(frozen=True)
class SendResult:
    """What the gateway said about one recipient of a send request.

    Accepted when `provider_message_id` is set and `error` is None; otherwise
    `error` classifies the refusal (permanent, transient or unknown).
    """

    ref: str
    recipient: str
    provider_message_id: str | None = None
    error: SmsqError | None = None
    raw_code: str | None = None
    cost: Decimal | None = None
    segments: int | None = None

    @property
    def accepted(self) -> bool:
        return self.error is None and self.provider_message_id is not None


@dataclass(frozen=True)
class StatusQuery:
    """What a status lookup needs: the gateway's id, and the phone (SMSC keys by both)."""

    provider_message_id: str
    recipient: str = ""


@dataclass(frozen=True)
class StatusResult:
    """A gateway's view of one message, normalised; the raw code kept beside it."""

    provider_message_id: str
    status: Status
    raw_code: str | None = None
    updated_at: float | None = None
    sent_at: float | None = None
    cost: Decimal | None = None
    error: str | None = None
    recipient: str | None = None


@dataclass(frozen=True)
class Balance:
    amount: Decimal
    currency: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


def to_decimal(value: Any) -> Decimal | None:
    """Gateways send money as numbers or strings; both become Decimal, junk becomes None."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        result = Decimal(str(value).strip().replace(",", "."))
    except ArithmeticError:
        return None
    return result if result.is_finite() else None
