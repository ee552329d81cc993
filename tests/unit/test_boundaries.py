"""The engine's seams: Redis errors mapped once, one engine accessor, a producer that
builds no gateway client and hides no error."""

from __future__ import annotations

import socket
import threading

import pytest
import redis
from kombu.exceptions import OperationalError
from redis.backoff import NoBackoff
from redis.retry import Retry
from structlog.testing import capture_logs

from providers.sandbox.server import free_port
from worker import api, polling
from worker.ledger.errors import LedgerUnavailable
from worker.ledger.jobs import NewRecord
from worker.ledger.lifecycle import Status, Step
from worker.ledger.records import Recheck, Sent
from worker.ledger.store import Ledger
from worker.producer import submit as producer

SECRET = "s3cr3t-redis-password"


def _calls(ledger: Ledger) -> list[tuple[str, object]]:
    step = Step("m", (Status.QUEUED,), Status.SENDING)
    return [
        ("get", lambda: ledger.get("m")),
        ("get_many", lambda: ledger.get_many(["m"])),
        ("job", lambda: ledger.job("j")),
        ("transition", lambda: ledger.transition("m", ["queued"], "sending")),
        ("transition_many", lambda: ledger.transition_many(["m"], ["queued"], "cancelled")),
        ("pipeline_transitions", lambda: ledger.pipeline_transitions([step])),
        ("record_sends", lambda: ledger.record_sends("p", 1.0, {}, [Sent("m", "k", "k")], [])),
        ("reschedule", lambda: ledger.reschedule([Recheck("m", 1.0)])),
        ("claim", lambda: ledger.claim(["m"], "a", 1.0, ("to",))),
        ("jobs.create", lambda: ledger.jobs.create("j", {}, [NewRecord("+79161234501")],
                                                   digest="d", now=1.0, release_at=1.0)),
        ("jobs.rescore", lambda: ledger.jobs.rescore(["j.0"], 1.0)),
        ("take_due", lambda: ledger.take_due("smsq:q", 1.0, 2.0, 10)),
        ("renew", lambda: ledger.renew(["m"], 1.0, 2.0)),
        ("find_pids", lambda: ledger.find_pids("p", ["x"])),
    ]


def _assert_all_unavailable(ledger: Ledger) -> None:
    for name, call in _calls(ledger):
        with pytest.raises(LedgerUnavailable) as info:
            call()  # type: ignore[operator]
        assert SECRET not in str(info.value) and "6379" not in str(info.value), name
        assert info.value.__cause__ is None and info.value.__suppress_context__, name


def test_a_refused_redis_is_ledger_unavailable_from_every_method():
    """Nobody listening: each ledger call raises LedgerUnavailable, never a redis error,
    and the message carries neither the URL nor the password."""
    url = f"redis://:{SECRET}@127.0.0.1:{free_port()}/0"
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    _assert_all_unavailable(Ledger(client))


def test_a_redis_that_accepts_and_never_answers_is_ledger_unavailable():
    """A listener that swallows every byte (a hung server): the timeout is mapped too."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        port = listener.getsockname()[1]
        client = redis.Redis(port=port, password=SECRET, socket_timeout=0.2,
                             socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
        ledger = Ledger.__new__(Ledger)  # scripts register lazily; skip the constructor
        ledger.r = client
        ledger.retention = 60
        with pytest.raises(LedgerUnavailable):
            ledger.get("m")
        with pytest.raises(LedgerUnavailable):
            ledger.find_pids("p", ["x"])
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        listener.close()


def test_the_producer_builds_no_gateway_client(engine):
    """Submitting reads batch sizes from the gateway class: no provider, no HTTP session."""
    plan = producer.plan(engine, ["+79161234501", "+79161234502"], "Hi", account="smsru")
    producer.write(engine, plan)
    assert engine._providers == {}
    assert [name for name, _, _ in engine.enqueued] == ["smsq.deliver"]


def test_a_broker_down_at_submit_is_logged_and_left_to_the_release_sweep(engine):
    """The records are written and the ids returned; the failed hand-off is a warning."""
    def down(name, kwargs, queue):
        raise OperationalError("Error 111 connecting to 127.0.0.1:1. Connection refused.")

    engine.enqueue = down
    plan = producer.plan(engine, ["+79161234501"], "Hi", account="smsru")
    with capture_logs() as logs:
        job = producer.write(engine, plan)
    assert engine.ledger.get(job.ids[0])["st"] == "queued"
    assert engine.r.zscore("smsq:q", job.ids[0]) is not None  # the sweep will find it
    assert [e["event"] for e in logs] == ["sms_enqueue_deferred"]
    assert logs[0]["count"] == 1 and logs[0]["error"] == "OperationalError"


def test_a_bug_in_the_hand_off_is_not_swallowed(engine):
    """Anything but an unreachable broker propagates (the records stay for the sweep)."""
    def broken(name, kwargs, queue):
        raise KeyError("a bug")

    engine.enqueue = broken
    plan = producer.plan(engine, ["+79161234501"], "Hi", account="smsru")
    with pytest.raises(KeyError):
        producer.write(engine, plan)


def test_status_checks_without_an_account_go_to_each_messages_account(engine):
    """ids of two accounts, a missing id and an unconfigured account: each configured
    account gets its own check task; nothing else is checked."""
    a = producer.write(engine, producer.plan(engine, ["+79161234501"], "Hi", account="smsru"))
    b = producer.write(engine, producer.plan(engine, ["+79161234502"], "Hi", account="smsc"))
    engine.ledger.set_fields(b.ids[0], acc="gone")
    c = producer.write(engine, producer.plan(engine, ["+79161234503"], "Hi", account="smsc"))
    engine.enqueued.clear()
    out = polling.hand_to_accounts(engine, [*a.ids, *b.ids, *c.ids, "no-such.0"])
    assert out == {"handed": 3}
    assert sorted((k["account"], tuple(k["ids"]), q) for _, k, q in engine.enqueued) == [
        ("smsc", tuple(c.ids), "smsq.smsc"), ("smsru", tuple(a.ids), "smsq.smsru")]


def test_one_engine_per_process_and_the_task_publisher_wins(monkeypatch, redis_server):
    """api.engine is the one accessor: the same object until forgotten; in a Celery
    process it publishes through the app's enqueue and runs its setup once."""
    monkeypatch.setenv("SMSQ_REDIS_URL", redis_server.url)
    published, setups = [], []
    try:
        api.reset()
        producer_engine = api.engine()
        assert api.engine() is producer_engine
        api.serve_tasks(lambda *a: published.append(a), setup=lambda: setups.append(1))
        worker_engine = api.engine()
        assert worker_engine is not producer_engine and api.engine() is worker_engine
        worker_engine.enqueue("smsq.deliver", {"ids": ["x"]}, "smsq.smsru")
        assert published == [("smsq.deliver", {"ids": ["x"]}, "smsq.smsru")]
        assert setups == [1]
        api.forget()
        assert api.engine() is not worker_engine and setups == [1, 1]
    finally:
        api._worker = api._setup = None
        api.reset()
