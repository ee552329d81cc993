"""`smsq worker NAME`: a Celery worker on the queues that NAME stands for.

An operator names the worker's job, not its queue list: a gateway (its one-off and
bulk queues, high lane first), `control` (submit intake, sweeps), `callbacks`,
`priority` (every gateway's high-lane queue, never bulk) or `all` (everything, in
consumption order). The systemd template starts `smsq worker %i`, so a unit instance
is one of these names; the queue lists live here, next to the code that routes to them.
"""

from __future__ import annotations

import argparse
import os
import sys

from providers import REGISTRY
from providers.errors import ValidationError
from worker.cli.output import Add, emit

ROLES = ("control", "callbacks", "priority", "all")


def register(add: Add) -> None:
    p = add("worker", cmd_worker, "run a Celery worker for a gateway (smsclub, ...) or a role "
            "(control, callbacks, priority, all); extra arguments go to `celery worker`")
    p.add_argument("name", help=f"a gateway ({', '.join(REGISTRY)}) or {', '.join(ROLES)}")
    p.add_argument("--dry-run", action="store_true", help="print the celery command only")
    p.add_argument("celery_args", nargs=argparse.REMAINDER,
                   help="passed on, e.g. -c 4 --loglevel WARNING")


def queues_for(name: str) -> list[str]:
    """The queues a worker named `name` consumes, in the order it must take them."""
    from worker.callbacks.events import QUEUE as CALLBACKS
    from worker.engine import BULK, CONTROL_QUEUE, high_queues, queue_for, queues

    gateways = list(REGISTRY)
    if name in REGISTRY:
        return [queue_for(name), queue_for(name, BULK)]
    chosen = {"control": [CONTROL_QUEUE], "callbacks": [CALLBACKS],
              "priority": high_queues(gateways),
              "all": [CONTROL_QUEUE, *queues(gateways), CALLBACKS]}.get(name)
    if chosen is None:
        raise ValidationError(f"unknown worker {name!r}: a gateway ({', '.join(REGISTRY)}) "
                              f"or one of {', '.join(ROLES)}", field="name")
    return chosen


def cmd_worker(args: argparse.Namespace) -> int:
    extra = [a for a in args.celery_args if a not in ("--", "--dry-run", "--json")]
    dry = args.dry_run or "--dry-run" in args.celery_args
    argv = [sys.executable, "-m", "celery", "-A", "worker", "worker",
            "-Q", ",".join(queues_for(args.name)), "-n", f"{args.name}@%h",
            "--without-gossip", "--without-mingle", *extra]
    if "-l" not in extra and not any(a.startswith("--loglevel") for a in extra):
        argv += ["-l", "INFO"]
    if dry:
        shown = ["celery", *argv[3:]]
        emit(args, {"argv": shown}, " ".join(shown))
        return 0
    sys.stdout.flush()
    os.execv(sys.executable, argv)  # noqa: S606 - becomes the worker (signals, PID) as systemd expects
    return 0  # not reached
