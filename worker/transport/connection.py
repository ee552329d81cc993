"""How every smsq process reaches Redis: one place for the URL, the password and TLS.

The broker (kombu), the ledger, limiter and circuit (redis-py), beat, `smsq
health` and the metrics collector all build their connections here, so
`rediss://` means TLS for every one of them, with the same CA and client
certificate. kombu only switches TLS on for the literal scheme `rediss` and
smsq runs its own transport class (worker/transport/broker.py), so the broker is given
its TLS options explicitly (`broker_use_ssl`), never left to the scheme.

Sentinel: `sentinel://[:password@]host1:port1,host2:port2/service_name[/db]`. The
password (here or in SMSQ_REDIS_PASSWORD) is the data nodes'; the sentinels are asked
without one. redis-py gets `Sentinel(...).master_for(service)`; kombu gets its own
form, `sentinel://h1:p1/db;sentinel://h2:p2/db` with `master_name` in the transport
options, through smsq's sentinel transport class.

`sentinel+tls://` is the same URL over TLS: the sentinels and the master they name are
both reached with TLS, with the same CA and client certificate (SMSQ_REDIS_TLS_*) as
`rediss://`. redis-py gets `ssl=True` for the master and `sentinel_kwargs` for the
sentinels; kombu gets `broker_use_ssl` for the master and the `sentinel_kwargs` transport
option for the sentinels.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field, replace
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import redis
import redis.sentinel

from providers.errors import ConfigurationError
from worker.transport.broker import SENTINEL_TRANSPORT, TRANSPORT, stay_on_sentinels

SCHEMES = ("redis", "rediss", "unix", "sentinel", "sentinel+tls")
TLS_SCHEMES = ("rediss", "sentinel+tls")


@dataclass(frozen=True)
class RedisTarget:
    """The Redis a deployment uses; `str()` and `where` never show the password."""

    url: str
    password: str = field(default="", repr=False)
    tls_ca: str = ""
    tls_cert: str = ""
    tls_key: str = ""

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in SCHEMES:
            raise ConfigurationError(f"SMSQ_REDIS_URL: scheme {parts.scheme!r} is not one of "
                                     f"{', '.join(s + '://' for s in SCHEMES)}")
        if (self.tls_ca or self.tls_cert or self.tls_key) and not self.tls:
            raise ConfigurationError("SMSQ_REDIS_TLS_* are set but SMSQ_REDIS_URL is not "
                                     "rediss:// or sentinel+tls://: TLS options need a TLS URL")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ConfigurationError("SMSQ_REDIS_TLS_CERT and SMSQ_REDIS_TLS_KEY go together")
        if parts.scheme in ("sentinel", "sentinel+tls"):
            sentinel_parts(self.url)  # refuses a malformed one, naming what is wrong
        if self.password and parts.password:
            raise ConfigurationError("a Redis password is in both SMSQ_REDIS_URL and "
                                     "SMSQ_REDIS_PASSWORD: keep it in one place")

    def __repr__(self) -> str:
        return f"RedisTarget({redacted(self.url)!r})"

    def __str__(self) -> str:
        if self.sentinel:
            return f"{'sentinel+tls' if self.tls else 'sentinel'}://{self.where}"
        return f"{'rediss' if self.tls else 'redis'}://{self.where}"

    @property
    def sentinel(self) -> Sentinel | None:
        """The sentinels and service name of a sentinel[+tls]:// URL (None for any other),
        with the TLS options its connections use."""
        if not self.url.startswith(("sentinel://", "sentinel+tls://")):
            return None
        return replace(sentinel_parts(self.url), ssl=self.redis_py_tls())

    @property
    def tls(self) -> bool:
        return urlsplit(self.url).scheme in TLS_SCHEMES

    @property
    def where(self) -> str:
        """host:port (or the socket path), for messages: never the password."""
        found = self.sentinel
        if found is not None:
            return f"{','.join(f'{h}:{p}' for h, p in found.hosts)}/{found.service}"
        parts = urlsplit(self.url)
        if parts.scheme == "unix":
            return parts.path
        return f"{parts.hostname or '127.0.0.1'}:{parts.port or 6379}"

    def tls_options(self) -> dict[str, Any]:
        """redis-py's (and kombu's) TLS keywords: the server's certificate is always verified."""
        if not self.tls:
            return {}
        options: dict[str, Any] = {"ssl_cert_reqs": ssl.CERT_REQUIRED}
        if self.tls_ca:
            options["ssl_ca_certs"] = self.tls_ca
        if self.tls_cert:
            options.update(ssl_certfile=self.tls_cert, ssl_keyfile=self.tls_key)
        return options

    def redis_py_tls(self) -> dict[str, Any]:
        """redis-py's TLS keywords for a connection (none without TLS)."""
        options = dict(self.tls_options())
        if options:
            options.update(ssl=True, ssl_cert_reqs="required")
        return options

    def client(self, *, timeout: float = 5.0, **kwargs: Any) -> redis.Redis:
        """A redis-py client (ledger, limiter, circuit, health, metrics)."""
        options = self.redis_py_tls()
        options.pop("ssl", None)  # from_url takes TLS from the rediss:// scheme
        if self.password:
            options["password"] = self.password
        found = self.sentinel
        if found is not None:
            return found.master(self.password, timeout=timeout, **kwargs)
        return redis.Redis.from_url(self.url, socket_timeout=timeout,
                                    socket_connect_timeout=timeout, **options, **kwargs)

    def celery_conf(self) -> dict[str, Any]:
        """Celery settings for the broker: URL, password and TLS (`broker_use_ssl`)."""
        conf: dict[str, Any] = {"broker_url": self.url, "broker_transport": TRANSPORT,
                                "broker_transport_options": {}}
        found = self.sentinel
        if found is not None:
            conf.update(broker_url=found.kombu_url(), broker_transport=SENTINEL_TRANSPORT,
                        broker_transport_options={"master_name": found.service},
                        broker_failover_strategy=stay_on_sentinels)
            if found.tls:  # the sentinels over TLS too (the master: broker_use_ssl below)
                conf["broker_transport_options"]["sentinel_kwargs"] = found.sentinel_kwargs()
            if found.password:
                conf["broker_password"] = found.password
        if self.password:
            conf["broker_password"] = self.password
        if self.tls:
            conf["broker_use_ssl"] = self.tls_options()
        return conf


