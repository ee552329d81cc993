"""Optional capabilities: who declares which interface, and what each one answers,
against the in-process simulators; the worker's side refuses a provider without one."""

from __future__ import annotations

import random
from datetime import UTC, datetime, time

import pytest

from providers import REGISTRY
from providers.capabilities import BlackList, BulkReceipt, BulkSend, ServerGroups, StopList
from providers.errors import ValidationError
from worker.contacts.groups import Groups
from worker.contacts.suppression import Suppression

DECLARED = {"smsru": {StopList}, "gatum": {BlackList, ServerGroups, BulkSend},
            "smsclub": set(), "smsc": set(), "sms1000": set()}


@pytest.mark.parametrize("name", sorted(DECLARED))
def test_each_gateway_declares_exactly_its_capabilities(make_provider, name):
    """isinstance tells the worker which optional interfaces a gateway has, and no others."""
    provider = make_provider(name)
    has = {cap for cap in (StopList, BlackList, ServerGroups, BulkSend)
           if isinstance(provider, cap)}
    assert has == DECLARED[name]


def test_every_registered_gateway_is_in_the_table():
    """A new gateway must say which capabilities it has (this table is the place)."""
    assert set(REGISTRY) == set(DECLARED)
    assert set(REGISTRY) == set(VALIDITY)


# The validity parameter each gateway takes: (name, unit in seconds, range in units).
VALIDITY = {"smsru": ("ttl", 60.0, 1, 1440), "smsc": ("valid", 60.0, 1, 1440),
            "gatum": ("lifetime", 1.0, 1, 86400), "smsclub": None, "sms1000": None}


@pytest.mark.parametrize("name", sorted(VALIDITY))
def test_each_gateway_declares_its_validity_parameter(name):
    """`validity` is the flag: None for a gateway that takes no validity on the wire."""
    wire = REGISTRY[name].validity
    got = None if wire is None else (wire.param, wire.unit, wire.low, wire.high)
    assert got == VALIDITY[name]


def test_blacklisted_returns_the_listed_numbers_as_given(make_provider):
    """Gatum's black list answers in E.164 as asked, whatever the gateway's own format."""
    seed = random.randrange(2**32)
    print("seed", seed)
    rng = random.Random(seed)
    gatum = make_provider("gatum")
    numbers = sorted({f"+7916{rng.randrange(10**7):07d}" for _ in range(40)})
    listed = set(rng.sample(numbers, 7))
    gatum.black_list_add([int(n[1:]) for n in listed])
    assert gatum.blacklisted(numbers) == listed
    assert gatum.blacklisted([n for n in numbers if n not in listed]) == set()


def test_server_group_upload_and_bulk_send(make_provider, sandbox):
    """new_group + add_to_group hold the contacts; send_to_groups sends to them minus excluded."""
    gatum = make_provider("gatum")
    keep, drop = gatum.new_group("keep"), gatum.new_group("drop")
    assert isinstance(keep, int) and keep != drop
    gatum.add_to_group(keep, [(f"+7916123450{i}", {"name": f"n{i}"}) for i in range(1, 5)])
    gatum.add_to_group(drop, [("+79161234502", {})])
    receipt = gatum.send_to_groups("smsq", "Promo", [keep], excluded=[drop],
                                   start=datetime(2030, 1, 2, tzinfo=UTC),
                                   window=(time(9, 0), time(21, 30)))
    assert receipt == BulkReceipt(receipt.sent_id, 3) and receipt.sent_id is not None
    assert sorted(m.phone for m in sandbox.state.messages) == [
        "79161234501", "79161234503", "79161234504"]


def test_suppression_without_a_gateway_list_is_empty(engine, make_provider):
    """A gateway with neither a stop list nor a black list adds nothing (and asks nothing)."""
    provider = make_provider("smsclub")
    before = len(engine.r.keys("*"))
    assert Suppression(engine.r).at_gateway(provider, ["+380971234501"]) == set()
    assert len(engine.r.keys("*")) == before


def test_group_sync_to_a_gateway_without_groups_is_refused(engine, make_provider):
    """Syncing a group through an account with no server-side groups names it; nothing written."""
    groups = Groups(engine.r)
    groups.create("g")
    groups.add("g", [{"phone": "+79161234501"}])
    before = sorted(engine.r.keys("*"))
    with pytest.raises(ValidationError, match="'smsru'"):
        groups.sync_gatum("g", make_provider("smsru"))
    assert sorted(engine.r.keys("*")) == before
