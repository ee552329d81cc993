"""The worker watchdog: a node holding nothing, with work waiting in a queue it consumes
and nothing received for `stall_after`, is stalled; any other node is not."""

from __future__ import annotations

import threading

from worker.ops import watchdog
from worker.ops.watchdog import Watchdog


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(redis_client, queues=("smsq.smsclub", "smsq.smsclub.bulk"), held=0):
    clock = Clock()
    state = {"held": held, "queues": list(queues)}
    dog = Watchdog(redis_client, lambda: state["queues"], lambda: state["held"], 120.0,
                   clock=clock)
    return dog, clock, state


def test_work_waiting_and_nothing_received_for_long_is_a_stall(redis_client):
    dog, clock, _ = make(redis_client)
    redis_client.lpush("smsq.smsclub.bulk", "m1", "m2")
    clock.now += 119
    assert dog.stalled() == 0  # not long enough
    clock.now += 2
    assert dog.stalled() == 2


def test_an_idle_node_with_empty_queues_is_not_stalled(redis_client):
    dog, clock, _ = make(redis_client)
    redis_client.lpush("smsq.other", "not mine")  # a queue it does not consume
    clock.now += 10_000
    assert dog.stalled() == 0


def test_a_node_holding_messages_or_receiving_is_not_stalled(redis_client):
    dog, clock, state = make(redis_client, held=1)
    redis_client.lpush("smsq.smsclub", "m1")
    clock.now += 500
    assert dog.stalled() == 0  # it runs one: busy, not stuck
    state["held"] = 0
    dog.received()
    clock.now += 60
    assert dog.stalled() == 0  # it took one a minute ago
    clock.now += 61
    assert dog.stalled() == 1


def test_a_cancelled_queue_does_not_count_and_redis_down_proves_nothing(redis_client):
    import redis

    dog, clock, state = make(redis_client)
    redis_client.lpush("smsq.smsclub", "m1")
    clock.now += 500
    state["queues"] = ["smsq.smsclub.bulk"]  # `celery control cancel_consumer smsq.smsclub`
    assert dog.stalled() == 0
    dead = Watchdog(redis.Redis(port=1, socket_connect_timeout=0.2), lambda: ["q"],
                    lambda: 0, 1.0, clock=clock)
    clock.now += 10
    assert dead.stalled() == 0


def test_the_loop_ends_the_node_once_on_a_stall(redis_client, monkeypatch):
    monkeypatch.setattr(watchdog, "CHECK_EVERY", 0.05)
    dog, clock, _ = make(redis_client)
    dog.stall_after = 0.1
    redis_client.lpush("smsq.smsclub", "m1")
    clock.now += 1
    ended: list[int] = []
    stop = threading.Event()
    t = threading.Thread(target=watchdog.run, args=(dog, stop, ended.append))
    t.start()
    t.join(timeout=10)
    assert ended == [1] and not t.is_alive()
