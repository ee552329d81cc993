"""The 1,000,000-recipient campaign acceptance measurement (issue 4).

    .venv/bin/python bench/campaign_scale.py [--rows 1000000] [--no-window] [--plain]

Generates a CSV in a temp dir (Russian mobile numbers from every region, a
name column, ~1% duplicates, ~0.1% invalid rows, blank lines), starts a
private redis-server, and times `campaigns.create()` — validated, normalised,
deduplicated, written and scheduled — in a child process, so that the peak
RSS printed is the producer's own. Prints seconds, rows/s, producer peak RSS
and Redis memory per message. Nothing is sent (no workers).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NAMES = ["Anna", "Boris", "Vera", "Gleb", "Daria", "Egor", "Zoya", "Ivan", "Olga", "Pavel"]
PREFIXES = ["900", "901", "902", "903", "904", "905", "906", "908", "909", "910", "911",
            "912", "913", "914", "915", "916", "917", "918", "919", "920", "921", "922", "923",
            "924", "925", "926", "927", "928", "929", "930", "950", "951", "952", "953", "960",
            "961", "962", "963", "964", "965", "966", "967", "968", "977", "978", "980", "981",
            "982", "983", "984", "985", "986", "987", "988", "989", "991", "992", "993", "994",
            "995", "996", "997", "999"]


def generate(path: Path, rows: int, seed: int = 4) -> None:
    rnd = random.Random(seed)
    last = ""
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write("phone,name,city\n")
        for i in range(rows):
            if i % 1000 == 999:
                out.write(f"not-a-number-{i},{rnd.choice(NAMES)},x\n")
                continue
            if i % 100 == 50:
                out.write("\n")
            phone = f"+7{rnd.choice(PREFIXES)}{rnd.randrange(10_000_000):07d}"
            if i % 100 == 7 and last:
                phone = f"8{last[2:]}"  # the previous subscriber again, written nationally
            elif i % 3 == 1:
                phone = phone[1:]  # international digits without the plus
            last = phone if phone.startswith("+") else ""
            out.write(f"{phone},{rnd.choice(NAMES)},Moscow\n")


def child(args: argparse.Namespace) -> None:
    import redis

    from providers.sandbox import Sandbox
    from worker import settings
    from worker.campaigns import service as campaigns
    from worker.engine import Engine

    env = {**Sandbox().env(), "SMSQ_REDIS_URL": args.redis, "SMSQ_SMSRU_PRICE": "3.2"}
    engine = Engine(settings.load(env), client=redis.Redis.from_url(args.redis))
    text = "Hello {name}, spring sale today!" if not args.plain else "Spring sale today!"
    started = time.perf_counter()
    made = campaigns.create(engine, text=text, csv=args.csv, account="smsru",
                            start="+1h", window=None if args.no_window else "09:00-21:00")
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"seconds": seconds, "peak_rss_mb": usage.ru_maxrss / 1024,
                      "cpu": usage.ru_utime + usage.ru_stime, "total": made["total"],
                      "invalid": made["invalid"], "duplicates": made["duplicates"],
                      "status": made["status"], "zones": len(made["waiting_by_zone"])}))


def _redis_cpu(client: object) -> float:
    info = client.info("cpu")  # type: ignore[attr-defined]
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--no-window", action="store_true")
    parser.add_argument("--plain", action="store_true", help="a template without fields")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--redis", help=argparse.SUPPRESS)
    parser.add_argument("--csv", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    import redis

    from worker.local.embedded import EmbeddedRedis

    with tempfile.TemporaryDirectory(prefix="smsq-bench-") as tmp, EmbeddedRedis() as server:
        csv_path = Path(tmp) / "audience.csv"
        t0 = time.perf_counter()
        generate(csv_path, args.rows)
        print(f"generated {args.rows:,} rows ({csv_path.stat().st_size / 1e6:.1f} MB) in "
              f"{time.perf_counter() - t0:.1f} s")
        client = redis.Redis.from_url(server.url)
        before = int(client.info("memory")["used_memory"])
        cpu_before = _redis_cpu(client)
        cmd = [sys.executable, __file__, "--child", "--redis", server.url, "--csv",
               str(csv_path)] + (["--no-window"] if args.no_window else []) + \
            (["--plain"] if args.plain else [])
        out = subprocess.run(cmd, check=True, capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
        result = json.loads(out.stdout.strip().splitlines()[-1])
        used = int(client.info("memory")["used_memory"]) - before
        redis_cpu = _redis_cpu(client) - cpu_before
        per_msg = used / max(result["total"], 1)
        print(f"accepted {result['total']:,} recipients ({result['invalid']:,} invalid, "
              f"{result['duplicates']:,} duplicates, {result['zones']} time zones), "
              f"status {result['status']}")
        print(f"seconds:              {result['seconds']:.1f}  "
              f"({args.rows / result['seconds']:,.0f} rows/s)")
        print(f"CPU seconds:          producer {result['cpu']:.1f}, redis-server "
              f"{redis_cpu:.1f}  (load average now {os.getloadavg()[0]:.1f} on "
              f"{os.cpu_count()} cores)")
        print(f"producer peak RSS:    {result['peak_rss_mb']:.0f} MB")
        print(f"Redis memory:         {used / 1e6:.0f} MB  ({per_msg:.0f} bytes per message)")


if __name__ == "__main__":
    main()
