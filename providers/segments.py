"""SMS segment counting: GSM-7 septets (extension characters count two) vs UCS-2."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

# GSM 03.38 default alphabet (basic table) and its extension table (escape + char).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
) - {"\x1b"}
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

GSM7_SINGLE, GSM7_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67


@dataclass(frozen=True)
class SegmentInfo:
    encoding: str  # "gsm7" or "ucs2"
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    segments: int
    per_segment: int


def is_gsm7(text: str) -> bool:
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


@lru_cache(maxsize=1024)  # a batch repeats one text per recipient: count it once
def count(text: str) -> SegmentInfo:
    """How many SMS parts `text` takes, and in which encoding."""
    if is_gsm7(text):
        septets = sum(2 if ch in GSM7_EXTENSION else 1 for ch in text)
        if septets <= GSM7_SINGLE:
            return SegmentInfo("gsm7", septets, 1, GSM7_SINGLE)
        return SegmentInfo("gsm7", septets, _gsm7_parts(text), GSM7_MULTI)
    units = len(text.encode("utf-16-le", "surrogatepass")) // 2  # lone surrogates: 1 unit
    if units <= UCS2_SINGLE:
        return SegmentInfo("ucs2", units, 1, UCS2_SINGLE)
    return SegmentInfo("ucs2", units, _ucs2_parts(text), UCS2_MULTI)


def _gsm7_parts(text: str) -> int:
    """Parts of a long GSM-7 text; an escape pair is never split across parts."""
    parts, used = 1, 0
    for ch in text:
        width = 2 if ch in GSM7_EXTENSION else 1
        if used + width > GSM7_MULTI:
            parts, used = parts + 1, 0
        used += width
    return parts


def _ucs2_parts(text: str) -> int:
    """Parts of a long UCS-2 text; a surrogate pair is never split across parts."""
    parts, used = 1, 0
    for ch in text:
        width = 2 if ord(ch) > 0xFFFF else 1
        if used + width > UCS2_MULTI:
            parts, used = parts + 1, 0
        used += width
    return parts
