"""The message lifecycle: its states and the one table of which state may move to which.

    scheduled -> queued | rejected | cancelled        (a campaign's window, suppression)
    queued    -> sending | failed | cancelled          (claim, unroutable, cancel)
    sending   -> sent | queued | unknown | failed | rejected   (the send's outcome, a dead lease)
    sent      -> unknown                               (no final status within the horizon)
    unknown   -> unknown                               (lookups gave up: off the lookup index)
  and status news (reports, polls, lookups) moves only forward along FORWARD:
    queued -> unknown -> sent -> delivered | undelivered | expired | rejected | failed | cancelled

Everything else derives from TRANSITIONS: the ledger's Lua refuses any other move
(`lua_tables` is pasted into the script), reports take their allowed-from lists
from `reported_from`, and every `Step` (and `Ledger.transition`) is checked
against it, so a new state is one edit here.

The states themselves are `providers.models.Status`: gateways report them and
providers cannot import the worker, so the shared vocabulary lives there; the
rules of moving between them are the engine's and live here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from providers.models import FINAL_STATUSES, Status

__all__ = ["FINAL", "FORWARD", "OPEN", "TRANSITIONS", "Status", "Step", "check", "lua_tables",
           "reported_from"]

S = Status
FINAL: frozenset[Status] = FINAL_STATUSES
# Not final yet: waiting for the wire, on it, or for news from the gateway.
OPEN: tuple[Status, ...] = (S.QUEUED, S.SENDING, S.SENT, S.UNKNOWN)

# What the engine itself does: claims, send outcomes, sweeps, campaigns, cancels.
_ENGINE: Mapping[Status, frozenset[Status]] = {
    S.SCHEDULED: frozenset({S.QUEUED, S.REJECTED, S.CANCELLED}),
    # queued -> rejected: a bulk message to an opted-out number, found at release (lanes);
    # sending -> expired: its validity ran out before the request left (never sent late).
    S.QUEUED: frozenset({S.SENDING, S.FAILED, S.CANCELLED, S.REJECTED}),
    S.SENDING: frozenset({S.QUEUED, S.SENT, S.UNKNOWN, S.FAILED, S.REJECTED, S.EXPIRED}),
    S.SENT: frozenset({S.UNKNOWN}),
    S.UNKNOWN: frozenset({S.UNKNOWN}),
}

# Status news moves a message forward along these tiers only, never backwards. A message
# in `sending` is not in them: its send result comes first (a report is parked for it).
FORWARD: tuple[frozenset[Status], ...] = (
    frozenset({S.QUEUED}), frozenset({S.UNKNOWN}), frozenset({S.SENT}), FINAL)


def _reported() -> dict[Status, tuple[Status, ...]]:
    out: dict[Status, tuple[Status, ...]] = {}
    for i, tier in enumerate(FORWARD[1:], start=1):
        lower = tuple(s for t in FORWARD[:i] for s in sorted(t))
        for new in tier:
            out[new] = lower
    return out


_REPORTED = _reported()


def _table() -> dict[Status, frozenset[Status]]:
    table = {s: set(_ENGINE.get(s, ())) for s in Status}
    for new, sources in _REPORTED.items():
        for src in sources:
            table[src].add(new)
    return {s: frozenset(n) for s, n in table.items()}


TRANSITIONS: Mapping[Status, frozenset[Status]] = _table()


def reported_from(new: Status) -> tuple[Status, ...]:
    """The states a report of `new` may move a message from (empty: reports never set it)."""
    return _REPORTED.get(new, ())


_PAIRS = frozenset((str(cur), str(new)) for cur, nxt in TRANSITIONS.items() for new in nxt)


def check(expected: Iterable[str], new: str) -> None:
    """Refuse, before Redis sees it, a move the table does not allow (a programming error).
    On every step of the send path, hence one set lookup per expected state."""
    for cur in expected:
        if (cur, new) not in _PAIRS:
            raise ValueError(f"lifecycle: {cur} -> {new} is not an allowed transition")


@dataclass(frozen=True, slots=True)
class Step:
    """One conditional transition: `id` moves to `new` if its state is one of `expected`;
    `score` places it in the new state's index, `fields` are written ("" or None deletes)."""

    id: str
    expected: tuple[Status, ...]
    new: Status
    score: float = 0.0
    fields: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check(self.expected, self.new)


def lua_tables() -> str:
    """FINAL and ALLOWED as Lua tables, for the ledger's transition script."""
    final = ", ".join(f"{s}=1" for s in sorted(FINAL))
    rows = []
    for cur in sorted(TRANSITIONS):
        if TRANSITIONS[cur]:
            nxt = ", ".join(f"{s}=1" for s in sorted(TRANSITIONS[cur]))
            rows.append(f"  {cur}={{{nxt}}},")
    return (f"local FINAL = {{{final}}}\n"
            "local ALLOWED = {\n" + "\n".join(rows) + "\n}\n")