class RedisSettings(Protocol):
    """The settings a connection needs (worker.settings.Settings has them; this room does
    not import it, so settings may build its target at start-up)."""

    @property
    def redis_url(self) -> str: ...
    @property
    def redis_password(self) -> str: ...
    @property
    def redis_tls_ca(self) -> str: ...
    @property
    def redis_tls_cert(self) -> str: ...
    @property
    def redis_tls_key(self) -> str: ...


def target(cfg: RedisSettings | str) -> RedisTarget:
    """The RedisTarget of a Settings object (or of a bare URL, for tests and tools)."""
    if isinstance(cfg, str):
        return RedisTarget(cfg)
    return RedisTarget(cfg.redis_url, password=cfg.redis_password, tls_ca=cfg.redis_tls_ca,
                       tls_cert=cfg.redis_tls_cert, tls_key=cfg.redis_tls_key)

@dataclass(frozen=True)
class Sentinel:
    """A sentinel[+tls]:// URL taken apart: sentinel hosts, service name, db, data-node
    password, and (for +tls) redis-py's TLS keywords for sentinels and master alike."""

    hosts: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    password: str = field(default="", repr=False)
    tls: bool = False
    ssl: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.tls and not self.ssl:
            object.__setattr__(self, "ssl", {"ssl": True, "ssl_cert_reqs": "required"})

    def kombu_url(self) -> str:
        """kombu's form; TLS is not in it (broker_use_ssl and sentinel_kwargs carry it)."""
        return ";".join(f"sentinel://{h}:{p}/{self.db}" for h, p in self.hosts)

    def sentinel_kwargs(self, timeout: float = 5.0) -> dict[str, Any]:
        """How a connection to a sentinel itself is made (no password: sentinels are asked
        without one)."""
        return {"socket_timeout": timeout, "socket_connect_timeout": timeout, **self.ssl}

    def manager(self, *, timeout: float = 5.0) -> redis.sentinel.Sentinel:
        return redis.sentinel.Sentinel(  # type: ignore[no-untyped-call]
            list(self.hosts), sentinel_kwargs=self.sentinel_kwargs(timeout),
            socket_timeout=timeout, socket_connect_timeout=timeout)

    def master(self, password: str = "", *, timeout: float = 5.0, **kwargs: Any
               ) -> redis.Redis:
        """A client that follows the current master through failovers."""
        client: redis.Redis = self.manager(timeout=timeout).master_for(  # type: ignore[no-untyped-call]
            self.service, db=self.db, password=password or self.password or None,
            socket_timeout=timeout, socket_connect_timeout=timeout, **self.ssl, **kwargs)
        return client


def sentinel_parts(url: str) -> Sentinel:
    """`sentinel[+tls]://[:password@]h1:p1,h2:p2/service[/db]`, or a ConfigurationError."""
    scheme, _, rest = url.partition("://")
    auth, _, netloc = rest.rpartition("@") if "@" in rest.split("/", 1)[0] else ("", "", rest)
    netloc, _, path = netloc.partition("/")
    service, _, db = path.partition("/")
    bad = f"SMSQ_REDIS_URL {redacted_sentinel(url)!r}: expected {scheme}://[:password@]" \
          "host1:port1,host2:port2/service_name[/db]"
    try:
        hosts = tuple((h.rpartition(":")[0], int(h.rpartition(":")[2]))
                      for h in netloc.split(","))
    except ValueError:
        raise ConfigurationError(bad + " (every sentinel needs host:port)") from None
    if not service or any(not h or not 0 < p < 65536 for h, p in hosts):
        raise ConfigurationError(bad)
    if db and not db.isdigit():
        raise ConfigurationError(bad + " (db must be a number)")
    if scheme not in ("sentinel", "sentinel+tls"):
        raise ConfigurationError(bad)
    return Sentinel(hosts, service, int(db or 0), auth.partition(":")[2],
                    tls=scheme == "sentinel+tls")


def redacted_sentinel(url: str) -> str:
    scheme, _, rest = url.partition("://")
    head, sep, tail = rest.partition("@")
    return f"{scheme}://" + (f":***@{tail}" if sep else head)


def check_url(url: str) -> None:
    """A Redis URL smsq can use, or a ConfigurationError that never shows its password."""
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = urlsplit("")
    if parts.scheme in ("sentinel", "sentinel+tls"):
        sentinel_parts(url)
        return
    if parts.scheme not in ("redis", "rediss", "unix") or (parts.scheme != "unix"
                                                           and not parts.hostname):
        raise ConfigurationError(f"SMSQ_REDIS_URL {redacted(url)!r} is not a redis://host, "
                                 "rediss://host, unix:// or sentinel[+tls]:// URL")


def redacted(url: str) -> str:
    """A URL safe to print: any password replaced by ***."""
    if url.startswith(("sentinel://", "sentinel+tls://")):
        return redacted_sentinel(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "(unparseable URL)"
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname or ''}" + (f":{port}" if port else "")
    return urlunsplit(parts._replace(netloc=netloc))
