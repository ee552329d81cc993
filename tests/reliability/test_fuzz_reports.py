"""Property-based: the delivery-report parsers and the receiver take any input and
answer with a result or an smsq error (HTTP 200/400), never another exception."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from providers import gatum, smsc, smsru
from providers.errors import SmsqError
from providers.models import StatusResult
from providers.sandbox import Sandbox
from providers.sandbox.core import SandboxState
from tests.conftest import FakeClock
from tests.reliability.conftest import SyncRunner
from tests.reliability.test_receiver import TOKEN, call
from worker.local.embedded import EmbeddedRedis
from worker.ops.receiver import Receiver

FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
text = st.text(max_size=40)
scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                   text, st.binary(max_size=8).map(lambda b: b.decode("latin-1")))
jsonish = st.recursive(scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(text, inner, max_size=4)), max_leaves=12)
codes = st.one_of(st.integers(-5, 200).map(str), text)
smsru_item = st.one_of(
    st.builds(lambda i, c, t: f"sms_status\n{i}\n{c}\n{t}", text, codes, text),
    st.builds(lambda i, c: f"sms_status\n{i}\n{c}", text, codes),
    st.just("sms_status"), st.just("callcheck_status\n1\n401"), text)
smsru_forms = st.lists(st.one_of(
    st.tuples(st.integers(0, 5).map(lambda i: f"data[{i}]"), smsru_item),
    st.tuples(st.sampled_from(["hash", "data", "data[]", "x"]), text)), max_size=6)
gatum_rows = st.lists(st.one_of(jsonish, st.fixed_dictionaries({
    "id_state": st.one_of(text, st.integers(), st.none()),
    "status": st.one_of(st.sampled_from(["DELIVRD", "UNDELIV", "EXPIRED", "REJECTD",
                                          "ENROUTE", "ACCEPTD"]), jsonish),
    "number": st.one_of(text, st.integers(), st.none()),
    "date_sent": jsonish, "date_delivered": jsonish, "price": jsonish})), max_size=5)
smsc_forms = st.dictionaries(st.sampled_from(["id", "phone", "status", "err", "time", "ts",
                                              "sha1", "cnt"]),
                             st.one_of(text, codes), max_size=7)


def _ok(results: Any) -> None:
    assert isinstance(results, list)
    assert all(isinstance(r, StatusResult) for r in results)


@FUZZ
@given(smsru_forms)
def test_smsru_parse_callback_total(form: list[tuple[str, str]]) -> None:
    """sms.ru callbacks: results or an smsq error."""
    try:
        _ok(smsru.parse_callback(form))
        smsru.verify_callback("api-id", form)
    except SmsqError:
        pass


@FUZZ
@given(st.one_of(gatum_rows.map(lambda r: json.dumps(r).encode()), st.binary(max_size=200),
                 jsonish.map(lambda v: json.dumps(v).encode())))
def test_gatum_parse_dlr_total(body: bytes) -> None:
    """Gatum DLR webhooks: results or an smsq error."""
    try:
        results, ack = gatum.parse_dlr(body)
        _ok(results)
        assert isinstance(ack, list)
    except SmsqError:
        pass


@FUZZ
@given(smsc_forms)
def test_smsc_parse_callback_total(form: dict[str, str]) -> None:
    """SMSC status callbacks: results or an smsq error."""
    try:
        _ok(smsc.parse_callback(form))
    except SmsqError:
        pass


@pytest.fixture(scope="module")
def app() -> Iterator[Receiver]:
    with EmbeddedRedis() as server:
        client = redis.Redis.from_url(server.url)
        clock = FakeClock()
        sandbox = Sandbox(SandboxState(clock=clock))
        runner = SyncRunner(client, sandbox, clock, webhook_token=TOKEN,
                            smsru_callback_hash=False)
        yield Receiver(runner.engine)
        client.close()


def _form_body(pairs: list[tuple[str, str]]) -> bytes:
    from urllib.parse import urlencode

    return urlencode(pairs).encode()


bodies = st.one_of(
    st.binary(max_size=300),
    smsru_forms.map(_form_body),
    smsc_forms.map(lambda d: _form_body(list(d.items()))),
    gatum_rows.map(lambda r: json.dumps(r).encode()),
    st.builds(lambda b, p: f"--{b}\r\nContent-Disposition: form-data; name=\"{p}\"\r\n\r\n"
              f"x\r\n--{b}--".encode(), st.text(max_size=5), text))
ctypes = st.sampled_from(["", "application/json", "application/x-www-form-urlencoded",
                          "multipart/form-data; boundary=zz", "multipart/form-data",
                          "text/plain; charset=cp1251", "multipart/form-data; boundary="])


@FUZZ
@given(gateway=st.sampled_from(["smsru", "gatum", "smsc", "smsclub", "x"]), body=bodies,
       ctype=ctypes, length=st.one_of(st.none(), st.sampled_from(["", "-1", "abc", "0",
                                                                  "99999999999"])))
def test_receiver_answers_200_400_404_or_413(app: Receiver, gateway: str, body: bytes,
                                             ctype: str, length: str | None) -> None:
    """Arbitrary bodies under the right token: 200, 400, 404 or 413, never a 500."""
    status, _ = call(app, f"/{TOKEN}/{gateway}", body, ctype, length=length)
    assert status in (200, 400, 404, 413)


@FUZZ
@given(path=st.text(max_size=60))
def test_receiver_paths_never_crash(app: Receiver, path: str) -> None:
    """Arbitrary paths (any characters) are 404/405/200/400, never an exception."""
    status, _ = call(app, path, b"[]", "application/json")
    assert status in (200, 400, 404, 405, 413)
