"""How a CLI command ends when it cannot finish: one line on stderr, never a traceback.

Exit 2: the input was bad (an argument, a file name, a setting); 1: anything
else (Redis unreachable, a port taken, output closed early, a bug); 130:
Ctrl-C. The line names the problem and shows what the user typed, except
secrets: a Redis URL is shown without its password.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys

import redis

from providers.errors import ConfigurationError, SmsqError, ValidationError
from worker.cli.output import Handler

BAD_INPUT, FAILED, INTERRUPTED = 2, 1, 130


def run(handler: Handler, args: argparse.Namespace) -> int:
    """Run one command; map whatever it raises to an exit code and one line."""
    try:
        return int(handler(args))
    except KeyboardInterrupt:
        return _say("interrupted", INTERRUPTED, prefix="smsq: ")
    except BrokenPipeError:
        _quiet_stdout()
        return _say("output closed before everything was written (broken pipe)", FAILED)
    except (ValidationError, ConfigurationError) as exc:
        return _say(str(exc), BAD_INPUT)
    except SmsqError as exc:
        return _say(str(exc), FAILED)
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        return _say(f"cannot reach Redis at {shown_url()}: {_first_line(exc)}", FAILED)
    except OSError as exc:
        return _os_error(exc)
    except Exception as exc:  # a bug: still one line, with its kind, and exit 1
        return _say(f"unexpected {type(exc).__name__}: {_first_line(exc)}", FAILED)


def _os_error(exc: OSError) -> int:
    if exc.errno == errno.EADDRINUSE:
        return _say(f"address already in use: {_first_line(exc)}", FAILED)
    if exc.filename is not None:
        return _say(f"{exc.filename}: {exc.strerror or _first_line(exc)}", BAD_INPUT)
    return _say(_first_line(exc), FAILED)


def shown_url() -> str:
    """SMSQ_REDIS_URL as typed, with any password replaced by ***."""
    from worker.settings import DEFAULT_REDIS_URL
    from worker.transport.connection import redacted

    return redacted(os.environ.get("SMSQ_REDIS_URL") or DEFAULT_REDIS_URL)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def _say(message: str, code: int, prefix: str = "smsq: error: ") -> int:
    try:
        print(f"{prefix}{message}", file=sys.stderr, flush=True)
    except (BrokenPipeError, ValueError):
        pass
    return code


def _quiet_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so the interpreter's final flush
    does not raise again at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    finally:
        os.close(devnull)
