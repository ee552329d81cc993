"""Campaigns on a real Redis and the in-process sandbox; the tick is driven by hand."""

from __future__ import annotations

import dataclasses
import io
import time

import pytest

from providers.errors import ValidationError
from tests.campaigns.conftest import run_enqueued, tick
from worker.campaigns import service as campaigns
from worker.ledger.store import QUEUED

PEOPLE = "phone,name\n+79161234501,Ann\n89161234502,Bob\n\n+7 916 123-45-01,Ann again\n" \
         "12,Shorty\n+79161234503,Cy\n"


def sent_numbers(sandbox):
    return sorted(m.phone for m in sandbox.state.messages)


def test_import_dedups_reports_invalid_and_waits(engine, csv_file, redis_client):
    """Duplicates are dropped with their lines, bad rows are rejected records naming the line,
    and nothing enters the send queue before the campaign runs."""
    c = campaigns.create(engine, text="Hello {name}", csv=csv_file(PEOPLE), account="smsru",
                         start="+1h")
    assert c["status"] == "scheduled" and c["total"] == 4
    assert c["counts"] == {"scheduled": 3, "rejected": 1}
    assert c["duplicates"] == 1 and c["duplicate_lines"] == [5]
    assert c["problems"] == ["line 6: phone number 12 is not a valid number"] or \
        c["problems"][0].startswith("line 6:")
    assert redis_client.zcard(QUEUED) == 0 and not engine.enqueued
    assert not redis_client.exists(f"smsq:c:{c['id']}:dd")


def test_template_checked_before_anything_is_written(engine, csv_file, redis_client):
    """A template field missing from the CSV header writes nothing."""
    with pytest.raises(ValidationError, match=r"\{surname\}"):
        campaigns.create(engine, text="Hi {surname}", csv=csv_file(PEOPLE), account="smsru")
    assert redis_client.dbsize() == 0


def test_bad_csv_midway_leaves_nothing(engine, csv_file, redis_client):
    """A file-level error found after some chunks were written removes the campaign."""
    body = "phone\n" + "".join(f"+7916{i:07d}\n" for i in range(5000)) + '"broken"x\n'
    with pytest.raises(ValidationError, match="line 5002"):
        campaigns.create(engine, text="Hi", csv=csv_file(body), account="smsru")
    assert redis_client.dbsize() == 0


def test_starts_on_time_and_exactly_once(engine, csv_file):
    """Not before its start; at its start exactly one of two competing ticks starts it."""
    c = campaigns.create(engine, text="Hi", csv=csv_file(PEOPLE), account="smsru",
                         start=1_000.0)
    assert tick(engine, 999.0)["started"] == 0
    assert campaigns.show(engine, c["id"])["status"] == "scheduled"
    assert tick(engine, 1_000.0)["started"] == 1 and tick(engine, 1_000.5)["started"] == 0
    assert campaigns.show(engine, c["id"])["status"] == "running"


def test_runs_to_completion_sending_each_once(engine, csv_file, sandbox):
    """Released, sent once per unique valid number, then completed."""
    c = campaigns.create(engine, text="Hello {name}", csv=csv_file(PEOPLE), account="smsru")
    now = time.time()
    for i in range(4):
        tick(engine, now + i)
        run_enqueued(engine)
    assert campaigns.show(engine, c["id"])["status"] == "completed"
    assert sent_numbers(sandbox) == ["79161234501", "79161234502", "79161234503"]
    assert sorted(m.text for m in sandbox.state.messages) == ["Hello Ann", "Hello Bob",
                                                              "Hello Cy"]


def test_local_and_gateway_suppression(engine, csv_file, sandbox, make_provider):
    """Local opt-outs and sms.ru stop-listed numbers end rejected 'suppressed', unsent."""
    campaigns.suppression(engine).add(["+79161234501"], "asked")
    engine.provider("smsru").stoplist_add("+79161234503")
    c = campaigns.create(engine, text="Hi", csv=csv_file(PEOPLE), account="smsru")
    tick(engine, time.time())
    run_enqueued(engine)
    assert sent_numbers(sandbox) == ["79161234502"]
    shown = campaigns.show(engine, c["id"])
    assert shown["suppressed"] == 2 and shown["counts"]["rejected"] == 3
    out = io.StringIO()
    campaigns.report(engine, c["id"], out)
    assert out.getvalue().count(",suppressed") == 2


