"""Writing a campaign's audience: validate, normalise, dedup and write, chunk by chunk.

Each chunk is one Lua call (worker.campaigns.store.WRITE_CHUNK) that dedups
against the campaign's Redis set and writes the message records and the
per-zone waiting lists, so the producer holds one chunk at a time and pays
one round trip per few thousand rows. Invalid rows become `rejected`
records whose reason names the line: they are in the report and the
rejected count, never silently dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from providers.errors import ValidationError
from worker.campaigns.phones import PhoneCache
from worker.campaigns.schedule import ANY_ZONE
from worker.campaigns.store import CampaignStore
from worker.campaigns.templates import Template, segment_count
from worker.contacts.audience import Row
from worker.producer import controls

CHUNK = 2000
US, RS = "\x1f", "\x1e"  # field and row separators of a chunk (see WRITE_CHUNK)
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
        """Encode on this thread while a writer thread waits on Redis for the previous chunk."""
        parts: list[str] = []
        lines: list[int] = []
        pending: list[Future[None]] = []
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="smsq-import") as writer:
            for row in rows:
                parts.append(self._encode(row))
                lines.append(row.line)
                if len(lines) >= CHUNK:
                    pending = self._submit(writer, pending, parts, lines)
                    parts, lines = [], []
            if lines:
                pending = self._submit(writer, pending, parts, lines)
            for future in pending:
                future.result()
        return self.result

    def _submit(self, writer: ThreadPoolExecutor, pending: list[Future[None]],
                parts: list[str], lines: list[int]) -> list[Future[None]]:
        while len(pending) >= 2:  # bounded: at most two chunks in memory
            pending.pop(0).result()
        rejected = sum(1 for p in parts if p[0] == "r")
        pending.append(writer.submit(self._flush, "".join(parts), lines, rejected))
        return pending

    def _encode(self, row: Row) -> str:
        try:
            if row.problem:
                raise ValidationError(row.problem)
            e164, zone = self.phones.lookup(row.phone)
            text = self._render(row) if self.template.personal else ""
        except ValidationError as exc:
            reason = _clean(f"{self.label} {row.line}: {exc.message}")
            if len(self.result.problems) < DUP_SAMPLE:
                self.result.problems.append(reason)
            return f"r{US}{_clean(row.phone.strip()[:32])}{US}{US}{reason}{RS}"
        return f"s{US}{e164}{US}{text}{US}{zone if self.windowed else ANY_ZONE}{RS}"

    def _render(self, row: Row) -> str:
        values = row.values or {}
        missing = [f for f in self.template.fields if f not in values]
        if missing:
            raise ValidationError(f"has no {', '.join(missing)}")
        text = self.template.render(values)
        found = controls.first_forbidden(text)
        if found is not None:
            raise ValidationError(f"has a control character {found[1]} in a template field")
        if not text.strip():
            raise ValidationError("the rendered text is empty")
        parts = segment_count(text)
        if self.max_segments is not None and parts > self.max_segments:
            raise ValidationError(f"the text takes {parts} SMS segments; the gateway or "
                                  f"SMSQ_MAX_SEGMENTS allows {self.max_segments}")
        self.result.segments += parts
        self.result.max_segments = max(self.result.max_segments, parts)
        return text

    def _flush(self, rows: str, lines: list[int], rejected: int) -> None:
        dups = self.store.write_chunk(self.cid, self.account, self.route, rows)
        self.result.invalid += rejected
        self.result.accepted += len(lines) - rejected - len(dups)
        self.result.duplicates += len(dups)
        room = DUP_SAMPLE - len(self.result.duplicate_lines)
        self.result.duplicate_lines += [lines[i] for i in dups[:max(room, 0)]]
        if self.on_chunk is not None:
            self.on_chunk()


def _clean(text: str) -> str:
    return text.replace(US, " ").replace(RS, " ")
