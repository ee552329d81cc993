"""The sandbox's shared machinery: state, recording, faults, message progression.

Each gateway simulator (one module per gateway) only speaks its wire format;
everything else lives here: the record of accepted messages and of requests,
scripted faults, the queued -> sent -> final timeline of every message. The
WSGI wrapper that applies faults and serves the control routes is in app.py.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from providers.sandbox.timeline import SimMessage as SimMessage

Clock = Callable[[], float]
Environ = dict[str, Any]
StartResponse = Callable[..., Any]

DEFAULT_OUTCOMES = {"delivered": 0.9, "undelivered": 0.05, "expired": 0.03, "rejected": 0.02}
CONTROL_PREFIX = "/__sandbox__"


class DropConnection(Exception):
    """Raised inside a simulator to drop the TCP connection without an answer."""


@dataclass
class SimRequest:
    """A parsed request as a simulator sees it."""

    method: str
    path: str
    host: str
    headers: dict[str, str]
    query: list[tuple[str, str]]
    form: list[tuple[str, str]]
    body: bytes

    def params(self) -> dict[str, str]:
        """Query and form merged (form wins), last value per name."""
        return {**dict(self.query), **dict(self.form)}

    def items(self) -> list[tuple[str, str]]:
        return [*self.query, *self.form]

    def json(self) -> Any:
        try:
            return json.loads(self.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return None

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


@dataclass
class SimResponse:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, data: Any, status: int = 200, charset: str = "utf-8") -> SimResponse:
        body = json.dumps(data, ensure_ascii=False).encode(charset)
        return cls(status, body, f"application/json; charset={charset}")

    @classmethod
    def text(cls, text: str, status: int = 200, charset: str = "utf-8") -> SimResponse:
        return cls(status, text.encode(charset), f"text/plain; charset={charset}")


@dataclass
class Fault:
    """A scripted fault: applies to `count` matching requests (-1 = until cleared)."""

    kind: str  # http_error | throttle | html | drop | drop_before | timeout | slow | malformed
    gateway: str | None = None
    host: str | None = None
    path: str | None = None
    count: int = 1
    status: int | None = None
    delay: float = 0.0
    body: str | None = None

    def matches(self, gateway: str, host: str, path: str) -> bool:
        return (
            self.count != 0
            and (self.gateway is None or self.gateway == gateway)
            and (self.host is None or self.host == host)
            and (self.path is None or self.path in path)
        )


PRE_FAULTS = {"http_error", "throttle", "html", "drop_before"}
POST_FAULTS = {"drop", "timeout", "slow", "malformed"}


class SandboxState:
    """Everything the simulators share; safe across server threads."""

    def __init__(
        self,
        *,
        clock: Clock = time.time,
        queued_for: float = 0.3,
        final_after: float = 1.5,
        outcomes: dict[str, float] | None = None,
        seed: str = "smsq",
    ) -> None:
        self.source = clock
        self.offset = 0.0  # seconds the gateways' clock runs ahead (`advance`)
        self.lock = threading.RLock()
        self.queued_for = queued_for
        self.final_after = final_after
        self.outcomes = dict(outcomes or DEFAULT_OUTCOMES)
        self.seed = seed
        self.messages: list[SimMessage] = []
        self.by_id: dict[tuple[str, str], SimMessage] = {}
        self.requests: list[dict[str, Any]] = []
        self.faults: list[Fault] = []
        self.down_hosts: set[str] = set()
        self.callbacks: dict[str, list[str]] = {}
        self.extra: dict[str, Any] = {}  # per-simulator state (token tables, lists, ...)
        self._ids: dict[str, Iterator[int]] = {}
        self.host_listeners: list[Callable[[str, bool], None]] = []

    def clock(self) -> float:
        """The simulated gateways' time: the source clock plus whatever `advance` added."""
        return self.source() + self.offset

    def advance(self, seconds: float) -> None:
        """Move the gateways' clock forward (timelines, validity, token expiry) without
        waiting: control route `/__sandbox__/config` `{"advance": seconds}`."""
        with self.lock:
            self.offset += max(0.0, float(seconds))

    # -- ids and messages ------------------------------------------------------

    def next_id(self, gateway: str, start: int = 1000) -> int:
        with self.lock:
            counter = self._ids.setdefault(gateway, itertools.count(start))
            return int(next(iter(counter)))

    def pick_outcome(self, gateway: str, msg_id: str, phone: str) -> str:
        """Deterministic per message: the same seed replays the same outcomes."""
        digest = hashlib.sha256(f"{self.seed}|{gateway}|{msg_id}|{phone}".encode()).digest()
        point = int.from_bytes(digest[:8], "big") / 2**64
        total = 0.0
        for outcome, share in self.outcomes.items():
            total += share
            if point < total:
                return outcome
        return "delivered"

    def accept(
        self,
        gateway: str,
        host: str,
        msg_id: str,
        phone: str,
        text: str,
        sender: str | None,
        *,
        client_ref: str | None = None,
        outcome: str | None = None,
        valid_for: float | None = None,
        **meta: Any,
    ) -> SimMessage:
        """Record an accepted message; `valid_for` (seconds) is its validity at the gateway."""
        now = self.clock()
        msg = SimMessage(
            gateway=gateway, id=str(msg_id), phone=phone, text=text, sender=sender,
            time=now, host=host,
            outcome=outcome or self.pick_outcome(gateway, str(msg_id), phone),
            client_ref=client_ref, meta=meta,
            valid_until=None if valid_for is None else now + valid_for,
        )
        with self.lock:
            self.messages.append(msg)
            self.by_id[(gateway, msg.id)] = msg
        return msg

    def find(self, gateway: str, msg_id: str) -> SimMessage | None:
        return self.by_id.get((gateway, str(msg_id)))

    def stage(self, msg: SimMessage) -> str:
        return msg.stage(self.clock(), self.queued_for, self.final_after)

    def changed_at(self, msg: SimMessage, stage: str | None = None) -> float:
        """When `msg` entered its current stage (or `stage`)."""
        return msg.changed_at(stage or self.stage(msg), self.queued_for, self.final_after)

    # -- faults and hosts ------------------------------------------------------

    def add_fault(self, fault: Fault) -> None:
        with self.lock:
            self.faults.append(fault)

    def take_fault(self, gateway: str, host: str, path: str, kinds: set[str]) -> Fault | None:
        """The first matching fault of `kinds`, its count consumed."""
        with self.lock:
            for fault in self.faults:
                if fault.kind in kinds and fault.matches(gateway, host, path):
                    if fault.count > 0:
                        fault.count -= 1
                    return fault
            self.faults = [f for f in self.faults if f.count != 0]
        return None

    def set_host(self, host: str, up: bool) -> None:
        with self.lock:
            (self.down_hosts.discard if up else self.down_hosts.add)(host)
        for listener in list(self.host_listeners):
            listener(host, up)

    def is_down(self, host: str) -> bool:
        return host in self.down_hosts

    def reset(self) -> None:
        with self.lock:
            self.messages.clear()
            self.by_id.clear()
            self.requests.clear()
            self.faults.clear()
            self.extra.clear()
            self.callbacks.clear()
            self.offset = 0.0
            for host in list(self.down_hosts):
                self.set_host(host, True)

    def record_request(self, gateway: str, host: str, req: SimRequest, status: int,
                       validity: Any = None) -> None:
        """One request's record; `validity` is its validity parameter as sent, if any."""
        entry = {"time": self.clock(), "gateway": gateway, "host": host,
                 "method": req.method, "path": req.path, "status": status}
        if validity is not None:
            entry["validity"] = validity
        with self.lock:
            self.requests.append(entry)

    def configure(self, data: dict[str, Any]) -> None:
        with self.lock:
            if "queued_for" in data:
                self.queued_for = float(data["queued_for"])
            if "final_after" in data:
                self.final_after = float(data["final_after"])
            if "advance" in data:
                self.advance(float(data["advance"]))
            if "outcomes" in data:
                self.outcomes = {str(k): float(v) for k, v in data["outcomes"].items()}
            for gateway, urls in (data.get("callbacks") or {}).items():
                self.callbacks[str(gateway)] = [str(u) for u in urls]


class GatewaySimulator:
    """Base of every simulator: wire format only; state lives in SandboxState."""

    name: str = ""
    hosts: tuple[str, ...] = ()
    credentials: ClassVar[dict[str, str]] = {}
    number_prefix: ClassVar[str] = "+7916"  # demo numbers in the gateway's own country

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    def handle(self, req: SimRequest) -> SimResponse:
        raise NotImplementedError

    def throttle_response(self, req: SimRequest) -> SimResponse:
        return SimResponse.json({"message": "Too Many Requests", "status": 429}, status=429)

    def wire_validity(self, req: SimRequest) -> Any:
        """The request's validity parameter as sent (gateways that take one override)."""
        return None

    # Delivery reports (gateways that push them override these three).
    def report_urls(self) -> list[str]:
        return list(self.state.callbacks.get(self.name, []))

    def report_request(self, msgs: list[SimMessage]) -> tuple[str, bytes]:
        """(content type, body) of one report POST carrying `msgs`."""
        raise NotImplementedError

    def report_acked(self, status: int, body: bytes, msgs: list[SimMessage]) -> bool:
        return 200 <= status < 300
