"""1000sms.ru code tables: `msg.err_code` -> smsq error class, `state` -> Status.

Kept apart from the wire code so the whole vocabulary reads as one table
(providers.md §5.4, §5.5) and `error_class` is the one function that decides
how a gateway error is retried.
"""

from __future__ import annotations

from providers.errors import (
    GatewayUnavailable,
    InvalidRecipient,
    MessageRejected,
    PermanentError,
    ProviderAuthError,
    SmsqError,
)
from providers.models import Status

OK = 0

# err_code -> (class, what it means). Descriptions are ours, not the gateway's text.
ERRORS: dict[int, tuple[type[SmsqError], str]] = {
    1: (PermanentError, "malformed SMS id"),
    2: (ProviderAuthError, "wrong login or password"),
    7: (MessageRejected, "required parameters missing"),
    99: (GatewayUnavailable, "sending transaction failed"),
    501: (GatewayUnavailable, "transaction number list not found, try later"),
    # 602 means "no such user" or "no such SMS"; outside a report it is the account.
    602: (ProviderAuthError, "user or SMS does not exist"),
    603: (PermanentError, "bad user or SMS status data"),
    604: (ProviderAuthError, "bad user id"),
    605: (ProviderAuthError, "account blocked"),
    607: (MessageRejected, "sender name not allowed"),
    608: (MessageRejected, "sender name length not allowed"),
    609: (PermanentError, "mobile operator not connected"),
    610: (PermanentError, "no tariff on the account"),
    611: (PermanentError, "SMS price misconfigured"),
    612: (PermanentError, "bad tariff group id"),
    614: (PermanentError, "tariff group does not exist"),
    615: (PermanentError, "bad tariff group data"),
    616: (MessageRejected, "no sending source given"),
    617: (InvalidRecipient, "bad recipient number format"),
    618: (InvalidRecipient, "recipient in the black list"),
    619: (InvalidRecipient, "number is not a valid SMSC number"),
    620: (MessageRejected, "sender name must be latin"),
    621: (MessageRejected, "sender name has more than 2 digits or is shorter than 4"),
    622: (InvalidRecipient, "recipient in the global black list"),
    623: (ProviderAuthError, "not enough money on the account"),
    624: (MessageRejected, "forbidden words in the text"),
    699: (GatewayUnavailable, "gateway could not connect"),
}

# On get_msg_report these codes mean "the gateway does not know this SMS".
REPORT_NOT_FOUND = frozenset({1, 602, 603})

# state -> (normalised status, the gateway's meaning)
STATES: dict[int, Status] = {
    4: Status.QUEUED,  # in the queue to the SMSC
    8: Status.SENT,  # handed to the SMSC
    0: Status.SENT,  # sent
    1: Status.DELIVERED,
    2: Status.UNDELIVERED,
    16: Status.FAILED,  # not accepted by the SMSC
    34: Status.EXPIRED,  # sibling platform: undelivered, validity expired
}


def error_class(code: int) -> type[SmsqError]:
    """The one decision on an err_code: which smsq error it is (unknown codes: permanent)."""
    return ERRORS.get(code, (PermanentError, ""))[0]


def describe(code: int) -> str:
    return ERRORS.get(code, (PermanentError, "undocumented error"))[1]


def error_for(code: int, provider: str, http_status: int | None = None) -> SmsqError:
    """An smsq error for a non-zero err_code, carrying the code and never a body."""
    cls = error_class(code)
    return cls(describe(code), provider=provider, http_status=http_status, code=code)


def state_status(state: int | None) -> Status:
    """The normalised status of a report's `state`; undocumented states are UNKNOWN."""
    if state is None:
        return Status.UNKNOWN
    return STATES.get(state, Status.UNKNOWN)
