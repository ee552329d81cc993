"""Campaign audiences, streamed: CSV files, Python iterables, stored contact groups.

Nothing here holds the whole audience: a CSV is read line by line (UTF-8 with
or without BOM, cp1251 detected or declared), every row is yielded with its
physical line number, and file-level problems (no phone column, broken
quoting, wrong encoding, nothing but blank lines) raise ValidationError naming
the line. Row-level problems (a bad number, a missing field) are yielded as
the row's `problem` so that the campaign records them as rejected.
"""

from __future__ import annotations

import codecs
import csv
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from providers.errors import ValidationError

PHONE_COLUMNS = ("phone", "number", "msisdn", "phone_number", "mobile", "tel", "telephone")
SAMPLE = 64 * 1024
FIELD_LIMIT = 131_072


@dataclass
class Row:
    line: int
    phone: str
    values: Mapping[str, str] | None = None
    problem: str | None = None


@dataclass
class Progress:
    done: int = 0
    total: int = 0


def detect_encoding(sample: bytes, declared: str | None) -> str:
    """The codec to read the file with; a UTF-16 or binary file is refused up front."""
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\x00" in sample:
        raise ValidationError("line 1: the file looks like UTF-16 or binary, not text; "
                              "save it as UTF-8 or cp1251 CSV", field="encoding")
    if declared:
        try:
            name = codecs.lookup(declared).name
        except LookupError:
            raise ValidationError(f"unknown encoding {declared!r}", field="encoding") from None
        return "utf-8-sig" if name == "utf-8" else name
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        return "cp1251"


