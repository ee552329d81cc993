"""No credential anywhere: a full run through every gateway, then every process log,
every Redis key and value, every command the broker saw (MONITOR) and the CLI's output
are searched for every API key, password, Bearer token and Gatum access token."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from celery import Celery

from providers.sandbox import SIMULATORS
from tests.integration.conftest import use_stack, wait_for
from tests.reliability.conftest import snapshot
from worker import api
from worker.local.stack import Stack

pytestmark = pytest.mark.integration
LOGINS = {"login", "username", "email"}  # account names, not secrets


class Monitor:
    """Every command Redis executes (broker publishes included), captured as text."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url)
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.stopping = False

    def _run(self) -> None:
        with self.client.monitor() as mon:
            while not self.stopping:
                try:
                    self.lines.append(str(mon.next_command()))
                except (redis.ConnectionError, redis.TimeoutError):
                    return

    def start(self) -> Monitor:
        self.thread.start()
        return self


@pytest.fixture(scope="module")
def run() -> Iterator[tuple[Stack, Monitor, list[str]]]:
    stack = Stack(queued_for=0.3, final_after=1.2, poll_interval=1.0)
    stack.sandbox.sims["gatum"].configure(token_ttl=2.0)  # type: ignore[attr-defined]
    stack.start(workers=1, concurrency=4)
    use_stack(stack)
    mon = Monitor(stack.redis_url or "").start()
    tokens: set[str] = set()
    stop = threading.Event()

    def watch_tokens() -> None:  # Gatum issues new tokens as old ones expire
        while not stop.wait(0.1):
            db = stack.sandbox.state.extra.get("gatum", {})
            tokens.update(db.get("tokens", {}))
            tokens.update(str(c) for c in db.get("codes", ()))

    watcher = threading.Thread(target=watch_tokens, daemon=True)
    watcher.start()
    try:
        yield stack, mon, _drive(stack, tokens)
    finally:
        stop.set()
        mon.stopping = True
        stack.stop()
        api.reset()


def _drive(stack: Stack, tokens: set[str]) -> list[str]:
    """Traffic on every gateway (sends, polls, reports, a failure) plus CLI use."""
    client = Celery(broker=stack.redis_url)
    ids = []
    for n, gw in enumerate(SIMULATORS):
        prefix = "+38097" if gw == "smsclub" else "+7916"
        phones = [f"{prefix}{4400000 + n * 100 + i:07d}" for i in range(8)] + [f"{prefix}1110000"]
        job = f"sec{gw}"
        client.send_task("smsq.send", queue="smsq", kwargs={
            "recipients": phones, "text": f"secret test {gw}", "account": gw, "job_id": job})
        ids += [f"{job}.{i}" for i in range(len(phones))]
    client.close()
    assert wait_for(lambda: _all_final(ids), timeout=120)
    cli_out = []
    env = stack.env()
    for argv in (["providers"], ["balance"], ["status", "--job", "secsmsru"],
                 ["status", *ids[:5]], ["send", "--to", "+79164409999", "--text", "cli",
                                        "--account", "gatum", "--json"],
                 ["send", "--to", "12", "--text", "x", "--account", "smsc"]):
        done = subprocess.run([sys.executable, "-m", "worker.cli.main", *argv], env=env,
                              capture_output=True, text=True, timeout=60)
        cli_out += [done.stdout, done.stderr]
    db = stack.sandbox.state.extra.get("gatum", {})
    tokens.update(db.get("tokens", {}))
    cli_out.append("\n".join(sorted(tokens)))  # carried out for the secret list, see below
    return cli_out


def _all_final(ids: list[str]) -> bool:
    try:
        rows = api.get_status(ids)
    except Exception:
        return False
    return all(r["final"] or r["status"] == "unknown" for r in rows)


def secrets_of(stack: Stack, tokens: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for gw, sim in stack.sandbox.sims.items():
        for key, value in sim.credentials.items():
            if key not in LOGINS:
                found[f"{gw}.{key}"] = value
    for i, token in enumerate(tokens):
        found[f"gatum.token{i}"] = token
    found["webhook_token"] = stack.token
    return found


def haystacks(stack: Stack, mon: Monitor, cli_out: list[str]) -> dict[str, str]:
    client = redis.Redis.from_url(stack.redis_url or "")
    dump = "\n".join(f"{k!r} {v!r}" for k, v in snapshot(client).items())
    client.close()
    logs = {p.name: p.read_text(errors="replace") for p in Path(stack.dir).glob("*.log")}
    return {"redis": dump, "monitor": "\n".join(mon.lines), "cli": "\n".join(cli_out[:-1]),
            **{f"log:{k}": v for k, v in logs.items()}}


def test_the_run_really_used_every_credential(run: tuple[Stack, Monitor, list[str]]) -> None:
    """The search is meaningful: every gateway was called and Gatum issued tokens."""
    stack, mon, cli_out = run
    gateways = {r["gateway"] for r in stack.sandbox_requests()}
    assert gateways == set(SIMULATORS)
    tokens = [t for t in cli_out[-1].split("\n") if t]
    assert len(tokens) >= 2  # token_ttl=2s forced at least one refresh
    assert len(mon.lines) > 1000
    assert any("smsq.deliver" in line for line in mon.lines)  # broker messages captured
    assert len([n for n in haystacks(stack, mon, cli_out) if n.startswith("log:")]) >= 3


def test_no_secret_anywhere(run: tuple[Stack, Monitor, list[str]]) -> None:
    """No API key, password, Bearer token, Gatum token or webhook token in any output."""
    stack, mon, cli_out = run
    tokens = [t for t in cli_out[-1].split("\n") if t]
    secrets = secrets_of(stack, tokens)
    leaks = [(name, where) for name, value in secrets.items()
             for where, text in haystacks(stack, mon, cli_out).items() if value in text]
    assert leaks == []
    assert len(secrets) >= 8


def test_the_search_would_find_a_leak(run: tuple[Stack, Monitor, list[str]]) -> None:
    """A planted secret is found: the haystacks hold what the processes wrote."""
    stack, mon, cli_out = run
    client = redis.Redis.from_url(stack.redis_url or "")
    client.set("smsq:test:planted", "sandbox-smsc-pass")
    try:
        assert "sandbox-smsc-pass" in haystacks(stack, mon, cli_out)["redis"]
    finally:
        client.delete("smsq:test:planted")
        client.close()
