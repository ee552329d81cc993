"""Templates and send windows."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from providers.errors import ValidationError
from worker.campaigns import templates
from worker.campaigns.schedule import parse_start, parse_window


def test_template_fields_and_render():
    """Named fields render; doubled braces are literal."""
    t = templates.parse("Hello {name}, {{promo}} {name}")
    assert t.fields == ("name",) and t.render({"name": "Ann"}) == "Hello Ann, {promo} Ann"


def test_template_checks_columns_naming_the_missing():
    """A field that is not a column is an error naming it and the columns."""
    with pytest.raises(ValidationError, match=r"\{surname\}.*columns: name, phone"):
        templates.parse("Hi {name} {surname}").check_columns(["phone", "name"])


@pytest.mark.parametrize("text", ["{0}", "{name.__class__}", "{name[0]}", "{name!r}",
                                  "{name:>10}", "Hello {", ""])
def test_template_rejects_anything_but_plain_names(text):
    """Attribute access, indexes, conversions, specs and broken braces are refused."""
    with pytest.raises(ValidationError):
        templates.parse(text)


def test_segment_count_fast_path_agrees():
    """The short-text shortcut gives the full count's answer."""
    from providers import segments

    for text in ["a" * 70, "`" * 71, "я" * 35, "я" * 71, "^" * 70, "x" * 161]:
        assert templates.segment_count(text) == segments.count(text).segments


def test_window_contains_and_crosses_midnight():
    """09:00-21:00 holds at noon; 22:00-06:00 holds at 23:00 and 05:00, not at noon."""
    day, night = parse_window("09:00-21:00"), parse_window("22:00-06:00")
    noon = datetime(2025, 6, 1, 9, 0, tzinfo=UTC).timestamp()  # 12:00 in Moscow
    assert day.is_open("Europe/Moscow", noon) and not night.is_open("Europe/Moscow", noon)
    afternoon = datetime(2025, 6, 1, 13, 0, tzinfo=UTC).timestamp()
    assert day.is_open("Europe/Moscow", afternoon)  # 16:00 there
    assert not day.is_open("Asia/Vladivostok", afternoon)  # 23:00 there
    assert night.next_open("Europe/Moscow", noon) == datetime(
        2025, 6, 1, 19, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize("text", ["9-21", "25:00-26:00", "09:00-09:00", "09:61-10:00"])
def test_bad_windows(text):
    """Malformed, impossible and empty windows are refused."""
    with pytest.raises(ValidationError, match="window"):
        parse_window(text)


def test_start_forms():
    """now, epoch, relative and ISO 8601 (naive = UTC) starts; nonsense is refused."""
    now = 1_700_000_000.0
    assert parse_start(None, now) == now and parse_start("+10m", now) == now + 600
    assert parse_start("2025-06-01T10:00+03:00", now) == datetime(
        2025, 6, 1, 7, 0, tzinfo=UTC).timestamp()
    assert parse_start("1700000100", now) == 1_700_000_100.0
    with pytest.raises(ValidationError, match="start"):
        parse_start("tomorrow-ish", now)
