"""Bind throughput: submit_sm round trips/s through the CarrierPool against a raw pipelined client.

Run: ``python -m benchmarks.binds [--seconds S] [--window W] [--sim-port P]``.

The carrier simulator runs in its own process (``python -m adapters.carrier_sim``, the module behind ``smpp-router carrier-sim``;
``--sim-port`` uses one already listening instead).  In this process, on uvloop,
three clients run against it in turn, each for a fixed time after a short
warm-up, interleaved over a few rounds with the best run of each kept (the
machine is shared; interleaving exposes all three to the same load):

* ``raw``: the ceiling.  A minimal client written from ``struct`` on an
  ``asyncio.Protocol``: one transceiver bind, a window of W submit_sm kept
  full, every reply answered by a new submit in the same batched write.
* ``pool x1`` / ``pool x4``: a CarrierPool with one and four transceiver binds
  (window W each, tps far above what the link does), driven the way the router
  drives it: every outcome asks ``available_at`` and submits a fresh SubmitSm.

Prints a table, then ``RESULT bind_roundtrips_per_s`` (one bind),
``RESULT bind4_roundtrips_per_s`` and ``RESULT bind_vs_raw_ceiling`` (one bind
over raw, same run).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from adapters.smpp.esme import CarrierPool, ResultKind, SubmitResult
from adapters.smpp.pdu import SubmitSm
from router.config import CarrierConfig

_HEADER = struct.Struct(">IIII")
#: §4.1.5 bind_transceiver, §4.4.1 submit_sm and their responses.
_BIND_TRX, _SUBMIT_SM, _RESP = 0x09, 0x04, 0x80000000
_SOURCE, _DEST, _TEXT = "ACME", "447700900123", b"Your code is 123456"


def _submit_body() -> bytes:
    """The same submit_sm body the pool sends, built by hand (§4.4.1)."""
    return (
        b"\0" + b"\x05\x00" + _SOURCE.encode() + b"\0" + b"\x01\x01" + _DEST.encode() + b"\0"
        + b"\x00\x00\x00" + b"\0" + b"\0" + b"\x00\x00\x00\x00" + bytes([len(_TEXT)]) + _TEXT
    )


class _RawClient(asyncio.Protocol):
    """The ceiling: struct framing, a full window, one write per batch of replies."""

    def __init__(self, window: int) -> None:
        self.window = window
        self.body = _submit_body()
        self.length = 16 + len(self.body)
        self.buf = b""
        self.seq = 1
        self.done = 0
        self.bound: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        body = b"bench\0pw\0\0\x34\x00\x00\0"
        transport.write(_HEADER.pack(16 + len(body), _BIND_TRX, 0, 1) + body)  # type: ignore[attr-defined]

    def _submits(self, n: int) -> bytes:
        pack, length, body = _HEADER.pack, self.length, self.body
        out = []
        seq = self.seq
        for _ in range(n):
            seq += 1
            out.append(pack(length, _SUBMIT_SM, 0, seq))
            out.append(body)
        self.seq = seq
        return b"".join(out)

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        pos, size, answered, bound_now = 0, len(buf), 0, False
        unpack = _HEADER.unpack_from
        while size - pos >= 16:
            length, cid, _status, _seq = unpack(buf, pos)
            if size - pos < length:
                break
            pos += length
            if cid == _SUBMIT_SM | _RESP:
                answered += 1
            elif cid == _BIND_TRX | _RESP:
                bound_now = True
        self.buf = buf[pos:]
        self.done += answered
        more = answered + (self.window if bound_now else 0)
        if more:
            assert self.transport is not None
            self.transport.write(self._submits(more))
        if bound_now and not self.bound.done():
            self.bound.set_result(None)


async def _measure_raw(port: int, window: int, warmup: float, seconds: float) -> float:
    loop = asyncio.get_running_loop()
    client = _RawClient(window)
    transport, _ = await loop.create_connection(lambda: client, "127.0.0.1", port)
    try:
        await asyncio.wait_for(client.bound, 5.0)
        await asyncio.sleep(warmup)
        start, t0 = client.done, time.perf_counter()
        await asyncio.sleep(seconds)
        return (client.done - start) / (time.perf_counter() - t0)
    finally:
        transport.abort()


class _Driver:
    """Keeps a pool loaded the way the router does: one new message per outcome."""

    def __init__(self) -> None:
        self.pool: CarrierPool | None = None
        self.accepted = 0
        self.other = 0
        self.next = 0

    def on_result(self, token: object, index: int, result: SubmitResult) -> None:
        if result.kind is ResultKind.ACCEPTED:
            self.accepted += 1
        elif result.kind is not ResultKind.THROTTLED:
            self.other += 1
        self.submit()

    def submit(self) -> None:
        pool = self.pool
        assert pool is not None
        now = time.time()
        if pool.available_at(1, now) > now:
            return
        self.next += 1
        pool.submit(self.next, [SubmitSm(
            source_addr_ton=5, source_addr=_SOURCE, dest_addr_ton=1, dest_addr_npi=1,
            destination_addr=_DEST, short_message=_TEXT,
        )], now)


async def _measure_pool(port: int, binds: int, window: int, warmup: float, seconds: float) -> tuple[float, int]:
    cfg = CarrierConfig(
        name="bench", host="127.0.0.1", port=port, system_id="bench", password="pw",
        binds={"transceiver": binds}, tps=1e9, window=window, enquire_link_s=30.0,
        response_timeout_s=30.0, bind_timeout_s=5.0, reconnect_max_s=1.0,
    )
    driver = _Driver()
    pool = CarrierPool(cfg, on_result=driver.on_result)
    driver.pool = pool
    await pool.start()
    try:
        deadline = time.monotonic() + 5.0
        while sum(b.state == "bound" for b in pool.binds) < binds:
            if time.monotonic() > deadline:
                raise RuntimeError("the simulator did not bind every connection")
            await asyncio.sleep(0.01)
        for _ in range(2 * window * binds):  # full windows plus one window queued each
            driver.submit()
        await asyncio.sleep(warmup)
        start, t0 = driver.accepted, time.perf_counter()
        await asyncio.sleep(seconds)
        rate = (driver.accepted - start) / (time.perf_counter() - t0)
        return rate, driver.other
    finally:
        await pool.stop(1.0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int, proc: subprocess.Popen[bytes] | None, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the simulator exited with status {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


@contextlib.contextmanager
def _simulator(port: int | None) -> Any:
    """The simulator in its own process (or the one already on ``port``); yields its port."""
    if port is not None:
        _wait_listening(port, None)
        yield port
        return
    port = _free_port()
    cmd = [sys.executable, "-m", "adapters.carrier_sim", "--port", str(port), "--record-limit", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ))
    try:
        _wait_listening(port, proc)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(5.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def _run(port: int, window: int, warmup: float, seconds: float, rounds: int) -> dict[str, float]:
    """Best of ``rounds`` per client, the clients interleaved so load from elsewhere hits all alike."""
    figures = {"raw": 0.0, "pool x1": 0.0, "pool x4": 0.0, "errors": 0.0}
    for _ in range(rounds):
        figures["raw"] = max(figures["raw"], await _measure_raw(port, window, warmup, seconds))
        for binds in (1, 4):
            rate, errors = await _measure_pool(port, binds, window, warmup, seconds)
            figures[f"pool x{binds}"] = max(figures[f"pool x{binds}"], rate)
            figures["errors"] += errors
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    """Run the three measurements and print the table and RESULT lines; the exit status."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.binds", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="measured time per run [2]")
    parser.add_argument("--rounds", type=int, default=3, help="runs per client, best kept [3]")
    parser.add_argument("--warmup", type=float, default=0.5, help="unmeasured time before each run [0.5]")
    parser.add_argument("--window", type=int, default=64, help="window per bind [64]")
    parser.add_argument("--sim-port", type=int, default=None, help="use the simulator already on this port")
    args = parser.parse_args(argv)
    with _simulator(args.sim_port) as port:
        coro = _run(port, args.window, args.warmup, args.seconds, args.rounds)
        try:
            import uvloop
        except ImportError:  # pragma: no cover - a dependency on Linux
            figures = asyncio.run(coro)
        else:
            figures = uvloop.run(coro)
    raw = figures["raw"]
    print(f"{'client':<12} {'round trips/s':>14} {'vs raw':>8}")
    for name in ("raw", "pool x1", "pool x4"):
        print(f"{name:<12} {figures[name]:>14,.0f} {figures[name] / raw:>7.2f}x")
    print(f"window {args.window} per bind; best of {args.rounds} interleaved runs of {args.seconds:g} s; "
          f"non-accepted outcomes: {figures['errors']:.0f}")
    print(f"RESULT bind_roundtrips_per_s={figures['pool x1']:.0f} 1/s")
    print(f"RESULT bind4_roundtrips_per_s={figures['pool x4']:.0f} 1/s")
    print(f"RESULT bind_vs_raw_ceiling={figures['pool x1'] / raw:.2f} x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
