"""What an operator or a probe asks of a running deployment, read from Redis.

`checks()` backs `smsq health` (exit code for probes); the snapshot readers
back `smsq stats` and the metrics collector, so a dashboard, a probe and the
one-screen view agree. Everything here is read-only and bounded: a few O(1)
commands per account, and a capped scan of the job index for the oldest
unfinished message. Redis is asked with a short timeout so a probe never hangs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import redis

from providers import REGISTRY
from providers.errors import SmsqError
from worker.circuit import Circuit
from worker.engine import BULK, DEFAULT_LANE, LANES
from worker.engine import queues as send_queues
from worker.ledger.lifecycle import OPEN
from worker.ledger.store import QUEUED, SENDING, UNKNOWN, bulk_key, msg_key, pending_key
from worker.limiter import Throttled
from worker.settings import Settings

BEAT_KEY = "smsq:beat:last"
STATS_PREFIX = "smsq:stats:"
OPEN_STATES = OPEN


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    value: Any = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def client(cfg: Settings | str, timeout: float = 2.0) -> redis.Redis:
    """A short-timeout client for probes, with the deployment's password and TLS."""
    from worker.transport.connection import target

    return target(cfg).client(timeout=timeout, retry_on_timeout=False)


def queues() -> list[str]:
    from worker.callbacks.events import QUEUE as CALLBACKS

    return ["smsq", *send_queues(list(REGISTRY)), CALLBACKS]


def queue_depths(r: redis.Redis) -> dict[str, int]:
    """Celery's Redis transport keeps each queue as a list named after it."""
    names = queues()
    with r.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.llen(name)
        return dict(zip(names, (int(n) for n in pipe.execute()), strict=True))


def pending_checks(r: redis.Redis, cfg: Settings) -> dict[str, int]:
    """Sent messages awaiting their final status, per account."""
    names = list(cfg.accounts)
    with r.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.zcard(pending_key(name))
        return dict(zip(names, (int(n) for n in pipe.execute()), strict=True))


def index_sizes(r: redis.Redis) -> dict[str, int]:
    with r.pipeline(transaction=False) as pipe:
        for key in (QUEUED, SENDING, UNKNOWN):
            pipe.zcard(key)
        q, s, u = pipe.execute()
    return {"queued": int(q), "sending": int(s), "unknown": int(u)}


def circuit_states(r: redis.Redis, cfg: Settings) -> dict[str, str]:
    circuit = Circuit(r, threshold=cfg.circuit_threshold, cooldown=cfg.circuit_cooldown)
    return {name: circuit.state(name) for name in cfg.accounts}


def limiter_backlog(r: redis.Redis, cfg: Settings) -> dict[str, float]:
    """Seconds of rate-limit slots already booked ahead, per account (0 = idle)."""
    names = list(cfg.accounts)
    with r.pipeline(transaction=False) as pipe:
        pipe.time()
        for name in names:
            pipe.get(f"smsq:rl:{name}")
        (sec, usec), *tats = pipe.execute()
    now_us = int(sec) * 1_000_000 + int(usec)
    return {name: max(0.0, (int(tat) - now_us) / 1e6) if tat else 0.0
            for name, tat in zip(names, tats, strict=True)}


def beat_age(r: redis.Redis, now: float | None = None) -> float | None:
    """Seconds since beat's release sweep last ran; None if it never did."""
    raw = r.get(BEAT_KEY)
    if raw is None:
        return None
    return max(0.0, (time.time() if now is None else now) - float(raw))


def oldest_open(r: redis.Redis, *, max_jobs: int = 2000, chunk: int = 200,
                now: float | None = None) -> dict[str, float]:
    """Age in seconds of the oldest job still holding messages in each open state.

    Jobs are scanned oldest first from the job index (capped): a message's
    age is its job's age, so `sent` here is how long the slowest delivery
    report has been outstanding.
    """
    now = time.time() if now is None else now
    found: dict[str, float] = {}
    for start in range(0, max_jobs, chunk):
        jobs: list[tuple[bytes, float]] = r.zrange("smsq:jobs", start, start + chunk - 1,
                                                   withscores=True)  # type: ignore[assignment]
        if not jobs:
            break
        with r.pipeline(transaction=False) as pipe:
            for job_id, _ in jobs:
                pipe.hmget(b"smsq:job:" + job_id, [f"st:{s}" for s in OPEN_STATES])
            rows = pipe.execute()
        for (_, created), counts in zip(jobs, rows, strict=True):
            for state, n in zip(OPEN_STATES, counts, strict=True):
                if n is not None and int(n) > 0 and state not in found:
                    found[state] = max(0.0, now - created)
        if len(found) == len(OPEN_STATES):
            break
    return found


def lane_ages(r: redis.Redis, accounts: Sequence[str], *, sample: int = 50,
              now: float | None = None) -> dict[str, float]:
    """Age in seconds of the oldest queued message of each lane (0: none waiting).

    The first `sample` of each due index are read: the earliest due, so the
    longest waiting (bounded work for a probe, whatever the backlog)."""
    now = time.time() if now is None else now
    with r.pipeline(transaction=False) as pipe:
        for key in [QUEUED, *[bulk_key(a) for a in accounts]]:
            pipe.zrange(key, 0, sample - 1)
        ids = [i for batch in pipe.execute() for i in batch]
    with r.pipeline(transaction=False) as pipe:
        for msg_id in ids:
            pipe.hmget(msg_key(msg_id.decode()), ["lane", "created", "st"])
        rows = pipe.execute()
    ages = dict.fromkeys(LANES, 0.0)
    for lane, created, st in rows:
        if st == b"queued" and created:
            name = (lane or DEFAULT_LANE.encode()).decode()
            ages[name] = max(ages.get(name, 0.0), now - float(created))
    return ages


