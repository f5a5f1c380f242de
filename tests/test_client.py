"""The client libraries (asyncio and blocking) against the real socket server."""

from __future__ import annotations

import asyncio

import pytest

from adapters.client import AsyncClient, Client, ClientError, ConnectionLost, submit_map
from adapters.upstream import UpstreamServer
from tests.test_upstream_fakes import FakeHandler, sock_dir, served

__all__ = ["sock_dir", "served"]  # fixtures

TO = "+4915112345678"


async def test_async_calls(served: tuple[UpstreamServer, FakeHandler]) -> None:
    server, handler = served
    client = await AsyncClient.connect(server.url)
    assert (await client.ping())["ok"] is True
    reply = await client.submit("ACME", TO, text="Code 1234", priority=1, tags={"k": "v"})
    assert reply["ok"] is True and reply["segments"] == 1 and reply["encoding"] == "gsm7"
    sub = handler.accepted[reply["id"]]
    assert (sub.priority, sub.tags, sub.dlr, sub.client_ref) == (1, {"k": "v"}, True, None)
    binary = await client.submit("12345", TO, data=b"\x00" * 150, data_coding=4, dlr=False)
    assert (binary["encoding"], binary["segments"]) == ("binary", 2)
    refused = await client.submit("ACME", "+1555abc", text="x")
    assert refused["ok"] is False and refused["error"] == "invalid_number"
    assert refused["message"] == 'to "+1555abc" has non-digits'
    many = await client.submit_many([submit_map("ACME", TO, text="a"), submit_map("ACME", "1", text="b")])
    assert [r["ok"] for r in many["results"]] == [True, False]
    assert (await client.status(reply["id"]))["mdr"]["id"] == reply["id"]
    assert (await client.status("nope"))["error"] == "unknown_id"
    assert (await client.stats())["carriers"] == []
    assert (await client.opt_out("ACME", TO, source="web-form"))["ok"] is True
    assert (await client.consent_status("ACME", TO))["opted_out"] is True
    await client.opt_in("ACME", TO)
    assert (await client.consent_status("ACME", TO))["opted_out"] is False
    await client.close()


async def test_async_concurrent_calls_share_one_connection(
    served: tuple[UpstreamServer, FakeHandler],
) -> None:
    server, handler = served
    client = await AsyncClient.connect(server.url)
    replies = await asyncio.gather(*(client.submit("ACME", TO, text=f"t{i}") for i in range(300)))
    assert [handler.accepted[r["id"]].text for r in replies] == [f"t{i}" for i in range(300)]
    assert len({r["ref"] for r in replies}) == 300
    assert len(server.connections) == 1
    await client.close()


async def test_async_check_raises_refusals(served: tuple[UpstreamServer, FakeHandler]) -> None:
    server, _ = served
    client = await AsyncClient.connect(server.url, check=True)
    with pytest.raises(ClientError) as info:
        await client.submit("ACME", TO, text="x", priority=3)
    assert info.value.code == "invalid_request"
    assert info.value.message == "priority must be 0 or 1, got 3"
    assert (await client.submit("ACME", TO, text="x"))["ok"] is True  # still usable
    await client.close()


async def test_async_auth() -> None:
    server = UpstreamServer(FakeHandler(), url="tcp://127.0.0.1:0", token="s3cret")
    await server.start()
    with pytest.raises(ClientError) as info:
        await AsyncClient.connect(server.url, token="wrong")
    assert info.value.code == "unauthorized"
    anonymous = await AsyncClient.connect(server.url)
    assert (await anonymous.ping())["error"] == "unauthorized"
    client = await AsyncClient.connect(server.url, token="s3cret")
    assert (await client.submit("ACME", TO, text="x"))["ok"] is True
    await anonymous.close()
    await client.close()
    await server.close(1.0)


async def test_async_subscribe(served: tuple[UpstreamServer, FakeHandler]) -> None:
    server, handler = served
    client = await AsyncClient.connect(server.url)
    events = await client.subscribe(["mdr", "mo"])
    assert len(handler.subscribers) == 1  # in place before subscribe returned
    handler.publish({"event": "mdr", "mdr": {"id": "m1", "status": "SUBMITTED"}})
    handler.publish({"event": "mo", "mo": {"id": "i1", "text": "STOP"}})
    assert (await client.ping())["ok"] is True  # requests still work meanwhile
    received = [await anext(events), await anext(events)]
    assert [e["event"] for e in received] == ["mdr", "mo"]
    assert received[1]["mo"]["text"] == "STOP"
    with pytest.raises(ClientError, match="invalid_request"):
        await client.subscribe(["receipts"])
    await client.close()
    with pytest.raises(StopAsyncIteration):
        await anext(events)  # our own close ends the iteration


async def test_async_connection_lost_fails_pending_calls(sock_dir: str) -> None:
    handler = FakeHandler()
    server = UpstreamServer(handler, url=f"unix://{sock_dir}/r.sock")
    await server.start()
    client = await AsyncClient.connect(server.url)
    events = await client.subscribe(["mdr"])
    pending = asyncio.ensure_future(client.submit("ACME", TO, text="x", client_ref="slow"))
    while not handler.slow:
        await asyncio.sleep(0.01)
    await server.close(grace_s=0.05)
    with pytest.raises(ConnectionLost):
        await pending
    with pytest.raises(ConnectionLost):
        await anext(events)
    with pytest.raises(ConnectionLost):
        await client.ping()


