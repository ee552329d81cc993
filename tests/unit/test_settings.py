"""Settings that refuse what they cannot mean, naming the variable."""

from __future__ import annotations

import pytest


def test_webhook_processes_refuses_a_negative_count():
    from providers.errors import ConfigurationError
    from worker.settings import load

    with pytest.raises(ConfigurationError, match="SMSQ_WEBHOOK_PROCESSES"):
        load({"SMSQ_WEBHOOK_PROCESSES": "-2"})
    assert load({"SMSQ_WEBHOOK_PROCESSES": "3"}).webhook_processes == 3
