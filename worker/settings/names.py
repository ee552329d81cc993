"""Which environment variable sets which plain `Settings` field (the defaults are the
dataclass's own); accounts, routes and callbacks are read in `worker.settings.accounts`."""

NUMBERS = {
    "retention_days": "SMSQ_RETENTION_DAYS", "max_attempts": "SMSQ_MAX_ATTEMPTS",
    "backoff_base": "SMSQ_BACKOFF_BASE", "backoff_max": "SMSQ_BACKOFF_MAX",
    "send_lease": "SMSQ_SEND_LEASE", "requeue_after": "SMSQ_REQUEUE_AFTER",
    "visibility_timeout": "SMSQ_VISIBILITY_TIMEOUT", "throttle_max": "SMSQ_THROTTLE_MAX",
    "worker_stall_after": "SMSQ_WORKER_STALL_AFTER",
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
    "webhook_processes": "SMSQ_WEBHOOK_PROCESSES",
    "webhook_connection_limit": "SMSQ_WEBHOOK_CONNECTION_LIMIT",
    "webhook_channel_timeout": "SMSQ_WEBHOOK_CHANNEL_TIMEOUT",
    "callback_batch_max": "SMSQ_CALLBACK_BATCH_MAX", "webhook_backlog": "SMSQ_WEBHOOK_BACKLOG",
    "callback_timeout": "SMSQ_CALLBACK_TIMEOUT", "callback_window": "SMSQ_CALLBACK_WINDOW",
    "callback_backoff_base": "SMSQ_CALLBACK_BACKOFF_BASE",
    "callback_backoff_max": "SMSQ_CALLBACK_BACKOFF_MAX",
    "callback_sweep_interval": "SMSQ_CALLBACK_SWEEP_INTERVAL",
    "redis_min_replicas": "SMSQ_REDIS_MIN_REPLICAS",
    "cap_otp_hour": "SMSQ_CAP_OTP_HOUR", "cap_otp_day": "SMSQ_CAP_OTP_DAY",
    "cap_transactional_hour": "SMSQ_CAP_TRANSACTIONAL_HOUR",
    "cap_transactional_day": "SMSQ_CAP_TRANSACTIONAL_DAY",
    "cap_bulk_hour": "SMSQ_CAP_BULK_HOUR", "cap_bulk_day": "SMSQ_CAP_BULK_DAY",
    "max_segments": "SMSQ_MAX_SEGMENTS",
}
# Counts that must be whole and >= 0 (0 = no limit): refused at load otherwise.
COUNTS = ("cap_otp_hour", "cap_otp_day", "cap_transactional_hour", "cap_transactional_day",
          "cap_bulk_hour", "cap_bulk_day", "max_segments")
TEXTS = {
    "redis_url": "SMSQ_REDIS_URL", "default_region": "SMSQ_DEFAULT_REGION",
    "webhook_token": "SMSQ_WEBHOOK_TOKEN", "metrics_addr": "SMSQ_METRICS_ADDR",
    "metrics_dir": "SMSQ_METRICS_DIR", "campaign_zone": "SMSQ_CAMPAIGN_ZONE",
    "import_dir": "SMSQ_IMPORT_DIR", "webhook_host": "SMSQ_WEBHOOK_HOST", "lanes": "SMSQ_LANES",
    "redis_password": "SMSQ_REDIS_PASSWORD", "redis_tls_ca": "SMSQ_REDIS_TLS_CA",
    "redis_tls_cert": "SMSQ_REDIS_TLS_CERT", "redis_tls_key": "SMSQ_REDIS_TLS_KEY",
    "callback_default": "SMSQ_CALLBACK", "callback_secret": "SMSQ_CALLBACK_SECRET",
}
