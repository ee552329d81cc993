#!/bin/sh
# Selects the process this container runs; extra arguments go to that process.
#   worker [celery worker args]   e.g. worker -Q smsq.smsclub -n smsclub@%h -c 4
#   beat                          exactly one per deployment
#   webhooks                      the delivery-report receiver on :8088 (SMSQ_WEBHOOK_PORT)
#   sandbox                       the five gateway simulators (demo only) on SANDBOX_PORT
#                                 (default 18000) .. +8, control on +9
#   metrics                       only the deployment-wide Redis gauges
set -eu

role="${1:-worker}"
[ "$#" -gt 0 ] && shift

case "$role" in
  worker)
    # Warm shutdown on SIGTERM: running sends finish (celeryconfig's soft
    # shutdown), unacked tasks go back to Redis (acks_late).
    exec celery -A worker worker --without-gossip --without-mingle -l INFO "$@"
    ;;
  beat)
    # the schedule file goes in SMSQ_STATE_DIR (celeryconfig.beat_schedule_filename)
    exec celery -A worker beat -l INFO "$@"
    ;;
  webhooks)
    # waitress; address, port, threads, limits: SMSQ_WEBHOOK_* (the image binds 0.0.0.0)
    exec smsq webhooks "$@"
    ;;
  metrics)
    exec smsq metrics-serve "$@"
    ;;
  sandbox)
    # Simulators on 18000-18008, control on 18009. When SANDBOX_CALLBACK_BASE is
    # set (e.g. http://demo-receiver:8088/<token>), delivery reports are pushed there.
    port="${SANDBOX_PORT:-18000}"
    smsq sandbox --host "${SANDBOX_HOST:-0.0.0.0}" --port "$port" "$@" &
    pid=$!
    SANDBOX_CONTROL="http://127.0.0.1:$((port + 9))/__sandbox__/config"
    export SANDBOX_CONTROL
    if [ -n "${SANDBOX_CALLBACK_BASE:-}" ]; then
      python - <<'PY'
import json, os, time, urllib.request
base = os.environ["SANDBOX_CALLBACK_BASE"].rstrip("/")
body = json.dumps({"callbacks": {g: [f"{base}/{g}"] for g in ("smsru", "smsc", "gatum")}})
for _ in range(50):
    try:
        req = urllib.request.Request(os.environ["SANDBOX_CONTROL"],
                                     data=body.encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=2)
        break
    except OSError:
        time.sleep(0.2)
PY
    fi
    trap 'kill -TERM "$pid"' TERM INT
    wait "$pid"
    ;;
  *)
    exec "$role" "$@"
    ;;
esac
