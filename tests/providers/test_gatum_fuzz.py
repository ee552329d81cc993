"""Property tests: every Gatum parser returns a result or raises an SmsqError, nothing else."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from providers.errors import SmsqError
from providers.gatum_codes import (
    classify,
    decode,
    entry_result,
    merge,
    parse_auth_code,
    parse_balance,
    parse_dlr,
    parse_row,
    parse_rows,
    parse_send,
    parse_time,
    parse_token,
    status_of,
)
from providers.models import OutgoingMessage

KEYS = st.sampled_from(["status", "data", "errors", "error_code", "id_state", "state",
                        "phone", "time", "messages", "number", "error", "access_token",
                        "expires_at", "authorization_code", "finance", "balance",
                        "balance_units", "list", "text_sms", "x"])
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
JSONISH = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                       | st.dictionaries(KEYS, inner, max_size=5), max_leaves=20)
MSG = OutgoingMessage(ref="r1", recipient="+79161234501", text="Hi", sender="smsq")
FUZZ = settings(max_examples=150, deadline=None)


def survives(parser: Callable[[], Any]) -> None:
    try:
        parser()
    except SmsqError:
        pass


@FUZZ
@given(st.binary(max_size=200))
def test_parse_dlr_on_bytes(raw: bytes) -> None:
    """Arbitrary bytes: a DLR result or an SmsqError."""
    survives(lambda: parse_dlr(raw))


@FUZZ
@given(JSONISH)
def test_parse_dlr_on_json(value: Any) -> None:
    """Arbitrary JSON: a DLR result whose acks are strings, or an SmsqError."""
    try:
        results, ack = parse_dlr(json.dumps(value).encode())
    except SmsqError:
        return
    assert all(isinstance(a, str) for a in ack) and len(ack) == len(results)


@FUZZ
@given(st.integers(100, 599), st.binary(max_size=120), st.none() | st.floats(0, 60))
def test_decode_on_bytes(status: int, raw: bytes, retry: float | None) -> None:
    """Any status and body: data or an SmsqError."""
    survives(lambda: decode(status, raw, retry))


@FUZZ
@given(st.integers(100, 599), JSONISH)
def test_decode_on_json(status: int, value: Any) -> None:
    """Any status and JSON body: data or an SmsqError."""
    survives(lambda: decode(status, json.dumps(value).encode()))


@FUZZ
@given(st.none() | st.integers(100, 599), JSONISH, st.booleans())
def test_classify_always_returns_an_error(status: int | None, errors: Any, one: bool) -> None:
    """classify never raises and always returns an SmsqError."""
    assert isinstance(classify(status, errors, per_recipient=one), SmsqError)


@FUZZ
@given(JSONISH)
def test_small_parsers(value: Any) -> None:
    """Token, code, balance, rows and row parsers: result or SmsqError."""
    for parser in (parse_token, parse_auth_code, parse_balance, parse_rows, parse_row,
                   parse_time, status_of):
        survives(lambda p=parser: p(value))


@FUZZ
@given(JSONISH, st.lists(st.lists(st.text(max_size=5), max_size=3), max_size=3))
def test_parse_send_and_entries(value: Any, objects: list[list[str]]) -> None:
    """Send replies and their entries: results or SmsqError."""
    survives(lambda: parse_send(value, objects))
    if isinstance(value, dict):
        assert entry_result(MSG, value).recipient == MSG.recipient


@FUZZ
@given(JSONISH)
def test_merge_of_parsed_rows(value: Any) -> None:
    """Merging parsed rows never fails."""
    try:
        rows = parse_rows(value)
    except SmsqError:
        return
    merge(rows)