def test_bulk_caps_hold_across_campaigns(engine, sandbox):
    """SMSQ_CAP_BULK_DAY=1: a number a campaign reached today is refused by the next one at
    release (rejected, recipient_cap, unsent); the others go out."""
    engine.cfg = dataclasses.replace(engine.cfg, cap_bulk_day=1)
    campaigns.create(engine, text="Sale", recipients=["+79161234501"], account="smsru")
    tick(engine, time.time())
    run_enqueued(engine)
    c = campaigns.create(engine, text="Sale 2", recipients=["+79161234501", "+79161234502"],
                         account="smsru")
    tick(engine, time.time() + 1)
    run_enqueued(engine)
    assert sorted(sent_numbers(sandbox)) == ["79161234501", "79161234502"]
    shown = campaigns.show(engine, c["id"])
    assert shown["capped"] == 1 and shown["counts"]["rejected"] == 1
    out = io.StringIO()
    campaigns.report(engine, c["id"], out)
    assert out.getvalue().count(",recipient_cap") == 1
    assert [m.text for m in sandbox.state.messages if m.phone == "79161234501"] == ["Sale"]


def test_a_campaign_text_over_max_segments_is_refused(engine, redis_client):
    """SMSQ_MAX_SEGMENTS (10) holds for campaigns too: 30 UCS-2 segments to SMSC refused,
    naming the field and the setting, before anything is written."""
    with pytest.raises(ValidationError) as info:
        campaigns.create(engine, text="Привет мир " * 182, recipients=["+79161234501"],
                         account="smsc")
    assert info.value.field == "text" and "SMSQ_MAX_SEGMENTS allows 10" in info.value.message
    assert not redis_client.keys("smsq:c:*")


def test_gatum_black_list_is_honoured(engine, sandbox):
    """Through Gatum, black-listed numbers are suppressed before the send."""
    engine.provider("gatum").black_list_add([79161234502])
    campaigns.create(engine, text="Hi", recipients=["+79161234501", "+79161234502"],
                     account="gatum")
    tick(engine, time.time())
    run_enqueued(engine)
    assert sent_numbers(sandbox) == ["79161234501"]


def test_window_holds_recipients_outside_it(engine):
    """A recipient whose local time is outside the window waits; one inside goes."""
    now = time.time()
    moscow_hour = time.gmtime(now + 3 * 3600).tm_hour
    window = f"{moscow_hour:02d}:00-{(moscow_hour + 1) % 24:02d}:00"
    c = campaigns.create(engine, text="Hi", account="smsru", window=window,
                         recipients=["+74951234567", "+74232123456"])  # Moscow, Vladivostok
    assert set(c["waiting_by_zone"]) == {"Europe/Moscow", "Asia/Vladivostok"}
    tick(engine, now)
    tick(engine, now + 1)
    shown = campaigns.show(engine, c["id"])
    assert shown["waiting_by_zone"] == {"Europe/Moscow": 0, "Asia/Vladivostok": 1}
    assert shown["counts"].get("queued") == 1


def test_rate_cap_limits_each_tick(engine):
    """A 5/s cap releases 5 per second (the first tick has one second's credit)."""
    c = campaigns.create(engine, text="Hi", account="smsru", rate=5,
                         recipients=[f"+7916123{i:04d}" for i in range(1, 50 + 1)])
    now = time.time()
    tick(engine, now)  # starts
    tick(engine, now + 1)
    run_enqueued(engine)
    tick(engine, now + 2)
    assert campaigns.show(engine, c["id"])["released"] == 15


def test_pause_stops_release_and_resume_does_not_resend(engine, sandbox):
    """Paused: nothing more is released; resumed: the rest goes, nobody twice."""
    c = campaigns.create(engine, text="Hi", account="smsru", rate=5,
                         recipients=[f"+7916123{i:04d}" for i in range(1, 20 + 1)])
    now = time.time()
    tick(engine, now)
    tick(engine, now + 1)
    run_enqueued(engine)
    campaigns.pause(engine, c["id"])
    for i in range(2, 6):
        tick(engine, now + i)
    assert run_enqueued(engine) == 0 and len(sandbox.state.messages) == 10
    campaigns.resume(engine, c["id"])
    for i in range(6, 20):
        tick(engine, now + i)
        run_enqueued(engine)
    assert len(sent_numbers(sandbox)) == len(set(sent_numbers(sandbox))) == 20
    assert campaigns.show(engine, c["id"])["status"] == "completed"


