"""kill -9 under sustained load: what was acknowledged arrives exactly once.

The daemon runs as a process (`python -m router run`) in front of two simulated
carriers, also processes, logging every submit they receive. A load generator keeps
submitting (each text carries a unique token, also its client_ref) while the daemon is
killed with SIGKILL at random moments and restarted. At the end the simulators' logs are
diffed against the acknowledged tokens and the MDRs:

- every acknowledged message has its MDR (the ack came only after the commit);
- it reached a carrier exactly once, unless its MDR says in doubt (UNKNOWN / in_doubt:
  on the wire when the daemon died, not resent), in which case at most once;
- no token at all (acknowledged or not) reached the carriers twice.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from pathlib import Path

from adapters.carrier_sim import CarrierSim, SimOptions
from adapters.client import AsyncClient
from tests.e2e.harness import (
    DaemonProcess,
    Load,
    SimProcess,
    carrier_entry,
    render_config,
    route,
    tokens_of,
    until,
)

KILLS = 5


async def test_kill_9_under_load_loses_and_duplicates_nothing(tmp_path: Path, processes: list) -> None:
    seed = int(os.environ.get("E2E_SEED", time.time_ns() % 100_000))
    rng = random.Random(seed)
    cheap = SimProcess(tmp_path, "cheap")
    processes.append(cheap)
    dear = SimProcess(tmp_path, "dear")
    processes.append(dear)
    socket_url = f"unix://{tmp_path}/router.sock"
    cfg = tmp_path / "router.toml"
    cfg.write_text(render_config(
        socket_url=socket_url,
        carriers=[carrier_entry("cheap", cheap.port, tps=300), carrier_entry("dear", dear.port, tps=300)],
        routes=[route("", ("cheap", 0.001), ("dear", 0.002))],
    ))
    daemon = DaemonProcess(cfg, socket_url)
    processes.append(daemon)
    daemon.start()
    await asyncio.to_thread(daemon.wait_ready)

    load = Load(socket_url, interval=0.004)
    load.start()
    for _ in range(KILLS):
        await asyncio.sleep(rng.uniform(0.3, 1.2))
        daemon.kill9()
        daemon.start()
        await asyncio.to_thread(daemon.wait_ready)
    await asyncio.sleep(0.5)
    await load.stop()

    ids = {mid: tok for tok, (mid, _) in load.acked.items()}
    await until(lambda: _settled(daemon, ids), timeout=20, what="every acknowledged message settled")
    assert daemon.terminate() == 0
    cheap.stop()
    dear.stop()

    mdrs = {m["id"]: m for m in daemon.mdrs()}
    by_ref = {m["client_ref"]: m for m in mdrs.values()}
    seen = tokens_of([*cheap.records(), *dear.records()])
    in_doubt = 0
    context = f"seed {seed}, {len(load.acked)} acked of {len(load.sent)} sent"
    assert len(load.acked) > 200, context
    for token, (mid, _) in load.acked.items():
        mdr = mdrs.get(mid)
        assert mdr is not None and mdr["client_ref"] == token, (context, token, mid, mdr)
        arrived = len(seen.get(token, []))
        if mdr["status"] == "UNKNOWN":
            assert mdr["error"] == "in_doubt" and arrived <= 1, (context, mdr, arrived)
            in_doubt += 1
        else:
            assert mdr["status"] in ("SUBMITTED", "DELIVERED") and arrived == 1, (context, mdr, arrived)
    for token, recs in seen.items():
        if len(recs) > 1:
            mdr = by_ref.get(token)
            assert mdr is not None and mdr["status"] == "UNKNOWN", (context, token, len(recs), mdr)
    print(f"{context}; in doubt {in_doubt}; unacked but sent {len(set(seen) - set(load.acked))}")


def _settled(daemon: DaemonProcess, ids: dict[str, str]) -> bool:
    status = {m["id"]: m["status"] for m in daemon.mdrs() if m["id"] in ids}
    return len(status) == len(ids) and not {"QUEUED", "SENDING"} & set(status.values())


async def test_messages_in_doubt_after_a_crash_are_counted_as_in_doubt(tmp_path: Path, processes: list) -> None:
    sim = CarrierSim(SimOptions())
    await sim.start()
    try:
        socket_url = f"unix://{tmp_path}/router.sock"
        cfg = tmp_path / "router.toml"
        cfg.write_text(render_config(
            socket_url=socket_url, carriers=[carrier_entry("acme", sim.port, response_timeout_s=30)],
            routes=[route("", ("acme", 0.001))],
        ))
        daemon = DaemonProcess(cfg, socket_url)
        processes.append(daemon)
        daemon.start()
        await asyncio.to_thread(daemon.wait_ready)
        sim.stall()  # written, never answered: the daemon dies with both on the wire
        client = await AsyncClient.connect(socket_url)
        for to in ("4915100000001", "4915100000002"):
            assert (await client.submit("ACME", to, text="otp 1234"))["ok"]
        await until(lambda: sim.stats["ignored"] == 2, what="both on the wire")
        await client.close()
        daemon.kill9()
        sim.resume()
        daemon.start()
        stats = await asyncio.to_thread(daemon.wait_ready)
        doubt = [m for m in daemon.mdrs() if m["status"] == "UNKNOWN" and m["error"] == "in_doubt"]
        assert len(doubt) == 2
        assert stats["queues"]["in_doubt"] == 2, stats["queues"]
        assert daemon.terminate() == 0
    finally:
        await sim.stop()
