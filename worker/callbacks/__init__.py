"""Status callbacks to the producing application (issue 15).

    subscription  what a producer asked for (a Celery task, or a signed HTTPS URL)
    events        the one call the pipeline makes on a status change (`notify`)
    outbox        each subscription's ordered events in Redis, one flusher at a time
    delivery      flush an outbox: retries with backoff, circuit, parking
    signing       Standard Webhooks signatures and the HTTP POST
    guard         which URLs outbound callback HTTP may reach
    sweep         beat's pass: wake due outboxes, catch up missed events
    replay        re-send a job's current statuses
"""

from worker.callbacks.events import notify

__all__ = ["notify"]
