"""Normalising a million numbers fast: `phonenumbers` once per number prefix, not per row.

`phonenumbers` takes ~50 µs to parse and validate a number and as long again
for its time zone: 90 s for a million rows. Mobile numbering plans never
constrain the last three digits (checked for every region's example mobile
numbers in tests/campaigns/test_phones_cache.py), so the answer for a
mobile number is reused for every number that differs only in those digits.
Anything else (short, fixed-line, toll-free, odd punctuation) takes the full
path through `providers.phones` every time.
"""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import PhoneNumberType

from providers import phones

_PLAIN = re.compile(r"\+?\d{10,15}")
_SEPARATORS = re.compile(r"[\s().\-]")
_CACHEABLE = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)
TAIL = 3
MAX_ENTRIES = 500_000


class PhoneCache:
    """raw -> (E.164, IANA zone); raises ValidationError for an invalid number."""

    def __init__(self, region: str, default_zone: str, *, zones: bool = True) -> None:
        self.region = region
        self.default_zone = default_zone
        self.zones = zones
        self._prefix: dict[str, tuple[str, str]] = {}

    def lookup(self, raw: str) -> tuple[str, str]:
        text = raw.strip()
        if not _PLAIN.fullmatch(text):
            text = _SEPARATORS.sub("", text)
            if not _PLAIN.fullmatch(text):
                return self._full(raw)
        hit = self._prefix.get(text[:-TAIL])
        if hit is not None:
            return hit[0] + text[-TAIL:], hit[1]
        e164, zone = self._full(raw)
        if e164.endswith(text[-TAIL:]) and self._is_mobile(e164):
            if len(self._prefix) >= MAX_ENTRIES:
                self._prefix.clear()
            self._prefix[text[:-TAIL]] = (e164[:-TAIL], zone)
        return e164, zone

    def _full(self, raw: str) -> tuple[str, str]:
        e164 = phones.normalize(raw, self.region)
        if not self.zones:
            return e164, self.default_zone
        return e164, phones.time_zone(e164) or self.default_zone

    @staticmethod
    def _is_mobile(e164: str) -> bool:
        if len(e164) < 11:
            return False
        return phonenumbers.number_type(phonenumbers.parse(e164, None)) in _CACHEABLE
