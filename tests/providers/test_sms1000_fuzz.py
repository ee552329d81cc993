"""Every 1000sms.ru parser answers a result or an SmsqError, whatever the gateway sends."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from providers.errors import SmsqError
from providers.models import OutgoingMessage, StatusQuery
from providers.sms1000 import (
    parse_code,
    parse_envelope,
    parse_profile,
    parse_report,
    parse_send,
    parse_time,
)

MSG = OutgoingMessage(ref="r", recipient="+79161234567", text="hi", sender="smsq")
QUERY = StatusQuery("3000001", "+79161234567")

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
codes = st.sampled_from(["0", 0, "2", 602, "617", "99", "x", None, 0.0, "1", True])
data_fields = st.fixed_dictionaries({}, optional={
    k: values | codes for k in ("id", "credits", "n_raw_sms", "state", "last_update",
                                "start_time", "state_text", "currency", "credits_name")})
envelopes = st.builds(
    lambda code, data, noise: json.dumps(
        {"response": {"msg": {"err_code": code, "text": "t"}, "data": data}, **noise},
        allow_nan=True).encode(),
    codes | values, data_fields | values, st.dictionaries(st.text(max_size=5), values,
                                                           max_size=2),
)
bodies = st.binary(max_size=200) | envelopes | values.map(
    lambda v: json.dumps(v, allow_nan=True).encode())


def survives(call) -> None:
    try:
        call()
    except SmsqError:
        pass


@settings(max_examples=200, deadline=None)
@given(bodies)
def test_parse_envelope_never_crashes(raw):
    """parse_envelope: (code, data) or an SmsqError."""
    survives(lambda: parse_envelope(raw))


@settings(max_examples=200, deadline=None)
@given(bodies)
def test_parse_send_never_crashes(raw):
    """parse_send: a SendResult or an SmsqError."""
    survives(lambda: parse_send(raw, MSG))


@settings(max_examples=200, deadline=None)
@given(bodies)
def test_parse_report_never_crashes(raw):
    """parse_report: a StatusResult or an SmsqError."""
    survives(lambda: parse_report(raw, QUERY))


@settings(max_examples=200, deadline=None)
@given(bodies)
def test_parse_profile_never_crashes(raw):
    """parse_profile: a Balance or an SmsqError."""
    survives(lambda: parse_profile(raw))


@settings(max_examples=200, deadline=None)
@given(values | codes)
def test_parse_code_never_crashes(value):
    """parse_code: an int or an SmsqError, for any JSON value."""
    survives(lambda: parse_code(value))


@settings(max_examples=200, deadline=None)
@given(values | st.text(alphabet="0123456789-: ", max_size=25))
def test_parse_time_never_crashes(value):
    """parse_time: a float or None, for any value, never an exception."""
    result = parse_time(value)
    assert result is None or isinstance(result, float)
