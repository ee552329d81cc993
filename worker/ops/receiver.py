"""The delivery-report receiver: one WSGI app for every gateway that pushes reports.

Served under a secret path token (`/<token>/<gateway>`), since most gateways
do not sign their reports (a gateway's own check, `verify_report`, runs when
settings enable it). The gateway is looked up in the registry and parses its
own body (`parse_report`), so a new gateway needs no change here.
Updates are idempotent and never move a message backwards; a report that
arrives before its send result is parked until the result is recorded.
Served by waitress: worker/ops/serve.py.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

import redis
import structlog

from providers import REGISTRY
from providers.base import Provider
from providers.errors import SmsqError
from providers.reports import ParsedReport
from worker.engine import Engine
from worker.ledger.errors import LedgerUnavailable
from worker.ops.bodies import BodyRefused, read_body
from worker.reports import apply_reports
from worker.settings import Settings

log = structlog.get_logger("smsq.webhooks")
StartResponse = Callable[..., Any]


class Receiver:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.token = engine.cfg.webhook_token
        self.max_body = engine.cfg.webhook_max_body
        self.received = 0

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        status, ctype, body = self.handle(environ)
        start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(body)))])
        return [body]

    def handle(self, environ: dict[str, Any]) -> tuple[str, str, bytes]:
        """Status, content type and body for one request: never a 500, never a traceback.
        Bad input is a 400 naming the problem; Redis down (or any failure after the body
        was understood) is a 503, which every gateway retries."""
        try:
            return self._handle(environ)
        except BodyRefused as exc:
            log.warning("report_refused", error=exc.message)
            return exc.status, "text/plain", exc.message.encode()
        except (redis.ConnectionError, redis.TimeoutError, LedgerUnavailable) as exc:
            log.warning("report_deferred", error=type(exc).__name__)
            return "503 Service Unavailable", "text/plain", b"storage unavailable, retry"
        except Exception as exc:  # a bug must not drop a report: the gateway retries
            log.error("report_failed", error=type(exc).__name__)
            return "503 Service Unavailable", "text/plain", b"internal error, retry"

    def _handle(self, environ: dict[str, Any]) -> tuple[str, str, bytes]:
        parts = [p for p in str(environ.get("PATH_INFO", "")).split("/") if p]
        if parts == ["healthz"]:
            return "200 OK", "text/plain", b"ok"
        if len(parts) != 2 or not self.token or not hmac.compare_digest(
                parts[0].encode("utf-8", "replace"), self.token.encode("utf-8", "replace")):
            return "404 Not Found", "text/plain", b"not found"
        if environ.get("REQUEST_METHOD") != "POST":
            return "405 Method Not Allowed", "text/plain", b"POST only"
        gateway = parts[1]
        cls = REGISTRY.get(gateway)
        if cls is None or not cls.reports:
            return "404 Not Found", "text/plain", b"not found"
        body = read_body(environ, self.max_body)
        try:
            results, reply = self._parse(gateway, cls, body,
                                         str(environ.get("CONTENT_TYPE", "")))
        except (SmsqError, ValueError, TypeError, KeyError, RecursionError) as exc:
            problem = exc.message if isinstance(exc, SmsqError) else type(exc).__name__
            log.warning("report_rejected", gateway=gateway, error=problem)
            return "400 Bad Request", "text/plain", f"bad report: {problem}".encode()
        counts = apply_reports(self.engine, gateway, results)
        self.received += len(results)
        log.info("reports_applied", gateway=gateway, count=len(results), **counts)
        return _status_line(reply.status), reply.content_type, reply.body

    def _parse(self, gateway: str, cls: type[Provider], body: bytes, ctype: str
               ) -> ParsedReport:
        """The gateway's own parser, after its signature check when settings ask for one."""
        if _must_verify(self.engine.cfg, gateway):
            accounts = [a for a in self.engine.cfg.accounts.values() if a.provider == gateway]
            if not cls.verify_report(body, ctype, accounts):
                raise SmsqError(f"{gateway} report signature mismatch")
        return cls.parse_report(body, ctype)


def _must_verify(cfg: Settings, gateway: str) -> bool:
    """Reports are verified when the settings carry `<gateway>_callback_hash` and it is set."""
    return bool(getattr(cfg, f"{gateway}_callback_hash", False))


def _status_line(status: int) -> str:
    return f"{status} {HTTPStatus(status).phrase}"
