"""Operations: metrics scraped over HTTP after real sends, `smsq health` and `smsq stats`
against a live stack, and `smsq health` against a stopped and a frozen Redis."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from providers.sandbox.server import free_port
from tests.integration.conftest import all_final, use_stack, wait_for
from worker import api
from worker.local.embedded import EmbeddedRedis
from worker.local.stack import Stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ops() -> Iterator[tuple[Stack, int, int, list[str]]]:
    """One stack: a prefork worker (2 children) and the receiver, each serving metrics."""
    worker_port, receiver_port = free_port(), free_port()
    s = Stack(queued_for=0.3, final_after=1.0, poll_interval=1.0,
              extra_env={"SMSQ_METRICS_PORT": str(worker_port)})
    s.start(workers=1, concurrency=2, receiver=False)
    s.extra_env["SMSQ_METRICS_PORT"] = str(receiver_port)
    s.start_receiver()
    use_stack(s)
    ids = api.submit(["+79161234501", "+79161234502", "+79161234503"], "ops test",
                     account="smsru").ids
    ids += api.submit(["+380501234501", "+380501234502"], "ops test", account="smsclub").ids
    assert wait_for(lambda: all_final(ids), timeout=60)
    yield s, worker_port, receiver_port, ids
    s.stop()
    api.reset()


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(body) for s in fam.samples}


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
          **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def smsq(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "worker.cli.main", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_worker_metrics_count_sends_made_in_pool_children(ops):
    """The worker's main process serves what its prefork children counted (multiprocess mode)."""
    _, port, _, _ = ops
    m = scrape(port)
    assert value(m, "smsq_messages_total", gateway="smsru", status="sent") == 3
    assert value(m, "smsq_messages_total", gateway="smsclub", status="sent") == 2
    assert value(m, "smsq_send_duration_seconds_count", gateway="smsru") >= 1
    assert value(m, "smsq_gateway_requests_total", account="smsclub", op="send") >= 1
    assert value(m, "smsq_limiter_wait_seconds_count", account="smsclub") >= 1


def test_worker_metrics_read_gauges_from_redis(ops):
    """Queue depths, pending checks, circuit state and beat's heartbeat come from Redis."""
    _, port, _, _ = ops
    m = scrape(port)
    assert value(m, "smsq_redis_up") == 1
    assert ("smsq_queue_depth", (("queue", "smsq.smsclub"),)) in m
    assert ("smsq_queue_depth", (("queue", "smsq.smsclub.bulk"),)) in m
    assert ("smsq_queue_depth", (("queue", "smsq.callbacks"),)) in m  # backs up when slow
    assert ("smsq_pending_status_checks", (("account", "smsru"),)) in m
    assert value(m, "smsq_circuit_state", account="smsru", state="closed") == 1
    assert value(m, "smsq_limiter_rate_per_second", account="smsclub") == 9
    assert 0 <= value(m, "smsq_beat_heartbeat_age_seconds") < 60


def test_final_statuses_by_gateway_from_reports_and_polls(ops):
    """sms.ru finals come as delivery reports (receiver), SMS Club finals from polls (worker)."""
    _, worker_port, receiver_port, ids = ops
    finals = ("delivered", "undelivered", "expired")
    statuses = [s["status"] for s in api.get_status(ids)]
    expected = (sum(1 for s in statuses[:3] if s in finals),
                sum(1 for s in statuses[3:] if s in finals))

    def counted() -> tuple[float, float]:
        w, r = scrape(worker_port), scrape(receiver_port)
        return (sum(value(w, "smsq_messages_total", gateway="smsru", status=s)
                    + value(r, "smsq_messages_total", gateway="smsru", status=s)
                    for s in finals),
                sum(value(w, "smsq_messages_total", gateway="smsclub", status=s)
                    for s in finals))

    # the task's counters are written just after its ledger transitions
    wait_for(lambda: counted() == expected, timeout=10)
    assert counted() == expected
    assert value(scrape(receiver_port), "smsq_reports_total", gateway="smsru",
                 result="received") >= 1


def test_health_on_a_live_stack_exits_zero_with_json(ops):
    """`smsq health --json` checks Redis, beat, queues and every account's balance."""
    stack = ops[0]
    done = smsq(stack.env(), "health", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    names = {c["name"]: c for c in report["checks"]}
    assert report["ok"] is True
    assert {"redis", "beat", "queues", "gateway:smsru", "gateway:smsclub"} <= set(names)
    assert all(c["ok"] for c in names.values())


def test_health_fails_when_beat_is_stale(ops):
    """A beat heartbeat older than --max-beat-age fails the probe with exit 1."""
    done = smsq(ops[0].env(), "health", "--check", "beat", "--max-beat-age", "0")
    assert done.returncode == 1
    assert "FAIL  beat" in done.stdout


def test_stats_shows_the_last_hour_per_gateway(ops):
    """`smsq stats --json` counts what this stack sent, per gateway and per account."""
    done = smsq(ops[0].env(), "stats", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["gateways"]["smsru"]["sent"] == 3
    assert data["gateways"]["smsclub"]["sent"] == 2
    assert data["accounts"]["smsclub"]["requests"] >= 1
    assert 0 < data["accounts"]["smsclub"]["utilisation"] <= 1
    text = smsq(ops[0].env(), "stats")
    assert "gateway" in text.stdout and "smsclub" in text.stdout


def _env(redis_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMSQ_")}
    return {**env, "SMSQ_REDIS_URL": redis_url, "SMSQ_SMSRU_API_ID": "not-a-real-key"}


def test_health_against_a_stopped_redis_exits_one_with_a_clear_message():
    """With Redis down, health fails at once, names Redis, and says nothing of the credentials."""
    redis = EmbeddedRedis().start()
    url = redis.url
    redis.cleanup()
    done = smsq(_env(url), "health", "--json", timeout=30)
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["ok"] is False
    assert report["checks"][0]["name"] == "redis"
    assert f"redis unreachable at redis://127.0.0.1:{redis.port}" in report["checks"][0]["detail"]
    assert "not-a-real-key" not in done.stdout + done.stderr
    text = smsq(_env(url), "health", timeout=30)
    assert text.returncode == 1 and "FAIL  redis" in text.stdout and "UNHEALTHY" in text.stdout


def test_health_against_a_frozen_redis_times_out_instead_of_hanging():
    """A Redis that accepts but never answers (SIGSTOP) fails the probe after --timeout."""
    redis = EmbeddedRedis().start()
    assert redis.proc is not None
    os.kill(redis.proc.pid, signal.SIGSTOP)
    try:
        done = smsq(_env(redis.url), "health", "--check", "redis", "--timeout", "1",
                    timeout=30)
    finally:
        os.kill(redis.proc.pid, signal.SIGCONT)
        redis.cleanup()
    assert done.returncode == 1
    assert "redis unreachable" in done.stdout
