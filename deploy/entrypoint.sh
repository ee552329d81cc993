#!/bin/sh
# Selects the process this container runs; extra arguments go to that process.
#   worker [celery worker args]   e.g. worker -Q smsq.smsclub -n smsclub@%h -c 4
#   beat                          exactly one per deployment
#   webhooks                      the delivery-report receiver on :8088
#   sandbox                       the five gateway simulators (demo only)
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
    exec celery -A worker beat -s /tmp/celerybeat-schedule -l INFO "$@"
    ;;
  webhooks)
    exec smsq webhooks --host 0.0.0.0 --port 8088 "$@"
    ;;
  metrics)
    exec smsq metrics-serve "$@"
    ;;
  sandbox)
    # Simulators on 18000-18008, control on 18009. When SANDBOX_CALLBACK_BASE is
    # set (e.g. http://demo-receiver:8088/<token>), delivery reports are pushed there.
    smsq sandbox --host 0.0.0.0 --port 18000 "$@" &
    pid=$!
    if [ -n "${SANDBOX_CALLBACK_BASE:-}" ]; then
      python - <<'PY'
import json, os, time, urllib.request
base = os.environ["SANDBOX_CALLBACK_BASE"].rstrip("/")
body = json.dumps({"callbacks": {g: [f"{base}/{g}"] for g in ("smsru", "smsc", "gatum")}})
for _ in range(50):
    try:
        req = urllib.request.Request("http://127.0.0.1:18009/__sandbox__/config",
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
