"""The delivery-report receiver on a production HTTP server: waitress.

Why waitress: pure Python, well kept, and built for slow clients — one
asyncore loop reads and buffers every connection, and a request reaches a
worker thread only once it is complete, so a client trickling its headers
holds a socket, never a thread. Its knobs are settings (`SMSQ_WEBHOOK_*`):
threads, connection limit, idle timeout, listen backlog, body size. poll() is
used instead of select(), so more than 1,024 descriptors work.

One addition: at the connection limit waitress stops accepting, and a genuine
report would queue behind slow clients in the listen backlog. Here the
connection that has held its slot longest without completing a request gives
it up instead, so a slow client loses its slot and a fast one never waits for
it. The limit is kept below the process's open-file limit, which would
otherwise be hit first.
"""

from __future__ import annotations

import logging
import os
import resource
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

import structlog
from waitress.server import TcpWSGIServer

from worker.engine import Engine
from worker.settings import Settings

log = structlog.get_logger("smsq.webhooks")
SPARE_DESCRIPTORS = 64  # Redis, logs, the listener, the poll set: outside the connection limit


@dataclass(frozen=True)
class ServerOptions:
    host: str
    port: int
    threads: int
    connection_limit: int
    channel_timeout: float
    backlog: int
    max_body: int
    processes: int = 1

    @classmethod
    def from_settings(cls, cfg: Settings, host: str | None = None,
                      port: int | None = None) -> ServerOptions:
        return cls(host=cfg.webhook_host if host is None else host,
                   port=cfg.webhook_port if port is None else port,
                   threads=cfg.webhook_threads,
                   connection_limit=fitting_limit(cfg.webhook_connection_limit),
                   channel_timeout=cfg.webhook_channel_timeout, backlog=cfg.webhook_backlog,
                   max_body=cfg.webhook_max_body, processes=process_count(cfg.webhook_processes))


def process_count(wanted: int) -> int:
    """`SMSQ_WEBHOOK_PROCESSES`, where 0 means one per CPU this process may run on."""
    if wanted > 0:
        return wanted
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def fitting_limit(wanted: int) -> int:
    """The connection limit, lowered to fit the open-file limit (with spares for the rest)."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or wanted + SPARE_DESCRIPTORS <= soft:
        return wanted
    fitted = max(1, soft - SPARE_DESCRIPTORS)
    log.warning("webhook_connection_limit_lowered", wanted=wanted, limit=fitted,
                open_files=soft)
    return fitted


class ReceiverServer(TcpWSGIServer):  # type: ignore[misc]
    """waitress's TCP server, evicting the oldest unfinished connection at the limit."""

    def readable(self) -> bool:
        if self.accepting and len(self._map) >= self.adj.connection_limit:
            self.evict_one()
        return bool(super().readable())

    def evict_one(self) -> None:
        """Mark the oldest unfinished connection for closing. It closes in the loop's write
        pass, not here: closing while the poll set is built lets the kernel hand its
        descriptor to the next accepted client, which would then receive the stale POLLNVAL
        and be dropped in its place."""
        channels = list(self.active_channels.values())
        if any(c.will_close for c in channels):
            return  # one eviction at a time; it completes on this loop turn
        waiting = [c for c in channels if not c.requests]
        if waiting:
            min(waiting, key=lambda c: c.creation_time).will_close = True

    @property
    def port(self) -> int:
        return int(self.effective_port)


def _not_overflow_toggles(record: logging.LogRecord) -> bool:
    """At the limit waitress logs every enter/leave of "overflow"; with eviction that is
    every accept, so those lines are dropped (waitress's other warnings stay)."""
    return not str(record.msg).startswith("total open connections")


def build(app: Any, options: ServerOptions, sock: socket.socket | None = None
          ) -> ReceiverServer:
    """A bound, not yet running server (`run()` serves until SIGTERM / SIGINT); on `sock`,
    a listening socket bound already, when given."""
    from waitress.adjustments import Adjustments

    waitress_log = logging.getLogger("waitress")
    if _not_overflow_toggles not in waitress_log.filters:
        waitress_log.addFilter(_not_overflow_toggles)
    adj = Adjustments(host=options.host, port=options.port, threads=options.threads,
                      connection_limit=options.connection_limit,
                      channel_timeout=options.channel_timeout, cleanup_interval=2,
                      backlog=options.backlog, max_request_body_size=options.max_body,
                      asyncore_use_poll=True, ident="smsq", expose_tracebacks=False)
    if sock is None:
        return ReceiverServer(app, adj=adj)
    return ReceiverServer(app, adj=adj, _sock=sock, bind_socket=False,
                          sockinfo=(sock.family, sock.type, sock.proto, sock.getsockname()))


def serve(engine: Engine, host: str | None = None, port: int | None = None
          ) -> ReceiverServer:
    """The receiver (and its metrics endpoint, when SMSQ_METRICS_PORT is set), bound."""
    from worker.ops import metrics
    from worker.ops.receiver import Receiver

    metrics.start_receiver_server(engine.cfg)
    options = ServerOptions.from_settings(engine.cfg, host, port)
    server = build(metrics.flushing(Receiver(engine), engine.r), options)
    log.info("webhooks_serving", host=options.host, port=server.port, threads=options.threads,
             connection_limit=options.connection_limit, backlog=options.backlog)
    return server


def run(engine: Engine, host: str | None, port: int | None,
        announce: Callable[[int], None]) -> None:
    """`smsq webhooks`: one server in this process, or (`SMSQ_WEBHOOK_PROCESSES` > 1) that
    many on one socket under a supervising parent; `announce` gets the bound port."""
    from worker.ops import metrics, prefork
    from worker.ops.receiver import Receiver

    options = ServerOptions.from_settings(engine.cfg, host, port)
    if options.processes == 1:
        server = serve(engine, host, port)
        announce(server.port)
        run_until_stopped(server)
        return
    sock = prefork.listen_socket(options.host, options.port, options.backlog)
    on_exit: Callable[[int], None] = _nothing
    if metrics.start_worker_server(engine.cfg) is not None:  # children write, parent serves
        from prometheus_client import multiprocess

        on_exit = multiprocess.mark_process_dead

    def child() -> None:
        from worker.engine import Engine as ChildEngine

        mine = ChildEngine()  # its own Redis connections
        run_until_stopped(build(metrics.flushing(Receiver(mine), mine.r), options, sock))

    log.info("webhooks_serving", host=options.host, port=sock.getsockname()[1],
             processes=options.processes, threads=options.threads,
             connection_limit=options.connection_limit, backlog=options.backlog)
    port = int(sock.getsockname()[1])
    prefork.Supervisor(options.processes, child, on_exit).run(ready=lambda: announce(port))
    log.info("webhooks_stopped")


def _nothing(pid: int) -> None:
    pass


def run_until_stopped(server: ReceiverServer) -> None:
    """Serve; SIGTERM stops accepting, lets running requests finish, then returns."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    started = time.monotonic()
    try:
        server.run()
    finally:
        server.close()
        log.info("webhooks_stopped", served_s=round(time.monotonic() - started, 1))
