"""The Grafana dashboard and the alert rules in config/ refer only to metrics and labels
the registry really has, and cover what ops watch."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.test_metrics import exercised, samples

CONFIG = Path(__file__).resolve().parent.parent / "config"

METRIC = re.compile(r"\b(smpp_router_[a-z_]+)\b(?:\s*\{([^}]*)\})?")
MATCHER = re.compile(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)")
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
LEGEND = re.compile(r"\{\{\s*([A-Za-z_]\w*)\s*\}\}")
ALERT_LABEL = re.compile(r"\$labels\.([A-Za-z_]\w*)")


@pytest.fixture(scope="module")
def registry_labels() -> dict[str, set[str]]:
    """Sample name → label names, from a registry where every metric has been used."""
    out: dict[str, set[str]] = {}
    for name, labels in samples(exercised()):
        out.setdefault(name, set()).update(k for k, _ in labels)
    return out


def check_expr(expr: str, known: dict[str, set[str]], shown: Sequence[str] = ()) -> set[str]:
    """Assert every metric and label `expr` names exists; return the metrics it uses.

    `shown` are label names the expression's result is displayed with (legends, alert
    annotations): they must be labels of some metric the expression reads.
    """
    used = set()
    labels: set[str] = set()
    for name, matchers in METRIC.findall(expr):
        assert name in known, f"{name} (in {expr!r}) is not in the registry"
        used.add(name)
        labels |= known[name]
        for label in MATCHER.findall(matchers):
            assert label in known[name], f"{name} has no label {label!r} (in {expr!r})"
    assert used, f"no smpp_router_ metric in {expr!r}"
    for group in GROUPING.findall(expr):
        for label in filter(None, (s.strip() for s in group.split(","))):
            assert label in labels, f"grouping by {label!r}, which none of {used} has"
    for label in shown:
        assert label in labels, f"shows {label!r}, which none of {used} has (in {expr!r})"
    return used


# -- Grafana ----------------------------------------------------------------------------


def dashboard_targets(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        found = [node] if isinstance(node.get("expr"), str) else []
        return found + [t for v in node.values() for t in dashboard_targets(v)]
    if isinstance(node, list):
        return [t for v in node for t in dashboard_targets(v)]
    return []


def test_dashboard_uses_only_real_metrics_and_labels(registry_labels: dict[str, set[str]]) -> None:
    dash = json.loads((CONFIG / "grafana-dashboard.json").read_text(encoding="utf-8"))
    targets = dashboard_targets(dash["panels"])
    assert len(targets) >= 20
    used: set[str] = set()
    for t in targets:
        used |= check_expr(t["expr"], registry_labels, LEGEND.findall(t.get("legendFormat", "")))
    for var in dash["templating"]["list"]:
        if var["type"] == "query":
            match = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", var["definition"])
            assert match, var["definition"]
            name, label = match.groups()
            assert label in registry_labels[name]
    # What the dashboard is for: binds, traffic, statuses, receipts, failover, queues, latency.
    assert {
        "smpp_router_bind_up",
        "smpp_router_submitted_total",
        "smpp_router_submit_resp_total",
        "smpp_router_receipts_total",
        "smpp_router_failover_total",
        "smpp_router_queue_depth",
        "smpp_router_in_doubt",
        "smpp_router_submit_latency_seconds_bucket",
        "smpp_router_delivery_latency_seconds_bucket",
    } <= used
    assert any("histogram_quantile(0.99" in t["expr"] for t in targets)


def test_dashboard_is_importable_grafana_json() -> None:
    dash = json.loads((CONFIG / "grafana-dashboard.json").read_text(encoding="utf-8"))
    assert dash["uid"] and dash["title"] and isinstance(dash["schemaVersion"], int)
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for p in dash["panels"]:
        pos = p["gridPos"]
        assert 0 <= pos["x"] and pos["x"] + pos["w"] <= 24, p["title"]
        if p["type"] != "row":
            assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert all(t["refId"] for t in p["targets"])


# -- alert rules ------------------------------------------------------------------------


def load_yaml_subset(text: str) -> Any:
    """Block mappings, block sequences, `|` scalars, quoted and plain scalars: the YAML that
    Prometheus rule files are written in. Raises ValueError on anything else."""
    lines = [
        (len(raw) - len(raw.lstrip(" ")), raw.strip())
        for raw in text.splitlines()
        if raw.strip() and not raw.lstrip().startswith("#")
    ]
    value, end = _block(lines, 0, lines[0][0])
    if end != len(lines):
        raise ValueError(f"unparsed from line: {lines[end][1]!r}")
    return value


def _block(lines: list[tuple[int, str]], i: int, indent: int) -> tuple[Any, int]:
    if lines[i][1].startswith("- "):
        items = []
        while i < len(lines) and lines[i][0] == indent and lines[i][1].startswith("- "):
            text = lines[i][1][2:]
            if ":" not in text or text[0] in "\"'":
                items.append(_scalar(text))
                i += 1
                continue
            lines[i] = (indent + 2, text)  # the item's first key, one level in
            item, i = _block(lines, i, indent + 2)
            items.append(item)
        return items, i
    mapping: dict[str, Any] = {}
    while i < len(lines) and lines[i][0] == indent and not lines[i][1].startswith("- "):
        key, sep, rest = lines[i][1].partition(":")
        if not sep or key in mapping:
            raise ValueError(f"not a new mapping key: {lines[i][1]!r}")
        rest, i = rest.strip(), i + 1
        if rest == "|":
            body = []
            while i < len(lines) and lines[i][0] > indent:
                body.append(lines[i])
                i += 1
            base = min(n for n, _ in body)
            mapping[key] = "\n".join(" " * (n - base) + s for n, s in body) + "\n"
        elif rest:
            mapping[key] = _scalar(rest)
        elif i < len(lines) and lines[i][0] > indent:
            mapping[key], i = _block(lines, i, lines[i][0])
        elif i < len(lines) and lines[i][0] == indent and lines[i][1].startswith("- "):
            mapping[key], i = _block(lines, i, indent)  # a sequence may sit at its key's indent
        else:
            mapping[key] = None
    return mapping, i


def _scalar(text: str) -> Any:
    if text.startswith('"'):
        return json.loads(text)
    if text.startswith("'"):
        if not text.endswith("'"):
            raise ValueError(f"unterminated quote: {text!r}")
        return text[1:-1].replace("''", "'")
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if " #" in text or text[0] in "{[&*!|>%@`":
        raise ValueError(f"outside the supported subset: {text!r}")
    return text


def test_yaml_subset_reader() -> None:
    doc = "a:\n  - x: 1\n    y: 'it''s'\n  - z: |\n      line 1\n        line 2\nb: \"q\\\"\"\nc:\n- 2\n"
    assert load_yaml_subset(doc) == {
        "a": [{"x": 1, "y": "it's"}, {"z": "line 1\n  line 2\n"}], "b": 'q"', "c": [2],
    }
    with pytest.raises(ValueError):
        load_yaml_subset("a: {b: 1}\n")


def test_alert_rules_use_only_real_metrics_and_labels(registry_labels: dict[str, set[str]]) -> None:
    doc = load_yaml_subset((CONFIG / "alerts.yml").read_text(encoding="utf-8"))
    rules = [r for g in doc["groups"] for r in g["rules"]]
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning")
        assert rule["annotations"]["summary"]
        if "for" in rule:
            assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
        shown = [lbl for text in rule["annotations"].values() for lbl in ALERT_LABEL.findall(text)]
        check_expr(rule["expr"], registry_labels, shown)
    # What ops asked to be woken for.
    assert {
        "SmppRouterCarrierDown",
        "SmppRouterSubmitErrorRate",
        "SmppRouterQueueGrowing",
        "SmppRouterNoReceipts",
        "SmppRouterInDoubtGrowing",
        "SmppRouterConfigReloadFailed",
    } <= set(names)


def test_the_checker_catches_mistakes(registry_labels: dict[str, set[str]]) -> None:
    for bad in (
        "rate(smpp_router_submited_total[5m])",
        'smpp_router_submitted_total{carier="a"}',
        "sum by (status) (rate(smpp_router_submitted_total[5m]))",
    ):
        with pytest.raises(AssertionError):
            check_expr(bad, registry_labels)
    with pytest.raises(AssertionError):
        check_expr("smpp_router_in_doubt", registry_labels, ["carrier"])
