"""One seeded chaos run (tests/reliability/chaos.py): jobs through the API and by task name
under SIGKILLs of pool children, main processes, whole nodes, a node the moment it takes an
`smsq.send`, beat, and Redis mid-write; gateway 5xx / 429 windows, timeouts and dropped
connections; the visibility timeout fast-forwarded. Nothing lost, nothing sent twice,
nothing stuck, every refusal explained. `SMSQ_CHAOS_SEED` replays a seed."""

from __future__ import annotations

import json
import os

import pytest

from tests.reliability import chaos

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.chaos]


@pytest.mark.timeout(900)
def test_seeded_chaos_run() -> None:
    """Every accepted id is sent exactly once or explained, under every fault class."""
    seed = int(os.environ.get("SMSQ_CHAOS_SEED", "20261202"))
    messages = int(os.environ.get("SMSQ_CHAOS_MESSAGES", "1500"))
    report = chaos.run(seed, messages)
    print(json.dumps(report, indent=1))
    assert report["settled"], report
    assert chaos.passed(report), report
    assert len(report["events"]) == len(chaos.EVENTS)
