"""The global limiter's slot schedule on a real redis-server (no real sleeping)."""

from __future__ import annotations

from worker.limiter import RateLimiter


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def slot_us(limiter: RateLimiter, account: str) -> int:
    return int(limiter.r.get(limiter.key(account)) or 0)


def test_late_sender_pushes_the_next_slots_back(redis_client):
    """A send that is ready 50 ms after its slot moves every later slot back by 50 ms."""
    clock = FakeMonotonic()
    limiter = RateLimiter(redis_client, margin=0.0, sleep=clock.sleep, clock=clock)

    def slow_before_send() -> None:
        clock.now += 0.050

    limiter.acquire("acc-late", 10.0)
    on_time = slot_us(limiter, "acc-late")
    limiter.acquire("acc-late", 10.0, before_send=slow_before_send)
    assert slot_us(limiter, "acc-late") - on_time >= 100_000 + 50_000 - 1_000
    assert limiter.late >= 0.049


def test_on_time_sender_keeps_the_schedule(redis_client):
    """Without lateness the slots stay exactly one interval apart."""
    clock = FakeMonotonic()
    limiter = RateLimiter(redis_client, margin=0.0, sleep=clock.sleep, clock=clock)
    limiter.acquire("acc-ok", 10.0)
    first = slot_us(limiter, "acc-ok")
    limiter.acquire("acc-ok", 10.0)
    assert slot_us(limiter, "acc-ok") - first == 100_000
    assert limiter.late == 0.0


def test_before_send_runs_without_a_rate(redis_client):
    """An account without a limit still runs the on-wire callback."""
    calls: list[int] = []
    RateLimiter(redis_client).acquire("acc-free", None, before_send=lambda: calls.append(1))
    assert calls == [1]
