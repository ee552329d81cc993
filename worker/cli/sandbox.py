"""`smsq sandbox`: serve every gateway simulator on loopback until interrupted.

The simulators themselves come through `worker.local.sandbox`, the only room that may
import `providers.sandbox`.
"""

from __future__ import annotations

import argparse
import sys
import time

from worker.cli.output import Add, check_ports, emit, port_number
from worker.local import sandbox as local_sandbox


def cmd_sandbox(args: argparse.Namespace) -> int:
    if args.port:
        check_ports(args.host, args.port,
                    local_sandbox.ports_needed(args.queued_for, args.final_after))
    server = local_sandbox.serve(args.host, args.port, queued_for=args.queued_for,
                                 final_after=args.final_after)
    env = server.sandbox.env()
    if args.env_file:
        with open(args.env_file, "w", encoding="utf-8") as fh:
            fh.write("".join(f"export {k}={v}\n" for k, v in env.items()))
    emit(args, {"hosts": server.urls(), "control": server.control_url, "env": env},
         "smsq sandbox serving:\n" + "\n".join(f"  {h:<11} {u}" for h, u in
                                               server.urls().items())
         + f"\n  control     {server.control_url}\n\nPoint smsq at it with:\n"
         + "\n".join(f"export {k}={v}" for k, v in env.items()))
    sys.stdout.flush()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()
    return 0


def register(add: Add) -> None:
    p = add("sandbox", cmd_sandbox, "serve all five gateway simulators on loopback")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=port_number, default=0, help="first port (0 = free ports)")
    p.add_argument("--queued-for", type=float, default=0.5)
    p.add_argument("--final-after", type=float, default=3.0)
    p.add_argument("--env-file", help="also write the export lines to this file")
