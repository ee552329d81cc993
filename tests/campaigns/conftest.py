"""Campaign fixtures: the shared private-Redis `engine` (tests/conftest.py) plus helpers."""

from __future__ import annotations

import pytest

from worker import sending
from worker.campaigns import tick as campaign_tick


def run_enqueued(engine) -> int:
    """Run the deliver tasks the engine enqueued, as a worker would; returns how many."""
    n = 0
    while engine.enqueued:
        name, kwargs, _ = engine.enqueued.pop(0)
        if name == "smsq.deliver":
            sending.deliver(engine, kwargs["ids"], kwargs["account"])
            n += 1
    return n


def tick(engine, now: float) -> dict[str, int]:
    return campaign_tick.tick(engine, now)


@pytest.fixture
def csv_file(tmp_path):
    def make(text: str, name: str = "people.csv", encoding: str = "utf-8"):
        path = tmp_path / name
        path.write_bytes(text.encode(encoding))
        return str(path)
    return make
