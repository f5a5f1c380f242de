"""Config reload: the chosen carrier changes without a restart; untouched carriers keep their sockets."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from adapters.carrier_sim import CarrierSim
from adapters.client import AsyncClient
from tests.e2e.harness import (
    DaemonProcess,
    Router,
    SimOptions,
    all_bound,
    carrier_entry,
    render_config,
    route,
    text_of,
    until,
)


def _ports(r: Router, name: str) -> list[int | None]:
    assert r.app is not None
    return [b.local_port for b in r.app.pools[name].binds]


async def test_reload_moves_traffic_and_keeps_untouched_binds(tmp_path: Path) -> None:
    sims = {"a": SimOptions(), "b": SimOptions(), "c": SimOptions()}
    entries = {"a": {"binds": {"transceiver": 2}}, "b": {}, "c": {}}
    async with Router(tmp_path, sims, [route("", ("a", 0.001), ("b", 0.002), ("c", 0.003))],
                      entries=entries) as r:
        before = {name: _ports(r, name) for name in sims}
        reply = await r.client.submit("ACME", "4915112345678", text="before")
        await until(lambda: r.sims["a"].received, what="sent on a")

        # Make b the cheapest, give c new credentials (a rebind), leave a alone.
        r.config_path.write_text(r.config_text(
            routes=[route("", ("a", 0.004), ("b", 0.002), ("c", 0.003))],
            entries={**entries, "c": {"system_type": "NEW"}},
        ))
        assert await r.app.reload("test") is True  # type: ignore[union-attr]
        await r.wait_bound()
        after = {name: _ports(r, name) for name in sims}
        reply2 = await r.client.submit("ACME", "4915112345678", text="after")
        await until(lambda: r.sims["b"].received, what="sent on b")
        mdrs = [(await r.client.status(m["id"]))["mdr"] for m in (reply, reply2)]

        # A bad edit is refused and changes nothing.
        r.config_path.write_text(r.config_path.read_text() + "\n[bogus]\nkey = 1\n")
        assert await r.app.reload("test") is False  # type: ignore[union-attr]
        reply3 = await r.client.submit("ACME", "4915112345678", text="still b")
        await until(lambda: len(r.sims["b"].received) == 2, what="b still chosen")

    assert [m["carrier"] for m in mdrs] == ["a", "b"]
    assert reply3["ok"]
    assert after["a"] == before["a"] and None not in after["a"], "a was not touched: same sockets"
    assert after["b"] == before["b"], "b only changed cost: same socket"
    assert after["c"] != before["c"], "c's credentials changed: rebound"
    assert r.sims["a"].stats["connections"] == 2 and r.sims["b"].stats["connections"] == 1
    assert r.sims["c"].stats["connections"] == 2
    assert [text_of(rec) for rec in r.sims["a"].received] == ["before"]


async def test_sighup_reloads_the_daemon_process(tmp_path: Path, processes: list) -> None:
    sims = {name: CarrierSim(SimOptions()) for name in ("a", "b")}
    for sim in sims.values():
        await sim.start()
    try:
        socket_url = f"unix://{tmp_path}/router.sock"
        cfg = tmp_path / "router.toml"

        def write(cost_a: float) -> None:
            cfg.write_text(render_config(
                socket_url=socket_url,
                carriers=[carrier_entry(n, s.port) for n, s in sims.items()],
                routes=[route("", ("a", cost_a), ("b", 0.002))],
            ))

        write(0.001)
        daemon = DaemonProcess(cfg, socket_url)
        processes.append(daemon)
        daemon.start()
        client = await _connect_ready(daemon)
        await client.submit("ACME", "4915112345678", text="one")
        await until(lambda: sims["a"].received, what="sent on a")
        write(0.009)
        assert daemon.proc is not None
        os.kill(daemon.proc.pid, signal.SIGHUP)
        await until(lambda: _reloaded_by_signal(daemon), what="a reload on SIGHUP logged")
        await client.submit("ACME", "4915112345678", text="two")
        await until(lambda: sims["b"].received, what="sent on b after SIGHUP")
        await client.close()
        assert await asyncio.to_thread(daemon.terminate) == 0
        assert [sims[n].stats["connections"] for n in ("a", "b")] == [1, 1], "no rebind for a cost change"
    finally:
        for sim in sims.values():
            await sim.stop()


async def _connect_ready(daemon: DaemonProcess) -> AsyncClient:
    async def ready() -> AsyncClient | None:
        try:
            client = await AsyncClient.connect(daemon.socket_url, timeout=5)
        except OSError:
            return None
        if all_bound(await client.stats()):
            return client
        await client.close()
        return None

    return await until(ready, timeout=20, what="daemon ready")  # type: ignore[no-any-return]


def _reloaded_by_signal(daemon: DaemonProcess) -> bool:
    lines = daemon.log_path.read_text().splitlines()
    return any('"config reloaded"' in line and '"trigger": "signal"' in line for line in lines)
