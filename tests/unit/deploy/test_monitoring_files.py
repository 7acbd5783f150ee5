"""The alert rules pass `promtool check rules` and their own `promtool test rules`; the Grafana
dashboard is well-formed."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import yaml

from tests.support.prerequisites import require_promtool

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"


def test_alert_rules_pass_promtool():
    promtool = require_promtool()
    done = subprocess.run([promtool, "check", "rules", str(DEPLOY / "prometheus-rules.yml")],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 9 rules found" in done.stdout


def test_alert_rules_fire_on_what_they_watch():
    """The fleet and callback alerts, by promtool's own rule tests (deploy/prometheus-rules.test.yml)."""
    promtool = require_promtool()
    done = subprocess.run([promtool, "test", "rules", str(DEPLOY / "prometheus-rules.test.yml")],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_dashboard_panels_each_query_something():
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    assert dashboard["uid"] == "songqueue"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert all(panel["targets"] and all(t["expr"] for t in panel["targets"]) for panel in dashboard["panels"])


def test_the_dashboard_charts_every_metric_an_alert_fires_on():
    """An operator paged by an alert finds what it watches on the dashboard."""
    def names(expr: str) -> set[str]:  # a histogram's or counter's series by the metric's name
        return {re.sub(r"_(bucket|sum|count|total)$", "", m) for m in re.findall(r"songqueue_[a-z_]+", expr)}

    rules = yaml.safe_load((DEPLOY / "prometheus-rules.yml").read_text())
    alerted = {r["alert"]: names(r["expr"]) for g in rules["groups"] for r in g["rules"] if "alert" in r}
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    charted = set().union(*(names(t["expr"]) for p in dashboard["panels"] for t in p["targets"]))
    assert {alert: metrics - charted for alert, metrics in alerted.items() if metrics - charted} == {}

