"""deploy/prometheus: alert rules use metrics smsq exports, and each is explained in the guide."""

from __future__ import annotations

import re
from typing import Any

import yaml

from tests.deploy.conftest import DEPLOY, ROOT

RULES: list[dict[str, Any]] = [r for g in yaml.safe_load(
    (DEPLOY / "prometheus" / "alerts.yml").read_text())["groups"] for r in g["rules"]]
GUIDE = (ROOT / "docs" / "OPERATIONS.md").read_text()
SOURCE = "\n".join(p.read_text() for p in sorted((ROOT / "worker").rglob("*.py")))


def exported() -> set[str]:
    """Names worker/ops/metrics.py defines, with the suffixes prometheus-client adds."""
    names = set(re.findall(r'"(smsq_[a-z_]+)"', SOURCE))
    return names | {n + s for n in names for s in ("_total", "_count", "_sum", "_bucket")}


def test_every_alert_uses_only_exported_metrics():
    """An alert on a metric nobody exports would never fire."""
    known = exported()
    for rule in RULES:
        used = set(re.findall(r"\b(smsq_[a-z_]+)", rule["expr"]))
        assert used <= known, f"{rule['alert']}: unknown {used - known}"


def test_every_alert_is_explained_in_the_operators_guide():
    """docs/OPERATIONS.md has a section per alert saying what it means and what to do."""
    for rule in RULES:
        assert f"### {rule['alert']}" in GUIDE, rule["alert"]


def test_prometheus_scrapes_every_live_smsq_service():
    """prometheus.yml scrapes each production worker and the receiver."""
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
    targets = {t.split(":")[0] for job in yaml.safe_load(
        (DEPLOY / "prometheus" / "prometheus.yml").read_text())["scrape_configs"]
        for sc in job["static_configs"] for t in sc["targets"]}
    live = {n for n, s in compose.items() if "live" in s.get("profiles", [])
            and (s.get("command") or [""])[0] in ("worker", "webhooks")}
    assert live == targets
