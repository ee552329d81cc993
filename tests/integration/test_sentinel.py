"""Failover under load on loopback: one primary, one replica, three sentinels (real
redis-server processes), real Celery worker and beat on `sentinel://`, the sandbox over
HTTP. The primary is SIGKILLed mid-send and the sentinels promote the replica; with
SMSQ_REDIS_MIN_REPLICAS=1 nothing accepted is lost and nothing is sent twice. The old
primary, restarted, comes back as a replica of the new one.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Iterator

import pytest

from tests.integration.conftest import all_final, wait_for
from worker import api, settings
from worker.local.replication import ReplicatedRedis
from worker.local.stack import Stack
from worker.ops import health

pytestmark = pytest.mark.integration
N_JOBS, PER_JOB = 3, 100


@pytest.fixture
def replicated() -> Iterator[ReplicatedRedis]:
    rr = ReplicatedRedis(sentinels=3, down_after_ms=1000, failover_timeout_ms=3000).start()
    yield rr
    rr.cleanup()


def test_sentinel_failover_loses_nothing_and_sends_nothing_twice(
        replicated: ReplicatedRedis) -> None:
    rr = replicated
    stack = Stack(redis_url=rr.url, queued_for=0.3, final_after=1.0, poll_interval=1.0,
                  extra_env={"SMSQ_REDIS_MIN_REPLICAS": "1", "SMSQ_REDIS_WAIT_TIMEOUT": "1",
                             "SMSQ_SMS1000_RATE": "40", "SMSQ_VISIBILITY_TIMEOUT": "15"})
    try:
        stack.start(workers=1, concurrency=4)
        stack.use_here()
        name = health.redis_name(settings.load())
        assert f"master 127.0.0.1:{rr.primary.port}" in name and str(rr.sentinel_ports[2]) in name

        phones = [f"+7916{i:07d}" for i in range(N_JOBS * PER_JOB)]
        ids: list[str] = []
        for j in range(N_JOBS):
            chunk = phones[j * PER_JOB:(j + 1) * PER_JOB]
            ids += api.submit(messages={p: f"failover {p}" for p in chunk},
                              account="sms1000").ids
        # Mid-send: some requests out, most still to go.
        assert wait_for(lambda: len(stack.sandbox_messages()) >= 40, timeout=60, step=0.05)
        assert rr.primary.proc is not None
        os.kill(rr.primary.proc.pid, signal.SIGKILL)
        rr.primary.proc.wait()
        rr.primary.proc = None
        sent_at_kill = len(stack.sandbox_messages())
        assert sent_at_kill < len(ids), "the kill came after every send: not mid-send"

        assert wait_for(lambda: rr.master_port() == rr.replica.port, timeout=30), \
            "the sentinels did not promote the replica"
        rr.primary.start()  # the old primary, empty, on its old port
        assert wait_for(lambda: rr.linked(rr.primary), timeout=30), \
            "the old primary did not come back as a replica"
        assert rr.client(rr.primary).info("replication")["master_port"] == rr.replica.port

        assert wait_for(lambda: all_final(ids), timeout=90, step=0.5), \
            Counter(s["status"] for s in api.get_status(ids))
        statuses = Counter(s["status"] for s in api.get_status(ids))
        print(f"sent before the kill: {sent_at_kill}; statuses: {dict(statuses)}")
        # `unknown` is a request that was in flight when Redis died: never resent (by
        # design), looked up where the gateway can. At most one per pool process.
        assert statuses["unknown"] <= 4, statuses
        sent = Counter(m["phone"] for m in stack.sandbox_messages())
        twice = {p: n for p, n in sent.items() if n > 1}
        assert not twice, f"sent more than once: {twice}"
        # Every message the ledger calls sent was sent; none it calls refused was.
        rows = api.get_status(ids)
        left = {p.lstrip("+") for p, row in zip(phones, rows, strict=True)
                if row["status"] in ("delivered", "undelivered", "expired", "unknown")}
        failed = {p.lstrip("+") for p, row in zip(phones, rows, strict=True)
                  if row["status"] == "failed"}  # the gateway's final report may say failed
        assert left <= set(sent) <= left | failed, (sorted(left - set(sent))[:10],
                                                    sorted(set(sent) - left - failed)[:10])
        assert len(left) > len(ids) * 0.8  # the sandbox's own failure rate, not a loss
        new_primary = rr.client(rr.replica)
        assert new_primary.zcard("smsq:q") == 0 and new_primary.zcard("smsq:s") == 0
    finally:
        stack.stop()
        api.reset()