def _delimiter(header_line: str) -> str:
    counts = {d: header_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


class CsvAudience:
    """One CSV file: open() checks encoding, header and phone column; rows() streams."""

    label = "line"

    def __init__(self, path: str | os.PathLike[str], *, encoding: str | None = None,
                 phone_column: str | None = None, delimiter: str | None = None) -> None:
        self.path = os.fspath(path)
        self.declared = encoding
        self.wanted_column = phone_column
        self.delimiter = delimiter
        self.encoding = "utf-8"
        self.columns: tuple[str, ...] = ()
        self.phone_index = 0
        self.header_line = 0
        self.progress = Progress()
        self._file: IO[bytes] | None = None

    def open(self) -> CsvAudience:
        try:
            self._file = open(self.path, "rb")  # closed by rows() / close()
        except OSError as exc:
            raise ValidationError(f"cannot read {self.path}: {exc.strerror}",
                                  field="csv") from None
        self.progress.total = os.fstat(self._file.fileno()).st_size
        self.encoding = detect_encoding(self._file.read(SAMPLE), self.declared)
        self._file.seek(0)
        self._lines = self._decoded(self._file)
        self._reader = self._make_reader()
        self._read_header()
        return self

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _decoded(self, handle: IO[bytes]) -> Iterator[str]:
        decode, number = codecs.getdecoder(self.encoding), 0
        progress = self.progress
        for raw in handle:
            number += 1
            progress.done += len(raw)
            try:
                yield decode(raw)[0]
            except UnicodeDecodeError as exc:
                hint = "cp1251" if self.encoding.startswith("utf") else "utf-8"
                raise ValidationError(
                    f"line {number}: not valid {self.encoding} text (byte "
                    f"0x{raw[exc.start]:02x}); is the file {hint}? declare it with "
                    f"--encoding {hint}", field="encoding") from None

    def _make_reader(self) -> Any:
        """A csv.reader from the first non-blank line on; blank lines before it are counted."""
        self._lead, first = 0, next(self._lines, "")
        while first != "" and first.strip() == "":
            self._lead, first = self._lead + 1, next(self._lines, "")
        delimiter = self.delimiter or _delimiter(first)

        def lines() -> Iterator[str]:
            if first:
                yield first
            yield from self._lines

        return csv.reader(lines(), delimiter=delimiter, strict=True)

    def _next(self) -> list[str] | None:
        try:
            row: list[str] | None = next(self._reader, None)
            self._last_end = self._reader.line_num
            return row
        except csv.Error as exc:
            raise ValidationError(self._csv_problem(exc), field="csv") from None

    def _csv_problem(self, exc: csv.Error) -> str:
        line = self._reader.line_num + self._lead
        text = str(exc)
        start = getattr(self, "_last_end", 0) + 1 + self._lead
        if "field larger than field limit" in text:
            return (f"line {start}: a quoted field is never closed (broken quoting; it runs "
                    f"past {FIELD_LIMIT} characters, to line {line})")
        if "unexpected end of data" in text:
            return f"line {start}: a quoted field is never closed (broken quoting)"
        return f"line {line}: {text} (broken quoting)"

    def _read_header(self) -> None:
        header = self._next()
        if header is None:
            raise ValidationError(f"{self.path} is empty: no header row and no recipients",
                                  field="csv")
        self.header_line = self._reader.line_num + self._lead
        names = [h.strip().lstrip("\ufeff") for h in header]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if "" in names or dupes:
            raise ValidationError(f"line {self.header_line}: the header row has "
                                  + ("an empty column name" if "" in names else
                                     f"repeated column(s) {', '.join(dupes)}"), field="csv")
        self.columns = tuple(names)
        self.phone_index = self._phone_index(names)

    def _phone_index(self, names: list[str]) -> int:
        lower = [n.lower() for n in names]
        if self.wanted_column is not None:
            if self.wanted_column in names:
                return names.index(self.wanted_column)
            raise ValidationError(f"line {self.header_line}: no column "
                                  f"{self.wanted_column!r} (columns: {', '.join(names)})",
                                  field="phone_column")
        for candidate in PHONE_COLUMNS:
            if candidate in lower:
                return lower.index(candidate)
        raise ValidationError(
            f"line {self.header_line}: no phone column in the header (looked for "
            f"{', '.join(PHONE_COLUMNS[:3])}; columns: {', '.join(names)}); name it with "
            "--phone-column", field="phone_column")

    def rows(self, with_values: bool = False) -> Iterator[Row]:
        width, idx, names = len(self.columns), self.phone_index, self.columns
        try:
            while (row := self._next()) is not None:
                if not any(row):
                    continue
                line = self._reader.line_num + self._lead
                if len(row) != width:
                    yield Row(line, row[idx] if len(row) > idx else "",
                              problem=f"has {len(row)} field(s), the header has {width}")
                    continue
                yield Row(line, row[idx], dict(zip(names, row, strict=True))
                          if with_values else None)
        finally:
            self.close()


def open_csv(path: str | os.PathLike[str], *, encoding: str | None = None,
             phone_column: str | None = None, delimiter: str | None = None) -> CsvAudience:
    csv.field_size_limit(FIELD_LIMIT)
    return CsvAudience(path, encoding=encoding, phone_column=phone_column,
                       delimiter=delimiter).open()


@dataclass
class ListAudience:
    """An iterable from the Python API: phone strings, or mappings with a `phone` key."""

    items: Iterable[Any]
    columns: tuple[str, ...] = ()
    label: str = "item"
    progress: Progress = field(default_factory=Progress)

    def rows(self, with_values: bool = False) -> Iterator[Row]:
        for number, item in enumerate(self.items, start=1):
            self.progress.done = number
            if isinstance(item, Mapping):
                values = {str(k): "" if v is None else str(v) for k, v in item.items()}
                phone = values.get("phone") or values.get("number") or ""
                yield Row(number, phone, values)
            elif isinstance(item, str | int) and not isinstance(item, bool):
                yield Row(number, str(item), {"phone": str(item)})
            else:
                yield Row(number, "", problem=f"is a {type(item).__name__}, not a phone "
                                              "number or a mapping with 'phone'")


def list_audience(items: Iterable[Any], columns: Iterable[str] = ()) -> ListAudience:
    if isinstance(items, str | bytes) or not isinstance(items, Iterable):
        raise ValidationError("recipients must be a list of phone numbers or of mappings "
                              "with a 'phone' key", field="recipients")
    return ListAudience(items, tuple(columns))
