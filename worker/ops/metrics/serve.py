"""Serving: the worker's merged multiprocess view, the receiver's registry, and the
deployment-wide gauges read from Redis at scrape time."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import redis
import structlog

from providers import REGISTRY as PROVIDERS
from worker.callbacks import outbox
from worker.engine import LANES
from worker.ledger.caps import capped_totals
from worker.ledger.lifecycle import Status
from worker.ops import health
from worker.ops.metrics.counters import enable, rolling
from worker.settings import Settings

log = structlog.get_logger("smsq.metrics")


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
    """In a parent process before it forks (a Celery worker's main process, or the
    receiver's supervisor with SMSQ_WEBHOOK_PROCESSES > 1): its children write their
    samples to a per-process file, the parent serves the merged view; returns the dir."""
    if not cfg.metrics_port:
        return None
    path = multiproc_dir(cfg.metrics_dir)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    # prometheus_client picks its value class when first imported; Flower's celery command
    # entry point imports it before worker_init, so pick again now (import order must not matter)
    from prometheus_client import values

    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    enable()
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
    registry.register(RedisCollector(cfg))
    _listen(cfg, registry)
    return path


def start_receiver_server(cfg: Settings) -> None:
    """The receiver as one process: its own registry, plus the Redis gauges."""
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
        self.r = health.client(cfg, timeout=2.0)

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
        from prometheus_client.core import CounterMetricFamily as C
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
        yield _family(G("smsq_queued_age_seconds", "Age of the oldest queued message of each "
                        "lane (0: none)", labels=["lane"]), health.lane_ages(r, list(cfg.accounts)))
        yield _family(G("smsq_oldest_message_age_seconds", "Age of the oldest message in each "
                        "open state", labels=["state"]), oldest)
        lag = G("smsq_delivery_report_lag_seconds", "Age of the oldest sent message still "
                "awaiting its final status (0: none)")
        lag.add_metric([], oldest.get(Status.SENT.value, 0.0))
        yield lag
        yield _family(G("smsq_callbacks", "Status callback events parked as failed, and "
                        "subscriber outboxes waiting", labels=["state"]), outbox.gauges(r))
        capped = capped_totals(r)
        yield _family(C("smsq_recipient_cap_rejected", "Messages refused at submit by a "
                        "per-recipient cap (rejected, reason recipient_cap)", labels=["lane"]),
                      {lane: capped.get(lane, 0) for lane in LANES})


def _family(family: Any, values: dict[str, Any]) -> Any:
    for label, value in values.items():
        family.add_metric([label], float(value))
    return family
