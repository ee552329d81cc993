"""Normalising a million numbers fast, with exactly `providers.phones`' answers.

`providers.phones.normalize` spends ~22 µs of its ~47 in `phonenumbers.parse`
(a general parser for every way a number can be written) and `time_zone`
parses again. Most campaign rows are already plain international digits
(`+79161234567`, `79161234567`) or the national form with a national prefix
(`89161234567` in Russia): for those the country code is split off directly
and the PhoneNumber built by hand, then validated by `phonenumbers` itself.
Anything else, and anything invalid (for its exact error message), takes
the full path. tests/campaigns/test_phones_fast.py checks both agree.
"""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumber, PhoneNumberType
from phonenumbers import timezone as pn_timezone
from phonenumbers.phonenumberutil import _extract_country_code

from providers import phones

_DIGITS = re.compile(r"\+?\d{8,15}")
_SEPARATORS = re.compile(r"[ ()\-.]")


class PhoneCache:
    """raw -> (E.164, IANA zone); raises ValidationError for an invalid number."""

    def __init__(self, region: str, default_zone: str, *, zones: bool = True) -> None:
        self.region = region
        self.default_zone = default_zone
        self.zones = zones
        meta = PhoneMetadata.metadata_for_region(region)
        self._prefix = (meta.national_prefix or "") if meta is not None else ""
        self._country = meta.country_code if meta is not None else None
        self._national_len = 10 if region == "RU" else 0  # only where the plan is fixed-length

    def lookup(self, raw: str) -> tuple[str, str]:
        text = raw.strip()
        if not _DIGITS.fullmatch(text):
            text = _SEPARATORS.sub("", text)
        number = self._direct(text) if _DIGITS.fullmatch(text) else None
        if number is None:
            return self._full(raw)
        # number_type() is what is_valid_number() and time_zones_for_number() both
        # compute (UNKNOWN = invalid); computing it once halves the cost.
        kind = phonenumbers.number_type(number)
        if kind == PhoneNumberType.UNKNOWN:
            return self._full(raw)  # invalid: the full path raises the exact error
        e164 = f"+{number.country_code}{number.national_number}"
        if not self.zones:
            return e164, self.default_zone
        if phonenumbers.is_number_type_geographical(kind, number.country_code or 0):
            zones = pn_timezone.time_zones_for_geographical_number(number)
        else:
            zones = pn_timezone._country_level_time_zones_for_number(number)
        zone = zones[0] if len(zones) == 1 and zones[0] != "Etc/Unknown" else None
        return e164, zone or self.default_zone

    def _direct(self, text: str) -> PhoneNumber | None:
        """The PhoneNumber for plain digits, when no parsing rule could read them otherwise."""
        international = text.startswith("+") or (len(text) >= 11 and not text.startswith("8"))
        if international:
            cc, national = _extract_country_code(text.lstrip("+"))
        elif (self._national_len and self._prefix and text.startswith(self._prefix)
              and len(text) == len(self._prefix) + self._national_len):
            cc, national = self._country or 0, text[len(self._prefix):]
        elif (self._national_len and len(text) == self._national_len
              and not text.startswith(self._prefix or "+")):
            cc, national = self._country or 0, text
        else:
            return None
        if not cc or not national or national[0] == "0":
            return None  # leading zeros (Italian-style) need the full parser's flags
        return PhoneNumber(country_code=cc, national_number=int(national))

    def _full(self, raw: str) -> tuple[str, str]:
        e164 = phones.normalize(raw, self.region)
        if not self.zones:
            return e164, self.default_zone
        return e164, phones.time_zone(e164) or self.default_zone
