"""Retry policy as data: one outcome per error, waits recorded instead of slept."""

from __future__ import annotations

import random

import pytest

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
from providers.models import Status
from worker import settings
from worker.ledger.errors import LedgerUnavailable
from worker.retry import InCall, Outcome, Policy, Polling, Requeue, final_status, outcome


@pytest.mark.parametrize(("error", "expected"), [
    (RateLimited("429"), Outcome.RETRY),
    (GatewayUnavailable("5xx", http_status=502), Outcome.RETRY),
    (GatewayUnavailable("refused", never_reached=True), Outcome.RETRY),
    (TransientError("temporary code"), Outcome.RETRY),
    (LedgerUnavailable("redis down"), Outcome.RETRY),
    (ProviderAuthError("no money"), Outcome.FAILOVER),
    (OutcomeUnknown("read timeout"), Outcome.UNKNOWN),
    (MalformedResponse("junk"), Outcome.UNKNOWN),
    (InvalidRecipient("bad number"), Outcome.FINAL),
    (MessageRejected("bad text"), Outcome.FINAL),
    (PermanentError("permanent"), Outcome.FINAL),
    (ValidationError("bad input"), Outcome.FINAL),
    (ConfigurationError("bad settings"), Outcome.FINAL),
    (SmsqError("anything else"), Outcome.FINAL),
    (RuntimeError("a bug"), Outcome.FINAL),
])
def test_outcome_of_each_error_class(error, expected):
    """Every class of the error tree has exactly one outcome."""
    assert outcome(error) is expected


def test_final_status_rejects_what_the_gateway_refused():
    """A refused recipient or text ends `rejected`; any other final error ends `failed`."""
    assert final_status(InvalidRecipient("x")) is Status.REJECTED
    assert final_status(MessageRejected("x")) is Status.REJECTED
    assert final_status(ProviderAuthError("x")) is Status.FAILED
    assert final_status(PermanentError("x")) is Status.FAILED


class Flaky:
    """Raises the given errors in turn, then answers."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self, payload: str) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return payload


def refused() -> GatewayUnavailable:
    return GatewayUnavailable("refused", never_reached=True)


def test_in_call_retries_a_request_that_never_left_with_growing_waits():
    """Connect refused twice, then an answer: two recorded waits, no real sleep."""
    waits: list[float] = []
    fn = Flaky(refused(), refused())
    assert InCall().call(fn, "ok", sleep=waits.append) == "ok"
    assert fn.calls == 3
    assert waits == [0.2, 0.4]


def test_in_call_gives_up_after_its_attempts_with_the_last_error():
    """Refused every time: `attempts` tries, then the error itself (not a wrapper)."""
    waits: list[float] = []
    fn = Flaky(*[refused() for _ in range(10)])
    with pytest.raises(GatewayUnavailable):
        InCall(attempts=4, wait_base=0.5, wait_max=1.0).call(fn, "x", sleep=waits.append)
    assert fn.calls == 4
    assert waits == [0.5, 1.0, 1.0]


@pytest.mark.parametrize("error", [
    GatewayUnavailable("502 after the request left", http_status=502),
    OutcomeUnknown("read timeout: the gateway may have sent it"),
    RateLimited("429", retry_after=0.1),
    InvalidRecipient("bad number"),
])
def test_in_call_never_repeats_a_request_that_may_have_left(error):
    """Anything but never-reached is raised at once: a second request could send twice."""
    waits: list[float] = []
    fn = Flaky(error)
    with pytest.raises(type(error)):
        InCall().call(fn, "x", sleep=waits.append)
    assert fn.calls == 1 and waits == []


def test_requeue_backoff_doubles_within_jitter_and_cap():
    """Seeded: every delay lies in [50%, 100%] of min(cap, base * 2**(attempt-1))."""
    seed = random.randrange(2**32)
    print(f"seed={seed}")
    rnd = random.Random(seed)
    policy = Requeue(base=2.0, cap=60.0, attempts=50, uniform=rnd.uniform)
    for attempt in range(1, 40):
        ceiling = min(60.0, 2.0 * 2 ** (attempt - 1))
        delay = policy.delay(attempt)
        assert 0.5 * ceiling <= delay <= ceiling, (seed, attempt, delay)


def test_requeue_honours_the_gateways_retry_after_as_a_floor():
    """A gateway asking for 120 s gets at least 120 s, even past the cap."""
    policy = Requeue(base=1.0, cap=10.0, uniform=lambda a, b: a)
    assert policy.delay(1, retry_after=120.0) == 120.0
    assert policy.delay(1, retry_after=None) == 0.5


def test_requeue_attempts_are_bounded():
    """The fifth send of a five-attempt policy is the last."""
    policy = Requeue(attempts=5)
    assert [policy.exhausted(a) for a in range(1, 7)] == [False] * 4 + [True] * 2


def test_polling_interval_doubles_up_to_its_cap():
    """30, 60, 120, ... then the cap, never more."""
    policy = Polling(interval=30.0, cap=200.0)
    assert [policy.next_in(c) for c in range(1, 6)] == [30.0, 60.0, 120.0, 200.0, 200.0]


def test_policy_is_built_from_the_environment():
    """SMSQ_BACKOFF_BASE / _MAX / MAX_ATTEMPTS and the poll settings reach the policy."""
    cfg = settings.load({"SMSQ_BACKOFF_BASE": "0.5", "SMSQ_BACKOFF_MAX": "7",
                         "SMSQ_MAX_ATTEMPTS": "3", "SMSQ_POLL_INTERVAL": "4",
                         "SMSQ_POLL_MAX_INTERVAL": "9"})
    policy = Policy.from_settings(cfg)
    assert (policy.requeue.base, policy.requeue.cap, policy.requeue.attempts) == (0.5, 7.0, 3)
    assert (policy.polling.interval, policy.polling.cap) == (4.0, 9.0)


@pytest.mark.parametrize("raw", ["fast", "1e", "\x00", "２"])
def test_a_bad_backoff_setting_fails_at_start_naming_it(raw):
    """Hostile values are a ConfigurationError naming the variable, not a crash later."""
    try:
        settings.load({"SMSQ_BACKOFF_MAX": raw})
    except ConfigurationError as exc:
        assert "SMSQ_BACKOFF_MAX" in str(exc)
    else:
        assert float(raw) > 0  # only a value Python reads as a number may pass


@pytest.mark.parametrize(("name", "raw"), [
    ("SMSQ_BACKOFF_BASE", "nan"), ("SMSQ_BACKOFF_BASE", "0"), ("SMSQ_BACKOFF_MAX", "-5"),
    ("SMSQ_BACKOFF_MAX", "inf"), ("SMSQ_BACKOFF_MAX", "-1e-9"),
])
def test_a_backoff_that_is_not_a_positive_number_stops_the_engine(name, raw):
    """nan, 0, negative or infinite backoffs would poison queued scores: refused at start."""
    cfg = settings.load({name: raw})
    with pytest.raises(ConfigurationError, match=name):
        Policy.from_settings(cfg)


def test_huge_attempt_and_check_counts_stay_at_the_cap():
    """A corrupted counter (10**6 checks) waits the cap; nothing overflows."""
    assert Requeue(cap=300.0, uniform=lambda a, b: b).delay(10**6) == 300.0
    assert Polling(cap=1800.0).next_in(10**6) == 1800.0
