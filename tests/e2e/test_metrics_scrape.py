"""`/metrics` scraped during whole-daemon runs: the counters agree with what really happened.

The in-process tests set `[router] metrics` to a free port on 127.0.0.1 and compare the
scrape with the simulators' own records and the MDRs. Reloads are counted by a daemon
process, since only a process has SIGHUP and the config-file watcher (`App.run`).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapters.client import Client
from tests.e2e.harness import (
    DaemonProcess,
    Router,
    SimOptions,
    SimProcess,
    carrier_entry,
    free_port,
    render_config,
    route,
    until,
)

TO = "4915112345678"
REJECT_TO = "447900900123"
FINAL = frozenset({"DELIVERED", "UNDELIVERABLE", "EXPIRED", "REJECTED", "FAILED", "UNKNOWN"})
P = "smpp_router_"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Exposition text → {(sample name, labels): value}."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def scrape_text(address: str) -> str:
    """GET http://address/metrics (blocking). Raises OSError when nothing answers."""
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as resp:
        assert resp.status == 200
        return resp.read().decode("utf-8")


async def scrape(address: str) -> Samples:
    # On a thread: the endpoint is served by the loop this test runs on.
    return parse(await asyncio.to_thread(scrape_text, address))


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 for a labelled child never touched (not yet exported)."""
    return samples.get((P + name, frozenset(labels.items())), 0.0)


def _router(tmp_path: Path, sims: Mapping[str, SimOptions], *carriers: str) -> tuple[Router, str]:
    address = f"127.0.0.1:{free_port()}"
    costs = [(name, 0.001 * (i + 1)) for i, name in enumerate(carriers)]
    return Router(tmp_path, sims, [route("", *costs)], router={"metrics": address}), address


async def _submit(r: Router, n: int, *, to: str = TO, text: str = "m") -> list[str]:
    replies = await asyncio.gather(*(r.client.submit("ACME", to, text=f"{text} {i}") for i in range(n)))
    assert all(rep["ok"] for rep in replies), replies
    return [rep["id"] for rep in replies]


async def _final(r: Router, ids: Iterable[str], want: frozenset[str] = FINAL) -> dict[str, dict[str, Any]]:
    ids = list(ids)
    await until(lambda: set(r.mdr_status(ids).values()) <= want, what=f"statuses in {sorted(want)}")
    return {i: (await r.client.status(i))["mdr"] for i in ids}


LONG = "".join(f"{i:04d} " for i in range(80))  # 3 GSM parts


async def test_counters_match_what_the_carrier_received(tmp_path: Path) -> None:
    router, address = _router(tmp_path, {"acme": SimOptions(reject_numbers=("4479",))}, "acme")
    async with router as r:
        short = await _submit(r, 10, text="short")
        long = await _submit(r, 5, text=LONG)
        rejected = await _submit(r, 3, to=REJECT_TO)
        mdrs = await _final(r, short + long + rejected)
        await until(lambda: r.sims["acme"].stats["receipts_acked"] >= 25, what="every receipt answered")
        samples = await scrape(address)
        received = list(r.sims["acme"].received)

    assert len(received) == 10 + 15 + 3
    assert value(samples, "submitted_total", carrier="acme") == len(received)
    assert value(samples, "submit_resp_total", carrier="acme", status="ESME_ROK") == 25
    assert value(samples, "submit_resp_total", carrier="acme", status="ESME_RINVDSTADR") == 3
    assert value(samples, "receipts_total", carrier="acme", stat="DELIVERED") == 25  # one per part
    assert value(samples, "delivery_latency_seconds_count") == 15  # one per message
    assert value(samples, "submit_latency_seconds_count") == len(received)
    assert value(samples, "bind_up", carrier="acme", bind="transceiver-0") == 1
    assert value(samples, "carrier_healthy", carrier="acme") == 1
    assert value(samples, "queue_depth", priority="0") == 0 and value(samples, "in_doubt") == 0
    assert value(samples, "failover_total", from_carrier="acme", to_carrier="acme") == 0
    assert [m["status"] for m in mdrs.values()].count("REJECTED") == 3


async def test_mdr_total_counts_receipt_driven_changes(tmp_path: Path) -> None:
    router, address = _router(tmp_path, {"acme": SimOptions(undeliverable_numbers=("4477",))}, "acme")
    async with router as r:
        await _final(r, await _submit(r, 6))
        await _final(r, await _submit(r, 2, to="447700900123"))
        samples = await scrape(address)

    assert value(samples, "mdr_total", status="SUBMITTED") == 8
    assert value(samples, "mdr_total", status="DELIVERED") == 6
    assert value(samples, "mdr_total", status="UNDELIVERABLE") == 2


async def test_bind_up_follows_the_carrier(tmp_path: Path) -> None:
    router, address = _router(tmp_path, {"cheap": SimOptions(), "dear": SimOptions()}, "cheap", "dear")
    async with router as r:

        async def bind_up() -> tuple[float, float]:
            s = await scrape(address)
            # Exported either way: a bind that is down reads 0, it does not vanish.
            return (s[(P + "bind_up", frozenset({("carrier", "cheap"), ("bind", "transceiver-0")}))],
                    s[(P + "bind_up", frozenset({("carrier", "dear"), ("bind", "transceiver-0")}))])

        assert await bind_up() == (1, 1)
        await r.sims["cheap"].stop()
        await until(lambda: _eq(bind_up(), (0, 1)), timeout=5, what="bind_up{cheap} 0")
        # Meanwhile traffic goes to dear and is counted there.
        await _final(r, await _submit(r, 5, text="down"))
        await r.restart_sim("cheap")
        await until(lambda: _eq(bind_up(), (1, 1)), timeout=5, what="bind_up{cheap} 1 again")
        samples = await scrape(address)

    assert value(samples, "bind_flaps_total", carrier="cheap") == 1
    assert value(samples, "bind_flaps_total", carrier="dear") == 0
    assert value(samples, "submitted_total", carrier="dear") == 5


async def _eq(pending: Any, expected: Any) -> bool:
    return bool(await pending == expected)


async def test_failover_total_counts_the_moved_messages(tmp_path: Path) -> None:
    sims = {"cheap": SimOptions(fail_rate=1.0), "dear": SimOptions()}
    router, address = _router(tmp_path, sims, "cheap", "dear")
    async with router as r:
        mdrs = await _final(r, [*await _submit(r, 12, text="a"), *await _submit(r, 8, text="b")])
        samples = await scrape(address)
        failed_at_cheap = len(r.sims["cheap"].received)

    moved = [m for m in mdrs.values() if [a["carrier"] for a in m["attempts"]][:1] == ["cheap"]]
    assert all(m["status"] == "DELIVERED" and m["carrier"] == "dear" for m in mdrs.values())
    assert moved and len(moved) == failed_at_cheap  # later ones skip the open circuit
    assert value(samples, "failover_total", from_carrier="cheap", to_carrier="dear") == len(moved)
    assert value(samples, "failover_total", from_carrier="dear", to_carrier="cheap") == 0
    assert value(samples, "submit_resp_total", carrier="cheap", status="ESME_RSYSERR") == failed_at_cheap
    assert value(samples, "carrier_healthy", carrier="cheap") == 0


# -- reloads: a daemon process ---------------------------------------------------------


def _reloads(address: str) -> tuple[float, float]:
    s = parse(scrape_text(address))
    return value(s, "config_reloads_total", result="ok"), value(s, "config_reloads_total", result="error")


def _wait(check: Any, what: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_config_reloads_are_counted_by_result(tmp_path: Path, processes: list[Any]) -> None:
    sim = SimProcess(tmp_path, "acme")
    processes.append(sim)
    address = f"127.0.0.1:{free_port()}"
    url = f"unix://{tmp_path}/router.sock"

    def config(tps: int) -> str:
        return render_config(socket_url=url, carriers=[carrier_entry("acme", sim.port, tps=tps)],
                             routes=[route("", ("acme", 0.001))], router={"metrics": address})

    path = tmp_path / "router.toml"
    path.write_text(config(500))
    daemon = DaemonProcess(path, url)
    processes.append(daemon)
    daemon.start()
    daemon.wait_ready()
    assert _reloads(address) == (0, 0)

    _edit(path, config(400))  # a good edit: the file watcher reloads it
    _wait(lambda: _reloads(address) == (1, 0), "an ok reload after a good edit")
    _edit(path, config(400).replace("tps = 400", 'tps = "fast"'))  # a bad edit is refused
    _wait(lambda: _reloads(address) == (1, 1), "an error reload after a bad edit")
    assert daemon.proc is not None
    os.kill(daemon.proc.pid, signal.SIGHUP)  # the file is still bad
    _wait(lambda: _reloads(address) == (1, 2), "an error reload on SIGHUP")
    _edit(path, config(300))
    _wait(lambda: _reloads(address) == (2, 2), "an ok reload after the fix")
    os.kill(daemon.proc.pid, signal.SIGHUP)  # unchanged and good
    _wait(lambda: _reloads(address) == (3, 2), "an ok reload on SIGHUP")

    # The refused edits changed nothing: the daemon still routes.
    with Client.connect(url, timeout=10) as client:
        reply = client.submit("ACME", TO, text="after reloads")
    assert reply["ok"], reply
    assert daemon.terminate() == 0


def _edit(path: Path, text: str) -> None:
    """Rewrite the file so the watcher sees a new modification time (mtime may be coarse)."""
    before = path.stat().st_mtime_ns
    path.write_text(text)
    if path.stat().st_mtime_ns == before:
        os.utime(path, ns=(before + 1_000_000, before + 1_000_000))
