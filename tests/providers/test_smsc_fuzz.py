"""Property tests: every SMSC parser yields a result or an SmsqError, nothing else."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from providers.errors import SmsqError
from providers.models import OutgoingMessage, StatusQuery
from providers.sandbox.smsc import parse_orders
from providers.sandbox.smsc_smtp import parse_order
from providers.smsc import parse_callback
from providers.smsc_codes import (
    classify,
    client_id,
    decode_reply,
    option_params,
    parse_balance,
    parse_cost,
    parse_send,
    parse_status,
)

EXAMPLES = settings(max_examples=150, deadline=None)
scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5)
    | st.dictionaries(st.sampled_from(["id", "cnt", "cost", "balance", "phones", "phone",
                                       "status", "error", "error_code", "err", "currency",
                                       "last_timestamp", "credit"]) | st.text(max_size=8),
                      inner, max_size=6),
    max_leaves=25,
)
MESSAGES = [OutgoingMessage(ref=f"r{i}", recipient=f"+7916123450{i}", text="t")
            for i in range(3)]
QUERIES = [StatusQuery(f"{i}", f"+7916123450{i}") for i in range(3)]


def holds(fn: Callable[[], Any]) -> None:
    try:
        fn()
    except SmsqError:
        pass


@EXAMPLES
@given(st.binary(max_size=300))
def test_decode_reply_takes_any_bytes(raw):
    """Arbitrary bytes decode to JSON or raise MalformedResponse."""
    holds(lambda: decode_reply(raw))


@EXAMPLES
@given(json_values)
def test_decode_reply_round_trips_json(value):
    """Any JSON body, in UTF-8 or windows-1251, decodes or is classified."""
    text = json.dumps(value, ensure_ascii=False)
    holds(lambda: decode_reply(text.encode()))
    holds(lambda: decode_reply(text.encode("cp1251", "replace")))


@EXAMPLES
@given(json_values, st.integers(1, 3))
def test_parse_send_takes_any_value(value, n):
    """parse_send returns one result per message or raises an SmsqError."""
    try:
        results = parse_send(value, MESSAGES[:n])
    except SmsqError:
        return
    assert [r.ref for r in results] == [m.ref for m in MESSAGES[:n]]


@EXAMPLES
@given(json_values, st.integers(1, 3))
def test_parse_status_takes_any_value(value, n):
    """parse_status answers every query in order or raises an SmsqError."""
    try:
        results = parse_status(value, QUERIES[:n])
    except SmsqError:
        return
    assert [r.provider_message_id for r in results] == [q.provider_message_id
                                                         for q in QUERIES[:n]]


@EXAMPLES
@given(json_values)
def test_parse_balance_and_cost_take_any_value(value):
    """Balance and cost replies parse or raise an SmsqError."""
    holds(lambda: parse_balance(value))
    holds(lambda: parse_cost(value))


@EXAMPLES
@given(st.dictionaries(st.sampled_from(["id", "phone", "status", "err", "time", "ts"])
                       | st.text(max_size=5), st.text(max_size=15), max_size=6))
def test_parse_callback_takes_any_form(form):
    """Any callback form yields one result or MalformedResponse."""
    holds(lambda: parse_callback(form))


@EXAMPLES
@given(st.none() | st.integers(), st.booleans())
def test_classify_always_returns_an_smsq_error(code, sending):
    """Every code, known or not, becomes an SmsqError instance."""
    assert isinstance(classify(code, sending=sending), SmsqError)


@EXAMPLES
@given(st.text(max_size=60), st.dictionaries(st.text(max_size=8), scalars, max_size=5))
def test_client_id_and_options_never_crash(ref, options):
    """Client-id checks and option mapping take any input."""
    cid = client_id(ref)
    assert cid is None or (len(cid) <= 40 and "," not in cid)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in option_params(options))


@EXAMPLES
@given(st.binary(max_size=200))
def test_mail_order_parser_takes_any_bytes(raw):
    """The sandbox SMTP order parser returns an order or None."""
    parse_order(raw)


@EXAMPLES
@given(st.dictionaries(st.sampled_from(["phones", "mes", "list"]), st.text(max_size=30)))
def test_sandbox_order_parser_takes_any_params(params):
    """The simulator's phones/mes/list parser returns orders or None."""
    parse_orders(params)
