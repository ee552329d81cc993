"""The values the ledger reads and writes in batches, as frozen dataclasses."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from providers.models import OutgoingMessage

Record = dict[str, str]
Parked = tuple[str, str, dict[str, Any]]  # message id, report key, the parked report


@dataclass(frozen=True, slots=True)
class Sent:
    """A message the gateway accepted: its report key and gateway id, cost, segments and
    raw code ("" where the gateway gave none)."""

    id: str
    key: str
    pid: str
    cost: str = ""
    segments: str = ""
    raw: str = ""

    def args(self) -> tuple[str, str, str, str, str, str]:
        return self.id, self.key, self.pid, self.cost, self.segments, self.raw


@dataclass(frozen=True, slots=True)
class Recheck:
    """A status check put off: the next check's time; chk, raw and cost to write ("" leaves
    a field as it is)."""

    id: str
    at: float
    chk: str = ""
    raw: str = ""
    cost: str = ""

    def args(self) -> tuple[str, float, str, str, str]:
        return self.id, self.at, self.chk, self.raw, self.cost


def outgoing(rows: list[Record], jobs: dict[str, Record], default_sender: str | None
             ) -> list[OutgoingMessage]:
    """One OutgoingMessage per row; a job's shared text, sender and options are resolved
    (and its options decoded) once, not once per recipient. A row's `vu` is its deadline,
    which a gateway with a validity parameter gets the rest of on the wire."""
    shared: dict[str, tuple[str, str | None, dict[str, Any]]] = {}
    decoded: dict[str, dict[str, Any]] = {}
    out: list[OutgoingMessage] = []
    for row in rows:
        job_id = row["job"]
        if job_id not in shared:
            job = jobs.get(job_id, {})
            shared[job_id] = (job.get("text", ""), job.get("sender") or default_sender,
                              _options(decoded, job.get("opts")))
        text, sender, options = shared[job_id]
        if "text" in row or "sender" in row or "opts" in row:
            text = row.get("text") or text
            sender = row.get("sender") or sender
            options = _options(decoded, row["opts"]) if row.get("opts") else options
        until = row.get("vu")  # the job's deadline, set by validity.split
        out.append(OutgoingMessage(row["id"], row["to"], text, sender, options,
                                   float(until) if until else None))
    return out


def _options(decoded: dict[str, dict[str, Any]], raw: str | None) -> dict[str, Any]:
    raw = raw or "{}"
    if raw not in decoded:
        decoded[raw] = json.loads(raw)
    return decoded[raw]
