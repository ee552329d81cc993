"""Property tests over hostile input: any body to any receiver path, any kwargs to
`smsq.send` and `smsq.campaign`. Hypothesis prints the failing example (and its seed with
--hypothesis-seed) so a failure replays."""

from __future__ import annotations

import io
import math
import uuid
from typing import Any

import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from providers.errors import ValidationError
from providers.sandbox import Sandbox
from providers.sandbox.core import SandboxState
from tests.conftest import FakeClock
from tests.reliability.conftest import SyncRunner, snapshot
from worker.campaigns import intake
from worker.ops.receiver import Receiver
from worker.producer import intake as send_intake

TOKEN = "tok-props-0123456789"
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20))
json_any = st.recursive(json_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=20)
bodies = st.one_of(
    st.binary(max_size=2000),
    st.text(max_size=500).map(str.encode),
    st.builds(lambda n: b"[" * n + b"]" * n, st.integers(0, 5000)),
    st.builds(lambda k, v: f"data[0]=sms_status%0A{k}%0A{v}".encode(),
              st.text(max_size=12), st.text(max_size=6)),
    st.builds(lambda b, n: b"".join(b"--%s\r\nContent-Disposition: form-data; name=\"id\""
                                    b"\r\n\r\n1\r\n" % b for _ in range(n)) + b"--%s--" % b,
              st.sampled_from([b"zz", b"a", b"--"]), st.integers(0, 300)),
)
ctypes = st.sampled_from(["application/x-www-form-urlencoded", "application/json", "",
                          "multipart/form-data; boundary=zz", "multipart/form-data",
                          "multipart/form-data; boundary=", "text/plain; charset=cp1251"])


def _runner(rclient: redis.Redis) -> SyncRunner:
    clock = FakeClock(1_700_000_000.0)
    sandbox = Sandbox(SandboxState(clock=clock, queued_for=1.0, final_after=5.0))
    return SyncRunner(rclient, sandbox, clock, webhook_token=TOKEN, webhook_max_body=65536,
                      park_per_request=3, park_max=50)


@SETTINGS
@given(gateway=st.sampled_from(["smsru", "gatum", "smsc", "smsclub", "x"]), body=bodies,
       ctype=ctypes, length=st.one_of(st.none(), st.sampled_from(["", "-1", "abc", "99999999"])))
def test_receiver_never_500(rclient: redis.Redis, gateway: str, body: bytes, ctype: str,
                            length: str | None) -> None:
    """Any body, any content type, any Content-Length: a 2xx/4xx answer, never 500/503;
    a refused request writes nothing; parked reports never pass the caps."""
    app = Receiver(_runner(rclient).engine)
    before = snapshot(rclient)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST", "PATH_INFO": f"/{TOKEN}/{gateway}", "CONTENT_TYPE": ctype,
        "CONTENT_LENGTH": str(len(body)) if length is None else length,
        "wsgi.input": io.BytesIO(body)}
    status, _, reply = app.handle(environ)
    code = int(status.split()[0])
    assert code in (200, 400, 404, 413), (status, reply)
    if code != 200:
        assert snapshot(rclient) == before
    assert rclient.zcard("smsq:orphans") <= 50


kwargs_values = st.one_of(json_any, st.just(math.nan), st.just(math.inf), st.just(1e308),
                          st.just(-1e18), st.text(alphabet="\x00\x1b\u202e\u2066ab+1",
                                                  max_size=12))
send_kwargs = st.dictionaries(
    st.sampled_from(["recipients", "text", "messages", "account", "route", "sender", "options",
                     "idempotency_key", "job_id", "extra"]), kwargs_values, max_size=6)


@SETTINGS
@given(kw=send_kwargs)
def test_send_intake_never_raises(rclient: redis.Redis, kw: dict[str, Any]) -> None:
    """`smsq.send` with any kwargs returns a job or a refusal; it never raises."""
    runner = _runner(rclient)
    result = send_intake.intake(runner.engine, (), {"account": "smsru", **kw}, uuid.uuid4().hex)
    assert result is None or result.ids


campaign_kwargs = st.dictionaries(
    st.sampled_from(["text", "recipients", "csv", "group", "rate", "start", "window", "zone",
                     "sender", "failure_threshold", "account", "draft"]), kwargs_values,
    max_size=6)


@SETTINGS
@given(kw=campaign_kwargs)
def test_campaign_by_name_fails_only_with_validation(rclient: redis.Redis,
                                                     kw: dict[str, Any]) -> None:
    """`smsq.campaign` create with any kwargs: a campaign or a ValidationError/TypeError
    (what the task turns into its `error` result), never another exception."""
    runner = _runner(rclient)
    try:
        intake.create(runner.engine, None, {"text": "hi", "recipients": ["+79161234567"],
                                            "account": "smsru", **kw})
    except (ValidationError, TypeError):
        pass
