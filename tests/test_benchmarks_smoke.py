"""The pipeline benchmark runs end to end at its smallest size and reports every figure.

It starts real processes (two simulators, the daemon twice, mosquitto when installed),
so it also checks that the scenario's config is accepted and that the load reaches
the carriers. The figures themselves are not judged here: on a shared test machine
they say little; ``python -m benchmarks.pipeline`` is where they are read.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks._load import (
    MIX,
    NUMBERS,
    PARTS,
    SEGMENTS_PER_MESSAGE,
    messages,
    sources,
    token_of,
)
from benchmarks._profile import self_time
from router.text import measure, render

ROOT = Path(__file__).resolve().parents[1]
RESULT = re.compile(r"^RESULT (\w+)=(\S+) (\S+)$", re.MULTILINE)


def test_scenario_mix_and_tokens_survive_rendering() -> None:
    """Every kind renders to the parts the table claims, and its token is found in part 1 only."""
    assert len(set(sources())) == NUMBERS >= 1000
    seen: dict[str, int] = {}
    for msg in messages(12_345_670, len(MIX)):
        encoding, parts = measure(msg.text)
        assert parts == PARTS[msg.kind], msg.kind
        assert encoding == ("ucs2" if msg.kind == "ucs2" else "gsm7")
        tokens = [token_of(p.short_message, 0x40 if p.esm_class_udhi else 0, p.data_coding)
                  for p in render(msg.text, encoding, ref=msg.token)]
        assert tokens == [msg.token] + [None] * (parts - 1)
        seen[msg.kind] = seen.get(msg.kind, 0) + 1
    assert seen == {"gsm1": 6, "gsm3": 2, "ucs2": 2}
    assert SEGMENTS_PER_MESSAGE == 1.4


def test_every_number_sends_the_whole_mix() -> None:
    """Over ten rounds each number sends every kind, so no number is capped by 3-part texts."""
    kinds: dict[str, set[str]] = {}
    for msg in messages(0, 10 * NUMBERS):
        kinds.setdefault(msg.source, set()).add(msg.kind)
    assert len(kinds) == NUMBERS
    assert all(k == {"gsm1", "gsm3", "ucs2"} for k in kinds.values())


def test_pipeline_quick_prints_its_results() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.pipeline", "--quick"],
        check=False, cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = {name: (float(value), unit) for name, value, unit in RESULT.findall(proc.stdout)}
    expected = {
        "pipeline_msgs_per_s": "1/s",
        "pipeline_vs_direct": "x",
        "accept_to_submit_p99_ms": "ms",
        "router_cpu_us_per_msg": "us",
        "final_mdrs_per_s": "1/s",
        "router_cpu_us_per_msg_with_receipts": "us",
    }
    if "mosquitto not found" not in proc.stderr:
        expected["final_mdrs_per_s_mqtt"] = "1/s"
    assert {name: unit for name, (_, unit) in results.items()} == expected, proc.stdout
    for name, (value, _) in results.items():
        assert math.isfinite(value) and value > 0, (name, value)
    # Every message sent through the router reached a carrier: the "missing" column is 0.
    table = proc.stdout.split("RESULT", 1)[0]
    rows = {line.split()[0]: line.split() for line in table.splitlines() if line.startswith(("direct", "pipeline"))}
    assert rows["direct"][3] == "0" and rows["pipeline"][3] == "0", table


def test_profile_ranks_self_and_inclusive_time() -> None:
    raw = (
        "<module> (router/__main__.py:6);run (router/app.py:10);pump (/x/router/dispatch.py:12) 6\n"
        "<module> (router/__main__.py:6);run (router/app.py:10);pump (/x/router/dispatch.py:14) 2\n"
        "<module> (router/__main__.py:6);run (router/app.py:11);_flush (/x/adapters/smpp/bind.py:3) 2\n"
        " 1\n"
    )
    profile = self_time(raw)
    assert profile.total == 11
    assert profile.functions == [
        ("pump (router/dispatch.py)", 8), ("_flush (adapters/smpp/bind.py)", 2), ("(no Python frame)", 1),
    ]
    assert profile.modules[:2] == [("router/dispatch.py", 8), ("adapters/smpp/bind.py", 2)]
    assert dict(profile.inclusive)["run (router/app.py)"] == 10
    with pytest.raises(ValueError, match="not 'stack count'"):
        self_time("garbage-without-count\n")


@pytest.mark.slow
def test_memory_stays_flat_over_ten_minutes() -> None:
    """The issue's goal, on demand (``pytest -m slow``): receipts on at a sustainable rate
    for ten minutes, and the daemon's RSS trend stays under 20 MB per 10 minutes."""
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.pipeline", "--quick", "--soak-minutes", "10"],
        check=False, cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = {name: float(value) for name, value, _ in RESULT.findall(proc.stdout)}
    assert results["rss_growth_mb_per_10min"] < 20.0, proc.stdout[-1500:]
