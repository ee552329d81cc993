"""`smsq suppress add|remove|list|import` and `smsq group create|list|show|delete|add|remove|
search|import|sync`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from providers.errors import ValidationError
from worker.api import engine
from worker.cli.output import Add, Handler, bar, emit, subcommands


def register(add: Add) -> None:
    sub = subcommands(add, "suppress", "the local opt-out list campaigns never send to")
    p = sub("add", cmd_suppress_add, "add numbers")
    p.add_argument("numbers", nargs="+")
    p.add_argument("--note", default="", help="why (kept beside the number)")
    sub("remove", cmd_suppress_remove, "remove numbers").add_argument("numbers", nargs="+")
    sub("list", cmd_suppress_list, "every suppressed number with its note")
    sub("import", cmd_suppress_import, "add every number in a file (one per line)"
        ).add_argument("file")
    sub = subcommands(add, "group", "contact groups: numbers with name, surname, birth date, "
                      "notes")
    sub("create", _group("create"), "a new empty group").add_argument("name")
    sub("list", cmd_group_list, "every group with its size")
    sub("show", _group("show"), "a group and its first members").add_argument("name")
    sub("delete", _group("delete"), "delete a group").add_argument("name")
    p = sub("add", cmd_group_add, "add or update one contact")
    p.add_argument("name")
    p.add_argument("phone")
    for field in ("--first-name", "--surname", "--birth-date", "--notes"):
        p.add_argument(field)
    p = sub("remove", cmd_group_remove, "remove numbers")
    p.add_argument("name")
    p.add_argument("numbers", nargs="+")
    p = sub("search", cmd_group_search, "contacts matching a number or a text")
    p.add_argument("name")
    p.add_argument("query")
    p = sub("import", cmd_group_import, "contacts from a CSV (phone, name, surname, "
            "birth_date, notes)")
    p.add_argument("name")
    p.add_argument("file")
    p.add_argument("--encoding")
    p.add_argument("--phone-column")
    p = sub("sync", cmd_group_sync, "create/update the matching Gatum group")
    p.add_argument("name")
    p.add_argument("--account", default="gatum")


def _supp() -> Any:
    from worker.campaigns import service as campaigns

    return campaigns.suppression(engine())


def _groups() -> Any:
    from worker.campaigns import service as campaigns

    return campaigns.groups(engine())


def cmd_suppress_add(args: argparse.Namespace) -> int:
    n = _supp().add(args.numbers, args.note)
    emit(args, {"added": n}, f"{n} number(s) added to the opt-out list")
    return 0


def cmd_suppress_remove(args: argparse.Namespace) -> int:
    n = _supp().remove(args.numbers)
    emit(args, {"removed": n}, f"{n} number(s) removed from the opt-out list")
    return 0


def cmd_suppress_list(args: argparse.Namespace) -> int:
    rows = sorted(_supp().entries())
    emit(args, [{"phone": p, "note": n} for p, n in rows],
         "\n".join(f"{p}  {n}" for p, n in rows) or "the opt-out list is empty")
    return 0


def cmd_suppress_import(args: argparse.Namespace) -> int:
    try:
        handle = open(args.file, encoding="utf-8-sig")
    except OSError as exc:
        raise ValidationError(f"cannot read {args.file}: {exc.strerror}") from None
    with handle:
        added, problems = _supp().import_numbers(line for line in handle if line.strip())
    emit(args, {"added": added, "problems": problems},
         f"{added} number(s) added" + "".join(f"\n  {p}" for p in problems[:20]))
    return 0


def _group(action: str) -> Handler:
    def run(args: argparse.Namespace) -> int:
        result = getattr(_groups(), action)(args.name)
        emit(args, result or {"group": args.name, action: True},
             json.dumps(result, ensure_ascii=False, indent=2) if result
             else f"group {args.name}: {action}d")
        return 0

    return run


def cmd_group_list(args: argparse.Namespace) -> int:
    rows = _groups().names()
    emit(args, rows, "\n".join(f"{r['name']:<24} {r['count']:>8}"
                               + (f"  gatum #{r['gatum_id']}" if r["gatum_id"] else "")
                               for r in rows) or "no groups")
    return 0


def cmd_group_add(args: argparse.Namespace) -> int:
    contact = {"phone": args.phone, "name": args.first_name, "surname": args.surname,
               "birth_date": args.birth_date, "notes": args.notes}
    n = _groups().add(args.name, [contact])
    emit(args, {"added": n}, f"{n} contact(s) added to {args.name}")
    return 0


def cmd_group_remove(args: argparse.Namespace) -> int:
    n = _groups().remove(args.name, args.numbers)
    emit(args, {"removed": n}, f"{n} contact(s) removed from {args.name}")
    return 0


def cmd_group_search(args: argparse.Namespace) -> int:
    rows = _groups().search(args.name, args.query)
    emit(args, rows, "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) or "no match")
    return 0


def cmd_group_import(args: argparse.Namespace) -> int:
    from worker.contacts.audience import open_csv

    aud = open_csv(args.file, encoding=args.encoding, phone_column=args.phone_column)
    show = sys.stderr.isatty() and not args.json

    def rows() -> Any:
        for i, row in enumerate(aud.rows(with_values=True)):
            if show and i % 2000 == 0:
                bar("importing", aud.progress.done, aud.progress.total, unit="bytes")
            yield row

    added, problems = _groups().import_rows(args.name, rows())
    if show:
        print(file=sys.stderr)
    emit(args, {"added": added, "problems": problems},
         f"{added} contact(s) imported into {args.name}"
         + "".join(f"\n  {p}" for p in problems[:20]))
    return 0


def cmd_group_sync(args: argparse.Namespace) -> int:
    eng = engine()
    result = _groups().sync_gatum(args.name, eng.provider(args.account))
    emit(args, result, f"group {args.name} -> Gatum group #{result['gatum_id']} "
         f"({result['uploaded']} number(s) uploaded)")
    return 0
