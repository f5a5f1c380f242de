"""The daemon as a process: SIGTERM drains, the CLI verbs work against it, a restart resumes.

`python -m router run -c FILE` with simulated carriers as processes (`--log` files).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path

from tests.e2e.harness import (
    DaemonProcess,
    Load,
    SimProcess,
    carrier_entry,
    free_port,
    render_config,
    route,
    text_of,
    tokens_of,
    until,
)


def _daemon(tmp_path: Path, carriers: list[tuple[str, int]], processes: list, **entry: object) -> DaemonProcess:
    socket_url = f"unix://{tmp_path}/router.sock"
    cfg = tmp_path / "router.toml"
    costs = [(name, 0.001 * (i + 1)) for i, (name, _) in enumerate(carriers)]
    cfg.write_text(render_config(
        socket_url=socket_url,
        carriers=[carrier_entry(name, port, **entry) for name, port in carriers],
        routes=[route("", *costs)],
    ))
    daemon = DaemonProcess(cfg, socket_url)
    processes.append(daemon)
    return daemon


def _sim(tmp_path: Path, name: str, processes: list, *flags: str) -> SimProcess:
    sim = SimProcess(tmp_path, name, *flags)
    processes.append(sim)
    return sim


async def test_sigterm_drains_and_exits_0_and_nothing_accepted_is_lost(tmp_path: Path, processes: list) -> None:
    sim = _sim(tmp_path, "acme", processes)
    daemon = _daemon(tmp_path, [("acme", sim.port)], processes, tps=200)
    daemon.start()
    await asyncio.to_thread(daemon.wait_ready)
    load = Load(daemon.socket_url, interval=0.002)
    load.start()
    await until(lambda: len(load.acked) >= 300, what="load")
    code = await asyncio.to_thread(daemon.terminate)
    await load.stop()
    assert code == 0, daemon.log_path.read_text()[-2000:]
    stopped = {m["id"]: m for m in daemon.mdrs()}
    # A graceful stop leaves every accepted message either sent or queued for the next
    # run: nothing is failed or given up because the router was stopping.
    given_up = [m for m in stopped.values() if m["status"] in ("FAILED", "REJECTED", "EXPIRED")]
    assert not given_up, given_up[:3]

    daemon.start()  # the next run sends what the last one left queued
    await asyncio.to_thread(daemon.wait_ready)
    ids = {mid for mid, _ in load.acked.values()}
    await until(lambda: _all_out(daemon, ids), timeout=20, what="queued messages sent after the restart")
    assert daemon.terminate() == 0
    sim.stop()
    seen = tokens_of(sim.records())
    for token, (mid, _) in load.acked.items():
        assert len(seen.get(token, [])) == 1, (token, mid, seen.get(token))


async def test_restart_sends_what_waited_for_a_dead_carrier(tmp_path: Path, processes: list) -> None:
    port = free_port()  # nothing listens there yet: the carrier is down
    daemon = _daemon(tmp_path, [("acme", port)], processes)
    daemon.start()
    await asyncio.to_thread(daemon.wait_ready, [], 20.0)  # socket up; the carrier's binds are not
    with_refs = [daemon.cli("send", "--from", "ACME", "--to", "4915112345678", "--text", f"queued {i}")
                 for i in range(3)]
    replies = [json.loads(p.stdout) for p in with_refs]
    assert all(p.returncode == 0 for p in with_refs) and all(r["ok"] for r in replies), with_refs
    assert {m["status"] for m in daemon.mdrs()} == {"QUEUED"}
    assert daemon.terminate() == 0

    sim = _sim(tmp_path, "acme", processes, "--port", str(port))
    assert sim.port == port
    daemon.start()
    await asyncio.to_thread(daemon.wait_ready)
    ids = {r["id"] for r in replies}
    await until(lambda: _all_out(daemon, ids), what="queued messages sent")
    assert daemon.terminate() == 0
    sim.stop()
    assert sorted(text_of(r) for r in sim.records()) == ["queued 0", "queued 1", "queued 2"]


async def test_cli_send_status_and_mdr_against_a_running_daemon(tmp_path: Path, processes: list) -> None:
    sim = _sim(tmp_path, "acme", processes)
    daemon = _daemon(tmp_path, [("acme", sim.port)], processes)
    daemon.start()
    await asyncio.to_thread(daemon.wait_ready)

    sent = daemon.cli("send", "--from", "ACME", "--to", "+4915112345678", "--text", "hello from the cli")
    assert sent.returncode == 0, sent.stderr
    reply = json.loads(sent.stdout)
    assert reply["ok"] and reply["segments"] == 1 and reply["encoding"] == "gsm7" and "ref" not in reply
    bad = daemon.cli("send", "--from", "ACME", "--to", "not-a-number", "--text", "x")
    assert bad.returncode == 1 and json.loads(bad.stdout)["error"] == "invalid_number"

    status = daemon.cli("status", "--json")
    assert status.returncode == 0, status.stderr
    stats = json.loads(status.stdout)
    assert [c["name"] for c in stats["carriers"]] == ["acme"]
    assert stats["carriers"][0]["binds"][0]["state"] == "bound"
    table = daemon.cli("status")
    assert table.returncode == 0 and "acme" in table.stdout

    await until(lambda: _all_out(daemon, {reply["id"]}), what="sent")
    jsonl = daemon.cli("mdr")
    assert jsonl.returncode == 0, jsonl.stderr
    mdrs = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert [(m["id"], m["to"], m["carrier"]) for m in mdrs] == [(reply["id"], "4915112345678", "acme")]
    as_csv = list(csv.DictReader(io.StringIO(daemon.cli("mdr", "--format", "csv").stdout)))
    assert [r["id"] for r in as_csv] == [reply["id"]]
    assert daemon.cli("mdr", "--status", "QUEUED").stdout == ""
    wrong = daemon.cli("mdr", "--status", "NOPE")
    assert wrong.returncode == 1 and "--status" in wrong.stderr
    assert daemon.terminate() == 0


def _all_out(daemon: DaemonProcess, ids: set[str]) -> bool:
    status = {m["id"]: m["status"] for m in daemon.mdrs() if m["id"] in ids}
    return len(status) == len(ids) and set(status.values()) <= {"SUBMITTED", "DELIVERED"}
