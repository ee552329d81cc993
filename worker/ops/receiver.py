"""The delivery-report receiver: a WSGI app for sms.ru, Gatum and SMSC callbacks.

Served under a secret path token (`/<token>/<gateway>`), since none of these
gateways signs its reports (sms.ru's optional hash is checked when enabled).
Updates are idempotent and never move a message backwards; a report that
arrives before its send result is parked until the result is recorded.
"""

from __future__ import annotations

import hmac
import json
import socketserver
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import structlog

from providers.errors import SmsqError
from providers.models import StatusResult
from worker.engine import Engine
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
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return "400 Bad Request", "text/plain", b"bad content-length"
        if length > self.max_body or length < 0:
            return "413 Payload Too Large", "text/plain", b"too large"
        body = environ["wsgi.input"].read(length) if length else b""
        try:
            results, reply = _PARSERS[gateway](self, body, str(environ.get("CONTENT_TYPE", "")))
        except SmsqError as exc:
            log.warning("report_rejected", gateway=gateway, error=exc.message)
            return "400 Bad Request", "text/plain", b"bad report"
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


def _multipart(body: bytes, ctype: str) -> list[tuple[str, str]]:
    from email.parser import BytesParser
    from email.policy import HTTP

    msg = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n"
                                              + body)
    out = []
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
            out.append((str(name), data.decode("utf-8", "replace")))
    return out


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
