"""The demo's scenario, its judgment and its summary, without processes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from router.config import parse_config
from router.demo_report import metric_samples, percentile, progress_line, summarize
from router.demo_scenario import (
    BATCH,
    INVALID,
    KILL_DETECT_S,
    KILLED,
    PICKY,
    REJECTED_PREFIX,
    ROUTES,
    KillWindow,
    Planned,
    Scenario,
    judge,
    render_config,
)
from router.model import iso_ms, parse_iso

T0 = 1_800_000_000.0


# -- the plan ------------------------------------------------------------------------


def test_the_plan_is_fixed_by_count_and_seed() -> None:
    a, b = Scenario(200, 10.0), Scenario(200, 10.0)
    assert [(p.kind, p.request, p.at) for p in a.plan] == [(p.kind, p.request, p.at) for p in b.plan]
    assert [p.request for p in Scenario(200, 10.0, seed=1).plan] != [p.request for p in a.plan]


def test_the_plan_has_the_mix_and_every_invalid_request_once() -> None:
    sc = Scenario(500, 12.0)
    kinds = [p.kind for p in sc.plan]
    assert len(sc.plan) == 500 and [p.index for p in sc.plan] == list(range(500))
    assert kinds.count("invalid") == len(INVALID) and kinds.count("batch") == BATCH
    otps = [p for p in sc.plan if p.kind == "otp"]
    assert len(otps) == round(0.30 * (500 - len(INVALID) - BATCH)) and all(p.request["priority"] == 1 for p in otps)
    assert all(len(p.request["text"]) > 320 for p in sc.plan if p.kind == "reminder")  # 3 parts
    assert all(any(ord(c) > 0xFF for c in p.request["text"]) for p in sc.plan if p.kind == "unicode")
    assert len({p.request["from"] for p in sc.plan}) > 150
    rejected = [p for p in sc.plan if p.kind == "rejected"]
    assert rejected and all(p.request["to"].startswith(REJECTED_PREFIX) for p in rejected)
    assert all((p.expect, p.expect_error) == ("REJECTED", "ESME_RINVDSTADR") for p in rejected)
    assert sc.expected_counts() == {
        "DELIVERED": 471, "REJECTED": 24, "invalid_number": 2, "no_route": 1, "too_long": 1,
        "invalid_request": 1,
    }


def test_times_are_steady_except_the_batch_that_lands_as_the_carrier_hangs() -> None:
    sc = Scenario(100, 10.0)
    batch = [p for p in sc.plan if p.kind == "batch"]
    assert {p.at for p in batch} == {sc.batch_index / 10.0}
    assert all(p.request["to"].startswith("49") for p in batch)  # the killed carrier's route
    assert sc.hang_offset < batch[0].at < sc.kill_offset < sc.restart_offset < sc.duration
    others = [p.at for p in sc.plan if p.kind != "batch"]
    assert others == sorted(others)
    # The invalid requests are spread over the run.
    invalid = [p.index for p in sc.plan if p.kind == "invalid"]
    assert invalid[0] < 25 and invalid[-1] > 75


@pytest.mark.parametrize(("messages", "rate", "field"), [(10, 5.0, "messages"), ("60", 5.0, "messages"),
                                                          (60, 0.0, "rate"), (60, -1.0, "rate")])
def test_bad_scenario_settings_name_the_field(messages: Any, rate: float, field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}: "):
        Scenario(messages, rate)


def test_the_generated_config_is_valid_and_the_killed_carrier_is_cheapest() -> None:
    text = render_config(socket_url="tcp://127.0.0.1:7600", metrics="127.0.0.1:9464",
                         ports={"budget": 2001, "hexnet": 2002, "strict": 2003})
    config = parse_config(text, base_dir=Path("/tmp/demo"), env={})
    assert [(c.name, c.port) for c in config.carriers] == [("budget", 2001), ("hexnet", 2002), ("strict", 2003)]
    assert config.router.state_dir == Path("/tmp/demo")
    assert all(c.receipt_timeout_s <= 10 and c.reconnect_max_s <= 1 for c in config.carriers)
    cheapest = {prefix: min(cands, key=lambda c: c[1])[0] for prefix, cands in ROUTES}
    assert cheapest == {"1": KILLED, "49": KILLED, "44": PICKY, "33": "hexnet"}
    assert min((cost, name) for _, cands in ROUTES for name, cost in cands)[1] == KILLED
    assert any(n.match == "ACMEBANK" for n in config.limits.numbers)
    assert {c.name: c.message_id_format for c in config.carriers}["hexnet"] == "dec"
    with pytest.raises(KeyError, match="strict"):
        render_config(socket_url="tcp://127.0.0.1:7600", metrics="", ports={"budget": 1, "hexnet": 2})


# -- judging -------------------------------------------------------------------------


def _mdr(rid: str, status: str, carrier: str, error: str | None = None, at: float = T0) -> dict[str, Any]:
    return {"id": rid, "status": status, "carrier": carrier, "error": error,
            "attempts": [{"carrier": carrier, "at": iso_ms(at), "status": "ESME_ROK"}]}


def _plan() -> list[Planned]:
    return [
        Planned(0, "otp", 0.0, {"to": "4915123456789"}, "DELIVERED"),
        Planned(1, "rejected", 0.1, {"to": REJECTED_PREFIX + "123"}, "REJECTED", "ESME_RINVDSTADR"),
        Planned(2, "invalid", 0.2, {"to": "x"}, "refused", "invalid_number"),
    ]


def _judge(replies: list[Any], mdrs: dict[str, Any], failovers: float = 1.0) -> tuple[list[str], dict[str, int]]:
    kill = KillWindow(KILLED, T0 - 1.0, T0)
    return judge(_plan(), replies, mdrs, kill, failovers, parse_iso)


GOOD_REPLIES = [{"ok": True, "id": "a"}, {"ok": True, "id": "b"}, {"ok": False, "error": "invalid_number"}]


def test_a_run_as_planned_has_no_problems() -> None:
    mdrs = {"a": _mdr("a", "DELIVERED", "hexnet"), "b": _mdr("b", "REJECTED", PICKY, "ESME_RINVDSTADR")}
    problems, counts = _judge(GOOD_REPLIES, mdrs)
    assert problems == []
    assert counts == {"DELIVERED": 1, "REJECTED": 1, "invalid_number": 1}


@pytest.mark.parametrize("error", ["in_doubt", "no_receipt"])
def test_unknown_on_the_killed_carrier_at_the_kill_is_explained(error: str) -> None:
    mdrs = {"a": _mdr("a", "UNKNOWN", KILLED, error, at=T0 - 0.5),
            "b": _mdr("b", "REJECTED", PICKY, "ESME_RINVDSTADR")}
    problems, counts = _judge(GOOD_REPLIES, mdrs)
    assert problems == [] and counts[f"UNKNOWN/{error}"] == 1


@pytest.mark.parametrize(("carrier", "error", "at"), [
    ("hexnet", "in_doubt", T0),  # another carrier
    (KILLED, "in_doubt", T0 + KILL_DETECT_S + 5),  # long after the kill
    (KILLED, "in_doubt", T0 - 60),  # long before
    (KILLED, "receipt_unknown", T0),  # an UNKNOWN the kill does not explain
])
def test_unknown_the_kill_does_not_explain_is_a_mismatch(carrier: str, error: str, at: float) -> None:
    mdrs = {"a": _mdr("a", "UNKNOWN", carrier, error, at=at), "b": _mdr("b", "REJECTED", PICKY, "ESME_RINVDSTADR")}
    problems, _ = _judge(GOOD_REPLIES, mdrs)
    assert problems == [f"#0 otp to 4915123456789: expected DELIVERED, got UNKNOWN ({error}) on {carrier}"]


def test_each_kind_of_deviation_is_reported() -> None:
    replies = [{"ok": True, "id": "a"}, {"ok": True, "id": "b"}, {"ok": True, "id": "c"}]
    mdrs = {"b": _mdr("b", "DELIVERED", PICKY)}
    problems, _ = _judge(replies, mdrs, failovers=0)
    assert problems == [
        "#0 otp to 4915123456789: no MDR for router id a",
        f"#1 rejected to {REJECTED_PREFIX}123: expected REJECTED/ESME_RINVDSTADR, got DELIVERED (None) on strict",
        "#2 invalid to x: expected refusal invalid_number, got accepted",
        "failover_total: expected >= 1 after the kill, got 0",
    ]
    problems, _ = _judge([None, {"ok": False, "error": "overloaded", "message": "queue full"},
                          {"ok": False, "error": "no_route"}], {})
    assert problems == [
        "#0 otp to 4915123456789: no reply from the router",
        f"#1 rejected to {REJECTED_PREFIX}123: expected acceptance, refused overloaded: queue full",
        "#2 invalid to x: expected refusal invalid_number, got no_route",
    ]


# -- the summary ---------------------------------------------------------------------

METRICS = """\
# HELP smpp_router_failover_total Messages moved to another carrier.
# TYPE smpp_router_failover_total counter
smpp_router_failover_total{from_carrier="budget",to_carrier="hexnet"} 4.0
smpp_router_failover_total{from_carrier="budget",to_carrier="strict"} 0.0
smpp_router_failover_created{from_carrier="budget",to_carrier="hexnet"} 1.7e+09
smpp_router_in_doubt 6.0
"""


def test_metric_samples_read_labels_and_values() -> None:
    assert metric_samples(METRICS, "smpp_router_failover_total") == [
        ({"from_carrier": "budget", "to_carrier": "hexnet"}, 4.0),
        ({"from_carrier": "budget", "to_carrier": "strict"}, 0.0),
    ]
    assert metric_samples(METRICS, "smpp_router_in_doubt") == [({}, 6.0)]
    assert metric_samples("", "smpp_router_in_doubt") == []


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([float(i) for i in range(1, 101)], 99) == 99.0
    assert percentile([5.0], 99) == 5.0


def _final(rid: str, status: str, carrier: str, cost: float, segments: int, latency: float,
           error: str | None = None) -> dict[str, Any]:
    return {"id": rid, "status": status, "carrier": carrier, "cost": cost, "segments": segments, "error": error,
            "carrier_ids": ["1"] if status != "REJECTED" else [],
            "accepted_at": iso_ms(T0), "submitted_at": iso_ms(T0 + 0.01), "done_at": iso_ms(T0 + 0.01 + latency)}


def test_summary_counts_statuses_carriers_cost_failovers_and_latency() -> None:
    mdrs = [
        _final("1", "DELIVERED", "budget", 0.0025, 1, 0.100),
        _final("2", "DELIVERED", "hexnet", 0.0135, 3, 0.200),
        _final("3", "REJECTED", "strict", 0.0, 1, 0.0, "ESME_RINVDSTADR"),
        _final("4", "UNKNOWN", "budget", 0.0025, 1, 0.0, "in_doubt"),
    ]
    lines = summarize(mdrs, parse_time=parse_iso, refusals={"no_route": 1}, metrics_text=METRICS,
                      push_s=2.0, total_s=5.0)
    text = "\n".join(lines)
    assert "  DELIVERED                               2" in lines
    assert "  REJECTED (ESME_RINVDSTADR)              1" in lines
    assert "  UNKNOWN (in_doubt)                      1" in lines
    assert "  refused no_route                        1" in lines
    assert "  budget                       2         2          1    0.0050" in lines
    assert "  hexnet                       1         3          1    0.0135" in lines
    assert "  total                        4                         0.0185" in lines
    assert "failovers (failover_total): 4  (budget→hexnet 4)" in lines
    assert "receipt latency (carrier accept → receipt): p50 100 ms, p99 200 ms" in lines
    assert "delivery latency (router accept → receipt): p50 110 ms, p99 210 ms" in lines
    assert "throughput: 2.0 messages/s accepted while pushing (4 in 2.0 s); 5 segments accepted by carriers" in text


def test_progress_line_fills_its_bar() -> None:
    line = progress_line(sent=50, total=100, final=40, accepted=48, phase="budget killed", elapsed=12.34)
    assert line.startswith("[" + "#" * 15 + "." * 15 + "] 50/100 sent  40/48 final  budget killed")
    assert line.endswith(" 12.3 s") and "\n" not in line
