"""Phone numbers: E.164 normalisation, clear validation errors, masking, time zones."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from providers.errors import ValidationError
from providers.phones import digits, mask, national_ru, normalize, time_zone


@pytest.mark.parametrize(("raw", "e164"), [
    ("8 916 123-45-67", "+79161234567"),
    ("+7 (916) 123 45 67", "+79161234567"),
    ("79161234567", "+79161234567"),
    ("+79161234567", "+79161234567"),
    ("8 (495) 123-45-67", "+74951234567"),
    (" 9161234567 ", "+79161234567"),
    (79161234567, "+79161234567"),
    ("380971234567", "+380971234567"),
    ("+380 97 123 45 67", "+380971234567"),
    ("+7 701 123 45 67", "+77011234567"),
    ("87011234567", "+77011234567"),
    ("77011234567", "+77011234567"),
])
def test_common_written_forms_normalise_to_e164(raw, e164):
    """RU, UA and KZ numbers in their usual written forms become E.164."""
    assert normalize(raw) == e164


def test_ukrainian_national_form_with_region():
    """A Ukrainian national number ("097…") needs its region to normalise."""
    assert normalize("097 123 45 67", "UA") == "+380971234567"


@pytest.mark.parametrize(("raw", "words"), [
    ("", "empty"),
    ("   ", "empty"),
    ("abc", "no digits"),
    ("+7 916 abc 45 67", "letters"),
    ("8 800 CALL-NOW", "letters"),
    ("12345", "not a valid number"),
    ("1" * 40, "too long"),
    ("+7916123456789", "not a valid number"),
    ("+70001234567", "not a valid number"),
    (None, "must be a string"),
    (True, "must be a string"),
])
def test_bad_numbers_raise_validation_error_naming_the_field(raw, words):
    """Empty, lettered, short, long and invalid numbers are ValidationErrors on `recipient`."""
    with pytest.raises(ValidationError) as info:
        normalize(raw)
    assert info.value.field == "recipient"
    assert words in info.value.message
    assert str(info.value).startswith("recipient: ")


def test_error_text_masks_the_number():
    """A refused number appears masked in the error, never in full."""
    with pytest.raises(ValidationError) as info:
        normalize("+7916123456789")
    assert "916123456" not in str(info.value)


@settings(max_examples=200)
@given(st.text(alphabet="+0123456789", min_size=6, max_size=20))
def test_mask_shows_only_prefix_and_last_two(phone):
    """mask keeps the first three and last two characters; the rest is stars."""
    masked = mask(phone)
    assert len(masked) == len(phone)
    assert masked[:3] == phone[:3] and masked[-2:] == phone[-2:]
    assert set(masked[3:-2]) <= {"*"}


@settings(max_examples=100)
@given(st.text(alphabet="+0123456789", max_size=5))
def test_mask_hides_short_values_entirely(phone):
    """Five characters or fewer are hidden completely."""
    assert mask(phone) == "*" * len(phone)


def test_mask_of_a_russian_mobile():
    """A Russian mobile shows "+79", stars and its last two digits."""
    assert mask("+79161234567") == "+79*******67"


def test_digit_helpers():
    """digits drops the plus; national_ru drops the Russian country code."""
    assert digits("+79161234567") == "79161234567"
    assert national_ru("+79161234567") == "9161234567"
    assert national_ru("+380971234567") == "380971234567"


@pytest.mark.parametrize(("e164", "zone"), [
    ("+74951234567", "Europe/Moscow"),
    ("+74232201234", "Asia/Vladivostok"),
    ("+380971234567", "Europe/Kyiv"),
])
def test_time_zone_of_geographic_numbers(e164, zone):
    """A landline's area code gives its time zone (Moscow 495, Vladivostok 423)."""
    assert time_zone(e164) == zone


def test_time_zone_of_a_mobile_spanning_zones_is_none():
    """A Russian mobile range spans many zones, so no zone is guessed."""
    assert time_zone("+79161234567") is None


def test_time_zone_of_garbage_is_none():
    """An unparseable value has no time zone."""
    assert time_zone("not a number") is None
