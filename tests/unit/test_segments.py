"""SMS segment counting: GSM-7 vs UCS-2, extension characters, pairs never split."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from providers.segments import GSM7_BASIC, GSM7_EXTENSION, count, is_gsm7

BASIC = sorted(GSM7_BASIC)
EXTENSION = sorted(GSM7_EXTENSION)
gsm_basic_text = st.text(alphabet=BASIC, max_size=400)
gsm_text = st.text(alphabet=BASIC + EXTENSION, max_size=400)
non_gsm_char = st.characters(codec="utf-8").filter(lambda ch: not is_gsm7(ch))
any_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=300) | gsm_text


def brute_force_parts(text: str) -> int:
    """Cut the encoded unit stream at fixed widths, backing off one unit inside a pair."""
    if is_gsm7(text):
        units = [(ch, i) for ch in text for i in range(2 if ch in GSM7_EXTENSION else 1)]
        single, multi = 160, 153
    else:
        units = [(ch, i) for ch in text for i in range(2 if ord(ch) > 0xFFFF else 1)]
        single, multi = 70, 67
    if len(units) <= single:
        return 1
    parts, start = 0, 0
    while start < len(units):
        end = min(start + multi, len(units))
        if end < len(units) and units[end][1] == 1:  # the cut falls inside a pair
            end -= 1
        parts, start = parts + 1, end
    return parts


@settings(max_examples=200)
@given(gsm_basic_text.filter(lambda t: len(t) <= 160))
def test_gsm7_up_to_160_septets_is_one_segment(text):
    """A basic-alphabet GSM-7 text of at most 160 septets is one gsm7 segment."""
    info = count(text)
    assert (info.encoding, info.segments, info.units) == ("gsm7", 1, len(text))


@settings(max_examples=200)
@given(gsm_text)
def test_extension_characters_count_two_septets(text):
    """Every extension character costs two septets, every basic one a single septet."""
    expected = sum(2 if ch in GSM7_EXTENSION else 1 for ch in text)
    assert count(text).units == expected and count(text).encoding == "gsm7"


@settings(max_examples=200)
@given(gsm_text, non_gsm_char, gsm_text)
def test_any_non_gsm_character_forces_ucs2(before, odd, after):
    """One non-GSM character makes the whole text UCS-2 with 70 / 67 per segment."""
    info = count(before + odd + after)
    assert info.encoding == "ucs2"
    assert info.per_segment == (70 if info.segments == 1 else 67)


@settings(max_examples=200)
@given(any_text, st.characters(codec="utf-8") | st.sampled_from(EXTENSION))
def test_appending_never_decreases_segments(text, extra):
    """Adding a character never lowers the segment count."""
    assert count(text + extra).segments >= count(text).segments


@settings(max_examples=200)
@given(st.lists(st.sampled_from(["a", "€", "{", "Ж", "😀", "é"]), max_size=400).map("".join))
def test_pairs_are_never_split(text):
    """Segment counts match a packing that never splits an escape or surrogate pair."""
    assert count(text).segments == brute_force_parts(text)


@settings(max_examples=100)
@given(any_text)
def test_ucs2_units_are_utf16_code_units(text):
    """UCS-2 texts count UTF-16 code units: characters beyond the BMP take two."""
    info = count(text)
    if info.encoding == "ucs2":
        assert info.units == len(text.encode("utf-16-le")) // 2


def test_lone_surrogate_is_counted_not_crashed():
    """A lone surrogate (possible from JSON input) counts as one UCS-2 unit."""
    info = count("a\ud800")
    assert (info.encoding, info.units, info.segments) == ("ucs2", 2, 1)


@pytest.mark.parametrize(("text", "encoding", "units", "segments"), [
    ("", "gsm7", 0, 1),
    ("Hello", "gsm7", 5, 1),
    ("a" * 160, "gsm7", 160, 1),
    ("a" * 161, "gsm7", 161, 2),
    ("a" * 306, "gsm7", 306, 2),
    ("a" * 307, "gsm7", 307, 3),
    ("€" * 80, "gsm7", 160, 1),
    ("€" * 81, "gsm7", 162, 2),
    ("a" * 152 + "€" + "a" * 152, "gsm7", 306, 3),  # the pair moves to part two
    ("Привет", "ucs2", 6, 1),
    ("П" * 70, "ucs2", 70, 1),
    ("П" * 71, "ucs2", 71, 2),
    ("П" * 134, "ucs2", 134, 2),
    ("П" * 135, "ucs2", 135, 3),
    ("😀" * 35, "ucs2", 70, 1),
    ("😀" * 36, "ucs2", 72, 2),
    ("П" * 66 + "😀" + "П" * 66, "ucs2", 134, 3),  # the surrogate pair is not split
    ("price 5€ [ok]", "gsm7", 16, 1),
    ("\x1b", "ucs2", 1, 1),  # a raw escape is not a character of the alphabet
])
def test_known_texts(text, encoding, units, segments):
    """Known texts take their well-known encoding, unit count and number of parts."""
    info = count(text)
    assert (info.encoding, info.units, info.segments) == (encoding, units, segments)
