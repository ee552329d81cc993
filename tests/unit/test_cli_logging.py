"""`smsq` keeps its stdout for output: log lines (a deferred enqueue's warning, say) go to
stderr, so `smsq send --json | jq` never reads a log line."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.deploy.conftest import ROOT

PROBE = """
import sys, structlog
from worker.cli.main import entry
sys.argv = ["smsq", "providers", "--json"]
code = entry()
structlog.get_logger("smsq.producer").warning("sms_enqueue_deferred", ids=3)
structlog.get_logger("smsq.producer").info("below_the_cli_level")
sys.exit(code)
"""


def test_cli_logs_go_to_stderr_and_stdout_stays_json():
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)  # nothing but the command's own output
    assert {r["provider"] for r in rows} >= {"smsru", "smsclub", "smsc", "gatum", "sms1000"}
    assert "sms_enqueue_deferred" in done.stderr
    assert "below_the_cli_level" not in done.stderr + done.stdout
