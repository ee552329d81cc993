"""Celery beat's scheduler for smsq: the stock persistent one, kept in the state directory.

`celeryconfig.beat_schedule_filename` points into SMSQ_STATE_DIR (never the
working directory, where `celerybeat-schedule.*` files used to pile up); the
directory is made, private to the user, before beat opens its file there.
"""

from __future__ import annotations

import os

from celery.beat import PersistentScheduler


class Scheduler(PersistentScheduler):  # type: ignore[misc]
    def setup_schedule(self) -> None:
        directory = os.path.dirname(os.path.abspath(self.schedule_filename))
        os.makedirs(directory, mode=0o700, exist_ok=True)
        super().setup_schedule()
