"""What a job will take before it is queued: SMS segments per message and the estimated
cost at the route's first account's price (`SMSQ_<ACCOUNT>_PRICE`, per segment), counted
as campaigns count theirs (`providers.segments`)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from typing import Any

from providers import segments

NAMES = {"gsm7": "GSM-7", "ucs2": "UCS-2"}


@dataclass(frozen=True)
class Estimate:
    """Segments of each message (0: rejected, never sent), their encodings, the price."""

    segments: tuple[int, ...] = ()
    encodings: tuple[str, ...] = ()  # "gsm7" / "ucs2", the distinct ones of the sent texts
    price: float | None = None  # per segment; None: no price configured

    @property
    def total(self) -> int:
        return sum(self.segments)

    @property
    def cost(self) -> float | None:
        return None if self.price is None else round(self.total * self.price, 2)

    def without(self, indexes: Collection[int]) -> Estimate:
        """The same estimate with the messages at `indexes` refused (0 segments)."""
        if not indexes:
            return self
        return replace(self, segments=tuple(0 if i in indexes else s
                                            for i, s in enumerate(self.segments)))

    def as_dict(self) -> dict[str, Any]:
        return {"segments": list(self.segments), "total_segments": self.total,
                "encodings": [NAMES.get(e, e) for e in self.encodings],
                "price_per_segment": self.price, "estimated_cost": self.cost}

    def describe(self) -> str:
        """e.g. "2 segments each (UCS-2), 6 in total, est. cost 3.60"."""
        sent = [s for s in self.segments if s]
        if not sent:
            return "0 segments"
        kinds = "/".join(NAMES.get(e, e) for e in self.encodings)
        each = (f"{sent[0]} segment{'s' if sent[0] > 1 else ''} each" if len(set(sent)) == 1
                else f"{min(sent)}-{max(sent)} segments per message")
        cost = "no price set" if self.cost is None else f"est. cost {self.cost:.2f}"
        return f"{each} ({kinds}), {self.total} in total, {cost}"


def estimate(texts: Sequence[str | None], price: float | None) -> Estimate:
    """One entry per message: its text, or None for a message refused already."""
    parts, kinds = [], []
    for text in texts:
        if text is None:
            parts.append(0)
            continue
        info = segments.count(text)
        parts.append(info.segments)
        if info.encoding not in kinds:
            kinds.append(info.encoding)
    return Estimate(tuple(parts), tuple(sorted(kinds)), price)
