"""Pushes delivery reports the way the real gateways do, retrying until acknowledged."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import requests

from providers.sandbox.core import GatewaySimulator
from providers.sandbox.timeline import SimMessage

if TYPE_CHECKING:
    from providers.sandbox import Sandbox

FINAL = {"delivered", "undelivered", "expired", "rejected", "failed"}


class ReportPusher:
    """Every `interval` seconds, POST final statuses not yet acknowledged to each callback URL."""

    def __init__(self, sandbox: Sandbox, *, session: requests.Session | None = None,
                 interval: float = 0.25, batch: int = 50) -> None:
        self.sandbox = sandbox
        self.session = session or requests.Session()
        self.interval = interval
        self.batch = batch
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.attempts = 0
        self.failures = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sandbox-reports", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.push_once()

    def push_once(self) -> int:
        """One pass over every reporting gateway; returns the reports acknowledged."""
        acked = 0
        for sim in self.sandbox.sims.values():
            for url in sim.report_urls():
                due = self._due(sim, url)
                size = getattr(sim, "report_batch", None) or self.batch  # SMSC: one per POST
                for start in range(0, len(due), size):
                    acked += self._push(sim, url, due[start:start + size])
        return acked

    def _due(self, sim: GatewaySimulator, url: str) -> list[SimMessage]:
        state = self.sandbox.state
        with state.lock:
            candidates = [m for m in state.messages if m.gateway == sim.name
                          and url not in m.reported and not m.meta.get("test")]
        return [m for m in candidates if state.stage(m) in FINAL]

    def _push(self, sim: GatewaySimulator, url: str, msgs: list[SimMessage]) -> int:
        content_type, body = sim.report_request(msgs)
        self.attempts += 1
        try:
            resp = self.session.post(url, data=body, headers={"Content-Type": content_type},
                                     timeout=(2, 5))
        except requests.RequestException:
            self.failures += 1
            return 0
        if not sim.report_acked(resp.status_code, resp.content, msgs):
            self.failures += 1
            return 0
        with self.sandbox.state.lock:
            for m in msgs:
                m.reported.add(url)
        return len(msgs)
