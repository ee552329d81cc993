"""Every SMS Club parser, fed anything: a result or an SmsqError, nothing else."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from providers.errors import SmsqError
from providers.models import OutgoingMessage
from providers.smsclub import (
    accepted_ids,
    decode_json,
    envelope,
    parse_balance,
    parse_originators,
    parse_send,
    parse_status,
    read_reply,
)
from providers.smsclub_codes import error_for, status_for

FUZZ = settings(max_examples=100, deadline=None)

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                max_size=4),
    max_leaves=20,
)
phones = st.from_regex(r"\A\+3809893[0-9]{5}\Z")
keys = st.text(max_size=14) | st.sampled_from(["src_addr", "message", "phone", "invalid_phone"]) \
    | st.from_regex(r"\A3809893[0-9]{5}\Z") | st.from_regex(r"\A[0-9]{1,12}\Z")
# Replies shaped like the gateway's, with junk in every slot.
shaped = st.fixed_dictionaries({"success_request": st.fixed_dictionaries(
    {}, optional={"info": st.dictionaries(keys, scalars | phones, max_size=5) | json_values,
                  "add_info": st.dictionaries(keys, scalars, max_size=5) | json_values,
                  "extra": json_values})})
replies = shaped | json_values


def messages(numbers: list[str]) -> list[OutgoingMessage]:
    return [OutgoingMessage(ref=str(i), recipient=p, text="t", sender="s")
            for i, p in enumerate(numbers)]


def outcome(call, *args):
    try:
        return call(*args)
    except SmsqError as exc:
        return exc


@FUZZ
@given(st.binary(max_size=200))
def test_decode_json_any_bytes(body):
    """Arbitrary bytes decode or raise MalformedResponse."""
    outcome(decode_json, body)


@FUZZ
@given(st.integers(min_value=100, max_value=599),
       st.binary(max_size=120) | json_values.map(lambda v: json.dumps(v).encode()),
       st.none() | st.text(max_size=8))
def test_read_reply_any_status_and_body(status, body, retry_after):
    """Any HTTP status, body and Retry-After header give a value or an SmsqError."""
    outcome(read_reply, status, body, retry_after)


@FUZZ
@given(replies)
def test_envelope(data):
    """Any JSON value splits into (info, add_info) or raises an SmsqError."""
    result = outcome(envelope, data)
    assert isinstance(result, SmsqError | tuple)


@FUZZ
@given(replies, st.lists(phones, min_size=1, max_size=4))
def test_parse_send(data, numbers):
    """Any reply gives one SendResult per message, in order, or an SmsqError."""
    result = outcome(parse_send, data, messages(numbers))
    if isinstance(result, list):
        assert [r.recipient for r in result] == numbers
        assert all(r.accepted or isinstance(r.error, SmsqError) for r in result)


@FUZZ
@given(st.dictionaries(st.text(max_size=12), json_values, max_size=6))
def test_accepted_ids(info):
    """Any info object yields phone -> ids without crashing."""
    accepted_ids(info)


@FUZZ
@given(replies, st.lists(st.text(max_size=10), max_size=5))
def test_parse_status(data, ids):
    """Any reply gives one StatusResult per id, in order, or an SmsqError."""
    result = outcome(parse_status, data, ids)
    if isinstance(result, list):
        assert [r.provider_message_id for r in result] == ids


@FUZZ
@given(replies | st.fixed_dictionaries({"success_request": st.fixed_dictionaries(
    {"info": st.fixed_dictionaries({"money": scalars, "currency": scalars})})}))
def test_parse_balance(data):
    """Any reply parses into a Balance or raises an SmsqError."""
    outcome(parse_balance, data)


@FUZZ
@given(replies)
def test_parse_originators(data):
    """Any reply gives a list of strings or an SmsqError."""
    result = outcome(parse_originators, data)
    if isinstance(result, list):
        assert all(isinstance(name, str) for name in result)


@FUZZ
@given(json_values)
def test_status_for(raw):
    """Any raw status value maps to some Status."""
    status_for(raw)


@FUZZ
@given(st.integers(min_value=100, max_value=599), st.none() | keys, st.text(max_size=300))
def test_error_for(status, key, text):
    """Any code, key and text give an SmsqError or None, with a bounded message."""
    error = error_for(http_status=status, key=key, text=text)
    assert error is None or (isinstance(error, SmsqError) and len(error.message) < 240)
