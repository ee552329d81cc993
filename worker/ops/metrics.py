"""Prometheus metrics and the per-minute counters behind `smsq stats`.

Nothing in the engine knows about metrics. Counters are driven by what the
engine already says: its structlog events (a processor in the logging chain,
`processor`) and the counts its Celery tasks return (task_prerun/postrun,
which also time a delivery and read the limiter's wait). Gauges are read from
Redis at scrape time (`RedisCollector`), so every process reports the same
deployment-wide numbers.

Celery prefork: prometheus-client's multiprocess mode. The worker's main
process, on `worker_init` and before its pool forks, points
PROMETHEUS_MULTIPROC_DIR at a fresh directory (SMSQ_METRICS_DIR, else a new
temp dir) and only then imports prometheus_client; pool children write their
samples to per-pid files there and the main process serves the merged view
plus the Redis gauges on SMSQ_METRICS_PORT. Counters of recycled children
stay in the sum. The receiver is one process and serves its own registry.
Nothing is served when SMSQ_METRICS_PORT is 0 (the default).
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from typing import Any

import redis
import structlog

from providers import REGISTRY as PROVIDERS
from worker.callbacks import outbox
from worker.ops import health
from worker.settings import Settings
from worker.settings import get as get_settings

log = structlog.get_logger("smsq.metrics")
OUTCOMES = ("sent", "delivered", "undelivered", "expired", "failed", "rejected", "unknown")
SECONDS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
WAITS = (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)


class Rolling:
    """Per-minute counters for `smsq stats`: buffered in memory, flushed to Redis in one go."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._buf: dict[tuple[int, str], int] = {}
        self._lock = threading.Lock()

    def add(self, label: str, kind: str, n: int = 1) -> None:
        if n:
            key = (int(self.clock() // 60), f"{label}|{kind}")
            with self._lock:
                self._buf[key] = self._buf.get(key, 0) + n

    def flush(self, r: redis.Redis) -> None:
        with self._lock:
            buf, self._buf = self._buf, {}
        if not buf:
            return
        try:
            with r.pipeline(transaction=False) as pipe:
                for (minute, field), n in buf.items():
                    pipe.hincrby(f"{health.STATS_PREFIX}{minute}", field, n)
                    pipe.expire(f"{health.STATS_PREFIX}{minute}", 7200)
                pipe.execute()
        except redis.RedisError:
            return  # stats are best effort; the ledger is the record


class _Prom:
    """The process's prometheus metrics, made after multiprocess mode is decided."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Histogram

        self.messages = Counter("smsq_messages", "Messages reaching a status, by gateway",
                                ["gateway", "status"])
        self.retries = Counter("smsq_retries", "Messages re-queued after a transient error",
                               ["gateway"])
        self.requests = Counter("smsq_gateway_requests", "Gateway requests (approximate for "
                                "status: batches of ids)", ["account", "op"])
        self.errors = Counter("smsq_gateway_errors", "Failed gateway requests by error class",
                              ["account", "op", "error"])
        self.deferred = Counter("smsq_limiter_deferred", "Messages re-queued because the global "
                                "limiter had no slot within SMSQ_LIMITER_MAX_WAIT", ["account"])
        self.failovers = Counter("smsq_failovers", "Messages moved to the next account of their "
                                 "route", ["account"])
        self.reclaimed = Counter("smsq_leases_reclaimed", "Sends whose worker died mid-send")
        self.reports = Counter("smsq_reports", "Delivery reports received",
                               ["gateway", "result"])
        self.send_seconds = Histogram("smsq_send_duration_seconds", "One delivery task's "
                                      "gateway time (limiter waits excluded)", ["gateway"],
                                      buckets=SECONDS)
        self.limiter_wait = Histogram("smsq_limiter_wait_seconds", "Time a task slept for its "
                                      "rate-limit slots", ["account"], buckets=WAITS)


rolling = Rolling()
_prom: _Prom | None = None
_started: dict[str, tuple[float, float]] = {}


def enable() -> None:
    global _prom
    if _prom is None:
        _prom = _Prom()


def _gateway(account: str) -> str:
    acc = get_settings().accounts.get(account)
    return acc.provider if acc else account


# -- structlog events --------------------------------------------------------------


def _batch_sent(e: MutableMapping[str, Any]) -> None:
    _request(str(e.get("provider")), "send")


def _request(account: str, op: str, n: int = 1) -> None:
    rolling.add(f"a:{account}", "req", n)
    if _prom:
        _prom.requests.labels(account, op).inc(n)


def _failed(op: str) -> Callable[[MutableMapping[str, Any]], None]:
    def handle(e: MutableMapping[str, Any]) -> None:
        account = str(e.get("provider"))
        if op == "send":
            _request(account, op)
        rolling.add(f"a:{account}", "error")
        if _prom:
            _prom.errors.labels(account, op, str(e.get("error") or "crash")).inc()
    return handle


def _failed_over(e: MutableMapping[str, Any]) -> None:
    if _prom:
        _prom.failovers.labels(str(e.get("provider"))).inc(int(e.get("size") or 0))


def _reclaimed(e: MutableMapping[str, Any]) -> None:
    if _prom:
        _prom.reclaimed.inc(int(e.get("count") or 0))


def _reports(e: MutableMapping[str, Any]) -> None:
    gateway = str(e.get("gateway"))
    _outcomes(gateway, e)
    if _prom:
        _prom.reports.labels(gateway, "received").inc(int(e.get("count") or 0))
        _prom.reports.labels(gateway, "parked").inc(int(e.get("parked") or 0))
        _prom.reports.labels(gateway, "park_refused").inc(int(e.get("park_refused") or 0))


def _rejected(e: MutableMapping[str, Any]) -> None:
    if _prom:
        _prom.reports.labels(str(e.get("gateway")), "rejected").inc()


def _outcomes(gateway: str, counts: MutableMapping[str, Any]) -> None:
    for status in OUTCOMES:
        n = counts.get(status)
        if isinstance(n, int) and n > 0:
            rolling.add(f"g:{gateway}", status, n)
            if _prom:
                _prom.messages.labels(gateway, status).inc(n)


EVENTS: dict[str, Callable[[MutableMapping[str, Any]], None]] = {
    "sms_batch_sent": _batch_sent,
    "sms_request_failed": _failed("send"),
    "sms_send_crashed": _failed("send"),
    "sms_status_failed": _failed("status"),
    "sms_lookup_failed": _failed("lookup"),
    "sms_failed_over": _failed_over,
    "sms_leases_reclaimed": _reclaimed,
    "reports_applied": _reports,
    "report_rejected": _rejected,
}


def processor(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: count the engine's events; never changes or drops the event."""
    handler = EVENTS.get(str(event.get("event")))
    if handler is not None:
        try:
            handler(event)
        except Exception:  # noqa: S110 - metrics must never break logging or the caller
            pass
    return event


# -- Celery task outcomes ----------------------------------------------------------


def task_started(task_id: str, waited: float) -> None:
    _started[task_id] = (time.monotonic(), waited)


def task_finished(task_id: str, name: str, kwargs: dict[str, Any], retval: Any,
                  waited: float) -> None:
    t0, w0 = _started.pop(task_id, (time.monotonic(), waited))
    account = kwargs.get("account")
    if not isinstance(account, str) or not isinstance(retval, dict):
        return
    gateway, slept = _gateway(account), max(0.0, waited - w0)
    if name == "smsq.deliver":
        _outcomes(gateway, retval)
        rolling.add(f"g:{gateway}", "retry", int(retval.get("queued", 0)))
        if _prom:
            _prom.retries.labels(gateway).inc(int(retval.get("queued", 0)))
            _prom.deferred.labels(account).inc(int(retval.get("throttled", 0)))
            if any(retval.get(k) for k in (*OUTCOMES, "queued")):
                _prom.send_seconds.labels(gateway).observe(
                    max(0.0, time.monotonic() - t0 - slept))
    elif name == "smsq.check_status":
        _outcomes(gateway, {k: v for k, v in retval.items() if k != "sent"})
        size = PROVIDERS[gateway].max_status_ids if gateway in PROVIDERS else 1
        _request(account, "status", math.ceil(len(kwargs.get("ids") or []) / max(1, size)))
    else:
        return
    if _prom:
        _prom.limiter_wait.labels(account).observe(slept)


def connect_celery(engine: Callable[[], Any]) -> None:
    """Wire the task signals and the worker's metrics server; `engine` is this process's."""
    from celery.signals import task_postrun, task_prerun, worker_init

    def waited() -> float:
        return float(engine().limiter.waited)

    @task_prerun.connect(weak=False)  # type: ignore[untyped-decorator]
    def _pre(task_id: str = "", **_: Any) -> None:
        task_started(task_id, waited())

    @task_postrun.connect(weak=False)  # type: ignore[untyped-decorator]
    def _post(task_id: str = "", task: Any = None, kwargs: Any = None, retval: Any = None,
              **_: Any) -> None:
        try:
            task_finished(task_id, getattr(task, "name", ""), kwargs or {}, retval, waited())
            rolling.flush(engine().r)
        except Exception:
            log.warning("metrics_task_hook_failed", exc_info=True)

    @worker_init.connect(weak=False)  # type: ignore[untyped-decorator]
    def _init(**_: Any) -> None:
        start_worker_server(get_settings())


# -- serving -----------------------------------------------------------------------


def multiproc_dir(configured: str) -> str:
    """A clean directory for this worker's per-process sample files."""
    if not configured:
        return tempfile.mkdtemp(prefix="smsq-metrics-")
    os.makedirs(configured, exist_ok=True)
    for name in os.listdir(configured):
        if name.endswith(".db"):
            os.remove(os.path.join(configured, name))
    return configured


def start_worker_server(cfg: Settings) -> str | None:
    """In a Celery worker's main process, before the pool forks; returns the sample dir."""
    if not cfg.metrics_port:
        return None
    if "prometheus_client" in sys.modules and _prom is None:
        log.warning("metrics_multiprocess_late", detail="prometheus_client was imported before "
                    "worker_init; pool children may not report")
    path = multiproc_dir(cfg.metrics_dir)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    enable()
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
    registry.register(RedisCollector(cfg))
    _listen(cfg, registry)
    return path


def start_receiver_server(cfg: Settings) -> None:
    """The receiver is one process: its own registry, plus the Redis gauges."""
    if not cfg.metrics_port:
        return
    enable()
    from prometheus_client import REGISTRY

    REGISTRY.register(RedisCollector(cfg))
    _listen(cfg, REGISTRY)


def _listen(cfg: Settings, registry: Any) -> None:
    from prometheus_client import start_http_server

    try:
        start_http_server(cfg.metrics_port, addr=cfg.metrics_addr, registry=registry)
    except OSError as exc:  # a busy port must not stop the worker from sending
        log.error("metrics_port_unavailable", port=cfg.metrics_port, error=str(exc))
        return
    log.info("metrics_serving", port=cfg.metrics_port, addr=cfg.metrics_addr)


def flushing(app: Callable[..., Iterable[bytes]], r: redis.Redis
             ) -> Callable[..., Iterable[bytes]]:
    """WSGI middleware: flush the per-minute counters after each request."""
    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            return app(environ, start_response)
        finally:
            rolling.flush(r)
    return wrapped


class RedisCollector:
    """Deployment-wide gauges read from Redis at scrape time (identical in every process)."""

    def __init__(self, cfg: Settings) -> None:
        self.cfg = cfg
        self.r = health.client(cfg.redis_url, timeout=2.0)

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily as G

        up = G("smsq_redis_up", "1 when the scrape could read Redis")
        try:
            families = list(self._families())
        except redis.RedisError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _families(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily as G

        r, cfg = self.r, self.cfg
        yield _family(G("smsq_queue_depth", "Tasks waiting in a Celery queue", labels=["queue"]),
                      health.queue_depths(r))
        yield _family(G("smsq_pending_status_checks", "Sent messages awaiting a final status",
                        labels=["account"]), health.pending_checks(r, cfg))
        yield _family(G("smsq_ledger_index", "Messages in the ledger's sweep indexes",
                        labels=["index"]), health.index_sizes(r))
        yield _family(G("smsq_limiter_backlog_seconds", "Rate-limit slots booked ahead",
                        labels=["account"]), health.limiter_backlog(r, cfg))
        yield _family(G("smsq_limiter_rate_per_second", "Configured request rate",
                        labels=["account"]),
                      {n: a.rate_per_second or PROVIDERS[a.provider].default_rate or 0.0
                       for n, a in cfg.accounts.items()})
        circuit = G("smsq_circuit_state", "1 for the account's current circuit state",
                    labels=["account", "state"])
        for account, state in health.circuit_states(r, cfg).items():
            for s in ("closed", "half-open", "open"):
                circuit.add_metric([account, s], 1.0 if s == state else 0.0)
        yield circuit
        beat = G("smsq_beat_heartbeat_age_seconds", "Seconds since beat's release sweep ran")
        age = health.beat_age(r)
        beat.add_metric([], age if age is not None else float("inf"))
        yield beat
        oldest = health.oldest_open(r)
        yield _family(G("smsq_oldest_message_age_seconds", "Age of the oldest message in each "
                        "open state", labels=["state"]), oldest)
        lag = G("smsq_delivery_report_lag_seconds", "Age of the oldest sent message still "
                "awaiting its final status (0: none)")
        lag.add_metric([], oldest.get("sent", 0.0))
        yield lag
        yield _family(G("smsq_callbacks", "Status callback events parked as failed, and "
                        "subscriber outboxes waiting", labels=["state"]), outbox.gauges(r))


def _family(family: Any, values: dict[str, Any]) -> Any:
    for label, value in values.items():
        family.add_metric([label], float(value))
    return family
