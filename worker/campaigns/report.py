"""What a campaign looks like from outside: its summary and its per-recipient CSV report.

Progress counts are the ledger's job counters (`smsq:job:<campaign>` st:*),
kept by the same Lua step that moves each message, so they are live and
exact. The report is streamed in pages of records: nothing holds the
whole audience.
"""

from __future__ import annotations

import csv
import itertools
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import IO, Any

from providers.errors import ValidationError
from worker.campaigns.store import CampaignStore
from worker.ledger.lifecycle import Status as S
from worker.ledger.store import P

PAGE = 1000
REPORT_FIELDS = ("to", "st", "pid", "prov", "acc", "cost", "seg", "created", "sent_at",
                 "final_at", "updated", "reason", "raw", "err")
HEADER = ("id", "phone", "status", "account", "gateway_id", "cost", "segments", "released_at",
          "sent_at", "final_at", "updated_at", "reason")
FINISHED = (S.DELIVERED, S.UNDELIVERED, S.EXPIRED, S.FAILED, S.REJECTED)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
E164 = re.compile(r"\+\d{1,15}\Z")


def cell(value: object) -> str:
    """A CSV cell a spreadsheet shows as text: one that starts like a formula (OWASP's
    `= + - @`, tab, CR) gets a leading `'`, so `=HYPERLINK(...)` is never evaluated.
    A bare E.164 number (`+` and digits only) is data and stays as it is."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_START) and not E164.match(text):
        return "'" + text
    return text


def _num(value: str | None, cast: Any = int) -> Any:
    try:
        return cast(value) if value not in (None, "") else None
    except ValueError:
        return None


def describe(store: CampaignStore, cid: str, *, brief: bool = False) -> dict[str, Any]:
    data = store.get(cid)
    if data is None:
        raise ValidationError(f"unknown campaign {cid!r}", field="campaign_id")
    job = store.job(cid)
    counts = {k[3:]: int(v) for k, v in job.items() if k.startswith("st:") and int(v)}
    out: dict[str, Any] = {
        "id": cid, "status": data.get("status"), "reason": data.get("reason") or None,
        "total": int(job.get("total", "0")), "counts": counts,
        "start": _num(data.get("start"), float), "window": data.get("window"),
        "account": data.get("acc"), "route": data.get("route"),
    }
    if brief:
        return out
    out.update({
        "text": data.get("text"), "personal": data.get("personal") == "1",
        "sender": data.get("sender"), "zone": data.get("zone"), "source": data.get("source"),
        "rate": _num(data.get("rate"), float), "failure_threshold":
            _num(data.get("threshold"), float),
        "invalid": int(data.get("invalid", "0")), "duplicates": int(data.get("duplicates",
                                                                              "0")),
        "suppressed": int(data.get("suppressed", "0")),
        "capped": int(data.get("capped", "0")),
        "released": int(data.get("released", "0")),
        "segments": _num(data.get("segments")), "max_segments": _num(data.get("max_segments")),
        "estimated_cost": data.get("est_cost"),
        "duplicate_lines": [int(x) for x in data.get("dup_lines", "").split(",") if x],
        "problems": [p for p in data.get("problems", "").split("\n") if p],
        "waiting_by_zone": store.waiting(cid),
        "started": _num(data.get("started"), float), "created": _num(data.get("created"),
                                                                     float),
        "gatum": {k: data[k] for k in ("gatum_group", "gatum_exclude", "gatum_sent_id",
                                       "gatum_count") if data.get(k)} or None,
    })
    return out


def _stamp(value: str | None) -> str:
    if not value:
        return ""
    try:
        return datetime.fromtimestamp(float(value), UTC).isoformat(timespec="seconds")
    except ValueError:
        return ""


def rows(store: CampaignStore, cid: str) -> Iterator[tuple[str, ...]]:
    """The report's rows (HEADER's columns), page by page; ValidationError if unknown."""
    if store.get(cid) is None:
        raise ValidationError(f"unknown campaign {cid!r}", field="campaign_id")
    last = int(store.r.hget(f"{P}c:{cid}", "next") or 0)
    for start in range(0, last, PAGE):
        ids = [f"{cid}.{n}" for n in range(start, min(last, start + PAGE))]
        with store.r.pipeline(transaction=False) as pipe:
            for msg_id in ids:
                pipe.hmget(f"{P}m:{msg_id}", REPORT_FIELDS)
            records = pipe.execute()
        for msg_id, raw in zip(ids, records, strict=True):
            rec = dict(zip(REPORT_FIELDS, (v.decode() if v else "" for v in raw), strict=True))
            if rec["st"]:  # else past its retention
                yield (msg_id, rec["to"], rec["st"], rec["acc"], rec["pid"], rec["cost"],
                       rec["seg"], _stamp(rec["created"]), _stamp(rec["sent_at"]),
                       _stamp(rec["final_at"]), _stamp(rec["updated"]),
                       rec["reason"] or _error(rec["err"]))


def write_csv(store: CampaignStore, cid: str, out: IO[str]) -> int:
    """The report as CSV, every cell neutralised against formula injection."""
    found = rows(store, cid)
    first = next(found, None)  # raises for an unknown campaign before the header is written
    writer = csv.writer(out)
    writer.writerow(HEADER)
    count = 0
    for row in itertools.chain([first] if first else [], found):
        writer.writerow([cell(v) for v in row])
        count += 1
    return count


def write_json(store: CampaignStore, cid: str, out: IO[str]) -> int:
    """The report as one JSON array of objects keyed by HEADER."""
    count = 0
    for row in rows(store, cid):
        out.write(("[" if not count else ",\n") + json.dumps(dict(zip(HEADER, row,
                                                                         strict=True)),
                                                            ensure_ascii=False))
        count += 1
    out.write("[]\n" if not count else "]\n")
    return count


def _error(err: str) -> str:
    if not err:
        return ""
    try:
        return str(json.loads(err).get("message", ""))
    except (ValueError, AttributeError):
        return ""
