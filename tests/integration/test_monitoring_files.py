"""The Prometheus alert rules and the Grafana dashboard shipped in deploy/ are valid, and watch
only metrics the gateway exposes.

The rules are checked by promtool (Debian's prometheus package) as Prometheus would load them,
and their alerts tried on made-up series (deploy/prometheus/gateway-alerts.test.yml); the
dashboard by a JSON Schema of what Grafana's import reads.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.test_worker import moved

ROOT = Path(__file__).resolve().parents[2]
RULES = sorted((ROOT / "deploy" / "prometheus").glob("*.yml"))
ALERT_RULES = [path for path in RULES if not path.name.endswith(".test.yml")]
RULE_TESTS = [path for path in RULES if path.name.endswith(".test.yml")]
DASHBOARDS = sorted((ROOT / "deploy" / "grafana").glob("*.json"))
DASHBOARD_SCHEMA = Path(__file__).with_name("grafana_dashboard.schema.json")
#: Whatever starts like one of the gateway's metric names.
METRIC_NAME = re.compile(r"\bgateway_[a-z0-9_]+\b")
#: The samples a family of each type exposes, besides those its name alone gives.
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool not found: apt-get install prometheus (Debian's package) has it")
    return found


def test_there_are_alert_rules_their_tests_and_a_dashboard() -> None:
    assert ALERT_RULES
    assert RULE_TESTS
    assert DASHBOARDS


@pytest.mark.parametrize("rules", ALERT_RULES, ids=lambda path: path.name)
def test_the_alert_rules_load_in_prometheus(promtool: str, rules: Path) -> None:
    checked = subprocess.run(
        [promtool, "check", "rules", str(rules)], capture_output=True, text=True, timeout=60
    )

    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize("tests", RULE_TESTS, ids=lambda path: path.name)
def test_the_alerts_fire_on_the_series_they_watch(promtool: str, tests: Path) -> None:
    run = subprocess.run(
        [promtool, "test", "rules", tests.name],
        cwd=tests.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=lambda path: path.name)
def test_the_dashboard_is_one_grafana_imports(dashboard: Path) -> None:
    model = json.loads(dashboard.read_text())
    schema = json.loads(DASHBOARD_SCHEMA.read_text())
    Draft202012Validator.check_schema(schema)

    problems = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in Draft202012Validator(schema).iter_errors(model)
    ]

    assert problems == []
    ids = [panel["id"] for panel in model["panels"]]
    assert len(ids) == len(set(ids)), "panel ids repeat"


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=lambda path: path.name)
def test_no_two_panels_of_the_dashboard_overlap(dashboard: Path) -> None:
    cells: dict[tuple[int, int], str] = {}
    overlaps = []
    for panel in json.loads(dashboard.read_text())["panels"]:
        place = panel["gridPos"]
        assert place["x"] + place["w"] <= 24, panel["title"]
        for x in range(place["x"], place["x"] + place["w"]):
            for y in range(place["y"], place["y"] + place["h"]):
                if (x, y) in cells:
                    overlaps.append((cells[x, y], panel["title"]))
                cells[x, y] = panel["title"]

    assert overlaps == []


def _rule_expressions() -> list[str]:
    return [
        rule["expr"]
        for path in ALERT_RULES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


def _dashboard_expressions() -> list[str]:
    return [
        target["expr"]
        for path in DASHBOARDS
        for panel in json.loads(path.read_text())["panels"]
        for target in panel["targets"]
    ]


def exposed_names(text: str) -> set[str]:
    """Every sample name the exposition has, or would have once its families had samples."""
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ()))
        names.update(sample.name for sample in family.samples)
    return names


@pytest.mark.parametrize(
    "expressions",
    [
        pytest.param(_rule_expressions, id="rules"),
        pytest.param(_dashboard_expressions, id="dashboard"),
    ],
)
def test_every_metric_named_is_one_the_gateway_exposes(
    moves: dict[str, Any], deliver: Any, worker: Any, client: Any, expressions: Any
) -> None:
    deliver(moves, moved("A-1", "Dock 3", 1))
    worker.drain()  # every kind of counter has a sample
    exposed = exposed_names(client.get("/metrics").get_data(as_text=True))

    named = {name for expr in expressions() for name in METRIC_NAME.findall(expr)}

    assert named
    assert named - exposed == set()
