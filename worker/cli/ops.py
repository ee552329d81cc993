"""Operator commands: `smsq health` (probes), `smsq stats` (one screen), `smsq metrics-serve`.

Registered into `smsq` by worker.cli.main (EXTRA_COMMANDS). Each reads Redis with
a short timeout, so a probe against a dead Redis fails fast with one line
naming the problem instead of hanging.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from providers import REGISTRY
from worker.cli.output import Add, emit
from worker.ops import health

CHECKS = ("redis", "beat", "queues", "lanes", "gateways")


def register(add: Add) -> None:
    p = add("health", cmd_health, "check Redis, gateway credentials, beat's heartbeat and "
            "queue depths; exit 0 when healthy, 1 when not (for probes)")
    p.add_argument("--check", action="append", choices=CHECKS,
                   help="run only this check (repeatable; Redis is always reached first)")
    p.add_argument("--max-beat-age", type=float, default=60.0,
                   help="seconds since beat's last release sweep before beat counts as down")
    p.add_argument("--max-queue", type=int, default=50_000,
                   help="tasks waiting in one Celery queue before it counts as backed up")
    p.add_argument("--timeout", type=float, default=2.0, help="Redis timeout in seconds")
    p = add("stats", cmd_stats, "per gateway: sent / delivered / failed / pending in the last "
            "hour, limiter utilisation, oldest pending message")
    p.add_argument("--minutes", type=int, default=60, help="window for the counters")
    p = add("metrics-serve", cmd_metrics_serve, "serve only the deployment-wide Redis gauges "
            "on SMSQ_METRICS_PORT (one exporter instead of one per worker)")
    p.add_argument("--port", type=int, default=0, help="override SMSQ_METRICS_PORT")


def cmd_health(args: argparse.Namespace) -> int:
    from worker.engine import Engine
    from worker.settings import get

    cfg = get()
    r = health.client(cfg, timeout=args.timeout)
    only = set(args.check) if args.check else None
    balances: dict[str, Callable[[], Any]] = {}
    if only is None or "gateways" in only:
        engine = Engine(cfg, client=r)
        balances = {name: engine.provider(name).balance for name in cfg.accounts}
    results = health.checks(cfg, r, only=only, balances=balances,
                            max_beat_age=args.max_beat_age, max_queue=args.max_queue)
    ok = all(c.ok for c in results)
    emit(args, {"ok": ok, "checks": [c.as_dict() for c in results]},
          "\n".join(f"{'ok  ' if c.ok else 'FAIL'}  {c.name:<16} {c.detail}" for c in results)
          + f"\n{'healthy' if ok else 'UNHEALTHY'}")
    return 0 if ok else 1


def collect_stats(cfg: Any, r: Any, minutes: int = 60) -> dict[str, Any]:
    """Everything `smsq stats` shows, as data."""
    counts = health.recent(r, minutes)
    pending = health.pending_checks(r, cfg)
    depths = health.queue_depths(r)
    backlog = health.limiter_backlog(r, cfg)
    circuits = health.circuit_states(r, cfg)
    gateways: dict[str, Any] = {}
    for provider in sorted({a.provider for a in cfg.accounts.values()}):
        c = counts.get(f"g:{provider}", {})
        gateways[provider] = {
            "sent": c.get("sent", 0), "delivered": c.get("delivered", 0),
            "undelivered": c.get("undelivered", 0) + c.get("expired", 0),
            "failed": c.get("failed", 0) + c.get("rejected", 0),
            "unknown": c.get("unknown", 0), "retries": c.get("retry", 0),
            "pending": sum(n for a, n in pending.items()
                           if cfg.accounts[a].provider == provider),
            "queue": depths.get(f"smsq.{provider}", 0)}
    accounts: dict[str, Any] = {}
    for name, acc in cfg.accounts.items():
        rate = acc.rate_per_second or REGISTRY[acc.provider].default_rate
        req = counts.get(f"a:{name}", {}).get("req", 0)
        accounts[name] = {
            "provider": acc.provider, "requests": req, "errors":
            counts.get(f"a:{name}", {}).get("error", 0), "rate_per_second": rate,
            "utilisation": round(req / (rate * minutes * 60), 4) if rate else None,
            "booked_ahead_s": round(backlog.get(name, 0.0), 3), "circuit": circuits[name]}
    oldest = health.oldest_open(r)
    return {"window_minutes": minutes, "gateways": gateways, "accounts": accounts,
            "ledger": health.index_sizes(r), "control_queue": depths.get("smsq", 0),
            "oldest_pending_s": {k: round(v, 1) for k, v in oldest.items()},
            "beat_age_s": health.beat_age(r), "at": time.time()}


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in rows)


def render_stats(s: dict[str, Any]) -> str:
    cols = ["sent", "delivered", "undelivered", "failed", "unknown", "retries", "pending",
            "queue"]
    g = [["gateway", *cols]] + [[n, *(str(v[c]) for c in cols)]
                                for n, v in s["gateways"].items()]
    a = [["account", "requests", "errors", "rate/s", "utilisation", "booked ahead", "circuit"]]
    for n, v in s["accounts"].items():
        util = "-" if v["utilisation"] is None else f"{v['utilisation'] * 100:.1f}%"
        a.append([n, str(v["requests"]), str(v["errors"]), str(v["rate_per_second"] or "-"),
                  util, f"{v['booked_ahead_s']}s", v["circuit"]])
    oldest = ", ".join(f"{k} {v:.0f}s" for k, v in s["oldest_pending_s"].items()) or "none"
    beat = "never" if s["beat_age_s"] is None else f"{s['beat_age_s']:.1f}s ago"
    led = s["ledger"]
    return (f"last {s['window_minutes']} min, by gateway:\n{_table(g)}\n\n{_table(a)}\n\n"
            f"ledger: queued={led['queued']} sending={led['sending']} unknown={led['unknown']}"
            f"  control queue={s['control_queue']}  beat: {beat}\n"
            f"oldest pending message: {oldest}")


def cmd_stats(args: argparse.Namespace) -> int:
    import redis

    from providers.errors import SmsqError
    from worker.settings import get

    cfg = get()
    if args.minutes < 1 or args.minutes > 120:
        from providers.errors import ValidationError

        raise ValidationError("--minutes must be between 1 and 120 (counters keep 2 hours)",
                              field="minutes")
    try:
        data = collect_stats(cfg, health.client(cfg), args.minutes)
    except redis.RedisError as exc:
        raise SmsqError(f"redis unreachable at {health.redis_name(cfg)}: {exc}") from None
    emit(args, data, render_stats(data))
    return 0


def cmd_metrics_serve(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from worker.ops import metrics
    from worker.settings import get

    cfg = get()
    if args.port:
        cfg = replace(cfg, metrics_port=args.port)
    if not cfg.metrics_port:
        from providers.errors import ValidationError

        raise ValidationError("set SMSQ_METRICS_PORT or --port", field="SMSQ_METRICS_PORT")
    metrics.start_receiver_server(cfg)
    print(f"smsq metrics on http://{cfg.metrics_addr}:{cfg.metrics_port}/metrics", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    return 0
