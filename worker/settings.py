"""Settings: the one module that reads the environment.

Accounts: every gateway whose credentials are set (`SMSQ_<PROVIDER>_<FIELD>`)
is an account named after the gateway. More accounts, for routes and
failover, are declared in `SMSQ_ACCOUNTS` as `name:provider` pairs and take
their settings from `SMSQ_<NAME>_<FIELD>`. Credentials stay in the worker's
environment; task messages and the ledger name accounts only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from providers import REGISTRY
from providers.errors import ConfigurationError
from providers.models import AccountConfig, Secret
from worker.transport.connection import check_url, target

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass(frozen=True)
class Settings:
    redis_url: str = DEFAULT_REDIS_URL
    redis_password: str = field(default="", repr=False)  # instead of a password in the URL
    redis_tls_ca: str = ""  # rediss://: CA bundle that signed the server (default: system CAs)
    redis_tls_cert: str = ""  # rediss://: client certificate, when Redis asks for one
    redis_tls_key: str = ""
    redis_min_replicas: int = 0  # jobs and send claims count once this many replicas have them
    redis_wait_timeout: float = 1.0  # seconds WAIT gives them; fewer: submit fails, send waits
    state_dir: str = ""  # beat's schedule file; "" = $XDG_STATE_HOME/smsq or ~/.local/state/smsq
    accounts: Mapping[str, AccountConfig] = field(default_factory=dict)
    routes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    default_region: str = "RU"
    retention_days: float = 30.0
    max_attempts: int = 5
    backoff_base: float = 2.0
    backoff_max: float = 300.0
    send_lease: float = 120.0
    requeue_after: float = 60.0
    # The broker's: a task a dead node had taken comes back after this (kombu restore).
    # No smsq task waits as a Celery countdown, so it bounds crash recovery, nothing else.
    visibility_timeout: float = 240.0
    poll_interval: float = 30.0
    poll_first_after: float = 10.0
    poll_max_interval: float = 1800.0
    status_horizon: float = 72 * 3600.0
    unknown_lookup_horizon: float = 3600.0
    release_interval: float = 1.0
    reconcile_interval: float = 30.0
    limiter_max_wait: float = 2.0
    rate_margin: float = 0.0
    circuit_threshold: int = 5
    circuit_cooldown: float = 30.0
    throttle_max: float = 600.0  # longest hold-off after throttles in a row (1 s, doubling)
    webhook_token: str = field(default="", repr=False)
    webhook_max_body: int = 1_048_576
    park_per_request: int = 500  # unknown-id reports parked from one request, at most
    park_max: int = 20_000  # unknown-id reports parked in total, at most
    park_ttl: float = 3600.0  # how long a parked report waits for its send result
    import_dir: str = ""  # the only place `smsq.campaign` by name may read a CSV; "" = none
    webhook_host: str = "127.0.0.1"  # the image sets 0.0.0.0; on a host, a TLS proxy is in front
    webhook_port: int = 8088
    webhook_threads: int = 8  # requests handled at once (each does one Redis round trip)
    webhook_connection_limit: int = 1000  # open connections; lowered to fit the open-file limit
    webhook_channel_timeout: float = 15.0  # seconds a connection may stay silent
    webhook_backlog: int = 1024  # listen queue (the kernel caps it at net.core.somaxconn)
    smsru_callback_hash: bool = False
    connect_timeout: float = 3.05
    read_timeout: float = 15.0
    producer_timeout: float = 5.0
    metrics_port: int = 0  # 0: no metrics endpoint
    metrics_addr: str = "127.0.0.1"  # the image sets 0.0.0.0 (scraped from outside the container)
    metrics_dir: str = ""  # prometheus multiprocess dir for prefork workers; "" = a fresh temp dir
    prices: Mapping[str, float] = field(default_factory=dict)  # per SMS segment, by account
    campaign_zone: str = "Europe/Moscow"  # when a number's own zone is ambiguous
    campaign_failure_threshold: float = 0.3
    campaign_max_rate: float = 200.0  # messages/s when neither campaign nor gateway caps it
    campaign_tick_interval: float = 1.0
    # Status callbacks (worker/callbacks): the deployment's default subscription, the named
    # signing secrets subscriptions refer to, and where outbound callback HTTP may go.
    callback_default: str = ""  # an https URL, or task:<name>@<queue>; "" = none
    callback_finals_only: bool = False
    callback_secret: str = field(default="", repr=False)  # the secret named "default"
    callback_secrets: Mapping[str, str] = field(default_factory=dict, repr=False)
    callback_schemes: tuple[str, ...] = ("https",)
    callback_allowed_hosts: tuple[str, ...] = ()  # private/loopback hosts allowed anyway
    callback_timeout: float = 10.0
    callback_window: float = 24 * 3600.0  # retry a failing event this long, then park it
    callback_backoff_base: float = 5.0
    callback_backoff_max: float = 1800.0
    callback_batch_max: int = 100
    callback_sweep_interval: float = 15.0
    lanes: str = "priority"  # or "fifo": one line per account, as before lanes (B6 only)
    otp_valid_for: float = 300.0  # an OTP's validity when the producer gives none; 0 = none

    @property
    def redispatch_after(self) -> float:
        """A dispatched message is dispatched again by beat only after this: by then its
        deliver task either ran, or was lost with a node and restored by the broker."""
        return self.visibility_timeout + 60.0

    def account(self, name: str) -> AccountConfig:
        try:
            return self.accounts[name]
        except KeyError:
            known = ", ".join(sorted(self.accounts)) or "none configured"
            raise ConfigurationError(f"unknown account {name!r} (known: {known})") from None

    def route(self, name: str) -> tuple[str, ...]:
        """A route by name, or a single account as a one-step route."""
        if name in self.routes:
            return self.routes[name]
        return (self.account(name).name,)

    def secrets(self) -> list[str]:
        out = [v for acc in self.accounts.values() for v in acc.secret_values()]
        out += [self.webhook_token, self.redis_password, self.callback_secret]
        return [v for v in out + list(self.callback_secrets.values()) if v]


def _num(env: Mapping[str, str], key: str, default: float) -> float:
    raw = env.get(key)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigurationError(f"{key} must be a number, got {raw!r}") from None


def _account(env: Mapping[str, str], name: str, provider: str) -> AccountConfig | None:
    if provider not in REGISTRY:
        known = ", ".join(REGISTRY)
        raise ConfigurationError(f"account {name!r}: unknown provider {provider!r} ({known})")
    cls = REGISTRY[provider]
    prefix = f"SMSQ_{name.upper()}_"
    creds = {f: Secret(env[prefix + f.upper()]) for f in cls.credential_fields
             if env.get(prefix + f.upper())}
    if not creds:
        return None
    mirrors = tuple(u.strip() for u in env.get(prefix + "MIRRORS", "").split(",") if u.strip())
    rate = _num(env, prefix + "RATE", cls.default_rate or 0.0) or None
    options = {"sender": env[prefix + "SENDER"]} if env.get(prefix + "SENDER") else {}
    return AccountConfig(name=name, provider=provider, credentials=creds,
                         base_url=env.get(prefix + "BASE_URL") or None, mirrors=mirrors,
                         rate_per_second=rate, options=options)


def _accounts(env: Mapping[str, str]) -> dict[str, AccountConfig]:
    accounts: dict[str, AccountConfig] = {}
    pairs = [(p, p) for p in REGISTRY]
    for item in env.get("SMSQ_ACCOUNTS", "").split(","):
        if item.strip():
            name, _, provider = item.strip().partition(":")
            pairs.append((name.strip(), (provider or name).strip()))
    for name, provider in pairs:
        acc = _account(env, name, provider)
        if acc is not None:
            accounts[name] = acc
        elif name != provider:
            raise ConfigurationError(f"account {name!r} declared in SMSQ_ACCOUNTS has no "
                                     f"credentials (set SMSQ_{name.upper()}_...)")
    return accounts


def _routes(env: Mapping[str, str], accounts: Mapping[str, AccountConfig]
            ) -> dict[str, tuple[str, ...]]:
    """`SMSQ_ROUTES="main=smsclub,smsc;ru=smsru,sms1000"`."""
    routes: dict[str, tuple[str, ...]] = {}
    for item in env.get("SMSQ_ROUTES", "").split(";"):
        if not item.strip():
            continue
        name, _, steps = item.partition("=")
        chain = tuple(s.strip() for s in steps.split(",") if s.strip())
        missing = [s for s in chain if s not in accounts]
        if not chain or missing:
            raise ConfigurationError(f"route {name.strip()!r} names unknown accounts {missing}")
        routes[name.strip()] = chain
    return routes


# Settings field -> environment variable; the defaults are the dataclass's own.
_NUMBERS = {
    "retention_days": "SMSQ_RETENTION_DAYS", "max_attempts": "SMSQ_MAX_ATTEMPTS",
    "backoff_base": "SMSQ_BACKOFF_BASE", "backoff_max": "SMSQ_BACKOFF_MAX",
    "send_lease": "SMSQ_SEND_LEASE", "requeue_after": "SMSQ_REQUEUE_AFTER",
    "visibility_timeout": "SMSQ_VISIBILITY_TIMEOUT", "throttle_max": "SMSQ_THROTTLE_MAX",
    "poll_interval": "SMSQ_POLL_INTERVAL", "poll_first_after": "SMSQ_POLL_FIRST_AFTER",
    "poll_max_interval": "SMSQ_POLL_MAX_INTERVAL", "redis_wait_timeout": "SMSQ_REDIS_WAIT_TIMEOUT",
    "release_interval": "SMSQ_RELEASE_INTERVAL", "reconcile_interval": "SMSQ_RECONCILE_INTERVAL",
    "limiter_max_wait": "SMSQ_LIMITER_MAX_WAIT", "rate_margin": "SMSQ_RATE_MARGIN",
    "circuit_threshold": "SMSQ_CIRCUIT_THRESHOLD", "circuit_cooldown": "SMSQ_CIRCUIT_COOLDOWN",
    "connect_timeout": "SMSQ_CONNECT_TIMEOUT", "read_timeout": "SMSQ_READ_TIMEOUT",
    "producer_timeout": "SMSQ_PRODUCER_TIMEOUT", "metrics_port": "SMSQ_METRICS_PORT",
    "campaign_failure_threshold": "SMSQ_CAMPAIGN_FAILURE_THRESHOLD",
    "campaign_max_rate": "SMSQ_CAMPAIGN_MAX_RATE", "otp_valid_for": "SMSQ_OTP_VALID_FOR",
    "campaign_tick_interval": "SMSQ_CAMPAIGN_TICK_INTERVAL",
    "webhook_max_body": "SMSQ_WEBHOOK_MAX_BODY", "park_per_request": "SMSQ_PARK_PER_REQUEST",
    "park_max": "SMSQ_PARK_MAX", "park_ttl": "SMSQ_PARK_TTL",
    "webhook_port": "SMSQ_WEBHOOK_PORT", "webhook_threads": "SMSQ_WEBHOOK_THREADS",
    "webhook_connection_limit": "SMSQ_WEBHOOK_CONNECTION_LIMIT",
    "webhook_channel_timeout": "SMSQ_WEBHOOK_CHANNEL_TIMEOUT",
    "callback_batch_max": "SMSQ_CALLBACK_BATCH_MAX", "webhook_backlog": "SMSQ_WEBHOOK_BACKLOG",
    "callback_timeout": "SMSQ_CALLBACK_TIMEOUT", "callback_window": "SMSQ_CALLBACK_WINDOW",
    "callback_backoff_base": "SMSQ_CALLBACK_BACKOFF_BASE",
    "callback_backoff_max": "SMSQ_CALLBACK_BACKOFF_MAX",
    "callback_sweep_interval": "SMSQ_CALLBACK_SWEEP_INTERVAL",
    "redis_min_replicas": "SMSQ_REDIS_MIN_REPLICAS",
}
_TEXTS = {
    "redis_url": "SMSQ_REDIS_URL", "default_region": "SMSQ_DEFAULT_REGION",
    "webhook_token": "SMSQ_WEBHOOK_TOKEN", "metrics_addr": "SMSQ_METRICS_ADDR",
    "metrics_dir": "SMSQ_METRICS_DIR", "campaign_zone": "SMSQ_CAMPAIGN_ZONE",
    "import_dir": "SMSQ_IMPORT_DIR", "webhook_host": "SMSQ_WEBHOOK_HOST", "lanes": "SMSQ_LANES",
    "redis_password": "SMSQ_REDIS_PASSWORD", "redis_tls_ca": "SMSQ_REDIS_TLS_CA",
    "redis_tls_cert": "SMSQ_REDIS_TLS_CERT", "redis_tls_key": "SMSQ_REDIS_TLS_KEY",
    "callback_default": "SMSQ_CALLBACK", "callback_secret": "SMSQ_CALLBACK_SECRET",
}


def load(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    defaults = Settings()
    values: dict[str, Any] = {}
    for name, key in _NUMBERS.items():
        default = getattr(defaults, name)
        value = _num(env, key, default)
        values[name] = int(value) if isinstance(default, int) else value
    for name, key in _TEXTS.items():
        values[name] = env.get(key) or getattr(defaults, name)
    check_url(values["redis_url"])
    hours = _num(env, "SMSQ_STATUS_HORIZON_HOURS", defaults.status_horizon / 3600.0)
    values["state_dir"] = env.get("SMSQ_STATE_DIR") or _default_state_dir(env)
    accounts = _accounts(env)
    cfg = Settings(
        **values,
        accounts=accounts,
        routes=_routes(env, accounts),
        status_horizon=hours * 3600.0,
        smsru_callback_hash=env.get("SMSQ_SMSRU_CALLBACK_HASH", "") in ("1", "true", "yes"),
        prices={n: _num(env, f"SMSQ_{n.upper()}_PRICE", 0.0) for n in accounts
                if env.get(f"SMSQ_{n.upper()}_PRICE")},
        **_callbacks(env),
    )
    target(cfg)  # a bad Redis URL or TLS option fails at start-up, naming the setting
    return cfg


def _default_state_dir(env: Mapping[str, str]) -> str:
    base = env.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "smsq")


def configured_redis_url(env: Mapping[str, str] | None = None) -> str:
    """SMSQ_REDIS_URL as set ("" when unset): the demo says it ignores it."""
    env = os.environ if env is None else env
    return env.get("SMSQ_REDIS_URL", "")


def _callbacks(env: Mapping[str, str]) -> dict[str, Any]:
    """`SMSQ_CALLBACK_SECRETS="billing=whsec_...;crm=whsec_..."`: secrets by name."""
    named: dict[str, str] = {}
    for item in env.get("SMSQ_CALLBACK_SECRETS", "").split(";"):
        name, sep, value = item.strip().partition("=")
        if not item.strip():
            continue
        if not sep or not name.strip() or not value.strip():
            raise ConfigurationError("SMSQ_CALLBACK_SECRETS takes name=secret pairs split by ';'")
        named[name.strip()] = value.strip()
    return {
        "callback_secrets": named,
        "callback_finals_only": env.get("SMSQ_CALLBACK_FINALS_ONLY", "") in ("1", "true", "yes"),
        "callback_schemes": _words(env, "SMSQ_CALLBACK_SCHEMES") or ("https",),
        "callback_allowed_hosts": _words(env, "SMSQ_CALLBACK_ALLOWED_HOSTS"),
    }


def _words(env: Mapping[str, str], key: str) -> tuple[str, ...]:
    return tuple(w.strip().lower() for w in env.get(key, "").split(",") if w.strip())


_cached: Settings | None = None


def get() -> Settings:
    """Process-wide settings, read once."""
    global _cached
    if _cached is None:
        _cached = load()
    return _cached


def reset() -> None:
    global _cached
    _cached = None
