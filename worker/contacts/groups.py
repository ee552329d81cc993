"""Contact groups: named sets of numbers with the fields Gatum's group API holds.

  smsq:g:<name>    hash, E.164 number -> JSON {name, surname, birth_date, notes}
  smsq:gm:<name>   hash, the group's own fields (created, gatum id and account once synced)
  smsq:groups      sorted set of group names by creation time

A group is a campaign audience (its fields are template columns), and can be
synced to a Gatum group so that Gatum's send-bulk can address it server-side.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import redis

from providers import phones
from providers.base import Provider
from providers.capabilities import ServerGroups
from providers.errors import ValidationError
from worker.contacts.audience import Row
from worker.ledger.store import P

GROUPS = P + "groups"
FIELDS = ("name", "surname", "birth_date", "notes")
NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def gkey(name: str) -> str:
    return f"{P}g:{name}"


def _check(name: object) -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise ValidationError("group name must be 1-64 of A-Z a-z 0-9 _ . -", field="group")
    return name


def _contact(values: Mapping[str, Any]) -> str:
    unknown = sorted(set(values) - set(FIELDS) - {"phone", "number"})
    if unknown:
        raise ValidationError(f"unknown contact field(s) {', '.join(unknown)} "
                              f"(known: {', '.join(FIELDS)})", field=unknown[0])
    return json.dumps({k: str(values[k]) for k in FIELDS if values.get(k)}, ensure_ascii=False)


class Groups:
    def __init__(self, client: redis.Redis, region: str = phones.DEFAULT_REGION) -> None:
        self.r: Any = client  # redis-py's stubs type replies as bytes | str | Awaitable
        self.region = region

    def create(self, name: str) -> None:
        _check(name)
        if not self.r.zadd(GROUPS, {name: time.time()}, nx=True):
            raise ValidationError(f"group {name!r} already exists", field="group")
        self.r.hset(f"{P}gm:{name}", "created", time.time())

    def require(self, name: str) -> str:
        if self.r.zscore(GROUPS, _check(name)) is None:
            raise ValidationError(f"unknown group {name!r}", field="group")
        return name

    def names(self) -> list[dict[str, Any]]:
        names = [n.decode() for n in self.r.zrange(GROUPS, 0, -1)]
        with self.r.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.hlen(gkey(name))
                pipe.hget(f"{P}gm:{name}", "gatum_id")
            raw = pipe.execute()
        return [{"name": n, "count": int(raw[2 * i]),
                 "gatum_id": raw[2 * i + 1].decode() if raw[2 * i + 1] else None}
                for i, n in enumerate(names)]

    def show(self, name: str, limit: int = 20) -> dict[str, Any]:
        self.require(name)
        meta = {k.decode(): v.decode() for k, v in self.r.hgetall(f"{P}gm:{name}").items()}
        members = []
        for phone, data in self.r.hscan_iter(gkey(name), count=limit):
            members.append({"phone": phone.decode(), **json.loads(data)})
            if len(members) >= limit:
                break
        return {"name": name, "count": int(self.r.hlen(gkey(name))), **meta,
                "members": members}

    def delete(self, name: str) -> None:
        self.require(name)
        self.r.unlink(gkey(name), f"{P}gm:{name}")
        self.r.zrem(GROUPS, name)

    def add(self, name: str, contacts: Iterable[Mapping[str, Any]]) -> int:
        """Add or update contacts ({phone, name, surname, birth_date, notes}); returns how many."""
        self.require(name)
        batch = {}
        for c in contacts:
            batch[phones.normalize(str(c.get("phone") or c.get("number") or ""),
                                   self.region)] = _contact(c)
        if batch:
            self.r.hset(gkey(name), mapping=batch)
        return len(batch)

    def remove(self, name: str, numbers: Iterable[str]) -> int:
        self.require(name)
        normal = [phones.normalize(n, self.region) for n in numbers]
        return int(self.r.hdel(gkey(name), *normal)) if normal else 0

    def search(self, name: str, query: str, limit: int = 100) -> list[dict[str, Any]]:
        """Contacts whose number contains the query's digits or whose fields contain it."""
        self.require(name)
        needle, digits = query.lower(), "".join(ch for ch in query if ch.isdigit())
        found = []
        for phone, data in self.r.hscan_iter(gkey(name), count=1000):
            text = data.decode()
            if (digits and digits in phone.decode()) or (needle and needle in text.lower()):
                found.append({"phone": phone.decode(), **json.loads(text)})
                if len(found) >= limit:
                    break
        return found

    def import_rows(self, name: str, rows: Iterable[Row], chunk: int = 2000
                    ) -> tuple[int, list[str]]:
        """Contacts from audience rows (a CSV); returns (added, problems with line numbers)."""
        self.require(name)
        added, problems, batch = 0, [], {}
        for row in rows:
            try:
                if row.problem:
                    raise ValidationError(row.problem)
                values = {k: v for k, v in (row.values or {}).items() if k in FIELDS}
                batch[phones.normalize(row.phone, self.region)] = _contact(values)
            except ValidationError as exc:
                problems.append(f"line {row.line}: {exc.message}")
            if len(batch) >= chunk:
                self.r.hset(gkey(name), mapping=batch)
                added, batch = added + len(batch), {}
        if batch:
            self.r.hset(gkey(name), mapping=batch)
        return added + len(batch), problems

    def members(self, name: str) -> Iterator[Row]:
        """The group as a campaign audience (columns: phone + the contact fields)."""
        self.require(name)
        for i, (phone, data) in enumerate(self.r.hscan_iter(gkey(name), count=2000), start=1):
            values = {k: "" for k in FIELDS} | json.loads(data)
            yield Row(i, phone.decode(), {"phone": phone.decode(), **values})

    def sync_gatum(self, name: str, provider: Provider) -> dict[str, Any]:
        """Create (once) the server-side group and upload every contact; its id and count."""
        self.require(name)
        if not isinstance(provider, ServerGroups):
            raise ValidationError(f"account {provider.account.name!r} keeps no groups at "
                                  "the gateway", field="account")
        meta = f"{P}gm:{name}"
        gid = self.r.hget(meta, "gatum_id")
        if gid is None:
            gid = str(provider.new_group(f"smsq-{name}")).encode()
            self.r.hset(meta, mapping={"gatum_id": gid, "gatum_account": provider.account.name})
        sent, batch = 0, []
        for phone, data in self.r.hscan_iter(gkey(name), count=2000):
            batch.append((phone.decode(), json.loads(data)))
            if len(batch) >= provider.group_upload_chunk:
                provider.add_to_group(int(gid), batch)
                sent, batch = sent + len(batch), []
        if batch:
            provider.add_to_group(int(gid), batch)
        return {"gatum_id": int(gid), "uploaded": sent + len(batch)}
