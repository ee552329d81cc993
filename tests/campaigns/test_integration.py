"""Campaigns end to end: real Redis, Celery worker and beat processes, sandbox over HTTP."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from tests.integration.conftest import use_stack, wait_for
from worker import api
from worker.campaigns import service as campaigns
from worker.local.stack import Stack

pytestmark = pytest.mark.integration
PENDING = ("scheduled", "queued", "sending")


@pytest.fixture(scope="module")
def stack():
    s = Stack(queued_for=0.3, final_after=1.0, poll_interval=1.0)
    s.start(workers=1, concurrency=4)
    use_stack(s)
    yield s
    s.stop()
    api.reset()


def numbers(base: int, n: int) -> list[str]:
    return [f"+7916{base:03d}{i:04d}" for i in range(1, n + 1)]


def sent_to(stack: Stack, wanted: list[str]) -> Counter[str]:
    """How many times the sandbox accepted each of `wanted` (E.164)."""
    digits = {w.lstrip("+") for w in wanted}
    return Counter("+" + m["phone"] for m in stack.sandbox_messages() if m["phone"] in digits)


def status(cid: str) -> dict:
    return campaigns.show(None, cid)


def pending(cid: str) -> int:
    return sum(status(cid)["counts"].get(s, 0) for s in PENDING)


def test_scheduled_campaign_starts_on_time_and_sends_each_once(stack, tmp_path):
    """Nothing before the start; then every unique, unsuppressed number gets one message."""
    people = numbers(101, 12)
    campaigns.suppression(None).add([people[0]])
    rows = [f"{p},N{i}" for i, p in enumerate(people)] + [f"{people[3]},dup", "123,bad"]
    path = tmp_path / "people.csv"
    path.write_text("phone,name\n" + "\n".join(rows) + "\n", encoding="utf-8")
    c = campaigns.create(None, text="Hi {name}", csv=str(path), account="smsclub",
                         start=time.time() + 4)
    time.sleep(2.5)
    assert sent_to(stack, people) == Counter() and status(c["id"])["status"] == "scheduled"
    assert wait_for(lambda: status(c["id"])["status"] == "completed", 40)
    assert sent_to(stack, people) == Counter({p: 1 for p in people[1:]})
    shown = status(c["id"])
    assert shown["started"] >= shown["start"] and shown["suppressed"] == 1
    assert shown["duplicates"] == 1 and shown["invalid"] == 1


def test_window_holds_a_recipient_outside_it(stack):
    """The recipient whose local hour is outside the window waits while the other goes."""
    hour = time.gmtime(time.time() + 3 * 3600).tm_hour  # Moscow
    moscow, vladivostok = "+74951110001", "+74232110001"
    c = campaigns.create(None, text="Window", account="smsclub",
                         window=f"{hour:02d}:00-{(hour + 1) % 24:02d}:00",
                         recipients=[moscow, vladivostok])
    assert wait_for(lambda: sent_to(stack, [moscow])[moscow] == 1, 20)
    time.sleep(2.5)
    assert sent_to(stack, [vladivostok]) == Counter()
    assert status(c["id"])["waiting_by_zone"]["Asia/Vladivostok"] == 1
    campaigns.cancel(None, c["id"])


def test_pause_stops_new_sends_and_resume_does_not_resend(stack):
    """Paused: sending stops within seconds; resumed: the rest, nobody twice."""
    people = numbers(102, 30)
    c = campaigns.create(None, text="Paced", account="smsclub", rate=4, recipients=people)
    assert wait_for(lambda: sum(sent_to(stack, people).values()) >= 4, 20)
    campaigns.pause(None, c["id"])
    time.sleep(3.0)  # what was already handed to the pipeline drains
    frozen = sum(sent_to(stack, people).values())
    time.sleep(3.0)
    assert sum(sent_to(stack, people).values()) == frozen < len(people)
    campaigns.resume(None, c["id"])
    assert wait_for(lambda: status(c["id"])["status"] == "completed", 40)
    assert sent_to(stack, people) == Counter(dict.fromkeys(people, 1))


def test_cancel_leaves_nothing_pending(stack):
    """After cancel nothing is waiting or queued, and nothing more is sent."""
    people = numbers(103, 40)
    c = campaigns.create(None, text="Cancel me", account="smsclub", rate=3,
                         recipients=people)
    assert wait_for(lambda: sum(sent_to(stack, people).values()) >= 2, 20)
    shown = campaigns.cancel(None, c["id"])
    assert shown["status"] == "cancelled"
    assert wait_for(lambda: pending(c["id"]) == 0, 15)
    count = sum(sent_to(stack, people).values())
    time.sleep(2.0)
    assert sum(sent_to(stack, people).values()) == count < len(people)
    assert status(c["id"])["counts"]["cancelled"] == len(people) - count


def test_gatum_group_campaign_goes_through_send_bulk(stack):
    """A synced group, sent server-side: one send-bulk request, every member once."""
    groups = campaigns.groups(None)
    groups.create("itest")
    people = numbers(104, 5)
    groups.add("itest", [{"phone": p, "name": f"P{i}"} for i, p in enumerate(people)])
    gid = groups.sync_gatum("itest", api.engine().provider("gatum"))["gatum_id"]
    c = campaigns.create(None, text="Bulk hello", account="gatum", gatum_group=gid)
    assert wait_for(lambda: status(c["id"])["status"] == "completed", 20)
    assert sent_to(stack, people) == Counter(dict.fromkeys(people, 1))
    bulk = [r for r in stack.sandbox_requests() if "send-bulk" in str(r.get("path"))]
    assert len(bulk) == 1


def test_worker_killed_mid_campaign_loses_and_duplicates_nothing(stack):
    """SIGKILL the worker mid-run and restart it: every recipient once, none stranded."""
    people = numbers(105, 80)
    c = campaigns.create(None, text="Crash", account="gatum", rate=15, recipients=people)
    assert wait_for(lambda: sum(sent_to(stack, people).values()) >= 15, 20)
    stack.kill("worker0", signal.SIGKILL)
    time.sleep(1.0)
    stack.start_worker("worker0")
    assert wait_for(lambda: status(c["id"])["status"] == "completed" and pending(c["id"]) == 0,
                    90)
    got = sent_to(stack, people)
    assert max(got.values()) == 1 and set(got) == set(people)


BAD = {
    "no phone column": (b"name,city\nAnn,Moscow\n", "line 1: no phone column"),
    "wrong encoding": ("phone,name\n+79161234501,Ann\n+79161234502,Борис\n".encode("cp1251"),
                       "line 3: not valid utf-8"),
    "broken quoting": (b'phone,name\n+79161234501,"Ann\n+79161234502,Bob\n',
                       "line 2: a quoted field is never closed"),
    "empty": (b"", "is empty"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_csv_gets_a_clear_error_from_the_cli(stack, tmp_path, case):
    """`smsq campaign create` on a bad CSV exits 2 with one line naming the problem."""
    data, expected = BAD[case]
    path = tmp_path / "bad.csv"
    path.write_bytes(data)
    extra = ["--encoding", "utf-8"] if case == "wrong encoding" else []
    proc = subprocess.run([sys.executable, "-m", "worker.cli.main", "campaign", "create", "--csv",
                           str(path), "--text", "Hi", "--account", "smsclub", *extra],
                          env=stack.env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and expected in proc.stderr, proc.stderr
