"""Applying status news (delivery reports, polls, lookups) without ever going backwards."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from providers import REGISTRY
from providers.models import Status, StatusResult
from worker.callbacks import notify
from worker.ledger.lifecycle import Step, reported_from

if TYPE_CHECKING:
    from worker.engine import Engine
    from worker.ledger.records import Parked, Record

def _fields(res: StatusResult, now: float) -> dict[str, Any]:
    fields: dict[str, Any] = {"raw": res.raw_code, "lease": ""}
    if res.status.is_final:
        fields["final_at"] = res.updated_at or now
    if res.cost is not None:
        fields["cost"] = res.cost
    if res.error:
        fields["reason"] = res.error
    return fields


def status_steps(engine: Engine, pairs: Sequence[tuple[Record, StatusResult]]) -> list[Step]:
    """The transition to each reported status (from any lower one: never backwards)."""
    now = engine.clock()
    steps: list[Step] = []
    for row, res in pairs:
        new = res.status
        sources = reported_from(new)
        if not sources:  # queued, sending, scheduled: not news a report can bring
            continue
        score = now + engine.cfg.poll_first_after if new is Status.SENT else 0.0
        steps.append(Step(row["id"], sources, new, score, _fields(res, now)))
    return steps


def count_moved(steps: Sequence[Step], done: Sequence[bool]) -> dict[str, int]:
    """How many messages reached each new status."""
    counts: dict[str, int] = {}
    for step, ok in zip(steps, done, strict=True):
        if ok:
            new = str(step.new)
            counts[new] = counts.get(new, 0) + 1
    return counts


def apply_status_steps(engine: Engine, pairs: Sequence[tuple[Record, StatusResult]]
                       ) -> dict[str, int]:
    """Move each message to its reported status if that is forward; counts by status."""
    steps = status_steps(engine, pairs)
    done = engine.ledger.pipeline_transitions(steps)
    notify(engine, [s.id for s, ok in zip(steps, done, strict=True) if ok])
    return count_moved(steps, done)


def apply_reports(engine: Engine, provider: str, results: Sequence[StatusResult]
                  ) -> dict[str, int]:
    """Delivery reports from a gateway; unknown gateway ids are parked for their send result,
    at most `park_per_request` of one request and `park_max` in all (the rest refused)."""
    keys = [_report_key(engine, provider, r) for r in results]
    ids = engine.ledger.find_pids(provider, keys)
    pairs = []
    parked = refused = 0
    cfg = engine.cfg
    for res, key, msg_id in zip(results, keys, ids, strict=True):
        if msg_id is None:
            if parked >= cfg.park_per_request:
                refused += 1
                continue
            found = engine.ledger.park_orphan(provider, key, _to_json(res), ttl=cfg.park_ttl,
                                              cap=cfg.park_max)
            parked += found is True
            refused += found is False
            msg_id = found if isinstance(found, str) else None
        if msg_id is not None:
            pairs.append(({"id": msg_id}, res))
    counts = apply_status_steps(engine, pairs)
    counts["parked"] = parked
    counts["park_refused"] = refused
    return counts


def _report_key(engine: Engine, provider: str, res: StatusResult) -> str:
    return REGISTRY[provider].report_key(res.provider_message_id, res.recipient)


def apply_parked(engine: Engine, provider: str, parked: Sequence[Parked]) -> None:
    """Reports taken when their send result landed: (message id, report key, report)."""
    pairs = [({"id": msg_id}, StatusResult(provider_message_id=key, status=Status(o["status"]),
                                           raw_code=o.get("raw_code"),
                                           updated_at=o.get("updated_at")))
             for msg_id, key, o in parked]
    apply_status_steps(engine, pairs)


def _to_json(res: StatusResult) -> dict[str, Any]:
    return {"status": str(res.status), "raw_code": res.raw_code, "updated_at": res.updated_at}
