"""Message templates: `Hello {name}`, checked against the audience's columns before any write.

Only plain named fields are allowed (no attribute access, indexing, format
specs or conversions): a template comes from an operator, and `str.format`
with attribute access would let it read Python objects.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from providers import segments
from providers.errors import ValidationError
from worker.producer import controls

MAX_TEXT = 5_000
_IDENT = frozenset(string.ascii_letters + string.digits + "_")


@dataclass(frozen=True)
class Template:
    text: str
    fields: tuple[str, ...]

    @property
    def personal(self) -> bool:
        return bool(self.fields)

    def render(self, values: Mapping[str, str]) -> str:
        return self.text.format_map(values) if self.fields else self.text

    def check_columns(self, columns: Iterable[str]) -> None:
        """Every field must be a column of the audience; else a ValidationError naming them."""
        have = set(columns)
        missing = [f for f in self.fields if f not in have]
        if missing:
            raise ValidationError(
                f"template field(s) {', '.join('{' + f + '}' for f in missing)} are not "
                f"columns of the audience (columns: {', '.join(sorted(have)) or 'none'})",
                field="text")


def parse(text: object) -> Template:
    if not isinstance(text, str) or not text.strip():
        raise ValidationError("text is empty", field="text")
    if len(text) > MAX_TEXT:
        raise ValidationError(f"text is longer than {MAX_TEXT} characters", field="text")
    controls.check(text, "text")
    fields: list[str] = []
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise ValidationError(f"template is malformed: {exc} (write {{{{ and }}}} for "
                              "literal braces)", field="text") from None
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if not name or not set(name) <= _IDENT or name[0].isdigit() or spec or conversion:
            raise ValidationError(f"template field {{{name}{'!' + conversion if conversion else ''}"
                                  f"{':' + spec if spec else ''}}} is not a plain name "
                                  "such as {name}", field="text")
        if name not in fields:
            fields.append(name)
    return Template(text, tuple(fields))


def segment_count(text: str) -> int:
    """SMS parts of one rendered text; the common short cases skip the full count."""
    if len(text) <= 70 and text.isascii():
        return 1  # fits one part in GSM-7 (<= 140 septets) and in UCS-2 alike
    if len(text) <= 35:
        return 1  # at most 70 UTF-16 units even if every character were astral
    return segments.count(text).segments
