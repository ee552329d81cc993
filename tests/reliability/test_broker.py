"""The broker transport (worker/transport/broker.py) never loses a message its consumer took:
the pop and the `unacked` record are one step, so a consumer killed right after the
pop leaves the message in `unacked`, and the visibility-timeout restore brings it
back. Real redis-server, kombu's own consumer and restore."""

from __future__ import annotations

import redis
from kombu import Connection, Exchange, Queue
from kombu.message import Message

from worker.local.embedded import EmbeddedRedis

TRANSPORT = "worker.transport.broker:Transport"
QUEUE = Queue("smsq", Exchange("smsq"), routing_key="smsq")


class Killed(BaseException):
    """The consumer process dies here (after the pop, before anything else runs)."""


def publish(url: str, bodies: list[dict[str, str]]) -> None:
    with Connection(url, transport=TRANSPORT) as conn:
        producer = conn.Producer()
        for body in bodies:
            producer.publish(body, exchange=QUEUE.exchange, routing_key="smsq",
                             declare=[QUEUE], serializer="json")


def consume(url: str, n: int, *, ack: bool = True, tries: int = 50) -> list[dict[str, str]]:
    got: list[dict[str, str]] = []

    def on_message(body: dict[str, str], message: Message) -> None:
        got.append(body)
        if ack:
            message.ack()

    with Connection(url, transport=TRANSPORT) as conn, conn.Consumer(
            QUEUE, callbacks=[on_message], accept=["json"]):
        for _ in range(tries):
            if len(got) >= n:
                break
            try:
                conn.drain_events(timeout=0.5)
            except TimeoutError:
                pass
    return got


def test_a_consumer_killed_right_after_the_pop_loses_nothing(
        redis_server: EmbeddedRedis, rclient: redis.Redis) -> None:
    """Fails on kombu's own transport: BRPOP took the message, the consumer died before
    writing `unacked`, and the message was gone (chaos seed 201 lost an smsq.send so)."""
    url = redis_server.url
    publish(url, [{"job": "only-copy"}])
    with Connection(url, transport=TRANSPORT) as conn:
        channel = conn.default_channel

        def die(message: object, queue: str) -> None:
            raise Killed

        conn.transport._deliver = die  # the first thing after the pop's reply is read
        with conn.Consumer(QUEUE, callbacks=[], accept=["json"]):
            try:
                conn.drain_events(timeout=2)
            except Killed:
                pass
            else:
                raise AssertionError("the consumer never took the message")
        assert channel is not None
    assert rclient.llen("smsq") == 0 and rclient.hlen("unacked") == 1
    with Connection(url, transport=TRANSPORT,
                    transport_options={"visibility_timeout": 0}) as conn:
        conn.default_channel.qos.restore_visible(num=100)
    assert rclient.llen("smsq") == 1 and rclient.hlen("unacked") == 0
    assert consume(url, 1) == [{"job": "only-copy"}]
    assert rclient.hlen("unacked") == 0 and rclient.llen("smsq") == 0


def test_messages_flow_and_an_idle_consumer_wakes(redis_server: EmbeddedRedis,
                                                  rclient: redis.Redis) -> None:
    """Every message delivered once and acked away; one published after the consumer
    went idle is still delivered; one never acked goes back to its queue."""
    url = redis_server.url
    bodies = [{"n": str(i)} for i in range(30)]
    publish(url, bodies)
    assert sorted(consume(url, 30), key=lambda b: int(b["n"])) == bodies
    assert rclient.hlen("unacked") == 0 and rclient.zcard("unacked_index") == 0
    assert consume(url, 1, tries=4) == []  # idle: pops, waits, pops ... nothing invented
    publish(url, [{"n": "late"}])
    assert consume(url, 1, ack=False) == [{"n": "late"}]
    assert rclient.hlen("unacked") == 0 and rclient.llen("smsq") == 1  # restored at close
    assert consume(url, 1) == [{"n": "late"}] and rclient.llen("smsq") == 0


def test_acks_failing_while_redis_is_down_free_their_prefetch_slots() -> None:
    """Fails on kombu's own QoS: a node whose in-flight messages were acked while Redis
    was down kept every prefetch slot taken and never took another message (the callbacks
    chaos stalled so after a Redis SIGKILL). The failed acks leave the messages in
    `unacked` (restored later: a duplicate, never a loss) and the consumer goes on."""
    server = EmbeddedRedis(appendonly=True).start()
    try:
        url = server.url
        publish(url, [{"n": str(i)} for i in range(4)])
        taken: list[Message] = []
        with Connection(url, transport=TRANSPORT) as conn, conn.Consumer(
                QUEUE, callbacks=[lambda body, message: taken.append(message)],
                accept=["json"], prefetch_count=2):
            qos = conn.default_channel.qos
            for _ in range(20):
                if len(taken) >= 2 or not qos.can_consume():
                    break
                try:
                    conn.drain_events(timeout=0.5)
                except TimeoutError:
                    pass
            assert len(taken) == 2 and not qos.can_consume()
            assert server.proc is not None
            server.proc.kill()  # SIGKILL: no shutdown, the AOF is what survives
            server.proc.wait()
            server.proc = None
            for message in taken:
                try:
                    message.ack()
                except redis.ConnectionError:
                    pass  # Celery logs "Couldn't ack" and goes on
                else:
                    raise AssertionError("the ack reached a dead Redis")
            assert qos.can_consume()  # the slots are free again
            server.start()  # restarted from its AOF, on the same port
            for _ in range(40):
                if len(taken) >= 4:
                    break
                try:
                    conn.drain_events(timeout=0.5)
                except (TimeoutError, *conn.connection_errors):
                    conn.ensure_connection(max_retries=3)
            assert sorted(m.payload["n"] for m in taken) == ["0", "1", "2", "3"]
            for message in taken[2:]:
                message.ack()
        r = redis.Redis.from_url(url)
        assert r.llen("smsq") == 0
        assert r.hlen("unacked") == 2  # the two whose acks failed: back after the timeout
        r.close()
    finally:
        server.cleanup()
