"""Prometheus metrics and the per-minute counters behind `smsq stats`.

Nothing in the engine knows about metrics. Counters are driven by what the
engine already says: its structlog events (a processor in the logging chain,
`processor`) and the counts its Celery tasks return (task_prerun/postrun,
which also time a delivery and read the limiter's wait). Gauges are read from
Redis at scrape time (`RedisCollector`), so every process reports the same
deployment-wide numbers.

Celery prefork: prometheus-client's multiprocess mode. The worker's main
process, on `worker_init` and before its pool forks, points
PROMETHEUS_MULTIPROC_DIR at a fresh directory (SMSQ_METRICS_DIR, else a new
temp dir) and only then imports prometheus_client; pool children write their
samples to per-pid files there and the main process serves the merged view
plus the Redis gauges on SMSQ_METRICS_PORT. Counters of recycled children
stay in the sum. The receiver is one process and serves its own registry.
Nothing is served when SMSQ_METRICS_PORT is 0 (the default).
"""

from worker.ops.metrics.counters import OUTCOMES, Rolling, enable, rolling
from worker.ops.metrics.events import EVENTS, processor
from worker.ops.metrics.hooks import connect_celery, task_finished, task_started
from worker.ops.metrics.serve import (
    RedisCollector,
    flushing,
    multiproc_dir,
    start_receiver_server,
    start_worker_server,
)

__all__ = ["EVENTS", "OUTCOMES", "RedisCollector", "Rolling", "connect_celery", "enable",
           "flushing", "multiproc_dir", "processor", "rolling", "start_receiver_server",
           "start_worker_server", "task_finished", "task_started"]
