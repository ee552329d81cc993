"""A gateway added from outside worker/: a throwaway seventh provider ("acme") with its own
wire format, report format and acknowledgement, registered in REGISTRY and the sandbox
for the length of a test. Its reports reach the ledger through the real receiver (WSGI
app, real Redis), pushed by the sandbox's own report pusher, with no worker/ change."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any, ClassVar

import pytest
import redis
import requests
from structlog.testing import capture_logs

import providers
from providers import REGISTRY
from providers.base import Provider
from providers.errors import ConfigurationError, MalformedResponse
from providers.models import Balance, OutgoingMessage, SendResult, Status, StatusQuery, StatusResult
from providers.reports import ParsedReport, ReportReply
from providers.sandbox import SIMULATORS, Sandbox, register_simulator, unregister_simulator
from providers.sandbox.adapter import WSGIAdapter
from providers.sandbox.core import (
    GatewaySimulator,
    SandboxState,
    SimMessage,
    SimRequest,
    SimResponse,
)
from providers.sandbox.reports import ReportPusher
from tests.conftest import FakeClock
from tests.reliability.conftest import SyncRunner, snapshot
from tests.reliability.test_receiver import TOKEN, call
from worker.ops.receiver import Receiver

STATES = {"QUEUED": Status.QUEUED, "SENT": Status.SENT, "DELIVERED": Status.DELIVERED,
          "UNDELIVERED": Status.UNDELIVERED, "EXPIRED": Status.EXPIRED,
          "REJECTED": Status.REJECTED}
HOOK = "http://receiver.test"


class Acme(Provider):
    """JSON send with the key in the body; reports are `<id> <STATE>` lines, acked `ACK n`."""

    name: ClassVar[str] = "acme"
    default_base_url: ClassVar[str] = "https://acme.invalid"
    credential_fields: ClassVar[tuple[str, ...]] = ("key",)
    reports: ClassVar[bool] = True

    def send(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        resp = self.request("POST", "/send", json={
            "key": self.credential("key"), "text": messages[0].text,
            "to": [m.recipient for m in messages]})
        self.check_http(resp, sending=True)
        ids = {a["to"]: a["id"] for a in self.parse_json(resp)["accepted"]}
        return [SendResult(m.ref, m.recipient, provider_message_id=ids.get(m.recipient))
                for m in messages]

    def status(self, queries: Sequence[StatusQuery]) -> list[StatusResult]:
        return [StatusResult(q.provider_message_id, Status.SENT) for q in queries]

    def balance(self) -> Balance:
        return Balance(Decimal("0"))

    @classmethod
    def parse_report(cls, body: bytes, content_type: str) -> ParsedReport:
        try:
            lines = body.decode("ascii").splitlines()
        except UnicodeDecodeError:
            raise MalformedResponse("report is not ASCII", provider=cls.name) from None
        results = []
        for line in lines:
            msg_id, _, state = line.partition(" ")
            if not msg_id or state not in STATES:
                raise MalformedResponse("report line is not '<id> <STATE>'", provider=cls.name)
            results.append(StatusResult(msg_id, STATES[state], raw_code=state))
        return results, ReportReply("text/plain", f"ACK {len(results)}".encode(), status=202)


class AcmeSim(GatewaySimulator):
    name = "acme"
    hosts = ("acme",)
    credentials: ClassVar[dict[str, str]] = {"key": "sandbox-acme-key"}

    def handle(self, req: SimRequest) -> SimResponse:
        data: Any = req.json()
        if req.path != "/send" or not isinstance(data, dict):
            return SimResponse.json({"error": "no such call"}, status=404)
        if data.get("key") != self.credentials["key"]:
            return SimResponse.json({"error": "bad key"}, status=401)
        accepted = [{"to": phone, "id": self.state.accept(
            self.name, "acme", str(self.state.next_id(self.name)), phone, data["text"],
            None).id} for phone in data["to"]]
        return SimResponse.json({"accepted": accepted})

    def report_request(self, msgs: list[SimMessage]) -> tuple[str, bytes]:
        lines = [f"{m.id} {self.state.stage(m).upper()}" for m in msgs]
        return "text/plain", "\n".join(lines).encode()

    def report_acked(self, status: int, body: bytes, msgs: list[SimMessage]) -> bool:
        return status == 202 and body == f"ACK {len(msgs)}".encode()


@pytest.fixture
def acme() -> Iterator[None]:
    providers.register("acme", Acme)
    register_simulator("acme", f"{__name__}:AcmeSim")
    try:
        yield
    finally:
        providers.unregister("acme")
        unregister_simulator("acme")


@pytest.fixture
def runner(acme: None, redis_client: redis.Redis) -> SyncRunner:
    clock = FakeClock(time.time())
    sandbox = Sandbox(SandboxState(clock=clock, queued_for=1.0, final_after=5.0))
    return SyncRunner(redis_client, sandbox, clock, webhook_token=TOKEN)


def _hooked(runner: SyncRunner) -> ReportPusher:
    """The sandbox's own pusher, posting to the receiver mounted in-process."""
    session = requests.Session()
    session.mount(HOOK + "/", WSGIAdapter(Receiver(runner.engine)))
    runner.sandbox.state.callbacks["acme"] = [f"{HOOK}/{TOKEN}/acme"]
    return ReportPusher(runner.sandbox, session=session)


