"""`make bench`: every benchmark in one go, each recording its section of bench/RESULTS.md.

    .venv/bin/python bench/run_all.py [--only b1,b2,...]

Runs them one after another (they would otherwise share the 2 cores and
distort each other) and prints the time each took; the whole set is sized to
finish within 15 minutes.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from common import record

BENCH = Path(__file__).resolve().parent
PLAN = [
    ("b1", ["b1_throughput.py"]),
    ("b2", ["b2_ratelimit.py"]),
    ("b3", ["campaign_scale.py"]),
    ("b4", ["b4_polling.py"]),
    ("b5", ["b5_memory.py"]),
    ("b7", ["b7_receiver.py"]),
]


def run(name: str, argv: list[str]) -> float:
    script = BENCH / argv[0]
    if not script.exists():
        print(f"== {name}: {argv[0]} not present, skipped", flush=True)
        return 0.0
    print(f"== {name}: {' '.join(argv)}", flush=True)
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, str(script), *argv[1:]], cwd=BENCH.parent,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          check=False)
    elapsed = time.monotonic() - t0
    tail = "\n".join(proc.stdout.strip().splitlines()[-40:])
    print(tail, flush=True)
    print(f"== {name}: exit {proc.returncode} after {elapsed:.0f} s", flush=True)
    if name == "b3" and proc.returncode == 0:  # campaign_scale.py only prints its figures
        record("B3 enqueue scale", f".venv/bin/python bench/{argv[0]}",
               f"Output of the script (written by its owner):\n\n```\n{tail}\n```")
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed (exit {proc.returncode})")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="comma-separated subset, e.g. b1,b4")
    args = ap.parse_args()
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    t0 = time.monotonic()
    times = {name: run(name, argv) for name, argv in PLAN if not only or name in only}
    total = time.monotonic() - t0
    print("\n" + ", ".join(f"{k} {v:.0f} s" for k, v in times.items()) +
          f"; total {total / 60:.1f} min (budget 15 min)")


if __name__ == "__main__":
    main()