async def test_async_timeout(served: tuple[UpstreamServer, FakeHandler]) -> None:
    server, handler = served
    client = await AsyncClient.connect(server.url, timeout=0.1)
    with pytest.raises(TimeoutError):
        await client.submit("ACME", TO, text="x", client_ref="slow")
    handler.release()  # the late reply is dropped
    assert (await client.ping())["ok"] is True
    await client.close()


async def test_async_connect_errors(sock_dir: str) -> None:
    with pytest.raises(OSError):
        await AsyncClient.connect(f"unix://{sock_dir}/absent.sock")
    with pytest.raises(ValueError, match="must start with unix:// or tcp://"):
        await AsyncClient.connect("http://127.0.0.1:80")


# -- blocking -----------------------------------------------------------------------


async def test_blocking_calls(served: tuple[UpstreamServer, FakeHandler]) -> None:
    server, handler = served

    def run() -> None:
        with Client.connect(server.url) as client:
            assert client.ping()["ok"] is True
            reply = client.submit("ACME", TO, text="Привет", validity_s=60)
            assert (reply["ok"], reply["encoding"]) == (True, "ucs2")
            assert handler.accepted[reply["id"]].validity_s == 60
            assert client.submit("ACME", TO, text="x", dlr="no")["error"] == "invalid_request"  # type: ignore[arg-type]
            assert client.status(reply["id"])["ok"] is True
            assert client.opt_out("ACME", TO)["ok"] is True
            assert client.consent_status("ACME", TO)["opted_out"] is True
        with Client.connect(server.url, check=True) as checked:
            with pytest.raises(ClientError) as info:
                checked.submit("ACME-MARKETING", TO, text="x")
            assert info.value.code == "invalid_number"

    await asyncio.to_thread(run)


async def test_blocking_pipelined_submits(served: tuple[UpstreamServer, FakeHandler]) -> None:
    server, handler = served
    messages = [{"from_": "ACME", "to": TO, "text": f"t{i}"} for i in range(2_000)]
    messages[5] = {"from_": "ACME", "to": "bad", "text": "x"}

    def run(window: int) -> list[dict]:
        with Client.connect(server.url) as client:
            replies = client.submit_pipelined(messages, window=window)
            assert client.ping()["ok"] is True  # the socket is back in blocking mode
            return replies

    for window in (64, 5_000):
        handler.accepted.clear()
        replies = await asyncio.to_thread(run, window)
        assert len(replies) == 2_000
        assert replies[5]["error"] == "invalid_number"
        texts = [handler.accepted[r["id"]].text for r in replies if r["ok"]]
        assert texts == [f"t{i}" for i in range(2_000) if i != 5]


async def test_blocking_auth_and_subscribe() -> None:
    handler = FakeHandler()
    server = UpstreamServer(handler, url="tcp://127.0.0.1:0", token="s3cret")
    await server.start()

    def refused() -> None:
        with pytest.raises(ClientError, match="unauthorized"):
            Client.connect(server.url, token="wrong")

    await asyncio.to_thread(refused)
    client = await asyncio.to_thread(Client.connect, server.url, "s3cret", timeout=5.0)
    events = await asyncio.to_thread(client.subscribe, ["mdr"])
    handler.publish({"event": "mdr", "mdr": {"id": "m1"}})
    assert (await asyncio.to_thread(client.ping))["ok"] is True  # the event is kept meanwhile
    handler.publish({"event": "mdr", "mdr": {"id": "m2"}})
    got = [await asyncio.to_thread(next, events) for _ in range(2)]
    assert [e["mdr"]["id"] for e in got] == ["m1", "m2"]
    client.close()
    await server.close(1.0)


async def test_blocking_connection_lost(sock_dir: str) -> None:
    handler = FakeHandler()
    server = UpstreamServer(handler, url=f"unix://{sock_dir}/r.sock")
    await server.start()
    client = await asyncio.to_thread(Client.connect, server.url)
    call = asyncio.ensure_future(
        asyncio.to_thread(client.submit, "ACME", TO, text="x", client_ref="slow")
    )
    while not handler.slow:
        await asyncio.sleep(0.01)
    await server.close(grace_s=0.05)
    with pytest.raises(ConnectionLost):
        await call
    client.close()


async def test_blocking_timeout_leaves_the_client_usable(
    served: tuple[UpstreamServer, FakeHandler],
) -> None:
    server, handler = served
    client = await asyncio.to_thread(Client.connect, server.url, timeout=0.2)
    with pytest.raises(TimeoutError):
        await asyncio.to_thread(client.submit, "ACME", TO, text="x", client_ref="slow")
    handler.release()  # its reply arrives late, ahead of the next one
    assert (await asyncio.to_thread(client.ping))["ok"] is True
    events = await asyncio.to_thread(client.subscribe, ["mo"], 0.1)
    with pytest.raises(TimeoutError):
        await asyncio.to_thread(next, events)
    client.close()
