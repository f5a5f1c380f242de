"""Attacks only a real daemon process shows: a SIGHUP storm while the file is being edited
(badly, too), and 10,000 pipelined submits from a client that does not read its replies —
memory must stay bounded and other clients served."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import struct
import threading
import time
from pathlib import Path

import msgpack

from adapters.client import Client
from tests.e2e.harness import (
    DaemonProcess,
    Load,
    SimProcess,
    carrier_entry,
    render_config,
    route,
    until,
)


def _daemon(tmp_path: Path, processes: list, cheap_cost: float = 0.001) -> tuple[DaemonProcess, SimProcess, SimProcess]:
    a = SimProcess(tmp_path, "a")
    processes.append(a)
    b = SimProcess(tmp_path, "b")
    processes.append(b)
    socket_url = f"unix://{tmp_path}/router.sock"
    cfg = tmp_path / "router.toml"
    cfg.write_text(_config(socket_url, a.port, b.port, cheap_cost))
    daemon = DaemonProcess(cfg, socket_url)
    processes.append(daemon)
    daemon.start()
    return daemon, a, b


def _config(socket_url: str, port_a: int, port_b: int, cost_a: float) -> str:
    return render_config(
        socket_url=socket_url,
        carriers=[carrier_entry("a", port_a), carrier_entry("b", port_b)],
        routes=[route("", ("a", cost_a), ("b", 0.002))],
    )


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def test_sighup_storm_while_the_file_is_edited(tmp_path: Path, processes: list) -> None:
    """50 SIGHUPs in about a second under load, the file rewritten between them (costs
    flipping, one broken save): the daemon stays up and serving, the broken save is
    refused, the last good file is in force, and every acknowledged message is sent."""
    daemon, a, b = _daemon(tmp_path, processes)
    await asyncio.to_thread(daemon.wait_ready)
    assert daemon.proc is not None
    load = Load(daemon.socket_url, interval=0.005)
    load.start()
    for i in range(50):
        if i % 10 == 5:
            # a cheapest, then b, ... ending (i = 45) with b cheapest.
            cost_a = 0.003 if (i // 10) % 2 == 0 else 0.001
            daemon.config_path.write_text(_config(daemon.socket_url, a.port, b.port, cost_a))
        if i == 33:
            daemon.config_path.write_text("[router\nthis is not toml")
        os.kill(daemon.proc.pid, signal.SIGHUP)
        await asyncio.sleep(0.02)
    await asyncio.sleep(1.5)  # the file watcher settles too
    await load.stop()
    assert daemon.proc.poll() is None, daemon.log_path.read_text()[-2000:]
    with Client.connect(daemon.socket_url, timeout=5) as c:
        reply = c.submit("ACME", "4915112345678", text="after the storm")
        assert reply["ok"], reply
        last = reply["id"]
    ids = {mid for mid, _ in load.acked.values()} | {last}

    def sent() -> dict[str, dict]:
        mdrs = {m["id"]: m for m in daemon.mdrs() if m["id"] in ids}
        return mdrs if len(mdrs) == len(ids) and all(m["status"] == "DELIVERED" for m in mdrs.values()) else {}

    mdrs = await until(sent, what="every acknowledged message delivered")
    assert mdrs[last]["carrier"] == "b", "the last good file (b cheapest) is not in force"
    assert load.lost == 0 and not load.refused, (load.lost, load.refused[:3])
    log = daemon.log_path.read_text()
    assert "config reload refused" in log
    assert "Traceback" not in log and '"level": "critical"' not in log, log[-3000:]
    assert daemon.terminate() == 0


async def test_ten_thousand_pipelined_submits_without_reading_replies(tmp_path: Path, processes: list) -> None:
    """A client writes 10,000 submits and reads nothing for 2 s, then 200,000 pings: the
    daemon stops reading it once its replies back up (back-pressure) instead of buffering
    without bound; another client is served meanwhile; once the client reads, every request
    is answered, in order, every submit ok."""
    daemon, _, _ = _daemon(tmp_path, processes)
    await asyncio.to_thread(daemon.wait_ready)
    assert daemon.proc is not None
    pid = daemon.proc.pid
    rss_before = _rss_kib(pid)
    submits, pings = 10_000, 200_000
    frames = b"".join(
        _frame({"op": "submit", "ref": i, "from": f"4930{i % 1000:07d}", "to": "4915112345678",
                "text": f"pipelined {i:05d} " + "x" * 60})
        for i in range(submits)
    ) + b"".join(_frame({"op": "ping", "ref": submits + i}) for i in range(pings))
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    sock.connect(daemon.socket_url.removeprefix("unix://"))
    sock.settimeout(60)
    sent = threading.Event()
    errors: list[OSError] = []

    def send_all() -> None:
        try:
            sock.sendall(frames)
        except OSError as exc:  # reported by the test below
            errors.append(exc)
        sent.set()

    sender = threading.Thread(target=send_all, daemon=True)
    sender.start()
    await asyncio.sleep(2.0)
    held_back = not sent.is_set()
    rss_during = _rss_kib(pid)
    with Client.connect(daemon.socket_url, timeout=5) as other:
        assert other.ping()["ok"]
        assert other.submit("ACME", "4915112345678", text="meanwhile")["ok"]
    reader = sock.makefile("rb")
    started = time.monotonic()
    for i in range(submits + pings):
        (n,) = struct.unpack(">I", reader.read(4))
        reply = msgpack.unpackb(reader.read(n), raw=False)
        assert reply["ref"] == i and reply["ok"], reply
    sender.join(10)
    sock.close()
    assert not errors, errors
    print(f"held back {held_back}; RSS {rss_before} -> {rss_during} KiB; "
          f"replies read in {time.monotonic() - started:.1f} s")
    assert held_back, f"the daemon read all {len(frames)} bytes without its replies being read"
    # 10,000 accepted messages are queued (about 3 KiB each with their store rows);
    # what must not grow is the buffering of a client that does not read.
    assert rss_during - rss_before < 64 * 1024, (rss_before, rss_during)
    assert daemon.terminate() == 0


def _frame(obj: dict) -> bytes:
    body = msgpack.packb(obj, use_bin_type=True)
    return struct.pack(">I", len(body)) + body
