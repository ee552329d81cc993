"""A worker node that stops taking messages ends itself, so its supervisor restarts it.

Seen under chaos (docs/RELIABILITY.md): a node restarted about a second before Redis
was SIGKILLed stayed alive and silent; its consumer never fetched again while beat's
ticks piled up in its queue. Nothing was lost (the work waits in Redis), but nothing
moved until the node was restarted. A liveness probe from outside cannot tell an idle
node from a stuck one; the node itself can: it knows which queues it consumes, when it
last received a message, and whether it holds any.

Every `CHECK_EVERY` seconds, in the worker's main process: when the node holds no
message (none running, none reserved), has received none for `stall_after` seconds,
and a queue it consumes has messages waiting, it logs `worker_consumer_stalled` and
exits with a cold shutdown (SIGQUIT; `os._exit` if that does not end it). It holds
nothing, so nothing is lost: acks_late leaves every message in Redis. An unreadable
Redis proves nothing and is skipped (the consumer's own reconnect handles an outage).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Sequence

import redis
import structlog

log = structlog.get_logger("smsq.worker")
CHECK_EVERY = 15.0
EXIT_CODE = 70  # EX_SOFTWARE: the supervisor restarts the node


class Watchdog:
    def __init__(self, r: redis.Redis, queues: Callable[[], Sequence[str]],
                 held: Callable[[], int], stall_after: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.r = r
        self.queues = queues  # what the consumer consumes now (an operator may cancel one)
        self.held = held  # messages this node runs or has reserved
        self.stall_after = stall_after
        self.clock = clock
        self.last = clock()

    def received(self) -> None:
        self.last = self.clock()

    def waiting(self) -> int | None:
        """Messages waiting in the consumed queues, or None when Redis cannot say."""
        names = list(self.queues())
        if not names:
            return 0
        try:
            with self.r.pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.llen(name)
                return sum(int(n) for n in pipe.execute())
        except redis.RedisError:
            return None

    def stalled(self) -> int:
        """The messages waiting for this stalled node; 0 when it is not stalled."""
        idle = self.clock() - self.last
        if idle < self.stall_after or self.held() > 0:
            return 0
        return self.waiting() or 0


def run(dog: Watchdog, stop: threading.Event, end: Callable[[int], None]) -> None:
    """The check loop (a daemon thread of the worker's main process)."""
    every = min(CHECK_EVERY, max(0.5, dog.stall_after / 4))
    while not stop.wait(every):
        waiting = dog.stalled()
        if waiting:
            log.error("worker_consumer_stalled", waiting=waiting,
                      idle_s=round(dog.clock() - dog.last), queues=list(dog.queues()))
            end(waiting)
            return


def cold_exit(_: int) -> None:
    """Celery's cold shutdown; if the main loop is too stuck to run it, exit anyway."""
    os.kill(os.getpid(), signal.SIGQUIT)
    time.sleep(30)
    os._exit(EXIT_CODE)


def connect_celery(redis_client: Callable[[], redis.Redis], stall_after: float) -> None:
    """Start the watchdog when a worker node is ready (not in beat, not in pool children)."""
    if stall_after <= 0:
        return
    from celery.signals import task_received, worker_ready, worker_shutdown
    from celery.worker import state

    dogs: list[Watchdog] = []
    stop = threading.Event()

    def held() -> int:
        return len(state.active_requests) + len(state.reserved_requests)

    @worker_ready.connect(weak=False)  # type: ignore[untyped-decorator]
    def _ready(sender: object = None, **_: object) -> None:
        consumer = getattr(sender, "task_consumer", None)

        def queues() -> list[str]:
            current = getattr(sender, "task_consumer", None) or consumer
            return [q.name for q in getattr(current, "queues", [])]

        dog = Watchdog(redis_client(), queues, held, stall_after)
        dogs.append(dog)
        threading.Thread(target=run, args=(dog, stop, cold_exit), name="smsq-watchdog",
                         daemon=True).start()
        log.info("worker_watchdog_started", stall_after_s=stall_after, queues=queues())

    @task_received.connect(weak=False)  # type: ignore[untyped-decorator]
    def _received(**_: object) -> None:
        for dog in dogs:
            dog.received()

    @worker_shutdown.connect(weak=False)  # type: ignore[untyped-decorator]
    def _shutdown(**_: object) -> None:
        stop.set()
