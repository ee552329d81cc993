"""CSV audiences: encodings, header and phone column, line-numbered errors, streaming."""

from __future__ import annotations

import pytest

from providers.errors import ValidationError
from worker.contacts.audience import list_audience, open_csv


def write(tmp_path, data: bytes, name: str = "a.csv"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def rows(path, **kw):
    return list(open_csv(path, **kw).rows(with_values=True))


def test_utf8_with_bom_and_auto_phone_column(tmp_path):
    """A BOM is not part of the first column name; `Phone` is found case-insensitively."""
    path = write(tmp_path, "\ufeffPhone,name\n+79161234501,Аня\n".encode())
    aud = open_csv(path)
    assert aud.columns == ("Phone", "name") and aud.encoding == "utf-8-sig"
    assert [(r.line, r.phone, r.values["name"]) for r in aud.rows(True)] == [
        (2, "+79161234501", "Аня")]


def test_cp1251_is_detected(tmp_path):
    """A cp1251 file (Excel on Russian Windows) reads correctly without being declared."""
    path = write(tmp_path, "msisdn;имя\n79161234501;Борис\n".encode("cp1251"))
    assert [(r.phone, r.values["имя"]) for r in rows(path)] == [("79161234501", "Борис")]


def test_wrong_declared_encoding_names_the_line(tmp_path):
    """cp1251 bytes read as UTF-8 fail with the line number and a hint."""
    data = "phone,name\n79161234501,Ann\n79161234502,Борис\n".encode("cp1251")
    with pytest.raises(ValidationError, match=r"line 3: not valid utf-8.*cp1251"):
        rows(write(tmp_path, data), encoding="utf-8")


def test_utf16_is_refused(tmp_path):
    """A UTF-16 export is refused up front, not misread."""
    with pytest.raises(ValidationError, match=r"line 1: .*UTF-16"):
        open_csv(write(tmp_path, "phone\n79161234501\n".encode("utf-16")))


def test_no_phone_column(tmp_path):
    """A header without a phone column names the line, what was looked for and the columns."""
    with pytest.raises(ValidationError, match=r"line 1: no phone column .*columns: name, city"):
        open_csv(write(tmp_path, b"name,city\nAnn,Moscow\n"))


def test_named_phone_column_missing(tmp_path):
    """--phone-column that is not in the header is an error listing the columns."""
    with pytest.raises(ValidationError, match="no column 'tel'"):
        open_csv(write(tmp_path, b"phone\n1\n"), phone_column="tel")


@pytest.mark.parametrize("data", [b"", b"\n\n\r\n   \n"])
def test_empty_file(tmp_path, data):
    """An empty file, or one of blank lines only, is an error, not an empty campaign."""
    with pytest.raises(ValidationError, match="is empty"):
        open_csv(write(tmp_path, data))


def test_broken_quoting_names_the_line(tmp_path):
    """A stray quote inside a field is an error naming its line."""
    data = b'phone,name\n79161234501,Ann\n79161234502,"Bo"b\n'
    with pytest.raises(ValidationError, match="line 3"):
        rows(write(tmp_path, data))


def test_unclosed_quote_is_bounded(tmp_path):
    """An unclosed quote cannot swallow the rest of a big file into memory."""
    data = b'phone,name\n79161234501,"Ann\n' + b"79161234502,Bob\n" * 20_000
    with pytest.raises(ValidationError, match=r"line 2: .*never closed"):
        rows(write(tmp_path, data))


def test_blank_lines_are_skipped_and_lines_still_count(tmp_path):
    """Many blank lines stream through; the next row keeps its true line number."""
    data = b"\n\nphone\n" + b"\n" * 200_000 + b"79161234501\n"
    aud = open_csv(write(tmp_path, data))
    assert aud.header_line == 3
    assert [r.line for r in aud.rows()] == [200_004]


def test_short_row_is_a_row_problem(tmp_path):
    """A row with the wrong number of fields is reported for that row, not fatal."""
    got = rows(write(tmp_path, b"phone,name\n79161234501\n79161234502,Bob\n"))
    assert got[0].problem == "has 1 field(s), the header has 2" and got[1].problem is None


def test_list_audience_items():
    """Python iterables: numbers or mappings; anything else is a row problem."""
    got = list(list_audience(["+79161234501", {"phone": "79161234502", "name": "B"}, 3.5])
               .rows(True))
    assert [g.phone for g in got[:2]] == ["+79161234501", "79161234502"]
    assert got[2].problem and "float" in got[2].problem
