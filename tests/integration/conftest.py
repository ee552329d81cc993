"""Integration fixtures: a real redis-server on a free port, real Celery worker and beat
processes, the sandbox over loopback HTTP, the receiver over HTTP (worker.local.stack.Stack)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from worker import api
from worker.local.stack import Stack

pytestmark = pytest.mark.integration


def use_stack(stack: Stack) -> None:
    """Point this test process (the producer) at the stack."""
    stack.use_here()


def wait_for(predicate: Callable[[], bool], timeout: float = 60.0, step: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def all_final(ids: list[str], allowed: tuple[str, ...] = ("delivered", "undelivered",
              "expired", "rejected", "failed", "unknown", "cancelled")) -> bool:
    return all(s["status"] in allowed for s in api.get_status(ids))


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    s = Stack(queued_for=0.3, final_after=1.5, poll_interval=1.0)
    s.start(workers=1, concurrency=4)
    use_stack(s)
    yield s
    s.stop()
    api.reset()


@pytest.fixture
def fresh_stack() -> Iterator[Stack]:
    """A stack of the test's own, for tests that kill or reconfigure processes."""
    s = Stack(queued_for=0.3, final_after=1.5, poll_interval=1.0)
    yield s
    s.stop()
    api.reset()
