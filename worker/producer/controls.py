"""Characters no SMS text or sender may carry: control codes and bidirectional overrides.

A text reaches phones, gateway dashboards, logs and CSV reports. NUL and the
other C0/C1 control codes (ESC starts terminal escape sequences) and the
bidirectional override/isolate marks (U+202A-U+202E, U+2066-U+2069, the
"Trojan Source" characters that make a text read differently from what it
is) are refused with the position of the first one; they are never stripped
silently. Line feed, carriage return and tab stay allowed: texts have lines.
"""

from __future__ import annotations

import re

from providers.errors import ValidationError

_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def first_forbidden(text: str) -> tuple[int, str] | None:
    """(position, U+XXXX) of the first forbidden character, or None."""
    found = _FORBIDDEN.search(text)
    return (found.start(), f"U+{ord(found.group()):04X}") if found else None


def check(text: str, field: str) -> str:
    """`text` itself, or ValidationError naming the character and where it is."""
    found = first_forbidden(text)
    if found is not None:
        raise ValidationError(f"{field} has a control or bidi-override character {found[1]} "
                              f"at position {found[0] + 1}", field=field)
    return text
