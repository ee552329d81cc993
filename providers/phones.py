"""Phone numbers: parsed and validated with `phonenumbers`, stored as E.164."""

from __future__ import annotations

import functools

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat
from phonenumbers import timezone as pn_timezone

from providers.errors import ValidationError

DEFAULT_REGION = "RU"


def normalize(raw: object, region: str = DEFAULT_REGION) -> str:
    """Return `raw` as E.164 ("+79161234567") or raise ValidationError naming the problem."""
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise ValidationError(f"phone number must be a string, got {type(raw).__name__}",
                              field="recipient")
    return _normalize(raw, region)


@functools.lru_cache(maxsize=65536)  # only hashable str / int reach the cache
def _normalize(raw: str | int, region: str) -> str:
    text = str(raw).strip()
    if not text:
        raise ValidationError("phone number is empty", field="recipient")
    if len(text) > 32:
        raise ValidationError("phone number is too long", field="recipient")
    digits = sum(ch.isdigit() for ch in text)
    if digits == 0:
        raise ValidationError(f"phone number {mask(text)!s} has no digits", field="recipient")
    if any(ch.isalpha() for ch in text):
        # phonenumbers would read letters as keypad digits and yield another number.
        raise ValidationError(f"phone number {mask(text)} contains letters", field="recipient")
    if text[0].isdigit() and digits >= 11 and not text.startswith("8"):
        text = "+" + text  # "79161234567": international digits without the plus
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        raise ValidationError(f"phone number {mask(text)} is not a number: {exc._msg}",
                              field="recipient") from None
    if not phonenumbers.is_valid_number(number):
        raise ValidationError(f"phone number {mask(text)} is not a valid number",
                              field="recipient")
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def digits(e164: str) -> str:
    """International digits without the plus: what most gateways want ("79161234567")."""
    return e164.lstrip("+")


def national_ru(e164: str) -> str:
    """Ten national digits for a Russian number ("9161234567"), as smsru-api sends them."""
    d = digits(e164)
    return d[1:] if d.startswith("7") and len(d) == 11 else d


def mask(phone: str) -> str:
    """A phone number safe for logs: the country prefix and the last two digits."""
    s = str(phone)
    if len(s) <= 5:
        return "*" * len(s)
    return s[:3] + "*" * (len(s) - 5) + s[-2:]


@functools.lru_cache(maxsize=65536)
def time_zone(e164: str) -> str | None:
    """The recipient's likely IANA time zone, or None when the number spans several."""
    try:
        number = phonenumbers.parse(e164, None)
    except NumberParseException:
        return None
    zones = pn_timezone.time_zones_for_number(number)
    if len(zones) != 1 or zones[0] == "Etc/Unknown":
        return None
    return str(zones[0])
