"""Writing a campaign's audience: validate, normalise, dedup and write, chunk by chunk.

Each chunk is one Lua call (worker.campaign_store.WRITE_CHUNK) that dedups
against the campaign's Redis set and writes the message records and the
per-zone waiting lists, so the producer holds one chunk at a time and pays
one round trip per few thousand rows. Invalid rows become `rejected`
records whose reason names the line: they are in the report and the
rejected count, never silently dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from providers.errors import ValidationError
from worker.audience import Row
from worker.campaign_phones import PhoneCache
from worker.campaign_store import CampaignStore
from worker.schedule import ANY_ZONE
from worker.templates import Template, segment_count

CHUNK = 2000
DUP_SAMPLE = 20


@dataclass
class ImportResult:
    accepted: int = 0
    invalid: int = 0
    duplicates: int = 0
    segments: int = 0
    max_segments: int = 0
    duplicate_lines: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # the first few invalid rows


@dataclass
class ImportJob:
    store: CampaignStore
    cid: str
    account: str
    route: str  # "" for a one-account route
    template: Template
    phones: PhoneCache
    max_segments: int | None
    label: str = "line"
    windowed: bool = False
    on_chunk: Callable[[], None] | None = None
    result: ImportResult = field(default_factory=ImportResult)

    def run(self, rows: Iterable[Row]) -> ImportResult:
        args: list[str] = []
        lines: list[int] = []
        for row in rows:
            args += self._encode(row)
            lines.append(row.line)
            if len(lines) >= CHUNK:
                self._flush(args, lines)
                args, lines = [], []
        if lines:
            self._flush(args, lines)
        return self.result

    def _encode(self, row: Row) -> list[str]:
        try:
            if row.problem:
                raise ValidationError(row.problem)
            e164, zone = self.phones.lookup(row.phone)
            text = self._render(row) if self.template.personal else ""
        except ValidationError as exc:
            reason = f"{self.label} {row.line}: {exc.message}"
            if len(self.result.problems) < DUP_SAMPLE:
                self.result.problems.append(reason)
            return ["r", row.phone.strip()[:32], "", reason]
        return ["s", e164, text, zone if self.windowed else ANY_ZONE]

    def _render(self, row: Row) -> str:
        values = row.values or {}
        missing = [f for f in self.template.fields if f not in values]
        if missing:
            raise ValidationError(f"has no {', '.join(missing)}")
        text = self.template.render(values)
        if not text.strip():
            raise ValidationError("the rendered text is empty")
        parts = segment_count(text)
        if self.max_segments is not None and parts > self.max_segments:
            raise ValidationError(f"the text takes {parts} SMS segments; the gateway allows "
                                  f"{self.max_segments}")
        self.result.segments += parts
        self.result.max_segments = max(self.result.max_segments, parts)
        return text

    def _flush(self, args: list[str], lines: list[int]) -> None:
        dups = self.store.write_chunk(self.cid, self.account, self.route, args)
        kinds = args[0::4]
        rejected = kinds.count("r")
        self.result.invalid += rejected
        self.result.accepted += len(lines) - rejected - len(dups)
        self.result.duplicates += len(dups)
        room = DUP_SAMPLE - len(self.result.duplicate_lines)
        self.result.duplicate_lines += [lines[i] for i in dups[:max(room, 0)]]
        if self.on_chunk is not None:
            self.on_chunk()
