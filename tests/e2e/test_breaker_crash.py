"""kill -9 while receipts are flowing, then restart: every acknowledged message ends final
and correct. The simulated carrier sends each receipt a little after the submit and sends
again whatever deliver_sm was left unanswered when the connection died, so a receipt the
crash interrupted comes back and must settle its MDR — none may stay SUBMITTED."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.e2e.harness import (
    DaemonProcess,
    Load,
    SimProcess,
    carrier_entry,
    render_config,
    route,
    until,
)

#: What an acknowledged message may end as here: DELIVERED, or in doubt (on the wire when
#: the daemon died; its receipt may still turn it DELIVERED).
FINAL_OK = {"DELIVERED", "UNKNOWN"}


async def test_kill_9_while_receipts_flow_leaves_no_mdr_waiting(tmp_path: Path, processes: list) -> None:
    sim = SimProcess(tmp_path, "acme", "--dlr-delay-ms", "150")
    processes.append(sim)
    socket_url = f"unix://{tmp_path}/router.sock"
    cfg = tmp_path / "router.toml"
    cfg.write_text(render_config(
        socket_url=socket_url, carriers=[carrier_entry("acme", sim.port, tps=500)],
        routes=[route("", ("acme", 0.001))],
    ))
    daemon = DaemonProcess(cfg, socket_url)
    processes.append(daemon)
    daemon.start()
    await asyncio.to_thread(daemon.wait_ready)
    load = Load(socket_url, interval=0.004)
    load.start()
    for pause in (0.8, 0.6):
        await asyncio.sleep(pause)
        daemon.kill9()  # receipts for the last ~150 ms of submits are in the air
        daemon.start()
        await asyncio.to_thread(daemon.wait_ready)
    await asyncio.sleep(0.4)
    await load.stop()
    ids = {mid for mid, _ in load.acked.values()}
    assert len(ids) > 100, f"only {len(ids)} acknowledged"

    def settled() -> bool:
        status = {m["id"]: m for m in daemon.mdrs() if m["id"] in ids}
        return len(status) == len(ids) and all(_final_ok(m) for m in status.values())

    started = time.monotonic()
    try:
        await until(settled, timeout=20, what="every acknowledged MDR final")
    finally:
        left = [(m["id"], m["status"], m["error"]) for m in daemon.mdrs() if m["id"] in ids and not _final_ok(m)]
        counts: dict[str, int] = {}
        for m in daemon.mdrs():
            counts[m["status"]] = counts.get(m["status"], 0) + 1
        print(f"{len(ids)} acked, {counts}; not final after {time.monotonic() - started:.1f} s: {left[:10]}")
    assert daemon.terminate() == 0


def _final_ok(mdr: dict) -> bool:
    if mdr["status"] == "UNKNOWN":
        return mdr["error"] == "in_doubt"
    return mdr["status"] in FINAL_OK
