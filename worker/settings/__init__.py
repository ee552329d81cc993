"""Settings: the one package that reads the environment.

Accounts: every gateway whose credentials are set (`SMSQ_<PROVIDER>_<FIELD>`)
is an account named after the gateway. More accounts, for routes and
failover, are declared in `SMSQ_ACCOUNTS` as `name:provider` pairs and take
their settings from `SMSQ_<NAME>_<FIELD>`. Credentials stay in the worker's
environment; task messages and the ledger name accounts only.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from providers.errors import ConfigurationError
from providers.models import AccountConfig
from worker.settings.accounts import accounts as _accounts
from worker.settings.accounts import callbacks as _callbacks
from worker.settings.accounts import number as _num
from worker.settings.accounts import routes as _routes
from worker.settings.names import COUNTS, NUMBERS, TEXTS
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
    # A worker node holding nothing, with work waiting in its queues and none received for
    # this long, ends itself for its supervisor to restart (worker/ops/watchdog.py); 0 = off.
    worker_stall_after: float = 120.0
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
    webhook_processes: int = 0  # receiver processes on one socket; 0 = one per CPU
    webhook_threads: int = 8  # requests one process handles at once
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
    # An account's default subscription (`SMSQ_<ACCOUNT>_CALLBACK`), same syntax, used
    # before `callback_default`: message > job > account (the route's first) > deployment.
    callback_accounts: Mapping[str, str] = field(default_factory=dict)
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
    # Per-recipient caps by lane (README "Lanes"): messages to one number in the last hour /
    # day; one more is refused at submit as `rejected` (reason recipient_cap). 0 = no cap.
    cap_otp_hour: int = 5
    cap_otp_day: int = 20
    cap_transactional_hour: int = 0
    cap_transactional_day: int = 0
    cap_bulk_hour: int = 0
    cap_bulk_day: int = 0
    max_segments: int = 10  # SMS parts one message may take (the gateway's own limit too); 0 = any
    # Lanes whose messages the opt-out list (`smsq suppress`) stops; bulk always.
    suppress_lanes: tuple[str, ...] = ("bulk",)

    @property
    def redispatch_after(self) -> float:
        """A dispatched message is dispatched again by beat only after this: by then its
        deliver task either ran, or was lost with a node and restored by the broker."""
        return self.visibility_timeout + 60.0

    def caps(self, lane: str) -> tuple[int, int]:
        """The lane's per-recipient caps: (per hour, per day), 0 = none."""
        return (int(getattr(self, f"cap_{lane}_hour", 0)),
                int(getattr(self, f"cap_{lane}_day", 0)))

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

def load(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    defaults = Settings()
    values: dict[str, Any] = {}
    for name, key in NUMBERS.items():
        default = getattr(defaults, name)
        value = _num(env, key, default)
        values[name] = int(value) if isinstance(default, int) and name not in COUNTS else value
    for name, key in TEXTS.items():
        values[name] = env.get(key) or getattr(defaults, name)
    check_url(values["redis_url"])
    for name in COUNTS:
        value = values[name]
        if not (math.isfinite(value) and value >= 0 and value == int(value)):
            raise ConfigurationError(f"{NUMBERS[name]} must be a whole number >= 0 (0 = no "
                                     f"limit), got {value:g}")
        values[name] = int(value)
    if values["webhook_processes"] < 0:
        raise ConfigurationError("SMSQ_WEBHOOK_PROCESSES must be 0 (one per CPU) or more, got "
                                 f"{values['webhook_processes']}")
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
        suppress_lanes=_suppress_lanes(env),
        **_callbacks(env, accounts),
    )
    target(cfg)  # a bad Redis URL or TLS option fails at start-up, naming the setting
    return cfg


def _suppress_lanes(env: Mapping[str, str]) -> tuple[str, ...]:
    """`SMSQ_SUPPRESS_LANES="transactional,bulk"`: bulk is in it whatever is listed."""
    lanes = ("otp", "transactional", "bulk")
    named = [w.strip().lower() for w in env.get("SMSQ_SUPPRESS_LANES", "").split(",")
             if w.strip()]
    unknown = [w for w in named if w not in lanes]
    if unknown:
        raise ConfigurationError(f"SMSQ_SUPPRESS_LANES: unknown lane(s) {unknown} (lanes: "
                                 f"{', '.join(lanes)})")
    return tuple(lane for lane in lanes if lane in named or lane == "bulk")


def _default_state_dir(env: Mapping[str, str]) -> str:
    base = env.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "smsq")


def configured_redis_url(env: Mapping[str, str] | None = None) -> str:
    """SMSQ_REDIS_URL as set ("" when unset): the demo says it ignores it."""
    env = os.environ if env is None else env
    return env.get("SMSQ_REDIS_URL", "")

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
