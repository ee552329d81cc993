"""Campaigns: one template to a large audience, at a chosen time, inside a send window.

    from worker.campaigns import service as campaigns
    c = campaigns.create(text="Hello {name}", csv="people.csv", account="smsru",
                         start="2025-06-01T10:00+03:00", window="09:00-21:00")
    campaigns.show(c["id"]); campaigns.pause(c["id"]); campaigns.resume(c["id"])
    campaigns.report(c["id"], open("report.csv", "w"))

Lifecycle: importing -> draft | scheduled -> running <-> paused -> completed | cancelled.
Beat's campaign tick (worker.campaigns.tick) starts due campaigns and releases
their recipients into the send pipeline at the campaign's rate, inside the
window. Pausing stops the release within a tick; messages already handed to
the pipeline (a few seconds' worth) still go.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from providers import REGISTRY
from providers.capabilities import BulkSend
from providers.errors import ValidationError
from worker.campaigns import report as campaign_report
from worker.campaigns.importer import ImportJob, ImportResult
from worker.campaigns.phones import PhoneCache
from worker.campaigns.schedule import check_zone, parse_start, parse_window
from worker.campaigns.store import CampaignStore, new_id
from worker.campaigns.templates import Template, parse, segment_count
from worker.contacts.audience import CsvAudience, ListAudience, list_audience, open_csv
from worker.contacts.groups import FIELDS, Groups
from worker.contacts.suppression import Suppression
from worker.engine import Engine
from worker.producer.submit import JOB_ID, SENDER, _route

ProgressFn = Callable[[int, int], None]
MAX_RATE = 10_000


def _engine(engine: Engine | None) -> Engine:
    if engine is not None:
        return engine
    from worker import api

    return api.engine()


def store_of(engine: Engine) -> CampaignStore:
    return CampaignStore(engine.r, retention_days=engine.cfg.retention_days)


def _options(eng: Engine, kw: dict[str, Any]) -> dict[str, Any]:
    """Everything but the audience, validated; raises ValidationError naming the field."""
    chain = _route(eng, kw.get("account"), kw.get("route"))
    sender = kw.get("sender")
    if sender is not None and (not isinstance(sender, str) or not SENDER.match(sender)):
        raise ValidationError("sender must be up to 11 letters/digits or a 3-15 digit number",
                              field="sender")
    rate = kw.get("rate")
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int | float)
                             or not 0 < rate <= MAX_RATE):  # NaN and inf fail this too
        raise ValidationError(f"rate must be a number of messages per second in (0, {MAX_RATE}]"
                              f", got {str(rate)[:40]}", field="rate")
    threshold = kw.get("failure_threshold")
    if threshold is None:
        threshold = eng.cfg.campaign_failure_threshold
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) \
            or not 0 < threshold <= 1:
        raise ValidationError("failure_threshold must be a share in (0, 1]",
                              field="failure_threshold")
    window = parse_window(kw.get("window"))
    zone = check_zone(kw.get("zone") or eng.cfg.campaign_zone)
    limits = [REGISTRY[eng.cfg.account(a).provider].max_segments for a in chain]
    limits.append(eng.cfg.max_segments or None)  # SMSQ_MAX_SEGMENTS, 0 = the gateway's only
    return {"chain": chain, "sender": sender, "rate": rate, "threshold": float(threshold),
            "window": window, "zone": zone,
            "start": parse_start(kw.get("start"), time.time()),
            "max_segments": min((m for m in limits if m is not None), default=None)}


def _audience(eng: Engine, kw: dict[str, Any], template: Template
              ) -> tuple[str, CsvAudience | ListAudience | None]:
    sources = [k for k in ("csv", "recipients", "group", "gatum_group")
               if kw.get(k) is not None]
    if len(sources) != 1:
        raise ValidationError("give exactly one audience: csv, recipients, group or "
                              f"gatum_group (got {', '.join(sources) or 'none'})",
                              field="audience")
    source = sources[0]
    if source == "csv":
        aud: CsvAudience | ListAudience = open_csv(
            kw["csv"], encoding=kw.get("encoding"), phone_column=kw.get("phone_column"))
        template.check_columns(aud.columns)
        return source, aud
    if source == "recipients":
        aud = list_audience(kw["recipients"], kw.get("columns") or ())
        if aud.columns:
            template.check_columns(aud.columns)
        return source, aud
    if source == "group":
        groups = Groups(eng.r, eng.cfg.default_region)
        groups.require(kw["group"])
        template.check_columns(("phone", *FIELDS))
        return source, ListAudience((), ("phone", *FIELDS))
    if template.personal:
        raise ValidationError("a Gatum group campaign sends one text: the template cannot "
                              "have fields", field="text")
    return source, None


def create(engine: Engine | None = None, *, text: Any, progress: ProgressFn | None = None,
           draft: bool = False, campaign_id: str | None = None, **kw: Any) -> dict[str, Any]:
    """Validate, import the audience, and schedule (or keep as a draft). Returns `show()`."""
    eng = _engine(engine)
    template = parse(text)
    opts = _options(eng, kw)
    if not template.personal and opts["max_segments"] is not None \
            and segment_count(text) > opts["max_segments"]:
        raise ValidationError(f"text takes {segment_count(text)} SMS segments; the gateway "
                              f"or SMSQ_MAX_SEGMENTS allows {opts['max_segments']}",
                              field="text")
    if kw.get("gatum_group") is not None and not issubclass(
            REGISTRY[eng.cfg.account(opts["chain"][0]).provider], BulkSend):
        raise ValidationError("a Gatum group campaign needs a Gatum account", field="account")
    source, aud = _audience(eng, kw, template)
    cid = campaign_id or new_id()
    if not isinstance(cid, str) or not JOB_ID.match(cid):
        raise ValidationError("campaign_id must be 1-40 of A-Z a-z 0-9 _ -", field="campaign_id")
    store = store_of(eng)
    if not store.create(cid, _fields(opts, template, source, kw),
                        {"text": None if template.personal else template.text,
                         "sender": opts["sender"], "route": ",".join(opts["chain"]),
                         "source": "campaign"}):
        raise ValidationError(f"campaign {cid!r} already exists", field="campaign_id")
    try:
        result = _import(eng, store, cid, opts, template, source, aud, kw, progress)
    except BaseException:
        store.drop(cid)
        raise
    _finish(eng, store, cid, opts, template, result, draft)
    return show(eng, cid)


def _fields(opts: dict[str, Any], template: Template, source: str, kw: dict[str, Any]
            ) -> dict[str, Any]:
    return {"text": template.text, "personal": int(template.personal),
            "acc": opts["chain"][0], "route": ",".join(opts["chain"]),
            "sender": opts["sender"], "start": opts["start"], "rate": opts["rate"],
            "window": str(opts["window"]) if opts["window"] else None, "zone": opts["zone"],
            "threshold": opts["threshold"], "source": source,
            "csv": str(kw["csv"]) if source == "csv" else None, "group": kw.get("group"),
            "gatum_group": _ints(kw.get("gatum_group")),
            "gatum_exclude": _ints(kw.get("gatum_exclude"))}


def _ints(value: Any) -> str | None:
    if value is None:
        return None
    items = value if isinstance(value, list | tuple) else [value]
    try:
        return ",".join(str(int(v)) for v in items)
    except (TypeError, ValueError):
        raise ValidationError("Gatum group ids must be integers", field="gatum_group") from None


def _import(eng: Engine, store: CampaignStore, cid: str, opts: dict[str, Any],
            template: Template, source: str, aud: CsvAudience | ListAudience | None,
            kw: dict[str, Any], progress: ProgressFn | None) -> ImportResult:
    if aud is None:
        return ImportResult()
    job = ImportJob(store, cid, opts["chain"][0],
                    ",".join(opts["chain"]) if len(opts["chain"]) > 1 else "", template,
                    PhoneCache(eng.cfg.default_region, opts["zone"],
                               zones=opts["window"] is not None),
                    opts["max_segments"], label=aud.label,
                    windowed=opts["window"] is not None)
    if progress is not None:
        job.on_chunk = lambda: progress(aud.progress.done, aud.progress.total)
    rows = (Groups(eng.r, eng.cfg.default_region).members(kw["group"]) if source == "group"
            else aud.rows(with_values=template.personal))
    result = job.run(rows)
    store.finish_import(cid)
    if result.accepted + result.invalid == 0:
        raise ValidationError("the audience has no recipients (only a header, blank lines "
                              "or duplicates)", field="audience")
    return result


def _finish(eng: Engine, store: CampaignStore, cid: str, opts: dict[str, Any],
            template: Template, result: ImportResult, draft: bool) -> None:
    segs = result.segments if template.personal else segment_count(template.text) * \
        result.accepted
    price = eng.cfg.prices.get(opts["chain"][0])
    store.update(cid, segments=segs, max_segments=result.max_segments or
                 (segment_count(template.text) if not template.personal else 0),
                 est_cost=round(segs * price, 2) if price is not None else "unknown",
                 dup_lines=",".join(map(str, result.duplicate_lines)),
                 problems="\n".join(result.problems))
    if draft:
        store.set_status(cid, ["importing"], "draft")
        return
    store.set_status(cid, ["importing"], "scheduled")
    store.schedule(cid, opts["start"])


def schedule(engine: Engine | None, cid: str, start: Any = None) -> dict[str, Any]:
    """Schedule a draft (or move a scheduled campaign's start)."""
    eng = _engine(engine)
    store = store_of(eng)
    when = parse_start(start, time.time())
    if store.set_status(cid, ["draft", "scheduled"], "scheduled") is None:
        raise ValidationError(f"campaign {cid!r} is {_status(store, cid)}; only a draft or "
                              "scheduled campaign can be scheduled", field="campaign_id")
    store.update(cid, start=when)
    store.schedule(cid, when)
    return show(eng, cid)


def pause(engine: Engine | None, cid: str, reason: str = "paused by operator"
          ) -> dict[str, Any]:
    eng = _engine(engine)
    store = store_of(eng)
    if store.set_status(cid, ["running", "scheduled"], "paused", reason) is None:
        raise ValidationError(f"campaign {cid!r} is {_status(store, cid)}; only a running or "
                              "scheduled campaign can be paused", field="campaign_id")
    store.r.zrem("smsq:campaigns:due", cid)
    return show(eng, cid)


def resume(engine: Engine | None, cid: str) -> dict[str, Any]:
    """Continue releasing where the campaign stopped; nothing released is released again."""
    eng = _engine(engine)
    store = store_of(eng)
    data = store.get(cid) or {}
    if not data.get("started"):  # paused before its start: back to waiting for it
        if store.set_status(cid, ["paused"], "scheduled") is not None:
            store.schedule(cid, float(data.get("start") or time.time()))
            return show(eng, cid)
    if store.set_status(cid, ["paused"], "running") is None:
        raise ValidationError(f"campaign {cid!r} is {_status(store, cid)}; only a paused "
                              "campaign can be resumed", field="campaign_id")
    store.update(cid, last=time.time(), credit=0)
    return show(eng, cid)


def cancel(engine: Engine | None, cid: str) -> dict[str, Any]:
    """Stop for good: every recipient not yet handed to a gateway ends `cancelled`."""
    from worker.campaigns.tick import cancel_pending

    eng = _engine(engine)
    store = store_of(eng)
    if store.set_status(cid, ["draft", "scheduled", "running", "paused"], "cancelled",
                        "cancelled by operator") is None:
        raise ValidationError(f"campaign {cid!r} is {_status(store, cid)}; it cannot be "
                              "cancelled", field="campaign_id")
    cancel_pending(eng, store, cid)
    return show(eng, cid)


def _status(store: CampaignStore, cid: str) -> str:
    data = store.get(cid)
    return data["status"] if data else "unknown"


def show(engine: Engine | None, cid: str) -> dict[str, Any]:
    eng = _engine(engine)
    return campaign_report.describe(store_of(eng), cid)


def list_campaigns(engine: Engine | None = None, limit: int = 50) -> list[dict[str, Any]]:
    eng = _engine(engine)
    store = store_of(eng)
    return [campaign_report.describe(store, cid, brief=True) for cid in store.ids(0, limit)]


def report(engine: Engine | None, cid: str, out: Any, *, as_json: bool = False) -> int:
    """Write the report (one row per recipient; CSV, or a JSON array) to the text stream
    `out`; returns rows."""
    eng = _engine(engine)
    write = campaign_report.write_json if as_json else campaign_report.write_csv
    return write(store_of(eng), cid, out)


def suppression(engine: Engine | None = None) -> Suppression:
    eng = _engine(engine)
    return Suppression(eng.r, eng.cfg.default_region)


def groups(engine: Engine | None = None) -> Groups:
    eng = _engine(engine)
    return Groups(eng.r, eng.cfg.default_region)


__all__ = ["cancel", "create", "groups", "list_campaigns", "pause", "report", "resume",
           "schedule", "show", "suppression"]
