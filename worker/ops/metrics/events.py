"""The engine's structlog events, counted: `processor` sits in the logging chain."""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import Any

from worker.ops.metrics.counters import count_outcomes, count_request, prom, rolling


def _batch_sent(e: MutableMapping[str, Any]) -> None:
    count_request(str(e.get("provider")), "send")


def _failed(op: str) -> Callable[[MutableMapping[str, Any]], None]:
    def handle(e: MutableMapping[str, Any]) -> None:
        account = str(e.get("provider"))
        if op == "send":
            count_request(account, op)
        rolling.add(f"a:{account}", "error")
        if (p := prom()) is not None:
            p.errors.labels(account, op, str(e.get("error") or "crash")).inc()
    return handle


def _failed_over(e: MutableMapping[str, Any]) -> None:
    if (p := prom()) is not None:
        p.failovers.labels(str(e.get("provider"))).inc(int(e.get("size") or 0))


def _reclaimed(e: MutableMapping[str, Any]) -> None:
    if (p := prom()) is not None:
        p.reclaimed.inc(int(e.get("count") or 0))


def _reports(e: MutableMapping[str, Any]) -> None:
    gateway = str(e.get("gateway"))
    count_outcomes(gateway, e)
    if (p := prom()) is not None:
        p.reports.labels(gateway, "received").inc(int(e.get("count") or 0))
        p.reports.labels(gateway, "parked").inc(int(e.get("parked") or 0))
        p.reports.labels(gateway, "park_refused").inc(int(e.get("park_refused") or 0))


def _rejected(e: MutableMapping[str, Any]) -> None:
    if (p := prom()) is not None:
        p.reports.labels(str(e.get("gateway")), "rejected").inc()


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
