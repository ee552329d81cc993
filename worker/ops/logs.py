"""structlog set-up: JSON when not on a terminal, context through contextvars.

Two processors guard what leaves the process: phone numbers are masked and
fields that could hold a text or a secret are dropped, whatever the caller
bound.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from providers.phones import mask
from worker.ops import metrics

PHONE_KEYS = frozenset({"phone", "recipient", "to", "msisdn"})
SECRET_KEYS = frozenset({"text", "message_text", "token", "password", "psw", "api_id",
                         "apikey", "api_key", "authorization", "access_token", "credentials"})


def scrub(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        if key.lower() in SECRET_KEYS:
            del event[key]
        elif key.lower() in PHONE_KEYS and isinstance(event[key], str):
            event[key] = mask(event[key])
    return event


def configure(*, json: bool | None = None, level: int = logging.INFO) -> None:
    use_json = (not sys.stderr.isatty()) if json is None else json
    renderer: Any = (structlog.processors.JSONRenderer() if use_json
                     else structlog.dev.ConsoleRenderer(colors=False))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            metrics.processor,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            scrub,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
