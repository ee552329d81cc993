"""Validity periods: a message not on the wire by its job's `vu` (valid until, epoch
seconds) ends `expired` with reason `validity` and is never sent late.

Checked twice on the send path, which every first send, retry, failover and
recovered lease goes through: when a deliver task claims the messages, and
again when the limiter has granted the slot, right before the request leaves.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from worker.ledger.lifecycle import Status
from worker.ledger.records import Record
from worker.ledger.store import Ledger

REASON = "validity"


class Expired(Exception):
    """Raised right before the request would leave: the validity ran out while waiting."""


def split(rows: list[Record], jobs: Mapping[str, Record], now: float
          ) -> tuple[list[Record], list[str]]:
    """(rows still valid, each given its `vu`; ids of those past it)."""
    valid, late = [], []
    for row in rows:
        until = (jobs.get(row["job"]) or {}).get("vu")
        if until and float(until) <= now:
            late.append(row["id"])
            continue
        if until:
            row["vu"] = until
        valid.append(row)
    return valid, late


def deadline(rows: Sequence[Record]) -> float | None:
    ends = [float(r["vu"]) for r in rows if r.get("vu")]
    return min(ends) if ends else None


def guard(rows: Sequence[Record], clock: Callable[[], float]) -> None:
    """Raise Expired when the earliest validity among `rows` has passed."""
    end = deadline(rows)
    if end is not None and clock() >= end:
        raise Expired()


def expire(ledger: Ledger, ids: Sequence[str]) -> list[str]:
    """sending -> expired (reason validity); returns the ids that moved."""
    return ledger.transition_many(list(ids), (Status.SENDING,), Status.EXPIRED, reason=REASON,
                                  lease="", wire="0")
