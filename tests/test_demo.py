"""`smpp-router demo` end to end: simulated carriers and the router as processes, a carrier killed.

The short run (60 requests, ~10 s) is the default suite's; the default 500 is marked slow.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from adapters import demo
from router import cli
from router.demo_scenario import KILLED, Scenario


def _run(tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = demo.main(["--state-dir", str(tmp_path), *args])
    out, err = capsys.readouterr()
    return code, out, err


def _check_run(tmp_path: Path, code: int, out: str, messages: int) -> None:
    assert code == 0, out
    assert "result: OK, the run matches the expected outcome" in out
    scenario = Scenario(messages, demo.DEFAULT_RATE)
    expected = scenario.expected_counts()
    # Every refusal is there with its named error, exactly as planned.
    for code_name in ("invalid_number", "no_route", "too_long", "invalid_request"):
        assert re.search(rf"refused {code_name}\s+{expected[code_name]}$", out, re.MULTILINE), code_name
    assert re.search(rf"REJECTED \(ESME_RINVDSTADR\)\s+{expected['REJECTED']}$", out, re.MULTILINE)
    failovers = re.search(r"failovers \(failover_total\): (\d+)\s+\((.*)\)", out)
    assert failovers and int(failovers.group(1)) >= 1
    assert failovers.group(2).startswith(f"{KILLED}→")
    assert re.search(r"receipt latency .*: p50 \d+ ms, p99 \d+ ms", out)
    assert re.search(r"throughput: [\d.]+ messages/s", out)
    for name in ("budget", "hexnet", "strict"):
        assert re.search(rf"^  {name}\s+\d+\s+\d+\s+\d+\s+\d+\.\d{{4}}$", out, re.MULTILINE), name
    # The export and the last scrape are where the summary says.
    accepted = messages - sum(v for k, v in expected.items() if k[:1].islower())
    assert f"MDR export: {tmp_path / 'mdr.jsonl'} ({accepted} records)" in out
    mdrs = [json.loads(line) for line in (tmp_path / "mdr.jsonl").read_text().splitlines()]
    assert len(mdrs) == accepted
    statuses = {m["status"] for m in mdrs}
    assert statuses <= {"DELIVERED", "REJECTED", "UNKNOWN"}
    unknown = [m for m in mdrs if m["status"] == "UNKNOWN"]
    assert all(m["carrier"] == KILLED and m["error"] in ("in_doubt", "no_receipt") for m in unknown)
    delivered = sum(m["status"] == "DELIVERED" for m in mdrs)
    assert delivered + len(unknown) == expected["DELIVERED"]
    # Ids from the hex carrier were matched to its decimal receipts.
    assert any(m["carrier"] == "hexnet" and m["status"] == "DELIVERED" for m in mdrs)
    assert "smpp_router_failover_total" in (tmp_path / "metrics.prom").read_text()
    assert (tmp_path / "router.toml").exists() and (tmp_path / "router.log").exists()


def test_short_demo_matches_its_expected_outcome(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(tmp_path, capsys, "--messages", "60")
    _check_run(tmp_path, code, out, 60)
    # Not a terminal here: plain progress lines, the last one with everything final.
    lines = err.strip().splitlines()
    assert lines and "\r" not in err
    assert re.search(r"60/60 sent\s+(\d+)/\1 final", lines[-1])


def test_bad_message_count_is_refused_naming_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["demo", "--messages", "3"]) == 2
    assert "--messages: must be an int >= 50, got 3" in capsys.readouterr().err


def test_bad_rate_is_refused_naming_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.main(["--rate", "0"]) == 2
    assert "--rate: must be > 0" in capsys.readouterr().err


@pytest.mark.slow
def test_default_demo_matches_its_expected_outcome(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(tmp_path, capsys)
    _check_run(tmp_path, code, out, 500)


def test_a_state_dir_holding_a_store_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "router.db").write_bytes(b"")
    assert demo.main(["--messages", "60", "--state-dir", str(tmp_path)]) == 2
    assert f"--state-dir: {tmp_path} already holds a router store" in capsys.readouterr().err
    assert not (tmp_path / "router.toml").exists()
