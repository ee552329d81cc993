"""The values the ledger reads and writes in batches, as frozen dataclasses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