def _sent(runner: SyncRunner, n: int) -> list[str]:
    ids = runner.submit("acme", [f"+7916555{i:04d}" for i in range(n)], "hi", "jacme")
    runner.drain()
    assert {r["st"] for r in runner.engine.ledger.get_many(ids) if r} == {"sent"}
    return ids


def test_seventh_gateway_reports_reach_the_ledger(runner: SyncRunner) -> None:
    """Registered from a test, acme sends, pushes reports, and each message goes final."""
    seed = random.randrange(2**32)
    print("seed", seed)
    runner.sandbox.state.seed = str(seed)
    ids = _sent(runner, 12)
    runner.clock.advance(10)
    pusher = _hooked(runner)
    assert pusher.push_once() == len(ids) and pusher.failures == 0
    rows = runner.engine.ledger.get_many(ids)
    want = {m.phone: runner.sandbox.state.stage(m) for m in runner.sandbox.state.messages}
    assert [r["st"] for r in rows if r] == [want[r["to"]] for r in rows if r]
    assert pusher.push_once() == 0  # every report acknowledged once, nothing re-sent


def test_seventh_gateway_bad_report_is_400_and_writes_nothing(runner: SyncRunner) -> None:
    """Acme's own parser rejects hostile bytes; the receiver answers 400 and logs it."""
    _sent(runner, 3)
    app, before = Receiver(runner.engine), snapshot(runner.engine.r)
    for body in [b"1000 DELIVERED\n\xff\xfe", b"1000 LOST", b" DELIVERED", b"\x00" * 64]:
        with capture_logs() as logs:
            assert call(app, f"/{TOKEN}/acme", body, "text/plain")[0] == 400
        assert [e["gateway"] for e in logs if e["event"] == "report_rejected"] == ["acme"]
    assert snapshot(runner.engine.r) == before


def test_unregistered_gateway_is_404_again(runner: SyncRunner) -> None:
    """Once unregistered, acme's path is unknown to the receiver: 404, nothing written."""
    app = Receiver(runner.engine)
    providers.unregister("acme")
    before = snapshot(runner.engine.r)
    assert call(app, f"/{TOKEN}/acme", b"1000 DELIVERED", "text/plain")[0] == 404
    assert snapshot(runner.engine.r) == before and "acme" not in REGISTRY


def test_registering_a_taken_name_is_refused(acme: None) -> None:
    """A second registration under a known name is an error; the first one stays."""
    with pytest.raises(ConfigurationError, match="already registered"):
        providers.register("smsru", Acme)
    with pytest.raises(ValueError, match="already registered"):
        register_simulator("acme", f"{__name__}:AcmeSim")
    assert REGISTRY["smsru"].name == "smsru" and SIMULATORS["acme"].endswith(":AcmeSim")
