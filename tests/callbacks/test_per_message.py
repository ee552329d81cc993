"""Per-message subscriptions and per-account defaults: message > job > account > deployment."""

from __future__ import annotations

import json

import pytest

from providers.errors import ConfigurationError, ValidationError
from providers.models import Status, StatusResult
from worker import sending, settings
from worker.callbacks import sweep
from worker.callbacks.subscription import Subscription
from worker.engine import Engine
from worker.producer import submit as producer
from worker.producer.intake import intake
from worker.reports import apply_reports

JOB = {"task": "billing.job_status", "queue": "billing"}
OWN = {"task": "crm.msg_status", "queue": "crm"}
PHONES = ["+79161234501", "+79161234502", "+79161234503"]


def sid(cb: dict) -> str:
    return Subscription("task", cb["task"], cb["queue"], "").id


def by_sub(engine) -> dict[str, list[dict]]:
    out = {}
    for key in engine.r.keys("smsq:hook:q:*"):
        out[key.decode().rsplit(":", 1)[1]] = [json.loads(e) for e in engine.r.lrange(key, 0, -1)]
    return out


def messages(own: list) -> list[dict]:
    out = []
    for phone, cb in zip(PHONES, own, strict=True):
        out.append({"to": phone, "text": "Hi"} | ({} if cb is None else {"callback": cb}))
    return out


def submit(engine, own, callback=JOB, account="smsru", **kw):
    plan = producer.plan(engine, None, None, messages=messages(own), account=account,
                         callback=callback)
    return producer.write(engine, plan, **kw)


def finish(engine, job, account="smsru"):
    sending.deliver(engine, job.ids, account)
    pids = [engine.ledger.get(i)["pid"] for i in job.ids]
    apply_reports(engine, account, [StatusResult(p, Status.DELIVERED, "0") for p in pids])


@pytest.fixture
def eng(cb_engine):
    return cb_engine


@pytest.fixture
def engine_with(sandbox, redis_server, redis_client, session):
    """An engine (enqueues recorded, not sent) on the test Redis with more settings."""
    def make(**env: str) -> Engine:
        base = {**sandbox.env(), "SMSQ_REDIS_URL": redis_server.url}
        e = Engine(settings.load({**base, **env}), client=redis_client, session=session)
        e.enqueue = lambda name, kwargs, queue: None
        return e
    return make


def test_a_message_own_subscription_overrides_the_job(eng):
    """Message 0 reports to its own subscriber, 1 to the job's, 2 opted out; job.completed
    goes to the job's subscriber once all three are final."""
    job = submit(eng, [OWN, None, False])
    raw = [eng.r.hget(f"smsq:m:{i}", "cb") for i in job.ids]
    assert raw == [sid(OWN).encode(), None, b"-"]
    finish(eng, job)
    got = by_sub(eng)
    assert set(got) == {sid(OWN), sid(JOB)}
    assert [e["id"] for e in got[sid(OWN)]] == [f"{job.ids[0]}:sent", f"{job.ids[0]}:delivered"]
    assert [e["id"] for e in got[sid(JOB)]] == [f"{job.ids[1]}:sent", f"{job.ids[1]}:delivered",
                                               f"{job.job_id}:completed"]
    sweep.sweep(eng, eng.clock() + 3600)
    assert by_sub(eng) == got  # the sweep finds nothing more, and the job left it
    assert eng.r.zcard("smsq:hook:jobs") == 0


def test_own_subscriptions_without_a_job_subscription(eng):
    """With callback=False on the job, a message's own subscription still applies."""
    job = submit(eng, [OWN, None, None], callback=False)
    finish(eng, job)
    got = by_sub(eng)
    assert list(got) == [sid(OWN)]
    assert [e["type"] for e in got[sid(OWN)]] == ["message.sent", "message.delivered"]


def test_retry_is_a_duplicate_other_callbacks_are_other_content(eng):
    """Same messages and callbacks: the same job back. A message whose own callback
    differs is different content (refused under the same job id). An own callback equal
    to the job's is the same content as none."""
    first = submit(eng, [OWN, None, None], job_id="order-1")
    again = submit(eng, [OWN, None, None], job_id="order-1")
    assert again.duplicate and again.ids == first.ids
    with pytest.raises(ValidationError) as info:
        submit(eng, [None, OWN, None], job_id="order-1")
    assert info.value.field == "job_id"
    with pytest.raises(ValidationError):
        submit(eng, [OWN, None, False], job_id="order-1")
    plain = submit(eng, [None, None, None], job_id="order-2")
    same = submit(eng, [JOB, None, JOB], job_id="order-2")
    assert same.duplicate and same.ids == plain.ids
    assert eng.r.hget(f"smsq:m:{plain.ids[0]}", "cb") is None


