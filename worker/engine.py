"""The engine: what a worker process holds (settings, ledger, limiter, providers).

It knows nothing of Celery: work is handed on through an injected `enqueue`
callable, so the same send / poll / reconcile logic runs under Celery, in
tests, and in benchmarks.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Mapping
from typing import Any

import redis
import requests

from providers import REGISTRY, build_provider, build_session
from providers.base import Provider
from providers.errors import ConfigurationError
from providers.models import AccountConfig
from worker import settings as settings_mod
from worker.circuit import Circuit
from worker.ledger.durable import Replicas
from worker.ledger.store import Ledger
from worker.limiter import RateLimiter
from worker.retry import Policy
from worker.settings import Settings

Enqueue = Callable[[str, Mapping[str, Any], str], None]

# Set while a send is in flight; the throttle hook calls it once the slot is granted.
_on_wire: contextvars.ContextVar[Callable[[], None] | None] = contextvars.ContextVar(
    "smsq_on_wire", default=None)

# The lane of the send in flight: a bulk request books only a slot that is due now.
_lane: contextvars.ContextVar[str] = contextvars.ContextVar("smsq_lane", default="")

TASK_DELIVER = "smsq.deliver"
TASK_CHECK = "smsq.check_status"
CONTROL_QUEUE = "smsq"
# Lanes, higher first. A gateway's queue `smsq.<gw>` carries the high lanes; bulk waits
# in the ledger's bulk index and only a few seconds of it sit in `smsq.<gw>.bulk`.
LANES = ("otp", "transactional", "bulk")
BULK = "bulk"
DEFAULT_LANE = "transactional"
# Seconds of an account's limit the broker may hold of bulk work (the rest waits in the
# ledger), and how far ahead, in slots, a bulk request may book one.
BULK_LOOKAHEAD = 2.0
BULK_HORIZON = 0.5


def queue_for(provider: str, lane: str = DEFAULT_LANE) -> str:
    return f"smsq.{provider}.bulk" if lane == BULK else f"smsq.{provider}"


def queues(providers: list[str]) -> list[str]:
    """Every send queue, high lanes first: the order a worker's `-Q` must list them in."""
    return [queue_for(p) for p in providers] + [queue_for(p, BULK) for p in providers]


def high_queues(providers: list[str]) -> list[str]:
    """The otp/transactional queues only: what a priority worker, which never takes bulk,
    consumes (`-Q`), so one-off work never waits for a process that holds a bulk send."""
    return [queue_for(p) for p in providers]


def redis_client(cfg: Settings | str, *, timeout: float = 5.0) -> redis.Redis:
    """The ledger's, limiter's and circuit's client: URL, password and TLS from the settings."""
    from worker.transport.connection import target

    return target(cfg).client(timeout=timeout, health_check_interval=15,
                              retry_on_timeout=False)


class Engine:
    """One per worker process; thread-safe enough for Celery's prefork and threads pools."""

    def __init__(
        self,
        cfg: Settings | None = None,
        *,
        client: redis.Redis | None = None,
        enqueue: Enqueue | None = None,
        session: requests.Session | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        import time

        self.cfg = cfg or settings_mod.get()
        if self.cfg.lanes not in ("priority", "fifo"):
            raise ConfigurationError(f"SMSQ_LANES must be priority or fifo, not {self.cfg.lanes!r}")
        self.fifo = self.cfg.lanes == "fifo"  # one line per account, as before lanes
        self.r = client or redis_client(self.cfg)
        self.ledger = Ledger(self.r, retention_days=self.cfg.retention_days,
                             replicas=Replicas(self.cfg.redis_min_replicas,
                                               self.cfg.redis_wait_timeout))
        self.limiter = RateLimiter(self.r, margin=self.cfg.rate_margin,
                                   max_wait=self.cfg.limiter_max_wait,
                                   hold=self.cfg.connect_timeout + self.cfg.read_timeout + 5.0)
        self.circuit = Circuit(self.r, threshold=self.cfg.circuit_threshold,
                               cooldown=self.cfg.circuit_cooldown,
                               throttle_max=self.cfg.throttle_max)
        self.retry = Policy.from_settings(self.cfg)
        self.enqueue: Enqueue = enqueue or _no_enqueue
        self.session = session
        self.clock = clock or time.time
        self._providers: dict[str, Provider] = {}
        self._lock = threading.Lock()

    def provider(self, account: str | AccountConfig) -> Provider:
        acc = account if isinstance(account, AccountConfig) else self.cfg.account(account)
        with self._lock:
            if acc.name not in self._providers:
                self._providers[acc.name] = build_provider(
                    acc, session=self.session or build_session(),
                    throttle=self._throttle(acc),
                    timeout=(self.cfg.connect_timeout, self.cfg.read_timeout),
                )
                # remaining validity on the wire is counted by the engine's clock
                self._providers[acc.name].clock = lambda: self.clock()
            return self._providers[acc.name]

    def _throttle(self, acc: AccountConfig) -> Callable[[], Callable[[], None] | None]:
        rate = self.rate_of(acc)
        horizon = BULK_HORIZON / rate if rate else 0.0

        def hook() -> Callable[[], None] | None:
            callback = _on_wire.get()
            bulk = _lane.get() == BULK and not self.fifo
            done = self.limiter.acquire(acc.name, rate, before_send=callback,
                                        horizon=horizon if bulk else None)
            if callback is not None:
                _on_wire.set(None)
            return done

        return hook

    def gateway(self, account: str | AccountConfig) -> type[Provider]:
        """An account's gateway class, for its class settings (batch sizes, capabilities)
        without building a client or an HTTP session."""
        acc = account if isinstance(account, AccountConfig) else self.cfg.account(account)
        return REGISTRY[acc.provider]

    def rate_of(self, account: str | AccountConfig) -> float | None:
        """Requests per second for an account: its setting, else the gateway's documented one."""
        acc = account if isinstance(account, AccountConfig) else self.cfg.account(account)
        return acc.rate_per_second or REGISTRY[acc.provider].default_rate

    def deliver_later(self, ids: list[str], account: str, lane: str = DEFAULT_LANE) -> None:
        acc = self.cfg.account(account)
        lane = DEFAULT_LANE if self.fifo else lane
        self.enqueue(TASK_DELIVER, {"ids": ids, "account": account},
                     queue_for(acc.provider, lane))


def _no_enqueue(name: str, kwargs: Mapping[str, Any], queue: str) -> None:
    """Without a broker, work is left to the ledger's release sweep."""
    return None


def set_on_wire(callback: Callable[[], None] | None) -> contextvars.Token[Any]:
    return _on_wire.set(callback)


def reset_on_wire(token: contextvars.Token[Any]) -> None:
    _on_wire.reset(token)


def set_lane(lane: str) -> contextvars.Token[str]:
    return _lane.set(lane)


def reset_lane(token: contextvars.Token[str]) -> None:
    _lane.reset(token)