def test_cancel_leaves_nothing_pending(engine, sandbox, redis_client):
    """Cancel: waiting and queued recipients end cancelled; later ticks send nothing."""
    c = campaigns.create(engine, text="Hi", account="smsru", rate=5,
                         recipients=[f"+7916123{i:04d}" for i in range(1, 30 + 1)])
    now = time.time()
    tick(engine, now)
    tick(engine, now + 1)  # 5 queued, not yet delivered
    shown = campaigns.cancel(engine, c["id"])
    assert shown["status"] == "cancelled" and shown["counts"] == {"cancelled": 30}
    run_enqueued(engine)
    tick(engine, now + 2)
    assert sandbox.state.messages == [] and redis_client.zcard(QUEUED) == 0
    assert sum(shown["waiting_by_zone"].values()) == 0


def test_auto_pause_on_failures(engine, sandbox):
    """When most finished sends fail, the campaign pauses itself and says why."""
    c = campaigns.create(engine, text="Hi", account="smsru", failure_threshold=0.2,
                         recipients=[f"+7916123{i:04d}" for i in range(1, 60 + 1)])
    for i in range(30):  # along the lifecycle: claimed, then a permanent error
        for cur, new in (("scheduled", "queued"), ("queued", "sending"), ("sending", "failed")):
            assert engine.ledger.transition(f"{c['id']}.{i}", [cur], new)
    tick(engine, time.time())
    tick(engine, time.time() + 1)
    shown = campaigns.show(engine, c["id"])
    assert shown["status"] == "paused" and "auto-paused" in shown["reason"]


def test_contact_group_audience(engine, sandbox):
    """A stored group is an audience whose fields fill the template."""
    groups = campaigns.groups(engine)
    groups.create("vip")
    groups.add("vip", [{"phone": "+79161234501", "name": "Ann"},
                       {"phone": "89161234502", "name": "Bob"}])
    assert [r["phone"] for r in groups.search("vip", "Bob")] == ["+79161234502"]
    campaigns.create(engine, text="Dear {name}", group="vip", account="smsru")
    tick(engine, time.time())
    run_enqueued(engine)
    assert sorted(m.text for m in sandbox.state.messages) == ["Dear Ann", "Dear Bob"]


def test_gatum_group_campaign_uses_send_bulk(engine, sandbox):
    """A synced group sent as a Gatum server-side group: one send-bulk, exclusions honoured."""
    groups = campaigns.groups(engine)
    groups.create("all")
    groups.add("all", [{"phone": f"+7916123450{i}"} for i in range(4)])
    groups.create("optout")
    groups.add("optout", [{"phone": "+79161234500"}])
    gatum = engine.provider("gatum")
    gid = groups.sync_gatum("all", gatum)["gatum_id"]
    excluded = groups.sync_gatum("optout", gatum)["gatum_id"]
    c = campaigns.create(engine, text="Sale", gatum_group=gid, gatum_exclude=excluded,
                         account="gatum", window="09:00-21:00")
    tick(engine, time.time())
    tick(engine, time.time() + 1)
    shown = campaigns.show(engine, c["id"])
    assert shown["status"] == "completed" and shown["gatum"]["gatum_count"] == "3"
    bulk = [r for r in sandbox.state.requests if "send-bulk" in str(r.get("path"))]
    assert len(bulk) == 1
    assert sent_numbers(sandbox) == ["79161234501", "79161234502", "79161234503"]


def test_report_is_one_row_per_recipient(engine, csv_file):
    """The report lists every recipient record with status and reason."""
    c = campaigns.create(engine, text="Hi", csv=csv_file(PEOPLE), account="smsru")
    out = io.StringIO()
    assert campaigns.report(engine, c["id"], out) == 4
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("id,phone,status") and "line 6:" in out.getvalue()
