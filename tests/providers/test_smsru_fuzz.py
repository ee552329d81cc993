"""Property tests: every sms.ru parser yields a result or an SmsqError, nothing else."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from providers.errors import SmsqError
from providers.models import OutgoingMessage
from providers.sandbox.smsru import normalize
from providers.smsru import parse_cost_reply, parse_send_reply
from providers.smsru_codes import (
    as_int,
    check_envelope,
    decode_json,
    error_for,
    parse_balance_reply,
    parse_callcheck_add,
    parse_callcheck_status,
    parse_counter_reply,
    parse_list_reply,
    parse_status_reply,
    parse_stoplist_reply,
    status_for,
)
from providers.smsru_reports import callback_items, parse_callback, verify_callback

MESSAGES = [OutgoingMessage("r1", "+79161234501", "hi"), OutgoingMessage("r2", "+79161234502",
                                                                          "yo")]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=20,
)
codes = st.sampled_from([100, "100", 102, 103, 200, 207, -1, "x", None, 1.5, True])
items = st.fixed_dictionaries({}, optional={
    "status": st.sampled_from(["OK", "ERROR", "", None, 1]), "status_code": codes,
    "sms_id": st.text(max_size=6) | st.integers(), "cost": json_values, "sms": json_values,
    "send_time": json_values, "status_time": json_values, "status_text": json_values})
envelopes = st.fixed_dictionaries({
    "status": st.sampled_from(["OK", "ERROR", "x"]), "status_code": codes}, optional={
    "sms": st.dictionaries(st.sampled_from(["79161234501", "9161234502", "1-2", "x"]),
                           items | json_values, max_size=3),
    "balance": json_values, "total_cost": json_values, "total_sms": json_values,
    "senders": json_values, "callback": json_values, "stoplist": json_values,
    "check_id": json_values, "call_phone": json_values, "check_status": json_values,
    "total_limit": json_values, "used_today": json_values})
replies = envelopes | json_values

PARSERS = [
    check_envelope,
    lambda d: parse_send_reply(d, MESSAGES),
    lambda d: parse_cost_reply(d, MESSAGES),
    lambda d: parse_status_reply(d, ["1-2", "x"]),
    parse_balance_reply,
    lambda d: parse_counter_reply(d, "total_limit"),
    lambda d: parse_list_reply(d, "senders"),
    lambda d: parse_list_reply(d, "callback"),
    parse_stoplist_reply,
    parse_callcheck_add,
    parse_callcheck_status,
]


def result_or_smsq_error(fn: Any, value: Any) -> None:
    try:
        fn(value)
    except SmsqError:
        pass


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=200))
def test_decode_json_on_bytes(body):
    """Arbitrary bytes decode to JSON or MalformedResponse."""
    result_or_smsq_error(decode_json, body)


@settings(max_examples=200, deadline=None)
@given(replies)
def test_reply_parsers_on_json_values(data):
    """Every reply parser survives arbitrary envelopes and JSON-like values."""
    for parser in PARSERS:
        result_or_smsq_error(parser, data)


@settings(max_examples=150, deadline=None)
@given(json_values)
def test_code_functions_never_raise(value):
    """as_int, status_for and error_for accept anything."""
    as_int(value)
    status_for(value)
    assert isinstance(error_for(value), SmsqError)


callback_keys = st.sampled_from(["data[0]", "data[1]", "data[]", "data", "data[x]", "hash",
                                 "other"])
callback_values = st.sampled_from(["sms_status", "callcheck_status", "103", "1-2", "", "x\r"])
callback_texts = st.lists(callback_values, max_size=5).map("\n".join) | st.text(max_size=30)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(callback_keys | st.text(max_size=8), callback_texts), max_size=6))
def test_callback_parsers_on_forms(form):
    """parse_callback and verify_callback accept any form, as pairs or as a dict."""
    for shape in (form, dict(form)):
        result_or_smsq_error(parse_callback, shape)
        result_or_smsq_error(lambda f: verify_callback("key", f), shape)
        result_or_smsq_error(callback_items, shape)


@settings(max_examples=100, deadline=None)
@given(st.lists(json_values, max_size=4))
def test_callback_parser_on_junk_pairs(junk):
    """Non-pair junk in a callback form is MalformedResponse, never a crash."""
    result_or_smsq_error(parse_callback, junk)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=20))
def test_simulator_normalize(raw):
    """The simulator's number normaliser returns digits or None for any text."""
    phone = normalize(raw)
    assert phone is None or (phone.isdigit() and 11 <= len(phone) <= 15)
