"""The socket server and clients on uvloop, the daemon's loop: its transports implement
asyncio.Transport without subclassing it and do their own flow control."""

from __future__ import annotations

import asyncio

import uvloop

from adapters.client import AsyncClient, Client
from adapters.framing import HEADER, encode_frame
from adapters.upstream import UpstreamServer
from tests.test_upstream_fakes import SUBMIT, FakeHandler, Raw, sock_dir

__all__ = ["sock_dir"]  # fixture

TO = "+4915112345678"


async def _scenario(sock_dir: str) -> None:
    handler = FakeHandler()
    server = UpstreamServer(handler, url=f"unix://{sock_dir}/r.sock", subscriber_buffer=20)
    await server.start()
    client = await AsyncClient.connect(server.url)
    slow = asyncio.ensure_future(client.submit("ACME", TO, text="first", client_ref="slow"))
    rest = [asyncio.ensure_future(client.submit("ACME", TO, text=f"t{i}")) for i in range(50)]
    while not handler.slow:
        await asyncio.sleep(0.01)
    assert not any(f.done() for f in rest)  # held behind the slow head
    handler.release()
    assert (await slow)["id"] == "slow"
    assert [handler.accepted[(await f)["id"]].text for f in rest] == [f"t{i}" for i in range(50)]

    bad = await Raw.open(server.url)
    bad.send_bytes(HEADER.pack(1 << 30))
    assert await bad.closed_by_peer(timeout=2.0)

    handler.big_reply = b"\0" * 100_000
    lazy = await Raw.open(server.url)
    for i in range(100):
        lazy.send_bytes(encode_frame({"op": "stats", "ref": i}))
        await asyncio.sleep(0.002)
    assert handler.seen.count("stats") < 100  # reading paused while replies pile up
    assert [(await lazy.recv())["ref"] for _ in range(100)] == list(range(100))

    subscriber = await Raw.open(server.url)
    assert (await subscriber.call({"op": "subscribe", "events": ["mdr"]}))["ok"] is True
    (conn,) = handler.subscribers
    for i in range(3_000):
        handler.publish({"event": "mdr", "mdr": {"pad": "x" * 10_000}})
        if i % 20 == 0:
            await asyncio.sleep(0)
        if conn.closed:
            break
    assert conn.closed and not handler.subscribers

    def blocking() -> list[dict]:
        with Client.connect(server.url) as c:
            return c.submit_pipelined([{"from_": "ACME", "to": TO, "text": "x"}] * 500, window=64)

    assert all(r["ok"] for r in await asyncio.to_thread(blocking))
    assert (await client.ping())["ok"] is True
    raw = await Raw.open(server.url)
    raw.send({**SUBMIT, "client_ref": "slow", "ref": 7})
    while not handler.slow:
        await asyncio.sleep(0.01)
    closing = asyncio.ensure_future(server.close(grace_s=2.0))
    await asyncio.sleep(0.05)
    handler.release()
    assert (await raw.recv())["ref"] == 7  # answered before the server closed
    await closing
    for r in (lazy, subscriber, raw):
        await r.close()
    await client.close()


def test_server_and_clients_on_uvloop(sock_dir: str) -> None:
    uvloop.run(_scenario(sock_dir))
