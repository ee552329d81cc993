"""One lifecycle table: the ledger's Lua, the reports and every Step agree with it."""

from __future__ import annotations

import random
import re

import pytest

from worker.ledger.lifecycle import FINAL, FORWARD, TRANSITIONS, Status, Step, reported_from
from worker.ledger.lua import TRANSITION_ONE
from worker.ledger.store import Ledger, msg_key

STATES = list(Status)


def lua_allowed(script: str) -> dict[str, set[str]]:
    block = re.search(r"local ALLOWED = \{\n(.*?)\n\}", script, flags=re.S)
    assert block is not None
    rows = re.findall(r"^\s*(\w+)=\{([^}]*)\},$", block.group(1), flags=re.M)
    return {cur: set(re.findall(r"(\w+)=1", body)) for cur, body in rows}


def test_the_lua_table_is_the_python_table():
    """The ALLOWED table inside the transition script lists exactly TRANSITIONS."""
    expected = {str(cur): {str(n) for n in nxt} for cur, nxt in TRANSITIONS.items() if nxt}
    assert lua_allowed(TRANSITION_ONE) == expected
    finals = re.search(r"local FINAL = \{([^}]*)\}", TRANSITION_ONE)
    assert finals is not None
    assert set(re.findall(r"(\w+)=1", finals.group(1))) == {str(s) for s in FINAL}


def put(client, msg_id: str, state: str) -> None:
    client.hset(msg_key(msg_id), mapping={"st": state, "job": "j", "acc": "a"})


def raw_move(ledger: Ledger, msg_id: str, expected: str, new: str) -> bool:
    """The script itself, without the Python-side check in front of it."""
    return bool(ledger._one(args=[msg_id, expected, new, 1.0, 60, 0.0]))


def test_redis_moves_exactly_the_pairs_the_table_allows(redis_client):
    """Every (state, state) pair against a real Redis: moved if and only if in the table."""
    ledger = Ledger(redis_client)
    for cur in STATES:
        for new in STATES:
            msg_id = f"{cur}-{new}"
            put(redis_client, msg_id, cur)
            moved = raw_move(ledger, msg_id, str(cur), str(new))
            assert moved == (new in TRANSITIONS[cur]), (cur, new)
            after = redis_client.hget(msg_key(msg_id), "st").decode()
            assert after == (new if moved else cur)


def test_a_random_walk_follows_the_table(redis_client):
    """Seeded: random moves with random expected lists; Redis and the table never differ."""
    seed = random.randrange(2**32)
    print(f"seed={seed}")
    rnd = random.Random(seed)
    ledger = Ledger(redis_client)
    state = Status.QUEUED
    put(redis_client, "walk", state)
    for step in range(2000):
        new = rnd.choice(STATES)
        expected = rnd.sample(STATES, rnd.randint(0, 3))
        want = (new in TRANSITIONS[state]) and (not expected or state in expected)
        got = raw_move(ledger, "walk", ",".join(expected), str(new))
        assert got == want, (seed, step, state, expected, new)
        state = new if got else state
        if state in FINAL:
            state = rnd.choice([Status.QUEUED, Status.SCHEDULED])
            put(redis_client, "walk", state)


def test_a_corrupted_state_never_moves(redis_client):
    """A record whose state is junk (hostile bytes) is left alone by the script."""
    ledger = Ledger(redis_client)
    for junk in ("bogus", "", "queued\x00", "QUEUED", "sent ", "é"):
        put(redis_client, "x", junk)
        assert not raw_move(ledger, "x", "", "sending")
        assert redis_client.hget(msg_key("x"), "st").decode() == junk


def test_python_refuses_a_move_the_table_does_not_allow(redis_client):
    """A Step or a ledger call outside the table raises before Redis is touched."""
    ledger = Ledger(redis_client)
    put(redis_client, "m", "sent")
    with pytest.raises(ValueError, match="sent -> queued"):
        Step("m", (Status.SENT,), Status.QUEUED)
    with pytest.raises(ValueError, match="delivered -> sent"):
        ledger.transition("m", ["delivered"], "sent")
    with pytest.raises(ValueError):
        ledger.transition_many(["m"], ["sent"], "no-such-state")
    assert redis_client.hget(msg_key("m"), "st") == b"sent"


def test_reports_only_move_forward():
    """A report's allowed-from list holds only earlier tiers, never `sending`."""
    tier = {s: i for i, states in enumerate(FORWARD) for s in states}
    for new in STATES:
        for src in reported_from(new):
            assert src is not Status.SENDING
            assert tier[src] < tier[new], (src, new)
    assert reported_from(Status.QUEUED) == () and reported_from(Status.SENDING) == ()
    assert set(reported_from(Status.DELIVERED)) == {Status.QUEUED, Status.UNKNOWN, Status.SENT}


def test_final_states_are_final():
    """Nothing leaves a final state, and every state is either final or can move on."""
    for state in STATES:
        assert (not TRANSITIONS[state]) == (state in FINAL), state
