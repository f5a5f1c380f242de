"""Hostile upstream clients against the whole daemon (in process): random msgpack maps,
clients that connect and vanish in loops, and a subscriber that never reads. Each gets an
answer or loses only its own connection; other clients and the carrier never notice."""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import socket
import struct
from pathlib import Path
from typing import Any

import msgpack
import pytest

from tests.e2e.harness import Router, SimOptions, route, until

TO = "4915112345678"
GOOD = {"from": "ACME", "to": TO, "text": "ok"}
OPS = ["submit", "submit_many", "status", "subscribe", "stats", "ping", "auth",
       "opt_out", "opt_in", "consent_status", "nope"]
KEYS = ["from", "to", "text", "data", "data_coding", "dlr", "priority", "validity_s",
        "client_ref", "tags", "id", "events", "messages", "token", "source"]


def _router(tmp_path: Path) -> Router:
    return Router(tmp_path, {"acme": SimOptions()}, [route("49", ("acme", 0.001))])


def _frame(obj: Any) -> bytes:
    body = msgpack.packb(obj, use_bin_type=True)
    return struct.pack(">I", len(body)) + body


async def _reply(reader: asyncio.StreamReader) -> dict[str, Any]:
    (n,) = struct.unpack(">I", await asyncio.wait_for(reader.readexactly(4), 10))
    return msgpack.unpackb(await asyncio.wait_for(reader.readexactly(n), 10), raw=False)


def _scalar(rnd: random.Random) -> Any:
    return rnd.choice([
        None, True, False, 0, -1, 2**63 - 1, -(2**63), 2**64 - 1, math.nan, math.inf, -math.inf,
        1e308, -0.0, "", "x" * rnd.randint(0, 300), "\u20ac\U0001f600", "4915112345678",
        "+4915112345678", "ACME", b"", b"\x00\xff" * rnd.randint(0, 50), b"4915112345678",
        msgpack.ExtType(rnd.randint(0, 127), b"\x01\x02"), msgpack.Timestamp(rnd.randint(0, 2**32), 0),
    ])


def _value(rnd: random.Random, depth: int = 0) -> Any:
    kind = rnd.random()
    if depth < 4 and kind < 0.15:
        # Keys str or bin: msgpack-python's strict_map_key refuses others while unpacking,
        # and a frame that does not unpack closes its connection (the contract).
        return {rnd.choice([b"k", "\u20ac", ""]) if rnd.random() < 0.2 and depth else rnd.choice(KEYS):
                _value(rnd, depth + 1) for _ in range(rnd.randint(0, 4))}
    if depth < 4 and kind < 0.3:
        return [_value(rnd, depth + 1) for _ in range(rnd.randint(0, 4))]
    return _scalar(rnd)


def _request(rnd: random.Random, i: int) -> dict[str, Any]:
    """A map with string keys (so the connection must stay), wrong in random ways."""
    req: dict[str, Any] = {"op": rnd.choice(OPS) if rnd.random() < 0.9 else _scalar(rnd), "ref": i}
    if rnd.random() < 0.5:
        req.update(GOOD)
    for key in rnd.sample(KEYS, rnd.randint(0, 5)):
        req[key] = _value(rnd)
    if req.get("op") == "submit_many" and rnd.random() < 0.5:
        req["messages"] = [{**GOOD, rnd.choice(KEYS): _value(rnd)} for _ in range(rnd.randint(0, 5))]
    return req


async def test_random_msgpack_maps_each_get_an_answer_in_order(tmp_path: Path) -> None:
    """600 random requests (nested maps, huge ints, NaN, bin where str is expected, ext
    types) on one connection: every one is answered in order with a reply that is not
    `internal`; the connection stays and a normal client is served afterwards."""
    rnd = random.Random(20240601)
    async with _router(tmp_path) as r:
        reader, writer = await asyncio.open_unix_connection(r.socket_url.removeprefix("unix://"))
        requests = [_request(rnd, i) for i in range(600)]
        for req in requests:
            writer.write(_frame(req))
        await writer.drain()
        seen: set[str] = set()
        for i, req in enumerate(requests):
            reply = await _reply(reader)
            while "event" in reply:  # a random `subscribe` that went through
                reply = await _reply(reader)
            assert reply["ref"] == i, (req, reply)
            assert reply.get("error") != "internal", (req, reply)
            if reply["ok"] is False:
                assert reply["error"] and reply["message"], (req, reply)
            seen.add("ok" if reply["ok"] else reply["error"])
        # The noise reached the validators, not just the framing.
        assert {"ok", "invalid_request", "invalid_number"} <= seen, seen
        writer.close()
        assert (await r.client.ping())["ok"]
        ok = await r.client.submit("ACME", TO, text="after the noise")
        assert ok["ok"], ok
        await until(lambda: any(b"after the noise" in s.short_message for s in r.sims["acme"].received),
                    what="a normal message sent after the noise")


async def test_connections_opened_and_dropped_in_loops_leak_nothing(tmp_path: Path) -> None:
    """300 connections that vanish at every point of a frame, some with a submit that was
    never read back: the server forgets every one, and each acknowledged-or-not submit is
    counted once at most."""
    async with _router(tmp_path) as r:
        assert r.app is not None and r.app.server is not None
        path = r.socket_url.removeprefix("unix://")
        frame = _frame({"op": "submit", "ref": 1, **GOOD})
        for i in range(300):
            _reader, writer = await asyncio.open_unix_connection(path)
            writer.write(frame[: i % (len(frame) + 1)])
            if i % 3 == 0:
                writer.transport.abort()
            else:
                writer.close()
            if i % 50 == 0:
                await asyncio.sleep(0.01)
        server = r.app.server
        await until(lambda: len(server.connections) == 1, what="only the harness client left")
        whole = 300 // (len(frame) + 1) + 1  # the loop sent the whole frame this many times
        await until(lambda: len(r.sims["acme"].received) <= whole, what="no extra submits")
        assert (await r.client.ping())["ok"]


@pytest.mark.parametrize("burst", [20_000])
async def test_slow_subscriber_is_cut_off_and_others_carry_on(tmp_path: Path, burst: int) -> None:
    """A subscriber that never reads while MDR events flow is disconnected once its
    bounded buffer overflows; a normal client keeps submitting meanwhile."""
    async with _router(tmp_path) as r:
        assert r.app is not None and r.app.server is not None
        r.app.server.subscriber_buffer = 50
        _reader, writer = await asyncio.open_unix_connection(r.socket_url.removeprefix("unix://"))
        writer.transport.set_write_buffer_limits(high=0)
        writer.write(_frame({"op": "subscribe", "ref": "s", "events": ["mdr"]}))
        sock = writer.transport.get_extra_info("socket")
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        server = r.app.server
        await until(lambda: len(server.connections) == 2, what="subscriber connected")
        transport = writer.transport
        assert isinstance(transport, asyncio.Transport)
        transport.pause_reading()  # never read another byte
        sent = 0
        batch = [{**GOOD, "text": f"flood {n:05d} " + "x" * 100} for n in range(100)]
        while len(server.connections) == 2 and sent < burst:
            reply = await r.client.submit_many(batch)
            assert reply["ok"] and all(x["ok"] for x in reply["results"]), reply
            sent += len(batch)
        assert len(server.connections) == 1, f"slow subscriber still connected after {sent} submits"
        assert (await r.client.ping())["ok"]
        writer.transport.abort()
