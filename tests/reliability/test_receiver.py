"""The delivery-report receiver as a WSGI app in-process, over real Redis: path token,
size limit, malformed bodies, replays, never backwards, sms.ru's hash."""

from __future__ import annotations

import io
from typing import Any

import pytest
import redis
from structlog.testing import capture_logs

from providers.sandbox import Sandbox
from providers.sandbox.core import SandboxState
from tests.conftest import FakeClock
from tests.reliability.conftest import SyncRunner, snapshot
from worker.ops.receiver import Receiver

TOKEN = "tok-0123456789abcdef"


def call(app: Receiver, path: str, body: bytes = b"", ctype: str = "",
         length: str | None = None, method: str = "POST") -> tuple[int, bytes]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "CONTENT_TYPE": ctype,
        "CONTENT_LENGTH": str(len(body)) if length is None else length,
        "wsgi.input": io.BytesIO(body)}
    seen: dict[str, str] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"] = status

    out = b"".join(app(environ, start_response))
    return int(seen["status"].split()[0]), out


def make(rclient: redis.Redis, fclock: FakeClock, **overrides: Any) -> tuple[SyncRunner, Receiver]:
    sandbox = Sandbox(SandboxState(clock=fclock, queued_for=1.0, final_after=5.0))
    runner = SyncRunner(rclient, sandbox, fclock, webhook_token=TOKEN, **overrides)
    return runner, Receiver(runner.engine)


def sent(runner: SyncRunner, gateway: str, n: int = 2) -> list[str]:
    prefix = "+38097" if gateway == "smsclub" else "+7916"
    ids = runner.submit(gateway, [f"{prefix}55512{i:02d}" for i in range(n)],
                        "report test", f"r{gateway}")
    runner.drain()
    assert {r["st"] for r in runner.engine.ledger.get_many(ids) if r} == {"sent"}
    return ids


def report(runner: SyncRunner, gateway: str) -> list[tuple[str, bytes]]:
    """The bodies the gateway itself would POST for every message it holds."""
    sim = runner.sandbox.sims[gateway]
    msgs = list(runner.sandbox.state.messages)
    if gateway == "smsc":
        return [sim.report_request([m]) for m in msgs]
    return [sim.report_request(msgs)]


def statuses(runner: SyncRunner, ids: list[str]) -> list[str]:
    return [r["st"] for r in runner.engine.ledger.get_many(ids) if r]


@pytest.fixture
def pair(rclient: redis.Redis, fclock: FakeClock) -> tuple[SyncRunner, Receiver]:
    return make(rclient, fclock)


@pytest.mark.parametrize("gateway", ["smsru", "gatum", "smsc"])
def test_report_moves_message_to_final(pair: tuple[SyncRunner, Receiver], gateway: str) -> None:
    """A genuine report under the right token is applied (the baseline the others rely on)."""
    runner, app = pair
    ids = sent(runner, gateway)
    runner.clock.advance(10)
    for ctype, body in report(runner, gateway):
        assert call(app, f"/{TOKEN}/{gateway}", body, ctype)[0] == 200
    assert set(statuses(runner, ids)) <= {"delivered", "undelivered", "expired", "rejected"}


@pytest.mark.parametrize("path", ["/smsru", "/wrong-token/smsru", f"/{TOKEN}x/smsru",
                                  f"/{TOKEN}/nosuchgw", f"/{TOKEN}", "/", f"/{TOKEN}/smsru/x",
                                  "/t\u00e9st/smsru", f"/{TOKEN[:-1]}\u00ff/smsru"])
def test_wrong_or_missing_token_is_404_and_changes_nothing(
        pair: tuple[SyncRunner, Receiver], path: str) -> None:
    """Without the exact path token the receiver answers 404 and writes nothing."""
    runner, app = pair
    sent(runner, "smsru")
    runner.clock.advance(10)
    before = snapshot(runner.engine.r)
    ctype, body = report(runner, "smsru")[0]
    assert call(app, path, body, ctype)[0] == 404
    assert snapshot(runner.engine.r) == before


def test_receiver_without_configured_token_refuses_everything(
        rclient: redis.Redis, fclock: FakeClock) -> None:
    """An empty SMSQ_WEBHOOK_TOKEN never matches (not even an empty path segment)."""
    runner, _ = make(rclient, fclock)
    app = Receiver(SyncRunner(rclient, runner.sandbox, fclock, webhook_token="").engine)
    assert call(app, "//smsru", b"data[0]=x")[0] == 404


@pytest.mark.parametrize("gateway", ["smsru", "gatum", "smsc"])
def test_body_over_limit_is_413(rclient: redis.Redis, fclock: FakeClock, gateway: str) -> None:
    """Bodies over webhook_max_body are refused before they are read."""
    runner, app = make(rclient, fclock, webhook_max_body=1000)
    sent(runner, gateway)
    before = snapshot(runner.engine.r)
    big = b"data[0]=" + b"x" * 2000
    assert call(app, f"/{TOKEN}/{gateway}", big, "application/x-www-form-urlencoded")[0] == 413
    assert call(app, f"/{TOKEN}/{gateway}", b"", "", length=str(10**12))[0] == 413
    assert snapshot(runner.engine.r) == before


