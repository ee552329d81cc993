"""Suppression: the local opt-out list, plus the gateway's own list where it has one.

The local list is a Redis set of E.164 numbers (`smsq:suppress`) with a note
per number (`smsq:suppress:notes`). Campaigns check it, and the gateway's own
list where the provider has one (`StopList`, `BlackList`), at release time, so
an opt-out recorded after a campaign was scheduled still holds. A gateway list that
cannot be read stops the release (fail closed) rather than risk a send.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import redis

from providers import phones
from providers.base import Provider
from providers.capabilities import BlackList, StopList
from providers.errors import ValidationError
from worker.ledger.store import P

SUPPRESS, NOTES = P + "suppress", P + "suppress:notes"
STOPLIST_TTL = 30.0


class Suppression:
    def __init__(self, client: redis.Redis, region: str = phones.DEFAULT_REGION) -> None:
        self.r: Any = client  # redis-py's stubs type replies as bytes | str | Awaitable
        self.region = region
        self._stoplists: dict[str, tuple[float, set[str]]] = {}

    def add(self, numbers: Iterable[str], note: str = "") -> int:
        normal = [phones.normalize(n, self.region) for n in numbers]
        if not normal:
            return 0
        stamp = f"{int(time.time())} {note}".strip()
        with self.r.pipeline(transaction=False) as pipe:
            pipe.sadd(SUPPRESS, *normal)
            pipe.hset(NOTES, mapping=dict.fromkeys(normal, stamp))
            added, _ = pipe.execute()
        return int(added)

    def remove(self, numbers: Iterable[str]) -> int:
        normal = [phones.normalize(n, self.region) for n in numbers]
        if not normal:
            return 0
        self.r.hdel(NOTES, *normal)
        return int(self.r.srem(SUPPRESS, *normal))

    def count(self) -> int:
        return int(self.r.scard(SUPPRESS))

    def entries(self) -> Iterator[tuple[str, str]]:
        for phone, note in self.r.hscan_iter(NOTES, count=1000):
            yield phone.decode(), note.decode()

    def import_numbers(self, numbers: Iterable[str], note: str = "import",
                       chunk: int = 5000) -> tuple[int, list[str]]:
        """Add many numbers; returns (added, problems naming the bad items)."""
        added, problems, batch = 0, [], []
        for i, raw in enumerate(numbers, start=1):
            try:
                batch.append(phones.normalize(raw.strip(), self.region))
            except ValidationError as exc:
                problems.append(f"line {i}: {exc.message}")
            if len(batch) >= chunk:
                added, batch = added + self.add(batch, note), []
        return added + self.add(batch, note), problems

    def local(self, numbers: Sequence[str]) -> set[str]:
        if not numbers:
            return set()
        flags = self.r.smismember(SUPPRESS, list(numbers))
        return {n for n, hit in zip(numbers, flags, strict=True) if hit}

    def at_gateway(self, provider: Provider, numbers: Sequence[str]) -> set[str]:
        """Numbers on the gateway's own list (a `StopList` or a `BlackList`), if it has one."""
        if not numbers:
            return set()
        if isinstance(provider, StopList):
            return self._stoplist(provider.account.name, provider) & set(numbers)
        if isinstance(provider, BlackList):
            return provider.blacklisted(numbers)
        return set()

    def _stoplist(self, account: str, provider: StopList) -> set[str]:
        """The whole stop list, normalised, cached per account for STOPLIST_TTL seconds."""
        cached = self._stoplists.get(account)
        if cached is not None and time.monotonic() - cached[0] < STOPLIST_TTL:
            return cached[1]
        listed: set[str] = set()
        for raw in provider.stoplist():
            try:
                listed.add(phones.normalize(raw, self.region))
            except ValidationError:
                continue
        self._stoplists[account] = (time.monotonic(), listed)
        return listed
