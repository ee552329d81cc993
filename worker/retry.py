"""Retry policy as data: what an error means, and how long to wait before the next try.

One function, `outcome`, decides what an error means for the messages it hit
(the error tree is classified once, at the provider boundary):

    RETRY     TransientError (5xx, 429, documented temporary codes): re-queue with backoff
    FAILOVER  ProviderAuthError (bad key, no money, blocked): the route's next account
    UNKNOWN   OutcomeUnknown (the request may have been processed): never resend, reconcile
    FINAL     any other error: the message ends failed (or rejected, see `final_status`)

Three waits, each a frozen value built from settings (`Policy.from_settings`):

  in-call   tenacity, seconds at most, only while the request provably never left
            (`never_left`); SMSC's mirror hosts use the same test in `providers/smsc.py`
  re-queue  exponential backoff with jitter, bounded attempts (SMSQ_BACKOFF_BASE,
            SMSQ_BACKOFF_MAX, SMSQ_MAX_ATTEMPTS); a gateway's retry_after is a floor
  polling   the status-check interval doubles per check up to SMSQ_POLL_MAX_INTERVAL

`sleep` and the random source are injected, so tests record the waits.
"""

from __future__ import annotations

import enum
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from providers.errors import (
    ConfigurationError,
    InvalidRecipient,
    MessageRejected,
    OutcomeUnknown,
    ProviderAuthError,
    TransientError,
    never_left,
)
from providers.models import Status
from worker.settings import Settings

T = TypeVar("T")
__all__ = ["InCall", "Outcome", "Policy", "Polling", "Requeue", "final_status", "never_left",
           "outcome"]


class Outcome(enum.StrEnum):
    RETRY = "retry"
    FAILOVER = "failover"
    UNKNOWN = "unknown"
    FINAL = "final"


def outcome(error: BaseException) -> Outcome:
    """The one decision: what `error` means for the messages of the request it hit."""
    if isinstance(error, TransientError):
        return Outcome.RETRY
    if isinstance(error, ProviderAuthError):
        return Outcome.FAILOVER
    if isinstance(error, OutcomeUnknown):
        return Outcome.UNKNOWN
    return Outcome.FINAL


def final_status(error: BaseException) -> Status:
    """A message that cannot be sent: `rejected` when the gateway refused it, else `failed`."""
    if isinstance(error, InvalidRecipient | MessageRejected):
        return Status.REJECTED
    return Status.FAILED


@dataclass(frozen=True)
class InCall:
    """Retries inside one task, for a request that never left (connect refused, DNS)."""

    attempts: int = 3
    wait_base: float = 0.2
    wait_max: float = 1.0

    def call(self, fn: Callable[..., T], *args: object,
             sleep: Callable[[float], None] = time.sleep) -> T:
        retrying = Retrying(retry=retry_if_exception(never_left),
                            stop=stop_after_attempt(self.attempts),
                            wait=wait_exponential(multiplier=self.wait_base, max=self.wait_max),
                            sleep=sleep, reraise=True)
        return retrying(fn, *args)


@dataclass(frozen=True)
class Requeue:
    """Back to `queued` with a growing, jittered delay; `attempts` sends at most."""

    base: float = 2.0
    cap: float = 300.0
    attempts: int = 5
    jitter: tuple[float, float] = (0.5, 1.0)
    uniform: Callable[[float, float], float] = field(default=random.uniform, compare=False)

    def exhausted(self, attempt: int) -> bool:
        """`attempt` (1 for the first send) was the last one allowed."""
        return attempt >= self.attempts

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds before the send after `attempt`; never less than the gateway asked."""
        ceiling = min(self.cap, self.base * _doubled(attempt))
        return max(ceiling * self.uniform(*self.jitter), retry_after or 0.0)


@dataclass(frozen=True)
class Polling:
    """Status checks: the interval doubles per check up to `cap`; errors wait `after_error`."""

    interval: float = 30.0
    cap: float = 1800.0
    after_error: float = 30.0

    def next_in(self, check: int) -> float:
        """Seconds until the check after check number `check` (1 for the first)."""
        return min(self.cap, self.interval * _doubled(check))


def _doubled(n: int) -> float:
    """2 ** (n - 1), the exponent bounded so that no count, however large, overflows."""
    return 2.0 ** min(max(n - 1, 0), 1000)


@dataclass(frozen=True)
class Policy:
    """The three waits of one engine."""

    in_call: InCall = InCall()
    requeue: Requeue = Requeue()
    polling: Polling = Polling()

    @classmethod
    def from_settings(cls, cfg: Settings) -> Policy:
        """The engine's policy; a backoff that is not a positive number stops the start."""
        for name, value in (("SMSQ_BACKOFF_BASE", cfg.backoff_base),
                            ("SMSQ_BACKOFF_MAX", cfg.backoff_max)):
            if not (math.isfinite(value) and value > 0):
                raise ConfigurationError(f"{name} must be a positive number of seconds, "
                                         f"got {value!r}")
        return cls(requeue=Requeue(base=cfg.backoff_base, cap=cfg.backoff_max,
                                   attempts=cfg.max_attempts),
                   polling=Polling(interval=cfg.poll_interval, cap=cfg.poll_max_interval))