@pytest.mark.parametrize("gateway,ctype,body", [
    ("gatum", "application/json", b"not json"),
    ("gatum", "application/json", b'{"id": 1}'),
    ("gatum", "application/json", b"\xff\xfe\x00"),
    ("smsru", "application/x-www-form-urlencoded", b"data[0]=sms_status%0A123"),
    ("smsru", "application/x-www-form-urlencoded", b"\xff\xfe=\xff"),
    ("smsc", "application/x-www-form-urlencoded", b"phone=79161234567"),
    ("smsc", "application/x-www-form-urlencoded", b"id=1&status=abc"),
    ("smsc", "multipart/form-data; boundary=zz", b"--zz\r\nbroken"),
    ("smsc", "application/x-www-form-urlencoded", b"\xc3\x28"),
], ids=lambda v: v if isinstance(v, str) and len(v) < 12 else None)
def test_malformed_report_is_400_and_logged(pair: tuple[SyncRunner, Receiver], gateway: str,
                                           ctype: str, body: bytes) -> None:
    """Garbage bodies are answered 400 and logged as `report_rejected`, never a crash."""
    runner, app = pair
    before = snapshot(runner.engine.r)
    with capture_logs() as logs:
        status, _ = call(app, f"/{TOKEN}/{gateway}", body, ctype)
    assert status == 400
    assert any(e["event"] == "report_rejected" for e in logs)
    assert snapshot(runner.engine.r) == before


def test_bad_content_length_is_400(pair: tuple[SyncRunner, Receiver]) -> None:
    """A non-numeric Content-Length is a bad request, not a crash."""
    _, app = pair
    assert call(app, f"/{TOKEN}/gatum", b"[]", "application/json", length="12abc")[0] == 400


@pytest.mark.parametrize("gateway", ["smsru", "gatum", "smsc"])
def test_replayed_reports_are_idempotent(pair: tuple[SyncRunner, Receiver], gateway: str) -> None:
    """The same report applied three times leaves the ledger exactly as after the first."""
    runner, app = pair
    ids = sent(runner, gateway)
    runner.clock.advance(10)
    bodies = report(runner, gateway)
    for ctype, body in bodies:
        assert call(app, f"/{TOKEN}/{gateway}", body, ctype)[0] == 200
    after_first = snapshot(runner.engine.r)
    for _ in range(2):
        for ctype, body in bodies:
            assert call(app, f"/{TOKEN}/{gateway}", body, ctype)[0] == 200
    assert snapshot(runner.engine.r) == after_first
    job = runner.engine.ledger.job(ids[0].split(".")[0]) or {}
    assert sum(int(v) for k, v in job.items() if k.startswith("st:")) == len(ids)


@pytest.mark.parametrize("gateway", ["smsru", "gatum", "smsc"])
def test_report_never_moves_backwards(pair: tuple[SyncRunner, Receiver], gateway: str) -> None:
    """A late `sent`/`queued` report after the final one leaves the message final."""
    runner, app = pair
    runner.sandbox.state.outcomes = {"delivered": 1.0}
    ids = sent(runner, gateway)
    early = report(runner, gateway)  # the gateway still says "queued"
    runner.clock.advance(2)
    middle = report(runner, gateway)  # "sent"
    runner.clock.advance(10)
    for ctype, body in report(runner, gateway):
        assert call(app, f"/{TOKEN}/{gateway}", body, ctype)[0] == 200
    assert statuses(runner, ids) == ["delivered"] * len(ids)
    for ctype, body in middle + early:
        assert call(app, f"/{TOKEN}/{gateway}", body, ctype)[0] == 200
    assert statuses(runner, ids) == ["delivered"] * len(ids)


def test_smsru_hash_checked_when_configured(rclient: redis.Redis, fclock: FakeClock) -> None:
    """With SMSQ_SMSRU_CALLBACK_HASH a forged or missing hash is 400; the real one is 200."""
    runner, app = make(rclient, fclock, smsru_callback_hash=True)
    ids = sent(runner, "smsru")
    runner.clock.advance(10)
    ctype, body = report(runner, "smsru")[0]
    before = snapshot(runner.engine.r)
    head, _, _digest = body.decode().rpartition("&hash=")
    forged = f"{head}&hash={'0' * 64}".encode()
    for bad in [forged, head.encode(), f"{head}&hash=\u00e9t\u00e9".encode()]:
        assert call(app, f"/{TOKEN}/smsru", bad, ctype)[0] == 400
    assert snapshot(runner.engine.r) == before
    assert call(app, f"/{TOKEN}/smsru", body, ctype)[0] == 200
    assert "sent" not in statuses(runner, ids)


def test_smsru_hash_not_required_when_not_configured(pair: tuple[SyncRunner, Receiver]) -> None:
    """Without the setting, a report without a hash is accepted (sms.ru's default)."""
    runner, app = pair
    ids = sent(runner, "smsru")
    runner.clock.advance(10)
    ctype, body = report(runner, "smsru")[0]
    head = body.decode().rpartition("&hash=")[0]
    assert call(app, f"/{TOKEN}/smsru", head.encode(), ctype)[0] == 200
    assert "sent" not in statuses(runner, ids)


def test_get_is_405(pair: tuple[SyncRunner, Receiver]) -> None:
    """Only POST carries reports."""
    _, app = pair
    assert call(app, f"/{TOKEN}/smsru", method="GET")[0] == 405
