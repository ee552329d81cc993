"""Shared fixtures: a fake clock, an in-process sandbox, providers on it."""

from __future__ import annotations

import pytest

from providers import REGISTRY, build_provider
from providers.sandbox import Sandbox
from providers.sandbox.core import SandboxState


class FakeClock:
    """A clock tests move by hand; nothing sleeps."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sandbox(clock: FakeClock) -> Sandbox:
    return Sandbox(SandboxState(clock=clock, queued_for=1.0, final_after=5.0))


@pytest.fixture
def session(sandbox: Sandbox):
    return sandbox.session()


@pytest.fixture(params=list(REGISTRY))
def provider_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_provider(sandbox: Sandbox, session):
    def make(name: str, **overrides):
        return build_provider(sandbox.account(name, **overrides), session=session,
                              timeout=(1.0, 5.0))
    return make


@pytest.fixture(scope="session")
def redis_server():
    """One private redis-server for the session (tests flush it, never a shared instance)."""
    from worker.local.embedded import EmbeddedRedis

    server = EmbeddedRedis().start()
    yield server
    server.cleanup()


@pytest.fixture
def redis_client(redis_server):
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def engine(redis_server, redis_client, sandbox, session):
    """An Engine on the private Redis and the in-process sandbox; enqueued work is recorded."""
    from worker import settings
    from worker.engine import Engine

    env = {**sandbox.env(), "SMSQ_REDIS_URL": redis_server.url}
    eng = Engine(settings.load(env), client=redis_client, session=session)
    eng.enqueued = []
    eng.enqueue = lambda name, kwargs, queue: eng.enqueued.append((name, dict(kwargs), queue))
    return eng



def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A green run removes the directories its stacks made (worker, beat and sandbox logs);
    a run with a failure keeps them to read. Only this process's: another run's are live."""
    import shutil

    from worker.local.stack import Stack

    if exitstatus == 0:
        for path in Stack.made:
            shutil.rmtree(path, ignore_errors=True)