def recent(r: redis.Redis, minutes: int = 60, now: float | None = None
           ) -> dict[str, dict[str, int]]:
    """Rolling per-minute counters (written by workers and the receiver), summed over `minutes`.

    Returns {label: {kind: n}}: labels `g:<gateway>` carry message outcomes,
    `a:<account>` carry requests and errors.
    """
    minute = int((time.time() if now is None else now) // 60)
    with r.pipeline(transaction=False) as pipe:
        for m in range(minute - minutes + 1, minute + 1):
            pipe.hgetall(f"{STATS_PREFIX}{m}")
        rows = pipe.execute()
    out: dict[str, dict[str, int]] = {}
    for row in rows:
        for field, value in row.items():
            label, _, kind = field.decode().rpartition("|")
            bucket = out.setdefault(label, {})
            bucket[kind] = bucket.get(kind, 0) + int(value)
    return out


# -- probes ------------------------------------------------------------------------


def redis_name(cfg: Settings) -> str:
    """Which Redis a check reads (scheme, host:port; never the password), and whether it is
    only the default because SMSQ_REDIS_URL is unset."""
    from worker.settings import DEFAULT_REDIS_URL
    from worker.transport.connection import target

    default = " (the default: SMSQ_REDIS_URL is not set)" if cfg.redis_url == \
        DEFAULT_REDIS_URL else ""
    found = target(cfg).sentinel
    if found is not None:
        try:
            host, port = found.manager(timeout=2.0).discover_master(  # type: ignore[no-untyped-call]
                found.service)
            default = f", master {host}:{port}"
        except redis.RedisError as exc:
            default = f", master not found: {type(exc).__name__}"
    return f"{target(cfg)}{default}"


def check_redis(r: redis.Redis, name: str = "") -> Check:
    at = f" at {name}" if name else ""
    try:
        r.ping()
    except redis.RedisError as exc:
        return Check("redis", False, f"redis unreachable{at}: {type(exc).__name__}: {exc}")
    return Check("redis", True, f"ping ok{at}")


def check_beat(r: redis.Redis, max_age: float) -> Check:
    age = beat_age(r)
    if age is None:
        return Check("beat", False, "no heartbeat: beat (or the worker on the smsq queue) "
                     "has never run the release sweep")
    ok = age <= max_age
    return Check("beat", ok, f"release sweep ran {age:.1f}s ago (limit {max_age:.0f}s)",
                 round(age, 3))


def check_queues(r: redis.Redis, max_depth: int) -> Check:
    depths = queue_depths(r)
    deep = {q: n for q, n in depths.items() if n > max_depth}
    detail = (f"over {max_depth}: " + ", ".join(f"{q}={n}" for q, n in deep.items())
              if deep else f"all under {max_depth} (total {sum(depths.values())})")
    return Check("queues", not deep, detail, depths)


LANE_ALERT_AGE = 60.0  # seconds an otp/transactional message may wait (as the alert)


def check_lanes(r: redis.Redis, cfg: Settings) -> Check:
    ages = lane_ages(r, list(cfg.accounts))
    worst = max(age for lane, age in ages.items() if lane != BULK)
    return Check("lanes", worst <= LANE_ALERT_AGE,
                 f"oldest waiting otp/transactional message {worst:.1f}s "
                 f"(limit {LANE_ALERT_AGE:.0f}s); bulk {ages[BULK]:.1f}s",
                 {k: round(v, 3) for k, v in ages.items()})


def check_gateway(name: str, balance: Callable[[], Any]) -> Check:
    try:
        bal = balance()
    except Throttled:
        return Check(f"gateway:{name}", True, "not asked: the account's rate limit is busy "
                     "(sending is using every slot)")
    except SmsqError as exc:
        return Check(f"gateway:{name}", False, f"{type(exc).__name__}: {exc}")
    return Check(f"gateway:{name}", True, f"balance {bal.amount} {bal.currency or ''}".strip(),
                 str(bal.amount))


def checks(cfg: Settings, r: redis.Redis, *, only: set[str] | None = None,
           balances: Mapping[str, Callable[[], Any]] | None = None,
           max_beat_age: float = 60.0, max_queue: int = 50_000) -> list[Check]:
    """Run the selected checks (all when `only` is None); Redis first, the rest need it."""
    want = only or {"redis", "beat", "queues", "lanes", "gateways"}
    out = [check_redis(r, redis_name(cfg))]
    if not out[0].ok:
        return out  # nothing else can be read; the probe fails on Redis whatever was asked
    try:
        if "beat" in want:
            out.append(check_beat(r, max_beat_age))
        if "queues" in want:
            out.append(check_queues(r, max_queue))
        if "lanes" in want:
            out.append(check_lanes(r, cfg))
    except redis.RedisError as exc:
        return [Check("redis", False, f"redis failed mid-check: {type(exc).__name__}: {exc}")]
    if "gateways" in want:
        out += [check_gateway(name, fn) for name, fn in (balances or {}).items()]
        if not balances:
            out.append(Check("gateways", False, "no gateway account configured "
                             "(set SMSQ_<PROVIDER>_<CREDENTIAL>, see deploy/env.example)"))
    return out if "redis" in want else out[1:]
