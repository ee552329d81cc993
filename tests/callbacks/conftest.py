"""Callback fixtures: an engine whose settings allow loopback callbacks, and a real local
HTTP subscriber that verifies every request with the `standardwebhooks` library."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks.webhooks import Webhook

SECRET = "whsec_" + base64.b64encode(b"callback-test-secret-0123456789ab").decode()


class Subscriber:
    """Records verified events; `codes` scripts the answers (then 200 forever)."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.bodies: list[bytes] = []
        self.bad_signatures = 0
        self.codes: list[int] = []
        self.lock = threading.Lock()
        sub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                try:
                    payload = Webhook(SECRET).verify(body, dict(self.headers))
                except Exception:
                    with sub.lock:
                        sub.bad_signatures += 1
                    self.send_response(400)
                    self.end_headers()
                    return
                with sub.lock:
                    code = sub.codes.pop(0) if sub.codes else 200
                    if code == 200:
                        sub.bodies.append(body)
                        sub.events.extend(payload["data"] if payload.get("type") == "batch"
                                          else [payload])
                self.send_response(code)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook?token=abc"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def subscriber():
    s = Subscriber()
    yield s
    s.close()


@pytest.fixture
def cb_engine(redis_server, redis_client, sandbox, session):
    """An Engine on the private Redis that may call back to loopback over http."""
    from worker import settings
    from worker.engine import Engine

    env = {**sandbox.env(), "SMSQ_REDIS_URL": redis_server.url,
           "SMSQ_CALLBACK_SCHEMES": "https,http", "SMSQ_CALLBACK_ALLOWED_HOSTS": "127.0.0.1",
           "SMSQ_CALLBACK_SECRETS": f"test={SECRET}", "SMSQ_CALLBACK_WINDOW": "60",
           "SMSQ_CALLBACK_BACKOFF_BASE": "1"}
    eng = Engine(settings.load(env), client=redis_client, session=session)
    eng.enqueued = []
    eng.enqueue = lambda name, kwargs, queue: eng.enqueued.append((name, dict(kwargs), queue))
    return eng


def body_json(raw: bytes) -> dict:
    return json.loads(raw)
