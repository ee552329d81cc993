"""A `requests` transport adapter that hands requests to a WSGI app in-process.

Mounted into a session (`session.mount("http://smsru.sandbox/", WSGIAdapter(app))`)
it lets unit tests talk to a simulator without sockets and without patching:
the provider code runs exactly as in production. Transport faults scripted in
the sandbox surface as the exceptions `requests` itself would raise.
"""

from __future__ import annotations

import io
import sys
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3.exceptions
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from providers.sandbox.core import DropConnection

WSGIApp = Any


class WSGIAdapter(BaseAdapter):
    def __init__(self, app: WSGIApp) -> None:
        super().__init__()
        self.app = app

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        parts = urlsplit(request.url or "")
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        environ: dict[str, Any] = {
            "REQUEST_METHOD": request.method or "GET",
            "PATH_INFO": parts.path or "/",
            "QUERY_STRING": parts.query,
            "SERVER_NAME": parts.hostname or "sandbox",
            "SERVER_PORT": str(parts.port or 80),
            "SERVER_PROTOCOL": "HTTP/1.1",
            "CONTENT_TYPE": request.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.url_scheme": parts.scheme or "http",
            "wsgi.version": (1, 0),
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for key, value in request.headers.items():
            name = "HTTP_" + key.upper().replace("-", "_")
            if name not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                environ[name] = value
        captured: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc: Any = None) -> None:
            captured["status"], captured["headers"] = status, headers

        try:
            chunks = b"".join(self.app(environ, start_response))
        except DropConnection:
            if environ.get("sandbox.refuse"):
                raise requests.exceptions.ConnectionError(
                    urllib3.exceptions.NewConnectionError(
                        None,  # type: ignore[arg-type]
                        "Failed to establish a new connection: [Errno 111] refused",
                    ),
                    request=request,
                ) from None
            raise requests.exceptions.ConnectionError(
                urllib3.exceptions.ProtocolError("Connection aborted.",
                                                 ConnectionResetError(104, "reset")),
                request=request,
            ) from None
        delay = float(environ.get("sandbox.delay") or 0.0)
        if delay and delay >= _read_timeout(timeout):
            raise requests.exceptions.ReadTimeout("read timed out (sandbox)", request=request)
        response = requests.Response()
        response.status_code = int(captured["status"].split()[0])
        response.headers = CaseInsensitiveDict(dict(captured["headers"]))
        response._content = chunks
        response.encoding = requests.utils.get_encoding_from_headers(response.headers)
        response.url = request.url or ""
        response.request = request
        response.reason = captured["status"].partition(" ")[2]
        return response

    def close(self) -> None:
        return None


def _read_timeout(timeout: Any) -> float:
    if isinstance(timeout, tuple):
        timeout = timeout[1]
    return float(timeout) if timeout is not None else float("inf")
