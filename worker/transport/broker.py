"""The Redis broker transport smsq runs Celery on: kombu's, with two failure modes closed.

1. A message taken but not yet recorded. kombu's consumer takes a message with
   BRPOP and records it in `unacked` with a second command: a consumer that dies
   between the two (a SIGKILLed node, a reply lost with its connection) loses
   the message for good; nothing restores what `unacked` never held. Chaos seed
   201 lost an `smsq.send` (84 messages) that way: the AOF shows its RPOP, then
   no `unacked` entry, then its node killed. Here one Lua script pops the message
   and records it in `unacked` in the same step, so a message is always in its
   queue or in `unacked` (restored after the visibility timeout). A script cannot
   block: when every queue is empty the consumer waits server-side on a key
   nothing writes (`IDLE_WAIT` s) and then pops again.
2. When the broker connection drops while tasks are unacknowledged, kombu tears the
   connection down and then tries to restore those messages through it; the
   connection is already gone (`conninfo` is None), the AttributeError escapes
   kombu's connection-error handling, and the worker dies with "Unrecoverable
   error" instead of reconnecting (kombu#582, #970 are older forms of the same).
   Here that case raises a redis ConnectionError, which kombu does handle.
3. An ack (or reject) while Redis is unreachable. kombu's QoS first removes the message
   from `unacked` in Redis and only then frees its prefetch slot; when the Redis call
   fails, the slot is never freed (Celery logs "Couldn't ack" and carries on). A node
   whose in-flight tasks all finished during a Redis restart has every slot taken and
   never takes another message, alive and silent: the callbacks chaos with Redis
   SIGKILLs (bench/callbacks_chaos.py, seed 24) stalled so, every delivery and poll
   task waiting in the broker for good. Here the slot is freed whatever Redis says;
   the message stays in `unacked` and comes back after the visibility timeout (every
   smsq task is idempotent under redelivery).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from queue import Empty
from time import monotonic
from typing import Any
from urllib.parse import urlsplit

import redis
from kombu.transport import redis as kombu_redis
from kombu.transport import virtual

IDLE_KEY = "smsq:broker:idle"  # never written: BLPOP on it is a server-side sleep
IDLE_WAIT = 0.2

# KEYS: unacked index, unacked hash, then the queue lists in priority order.
# Returns {queue key, message} or nil; the message is in `unacked` before it leaves.
POP = r"""
for i = 3, #KEYS do
  local item = redis.call('RPOP', KEYS[i])
  if item then
    local props = cjson.decode(item)['properties']
    local info, tag = props['delivery_info'], props['delivery_tag']
    local t = redis.call('TIME')
    redis.call('ZADD', KEYS[1], tonumber(t[1]) + tonumber(t[2]) / 1000000, tag)
    redis.call('HSET', KEYS[2], tag, '[' .. item .. ',' .. cjson.encode(info['exchange'])
               .. ',' .. cjson.encode(info['routing_key']) .. ']')
    return {KEYS[i], item}
  end
end
return false
"""


def _connparams(channel: Any, asynchronous: bool, parent: Any) -> Any:
    if channel.connection.client is None:
        raise redis.exceptions.ConnectionError("broker connection already closed")
    return parent._connparams(channel, asynchronous=asynchronous)


class QoS(kombu_redis.QoS):
    """kombu's, but a failed ack or reject in Redis still frees the prefetch slot."""

    def ack(self, delivery_tag: Any) -> None:
        try:
            super().ack(delivery_tag)  # type: ignore[no-untyped-call]
        except BaseException:
            if delivery_tag not in self._dirty:
                virtual.QoS.ack(self, delivery_tag)  # type: ignore[no-untyped-call]
            raise

    def reject(self, delivery_tag: Any, requeue: bool = False) -> None:
        try:
            super().reject(delivery_tag, requeue=requeue)  # type: ignore[no-untyped-call]
        except BaseException:
            if delivery_tag not in self._dirty:
                virtual.QoS.ack(self, delivery_tag)  # type: ignore[no-untyped-call]
            raise


class Channel(kombu_redis.Channel):
    QoS = QoS
    _idle = False  # the last pop found nothing: wait before the next

    def _connparams(self, asynchronous: bool = False) -> Any:
        return _connparams(self, asynchronous, kombu_redis.Channel)

    def _pop_args(self, queues: list[str]) -> list[Any]:
        keys = [self._q_for_pri(q, pri)  # type: ignore[no-untyped-call]
                for pri in self.priority_steps for q in queues]
        return ["EVAL", POP, 2 + len(keys), self.unacked_index_key, self.unacked_key, *keys]

    def _brpop_start(self, timeout: float | None = None) -> None:
        queues = self._queue_cycle.consume(len(self.active_queues))
        if not queues:
            return
        self._in_poll = self.client.connection
        self._brpop_sent_at = monotonic()  # type: ignore[assignment]
        args = ["BLPOP", IDLE_KEY, IDLE_WAIT] if self._idle else self._pop_args(queues)
        self.client.connection.send_command(*args)

    def _brpop_read(self, **options: Any) -> bool:
        waited, self._idle = self._idle, False
        try:
            try:
                reply = self.client.parse_response(
                    self.client.connection, "BLPOP" if waited else "EVAL", **options)
            except self.connection_errors:
                self.client.connection.disconnect()
                raise
            if waited or not reply:
                self._idle = not waited
                raise Empty()
            dest = _text(reply[0]).rsplit(self.sep, 1)[0]
            self._queue_cycle.rotate(dest)
            self.connection._deliver(json.loads(reply[1]), dest)
            return True
        finally:
            self._in_poll = None  # type: ignore[assignment]
            self._flush_brpop_reauth()  # type: ignore[no-untyped-call]

    def _get(self, queue: str, timeout: Any = None) -> Any:
        with self.conn_or_acquire() as client:
            reply = client.execute_command(*self._pop_args([queue]))
            self._maybe_update_queues_expire(client, queue)  # type: ignore[no-untyped-call]
        if not reply:
            raise Empty()
        return json.loads(reply[1])


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class Transport(kombu_redis.Transport):
    Channel = Channel


class SentinelChannel(kombu_redis.SentinelChannel):
    """kombu's Sentinel channel (the master found through the sentinels), same fixes."""

    QoS = QoS

    def _connparams(self, asynchronous: bool = False) -> Any:
        return _connparams(self, asynchronous, kombu_redis.SentinelChannel)


class SentinelTransport(kombu_redis.SentinelTransport):
    Channel = SentinelChannel


def stay_on_sentinels(alternates: list[str]) -> Iterator[str]:
    """The broker's failover strategy for Sentinel: never switch URLs.

    kombu takes the sentinels from the `;`-separated URL and, on a connection error,
    "fails over" to the next one with `Connection.switch(url)`, which re-parses that URL:
    the password (given apart, never in the URL) becomes None and the transport becomes
    kombu's stock `sentinel`, so after the first failover every reconnect to the new master
    was refused ("HELLO must be called with the client already authenticated") and these
    classes were gone. Switching is pointless here anyway: the channel asks every sentinel
    in the list each time it connects. A bare host (no `://`) keeps every other parameter.
    """
    return itertools.repeat(urlsplit(alternates[0]).hostname or "127.0.0.1")


# The `broker_transport` settings naming these classes (chosen by the URL's scheme in
# worker/transport/connection.py); TLS comes from `broker_use_ssl`, since kombu reads the
# `rediss` scheme only for its own transport.
TRANSPORT = "worker.transport.broker:Transport"
SENTINEL_TRANSPORT = "worker.transport.broker:SentinelTransport"
