"""Celery settings for smsq (broker, queues, reliability switches, beat schedule).

Read by `worker.celery_app` with `config_from_object("celeryconfig")`. Values
come from `worker.settings`, the one module that reads the environment.
"""

import os as _os

from kombu import Queue

from providers import REGISTRY
from worker import settings as _settings
from worker.engine import queues as _send_queues
from worker.transport.connection import target as _target

_cfg = _settings.get()

# URL, password and TLS (`broker_use_ssl` when SMSQ_REDIS_URL is rediss://):
# worker/transport/connection.py.
# kombu's Redis (or Sentinel) transport, with a worker-killing race on broker loss closed
# (worker/transport/broker.py); `master_name` among the transport options for Sentinel.
_conf = _target(_cfg).celery_conf()
_url_options = _conf.pop("broker_transport_options")
globals().update(_conf)
# Retries and scheduled work wait in the ledger's sorted sets, never as Celery
# countdowns, and every task is idempotent under redelivery (intake by its task id,
# sends by the claim): so the timeout only bounds how long a task a dead node had
# taken stays invisible — minutes, not the hour kombu defaults to. The restore sweep
# runs every ~30 s (interval x throttle) so that bound holds.
broker_transport_options = {
    "visibility_timeout": _cfg.visibility_timeout,
    "unacked_restore_interval": 10,
    "unacked_restore_throttle": 3,
    "socket_timeout": 10,
    "socket_connect_timeout": 5,
    "retry_on_timeout": True,
    "health_check_interval": 15,
    # BRPOP lists a worker's queues in its `-Q` order every time (not rotated): a gateway's
    # high-lane queue is always taken before its bulk queue (see worker.engine.queues).
    "queue_order_strategy": "priority",
    **_url_options,
}
broker_connection_retry_on_startup = True
broker_connection_max_retries = None  # keep trying through a Redis outage
broker_heartbeat = 0

task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1
task_ignore_result = True
result_backend = None
task_serializer = "json"
accept_content = ["json"]
task_publish_retry = True
task_publish_retry_policy = {"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5,
                             "interval_max": 1.0}
task_default_queue = "smsq"
task_queues = [Queue("smsq"), *[Queue(name) for name in _send_queues(list(REGISTRY))],
               Queue("smsq.callbacks")]
task_routes = {"smsq.send": {"queue": "smsq"}, "smsq.poll_pending": {"queue": "smsq"},
               "smsq.release": {"queue": "smsq"}, "smsq.reconcile": {"queue": "smsq"},
               "smsq.callbacks_tick": {"queue": "smsq"},
               "smsq.callback_flush": {"queue": "smsq.callbacks"}}
worker_hijack_root_logger = False
worker_redirect_stdouts = False
worker_send_task_events = False
worker_soft_shutdown_timeout = 30.0
worker_enable_soft_shutdown_on_idle = False
worker_max_tasks_per_child = 20_000
timezone = "UTC"
# Beat's schedule file lives in the state directory (SMSQ_STATE_DIR), never the working one.
beat_schedule_filename = _os.path.join(_cfg.state_dir, "celerybeat-schedule")
beat_scheduler = "worker.transport.beat:Scheduler"  # makes that directory first

beat_schedule = {
    "smsq-release": {"task": "smsq.release", "schedule": _cfg.release_interval},
    "smsq-poll-pending": {"task": "smsq.poll_pending", "schedule": _cfg.poll_interval},
    "smsq-reconcile": {"task": "smsq.reconcile", "schedule": _cfg.reconcile_interval},
    # Campaigns: start due ones, release recipients; a stale tick is dropped, not piled up.
    "smsq-campaign-tick": {"task": "smsq.campaign_tick", "schedule": _cfg.campaign_tick_interval,
                           "options": {"expires": 10}},
    # Status callbacks: wake outboxes due a retry, catch up events a crash left unproduced.
    "smsq-callbacks-tick": {"task": "smsq.callbacks_tick", "schedule": _cfg.release_interval,
                            "options": {"expires": 10}},
}
