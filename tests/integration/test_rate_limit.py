"""SMS Club's 9/s under a mixed day, judged by the sandbox's own request log (issue 16).

Two worker nodes of two processes each (all queues) and beat on a real Redis,
the sandbox over loopback HTTP; one job of one text to many recipients, one of
own texts, status polling every second, so sends, status checks and re-queued
work share the account. No wall-clock assertion: the sandbox counts 429s and
the worst sliding second (its own rule, (t - 1 s, t]).
"""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Iterator

import pytest

from tests.integration.conftest import use_stack, wait_for
from worker import api
from worker.local.stack import ALL_QUEUES, Stack

pytestmark = pytest.mark.integration


def max_in_window(times: list[float], window: float = 1.0) -> int:
    ts = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(ts):
        while ts[lo] <= t - window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def club_requests(stack: Stack) -> list[dict[str, object]]:
    return [r for r in stack.sandbox_requests() if r["gateway"] == "smsclub"]


def accepted_phones(stack: Stack) -> list[str]:
    with stack.sandbox.state.lock:
        return [m.phone for m in stack.sandbox.state.messages if m.gateway == "smsclub"]


def phones(n: int, base: int) -> list[str]:
    """Distinct numbers, none ending in 0000 (the sandbox's blacklisted ones)."""
    return [f"+38097{base + 1 + i:07d}" for i in range(n)]


@pytest.fixture
def two_nodes() -> Iterator[Stack]:
    s = Stack(queued_for=0.3, final_after=1.5, poll_interval=1.0)
    s.start(workers=0, receiver=False)
    for name in ("nodeA", "nodeB"):
        s.start_worker(name, concurrency=2, queues=ALL_QUEUES)
    use_stack(s)
    yield s
    s.stop()
    api.reset()


def submit_mixed(bulk: int, own: int) -> tuple[set[str], list[str]]:
    """Both jobs; returns the phones as the gateway sees them and the job ids."""
    one = phones(bulk, 100_000)
    mine = phones(own, 200_000)
    jobs = [api.submit(one, "Your order has shipped", account="smsclub").job_id,
            api.submit(messages=[{"to": p, "text": f"Your code is {i}"}
                                 for i, p in enumerate(mine)], account="smsclub").job_id]
    return {p.lstrip("+") for p in one + mine}, jobs


def settled(jobs: list[str]) -> bool:
    """No message of the jobs is queued or sending any more."""
    return all(not ({"queued", "sending"} & set(api.job_status(j)["counts"])) for j in jobs)


def assert_within_limit(stack: Stack) -> None:
    reqs = club_requests(stack)
    assert [r for r in reqs if r["status"] == 429] == []
    assert max_in_window([float(str(r["time"])) for r in reqs]) <= 9


def test_mixed_day_never_exceeds_nine_per_second(two_nodes: Stack) -> None:
    """Bulk, own texts and status polls from 4 processes: 0 x 429, <= 9 in every second."""
    want, _ = submit_mixed(1_500, 60)
    assert wait_for(lambda: len(accepted_phones(two_nodes)) >= len(want), timeout=120)
    time.sleep(2.0)  # polling keeps going after the last send
    got = accepted_phones(two_nodes)
    assert sorted(got) == sorted(want)  # every message accepted, none twice
    paths = {str(r["path"]) for r in club_requests(two_nodes)}
    assert {"/sms/send", "/sms/status"} <= paths  # polls shared the account
    assert_within_limit(two_nodes)


def test_a_node_killed_mid_run_leaves_the_limit_intact(two_nodes: Stack) -> None:
    """SIGKILL of a node mid-send, its work recovered by the other: still 0 x 429, <= 9/s."""
    seed = random.randrange(1 << 30)
    print(f"seed={seed}")
    want, jobs = submit_mixed(500, 60)
    kill_after = random.Random(seed).randint(5, 40)
    assert wait_for(lambda: len(accepted_phones(two_nodes)) >= kill_after, timeout=60)
    two_nodes.kill("nodeA", signal.SIGKILL)
    # Leases of the killed node's claims expire (SMSQ_SEND_LEASE=20) and beat's sweep
    # re-queues what never left; what may have left becomes unknown, never resent.
    assert wait_for(lambda: settled(jobs), timeout=150), f"seed={seed}"
    got = accepted_phones(two_nodes)
    assert len(got) == len(set(got)) and set(got) <= want, f"seed={seed}"
    unknown = sum(api.job_status(j)["counts"].get("unknown", 0) for j in jobs)
    assert len(got) + unknown >= len(want), f"seed={seed}"
    assert_within_limit(two_nodes)
