"""CSV audiences: bad files get a ValidationError naming the line and the problem;
arbitrary bytes give rows or an smsq error, never another exception."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from providers.errors import SmsqError, ValidationError
from worker.contacts.audience import open_csv

BAD = [
    ("no-phone-column", b"name,city\nAnna,Moscow\n", ("no phone column",)),
    ("empty-file", b"", ("empty",)),
    ("only-empty-lines", b"\n" * 2_000_000, ("empty",)),
    ("header-then-empty-lines", b"phone\n" + b"\n" * 2_000_000, ()),
    ("utf16", "phone\n+79161234567\n".encode("utf-16"), ("utf-16",)),
    ("binary", b"\x00\x01\x02phone\n", ("binary",)),
    ("broken-quoting", b'phone,name\n+79161234567,"Anna\n+79161234568,Bob\n', ("line",)),
    ("unknown-encoding", b"phone\n+79161234567\n", ("encoding",)),
]


def _write(data: bytes) -> Path:
    handle = tempfile.NamedTemporaryFile(suffix=".csv", delete=False)
    handle.write(data)
    handle.close()
    return Path(handle.name)


def _read(path: Path, encoding: str | None = None) -> list[object]:
    return list(open_csv(path, encoding=encoding).rows())


@pytest.mark.parametrize("name,data,words", BAD, ids=[b[0] for b in BAD])
def test_bad_csv_is_named(name: str, data: bytes, words: tuple[str, ...]) -> None:
    """Each bad file: ValidationError whose message names the problem (or no rows at all)."""
    path = _write(data)
    try:
        if not words:
            with pytest.raises(ValidationError) as info:
                rows = _read(path)
                assert rows == []
                raise ValidationError("no rows", field="csv")
        else:
            with pytest.raises(ValidationError) as info:
                _read(path, encoding="no-such-codec" if name == "unknown-encoding" else None)
            assert all(w in str(info.value).lower() for w in words), str(info.value)
    finally:
        path.unlink()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=300),
                 st.lists(st.text(alphabet='phone,;"\n\r+79 abc\t\u00e9', max_size=20),
                          max_size=8).map(lambda ls: "\n".join(ls).encode())))
def test_csv_reader_total(data: bytes) -> None:
    """Arbitrary bytes: rows or an smsq error, never another exception."""
    path = _write(data)
    try:
        _read(path)
    except SmsqError:
        pass
    finally:
        path.unlink()