def test_a_bad_message_callback_names_it_and_writes_nothing(eng, redis_client):
    for bad in ({"url": "file:///etc/passwd"}, {"task": "x", "queue": "smsq"}, "ftp://x",
                {"url": "https://example.com", "secret": "whsec_abc"}, True, 7):
        with pytest.raises(ValidationError) as info:
            submit(eng, [None, bad, None])
        assert info.value.field == "callback" and "messages[1]" in info.value.message, bad
    assert redis_client.dbsize() == 0


def test_smsq_send_by_name_takes_per_message_callbacks(eng):
    """`smsq.send` kwargs carry the same per-message callbacks; a redelivered task is a
    duplicate."""
    kwargs = {"messages": messages([OWN, None, None]), "account": "smsru", "callback": JOB}
    done = intake(eng, [], kwargs, "task-1")
    assert done is not None and not done.duplicate
    assert eng.r.hget(f"smsq:m:{done.ids[0]}", "cb") == sid(OWN).encode()
    assert eng.r.hget(f"smsq:job:{done.job_id}", "cb") == sid(JOB).encode()
    again = intake(eng, [], kwargs, "task-1")
    assert again is not None and again.duplicate
    bad = intake(eng, [], {**kwargs, "messages": messages([{"url": "x"}, None, None])},
                 "task-2")
    assert bad is None
    assert "messages[0].callback" in eng.ledger.job("task-2")["error"]


def test_account_default_between_job_and_deployment(engine_with):
    """SMSQ_<ACCOUNT>_CALLBACK applies to jobs whose route starts at that account, before
    SMSQ_CALLBACK; the job's callback and callback=False still win."""
    e = engine_with(SMSQ_SMSRU_CALLBACK="task:acct.status@acct",
                    SMSQ_CALLBACK="task:dep.status@dep",
                    SMSQ_ROUTES="ru=smsru,smsclub;club=smsclub,smsru")
    acct, dep = sid({"task": "acct.status", "queue": "acct"}), sid(
        {"task": "dep.status", "queue": "dep"})

    def job_cb(**kw):
        plan = producer.plan(e, ["+79161234501"], "Hi", **kw)
        return plan.subs.job.id if plan.subs.job else None

    assert job_cb(account="smsru") == acct
    assert job_cb(route="ru") == acct
    assert job_cb(route="club") == dep
    assert job_cb(account="smsclub") == dep
    assert job_cb(account="smsru", callback=JOB) == sid(JOB)
    assert job_cb(account="smsru", callback=False) is None
    plan = producer.plan(e, None, None, messages=messages([OWN, None, None]), account="smsru")
    assert plan.subs.own[0] == sid(OWN) and plan.subs.job.id == acct


def test_account_default_read_for_declared_accounts_and_checked():
    env = {"SMSQ_ACCOUNTS": "club2:smsclub", "SMSQ_CLUB2_TOKEN": "t", "SMSQ_SMSRU_API_ID": "x",
           "SMSQ_CLUB2_CALLBACK": "task:club.status@club", "SMSQ_SMSRU_CALLBACK": " ",
           "SMSQ_SMSC_CALLBACK": "task:ignored@q"}  # smsc has no credentials: no account
    cfg = settings.load(env)
    assert dict(cfg.callback_accounts) == {"club2": "task:club.status@club"}
    bad = settings.load({**env, "SMSQ_CLUB2_CALLBACK": "http://10.0.0.1/hook"})
    from worker.callbacks.subscription import default
    with pytest.raises(ConfigurationError) as info:
        default(bad, "club2")
    assert "SMSQ_CLUB2_CALLBACK" in info.value.message


def test_a_rejected_message_reports_to_its_own_subscription(eng):
    """A number refused at intake (reject_invalid) still reports to the message's own
    subscriber, not the job's."""
    msgs = messages([None, OWN, None])
    msgs[1]["to"] = "12"
    plan = producer.plan(eng, None, None, messages=msgs, account="smsru", callback=JOB,
                         strict=False)
    job = producer.write(eng, plan)
    got = by_sub(eng)
    assert [e["id"] for e in got[sid(OWN)]] == [f"{job.ids[1]}:rejected"]
    assert sid(JOB) not in got
