"""What every command shares: output (text or --json), sub-commands, a progress bar."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from providers.errors import SmsqError, ValidationError

Handler = Callable[[argparse.Namespace], int]
Add = Callable[[str, Handler, str], argparse.ArgumentParser]
Sub = Callable[[str, Handler, str], argparse.ArgumentParser]


def emit(args: argparse.Namespace, data: Any, text: str | None = None) -> None:
    """JSON with --json (or when there is no text form), else the human text."""
    if getattr(args, "json", False) or text is None:
        print(json.dumps(data, ensure_ascii=False, default=str))
    else:
        print(text)


def subcommands(add: Add, name: str, help_text: str) -> Sub:
    """`smsq <name> <action> ...`; each action also takes --json."""
    parent = add(name, _missing, help_text)
    sub = parent.add_subparsers(dest=f"{name}_action", metavar="ACTION", required=True)

    def make(action: str, handler: Handler, text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(action, help=text, description=text)
        p.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                       help="machine-readable output")
        p.set_defaults(handler=handler)
        return p

    return make


def _missing(args: argparse.Namespace) -> int:
    raise ValidationError("give an action (see --help)")


def bar(label: str, done: int, total: int, *, unit: str, extra: str = "") -> None:
    """One redrawn progress line on stderr."""
    share = min(done / total, 1.0) if total else 0.0
    filled = int(share * 30)
    amount = f"{done / 1e6:.1f}/{total / 1e6:.1f} MB" if unit == "bytes" else f"{done}/{total}"
    sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (30 - filled)}] {share:4.0%} {amount}"
                     + (f"  {extra}" if extra else "") + "\x1b[K")
    sys.stderr.flush()

def port_number(text: str) -> int:
    """argparse type: a TCP port, 0 meaning any free one."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number (0-65535)")
    return value


def check_ports(host: str, first: int, count: int) -> None:
    """Every port the sandbox will take, free now: else one error naming the taken one."""
    import socket

    if first + count - 1 > 65535:
        raise ValidationError(f"--port {first}: the sandbox needs {count} ports from it, "
                              "past 65535", field="port")
    for port in range(first, first + count):
        with socket.socket() as probe:
            try:
                probe.bind((host, port))
            except OSError as exc:
                raise SmsqError(f"port {port} on {host} is not free ({exc.strerror}); "
                                "choose another --port or 0") from None
