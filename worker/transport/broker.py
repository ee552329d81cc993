"""The Redis broker transport smsq runs Celery on: kombu's, with one failure mode closed.

When the broker connection drops while tasks are unacknowledged, kombu tears the
connection down and then tries to restore those messages through it; the
connection is already gone (`conninfo` is None), the AttributeError escapes
kombu's connection-error handling, and the worker dies with "Unrecoverable
error" instead of reconnecting (kombu#582, #970 are older forms of the same).
Here that case raises a redis ConnectionError, which kombu does handle: the
worker reconnects, and the messages come back through the visibility timeout —
and, for smsq, through the ledger's release sweep well before that.
"""

from __future__ import annotations

from typing import Any

import redis
from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> Any:
        if self.connection.client is None:
            raise redis.exceptions.ConnectionError("broker connection already closed")
        return super()._connparams(asynchronous=asynchronous)  # type: ignore[no-untyped-call]


class Transport(kombu_redis.Transport):
    Channel = Channel


# The `broker_transport` setting naming this class; TLS comes from `broker_use_ssl`
# (worker/transport/connection.py), since kombu reads the `rediss` scheme only for its own
# transport.
TRANSPORT = "worker.transport.broker:Transport"
