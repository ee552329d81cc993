"""The delivery-report receiver: a WSGI app for sms.ru, Gatum and SMSC callbacks.

Served under a secret path token (`/<token>/<gateway>`), since none of these
gateways signs its reports (sms.ru's optional hash is checked when enabled).
Updates are idempotent and never move a message backwards; a report that
arrives before its send result is parked until the result is recorded.
"""

from __future__ import annotations

import hmac
import json
import re
import socketserver
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import redis
import structlog

from providers.errors import SmsqError
from providers.models import StatusResult
from worker.engine import Engine
from worker.ledger.errors import LedgerUnavailable
from worker.ops.bodies import BodyRefused, read_body
from worker.reports import apply_reports

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
        if gateway not in _PARSERS:
            return "404 Not Found", "text/plain", b"not found"
        body = read_body(environ, self.max_body)
        try:
            results, reply = _PARSERS[gateway](self, body, str(environ.get("CONTENT_TYPE", "")))
        except (SmsqError, ValueError, TypeError, KeyError, RecursionError) as exc:
            problem = exc.message if isinstance(exc, SmsqError) else type(exc).__name__
            log.warning("report_rejected", gateway=gateway, error=problem)
            return "400 Bad Request", "text/plain", f"bad report: {problem}".encode()
        counts = apply_reports(self.engine, gateway, results)
        self.received += len(results)
        log.info("reports_applied", gateway=gateway, count=len(results), **counts)
        return "200 OK", reply[0], reply[1]

    def _smsru(self, body: bytes, ctype: str) -> tuple[list[StatusResult], tuple[str, bytes]]:
        from providers import smsru

        form = _form(body, ctype)
        if self.engine.cfg.smsru_callback_hash:
            self._check_smsru_hash(form)
        return smsru.parse_callback(form), ("text/plain", b"100")

    def _check_smsru_hash(self, form: list[tuple[str, str]]) -> None:
        from providers import smsru

        api_ids = [a.credential("api_id") for a in _providers(self.engine, "smsru")]
        if not any(smsru.verify_callback(a, form) for a in api_ids):
            raise SmsqError("sms.ru callback hash mismatch")

    def _gatum(self, body: bytes, ctype: str) -> tuple[list[StatusResult], tuple[str, bytes]]:
        from providers import gatum

        results, ack = gatum.parse_dlr(body)
        return results, ("application/json", json.dumps(ack).encode())

    def _smsc(self, body: bytes, ctype: str) -> tuple[list[StatusResult], tuple[str, bytes]]:
        from providers import smsc

        return smsc.parse_callback(dict(_form(body, ctype))), ("text/plain", b"OK")


_PARSERS: dict[str, Callable[[Receiver, bytes, str],
                             tuple[list[StatusResult], tuple[str, bytes]]]] = {
    "smsru": Receiver._smsru, "gatum": Receiver._gatum, "smsc": Receiver._smsc}


def _form(body: bytes, ctype: str) -> list[tuple[str, str]]:
    if "multipart/form-data" in ctype:
        return _multipart(body, ctype)
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise SmsqError("report body is not a form") from None


MAX_PARTS = 200


def _multipart(body: bytes, ctype: str) -> list[tuple[str, str]]:
    """Flat multipart/form-data: one pass over the body, nested multiparts refused (a
    report is a few text fields; recursion would let a body choose our stack depth)."""
    boundary = _boundary(ctype)
    chunks = body.split(b"--" + boundary)
    if len(chunks) < 3 or len(chunks) > MAX_PARTS + 2:
        raise SmsqError(f"multipart body needs 1-{MAX_PARTS} parts and a closing boundary")
    out = []
    for chunk in chunks[1:-1]:
        head, sep, data = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not sep:
            raise SmsqError("multipart part without headers")
        headers = head.decode("latin-1")
        if re.search(r"content-type:\s*multipart", headers, flags=re.IGNORECASE):
            raise SmsqError("nested multipart is not a report")
        found = re.search(r'content-disposition:[^\n]*;\s*name="?([^";\r\n]*)', headers,
                          flags=re.IGNORECASE)
        if found and found.group(1):
            out.append((found.group(1), data.removesuffix(b"\r\n").decode("utf-8", "replace")))
    return out


def _boundary(ctype: str) -> bytes:
    found = re.search(r'boundary="?([^";]{1,70})', ctype, flags=re.IGNORECASE)
    if not found:
        raise SmsqError("multipart body without a boundary")
    return found.group(1).strip().encode("latin-1", "replace")


def _providers(engine: Engine, provider: str) -> list[Any]:
    return [engine.provider(a) for a in engine.cfg.accounts.values() if a.provider == provider]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


def serve(engine: Engine, host: str, port: int) -> WSGIServer:
    """A threaded HTTP server for the receiver (call `serve_forever()` on it)."""
    from worker.ops import metrics

    metrics.start_receiver_server(engine.cfg)  # on SMSQ_METRICS_PORT, when set
    return make_server(host, port, metrics.flushing(Receiver(engine), engine.r),
                       server_class=_ThreadingServer,
                       handler_class=_QuietHandler)
