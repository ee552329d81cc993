"""smsq's engine; `celery -A worker` finds the Celery app here (loaded on first use)."""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name in ("app", "celery"):
        from worker.celery_app import app

        return app
    raise AttributeError(name)
