"""Bad socket input of every kind: a clear error naming the field, and the daemon carries on.

The router listens on TCP with a token (so `auth` is enforced); raw sockets send what a
well-behaved client never would. After each abuse a fresh connection must still be served
and a normal message must still reach the carrier.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from pathlib import Path
from typing import Any

import msgpack
import pytest

from adapters.client import AsyncClient
from tests.e2e.harness import Router, SimOptions, free_port, route, until

TOKEN = "s3cret-token"


def _router(tmp_path: Path) -> Router:
    return Router(
        tmp_path, {"acme": SimOptions()}, [route("49", ("acme", 0.001))],
        router={"socket": f"tcp://127.0.0.1:{free_port()}", "token": TOKEN},
    )


def _frame(obj: Any) -> bytes:
    body = msgpack.packb(obj, use_bin_type=True)
    return struct.pack(">I", len(body)) + body


async def _raw(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = url.removeprefix("tcp://").rsplit(":", 1)
    return await asyncio.open_connection(host, int(port))


async def _reply(reader: asyncio.StreamReader) -> dict[str, Any]:
    (n,) = struct.unpack(">I", await asyncio.wait_for(reader.readexactly(4), 5))
    return msgpack.unpackb(await asyncio.wait_for(reader.readexactly(n), 5), raw=False)


async def _closed(reader: asyncio.StreamReader) -> bool:
    """True when the router closes the connection (EOF or reset) within 5 s."""
    try:
        return await asyncio.wait_for(reader.read(1 << 16), 5) == b""
    except ConnectionError:
        return True


GOOD = {"op": "submit", "from": "ACME", "to": "4915112345678", "text": "ok"}

#: (request, error code, words the message must contain)
BAD_REQUESTS: list[tuple[dict[str, Any], str, str]] = [
    ({"ref": 1}, "invalid_request", "op"),
    ({"op": 7}, "invalid_request", "op"),
    ({"op": "launch"}, "invalid_request", "launch"),
    ({**GOOD, "from": 12025550100}, "invalid_request", "from"),
    ({**GOOD, "to": ["4915112345678"]}, "invalid_request", "to"),
    ({k: v for k, v in GOOD.items() if k != "to"}, "invalid_request", "to"),
    ({k: v for k, v in GOOD.items() if k != "text"}, "invalid_request", "text"),
    ({**GOOD, "text": b"bytes"}, "invalid_request", "text"),
    ({**GOOD, "data": b"\x01"}, "invalid_request", "data"),
    ({**{k: v for k, v in GOOD.items() if k != "text"}, "data": b"\x01"}, "invalid_request", "data_coding"),
    ({**{k: v for k, v in GOOD.items() if k != "text"}, "data": "str", "data_coding": 4}, "invalid_request", "data"),
    ({**GOOD, "dlr": "yes"}, "invalid_request", "dlr"),
    ({**GOOD, "priority": 7}, "invalid_request", "priority"),
    ({**GOOD, "validity_s": -1}, "invalid_request", "validity_s"),
    ({**GOOD, "client_ref": 5}, "invalid_request", "client_ref"),
    ({**GOOD, "tags": {"k": 1}}, "invalid_request", "tags"),
    ({**GOOD, "tags": "campaign"}, "invalid_request", "tags"),
    ({**GOOD, "colour": "blue"}, "invalid_request", "colour"),
    ({**GOOD, "to": "not a number"}, "invalid_number", ""),
    ({**GOOD, "from": "ThisSenderIsTooLong"}, "invalid_number", ""),
    ({**GOOD, "to": "447700900123"}, "no_route", "447700900123"),
    ({**GOOD, "text": "x" * 2000}, "too_long", "text"),
    ({"op": "status", "id": 5}, "invalid_request", "id"),
    ({"op": "status", "id": "999999"}, "unknown_id", "999999"),
    ({"op": "submit_many", "messages": "all"}, "invalid_request", "messages"),
    ({"op": "subscribe", "events": ["everything"]}, "invalid_request", "events"),
]


async def test_wrong_requests_get_clear_errors_and_the_connection_stays(tmp_path: Path) -> None:
    async with _router(tmp_path) as r:
        reader, writer = await _raw(r.socket_url)
        writer.write(_frame({"op": "auth", "token": TOKEN, "ref": 0}))
        assert (await _reply(reader))["ok"] is True
        for i, (req, code, words) in enumerate(BAD_REQUESTS, 1):
            writer.write(_frame({**req, "ref": i}))
            reply = await _reply(reader)
            assert reply["ref"] == i and reply["ok"] is False, (req, reply)
            assert reply["error"] == code, (req, reply)
            assert words in reply["message"], (req, reply)
        # Same connection, still serving; one bad item in a batch costs only that item.
        writer.write(_frame({"op": "submit_many", "ref": "batch", "messages": [
            {k: v for k, v in GOOD.items() if k != "op"}, {"from": "ACME", "to": "x", "text": "y"},
        ]}))
        batch = await _reply(reader)
        assert batch["ok"] and [x["ok"] for x in batch["results"]] == [True, False]
        assert batch["results"][1]["error"] == "invalid_number"
        writer.close()
        await until(lambda: len(r.sims["acme"].received) == 1, what="the one good message sent")


async def test_no_auth_or_a_wrong_token_is_unauthorized(tmp_path: Path) -> None:
    async with _router(tmp_path) as r:
        reader, writer = await _raw(r.socket_url)
        for i, req in enumerate([GOOD, {"op": "stats"}, {"op": "auth", "token": "wrong"}, GOOD]):
            writer.write(_frame({**req, "ref": i}))
            reply = await _reply(reader)
            assert reply["ok"] is False and reply["error"] == "unauthorized", reply
        writer.write(_frame({"op": "auth", "token": 42, "ref": "t"}))
        assert (await _reply(reader))["error"] == "invalid_request"
        writer.write(_frame({"op": "auth", "token": TOKEN, "ref": "ok"}))
        assert (await _reply(reader))["ok"] is True
        writer.close()
        assert r.sims["acme"].received == []
        with pytest.raises(Exception, match="unauthorized"):
            await AsyncClient.connect(r.socket_url, "wrong")


@pytest.mark.parametrize("junk", [
    pytest.param(struct.pack(">I", 0xFFFFFFFF), id="4GiB-header"),
    pytest.param(struct.pack(">I", (1 << 20) + 1) + b"\x00" * 100, id="just-over-1MiB"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: router\r\n\r\n", id="http"),
    pytest.param(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64), id="tls-hello"),
    pytest.param(struct.pack(">I", 3) + b"\xc1\xc1\xc1", id="not-msgpack"),
    pytest.param(_frame([1, 2, 3]), id="not-a-map"),
    pytest.param(_frame({1: "int key"}), id="int-keys"),
])
async def test_garbage_closes_only_that_connection(tmp_path: Path, junk: bytes) -> None:
    async with _router(tmp_path) as r:
        bystander = r.client  # authenticated, idle: must not notice anything
        reader, writer = await _raw(r.socket_url)
        writer.write(junk)
        with contextlib.suppress(ConnectionError):  # the router may close before this drains
            await writer.drain()
        assert await _closed(reader), "the router must close a connection it cannot read"
        writer.close()
        assert (await bystander.ping())["ok"] is True
        fresh = await AsyncClient.connect(r.socket_url, TOKEN)
        assert (await fresh.submit("ACME", "4915112345678", text="after junk"))["ok"] is True
        await fresh.close()
        await until(lambda: len(r.sims["acme"].received) == 1, what="a message after the junk")


async def test_a_client_that_vanishes_mid_frame_costs_nothing(tmp_path: Path) -> None:
    async with _router(tmp_path) as r:
        host, port = r.socket_url.removeprefix("tcp://").rsplit(":", 1)
        for _ in range(20):
            sock = socket.create_connection((host, int(port)))
            sock.sendall(_frame({"op": "auth", "token": TOKEN})[:-3])
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()  # RST with half a frame sent
        assert (await r.client.stats())["ok"] is True
