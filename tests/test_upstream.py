"""The socket server against raw frames: order, errors, bad frames, auth, flow control."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
from typing import Any

import msgpack
import pytest
from structlog.testing import capture_logs

from adapters.framing import HEADER, encode_frame
from adapters.upstream import UpstreamServer
from tests.test_upstream_fakes import SUBMIT, FakeHandler, Raw, sock_dir, served

__all__ = ["sock_dir", "served"]  # fixtures


async def test_ping_and_ref_echo(served: tuple[UpstreamServer, FakeHandler]) -> None:
    server, _ = served
    raw = await Raw.open(server.url)
    assert await raw.call({"op": "ping", "ref": "a"}) == {"ok": True, "ref": "a"}
    assert await raw.call({"op": "ping", "ref": [1, {"x": 2}]}) == {"ok": True, "ref": [1, {"x": 2}]}
    assert await raw.call({"op": "ping"}) == {"ok": True, "ref": None}
    await raw.close()


async def test_pipelined_replies_come_in_request_order(
    served: tuple[UpstreamServer, FakeHandler],
) -> None:
    server, handler = served
    raw = await Raw.open(server.url)
    frames = [encode_frame({**SUBMIT, "ref": 0, "client_ref": "slow"})]
    frames += [encode_frame({**SUBMIT, "ref": i}) for i in range(1, 100)]
    raw.send_bytes(b"".join(frames))  # 100 requests in one write
    with pytest.raises(TimeoutError):
        await raw.recv(timeout=0.3)  # the slow head holds every later reply
    assert handler.seen.count("submit") == 100
    handler.release()
    replies = [await raw.recv() for _ in range(100)]
    assert [r["ref"] for r in replies] == list(range(100))
    assert replies[0]["id"] == "slow"
    assert all(r["ok"] for r in replies)
    assert [r["id"] for r in replies[1:]] == [f"m{i}" for i in range(1, 100)]
    await raw.close()


async def test_replies_are_coalesced_into_one_write(
    served: tuple[UpstreamServer, FakeHandler],
) -> None:
    server, _ = served
    raw = await Raw.open(server.url)
    await raw.call({"op": "ping"})
    (conn,) = server.connections
    writes: list[bytes] = []
    real_write = conn._transport.write  # type: ignore[union-attr]

    def spy(data: bytes) -> None:
        writes.append(data)
        real_write(data)

    conn._transport.write = spy  # type: ignore[method-assign,union-attr]
    raw.send_bytes(b"".join(encode_frame({"op": "ping", "ref": i}) for i in range(50)))
    assert [(await raw.recv())["ref"] for _ in range(50)] == list(range(50))
    assert len(writes) <= 2  # one per data_received, and the 50 frames are ~1 KB
    # Futures completed in one batch are written together too.
    raw.send_bytes(b"".join(encode_frame({**SUBMIT, "ref": i}) for i in range(50)))
    writes.clear()
    assert [(await raw.recv())["ref"] for _ in range(50)] == list(range(50))
    assert len(writes) <= 2
    await raw.close()


BAD_REQUESTS: list[tuple[dict[str, Any], str, str]] = [
    ({"ref": 1}, "invalid_request", "op is missing"),
    ({"op": 7}, "invalid_request", "op must be a string"),
    ({"op": "explode"}, "invalid_request", 'op "explode" is unknown'),
    ({"op": "submit", "to": "+4915112345678", "text": "x"}, "invalid_request", "from is missing"),
    ({**SUBMIT, "to": None}, "invalid_request", "to must be a string"),
    ({**SUBMIT, "to": 4915112345678}, "invalid_request", "to must be a string"),
    ({**SUBMIT, "text": b"bytes"}, "invalid_request", "text must be a string"),
    ({**SUBMIT, "colour": "red"}, "invalid_request", 'unknown key "colour"'),
    ({**SUBMIT, "priority": 5}, "invalid_request", "priority must be 0 or 1, got 5"),
    ({**SUBMIT, "priority": True}, "invalid_request", "priority must be 0 or 1, got True"),
    ({**SUBMIT, "dlr": 1}, "invalid_request", "dlr must be true or false, got 1"),
    ({**SUBMIT, "to": "+1555abc"}, "invalid_number", 'to "+1555abc" has non-digits'),
    ({**SUBMIT, "from": "ACME-MARKETING"}, "invalid_number", 'from "ACME-MARKETING"'),
    ({**SUBMIT, "text": "x" * 1600}, "too_long", "text is 11 segments, at most 10"),
    ({"op": "status"}, "invalid_request", "id is missing"),
    ({"op": "subscribe", "events": ["dlr"]}, "invalid_request", "'dlr' is not one of mdr, mo"),
]


@pytest.mark.parametrize(("request_map", "code", "message"), BAD_REQUESTS)
async def test_bad_requests_get_an_error_naming_the_field(
    served: tuple[UpstreamServer, FakeHandler], request_map: dict[str, Any], code: str, message: str
) -> None:
    server, _ = served
    raw = await Raw.open(server.url)
    reply = await raw.call({**request_map, "ref": 9})
    assert reply["ok"] is False and reply["ref"] == 9
    assert reply["error"] == code
    assert message in reply["message"]
    assert await raw.call({"op": "ping", "ref": 10}) == {"ok": True, "ref": 10}  # still usable
    await raw.close()


async def test_handler_exceptions_become_internal_errors(
    served: tuple[UpstreamServer, FakeHandler],
) -> None:
    server, _ = served
    raw = await Raw.open(server.url)
    with capture_logs() as logs:
        now = await raw.call({**SUBMIT, "client_ref": "boom", "ref": 1})
        later = await raw.call({**SUBMIT, "client_ref": "boom-later", "ref": 2})
    for reply in (now, later):
        assert reply["ok"] is False and reply["error"] == "internal"
        assert "submit failed" in reply["message"]
    assert [e["event"] for e in logs if e["log_level"] == "error"] == [
        "upstream handler failed",
        "upstream handler failed",
    ]
    assert (await raw.call({**SUBMIT, "ref": 3}))["ok"] is True
    await raw.close()


async def test_oversized_header_closes_only_that_connection(
    served: tuple[UpstreamServer, FakeHandler],
) -> None:
    server, _ = served
    bad, good = await Raw.open(server.url), await Raw.open(server.url)
    with capture_logs() as logs:
        bad.send_bytes(HEADER.pack((1 << 20) + 1))  # the header alone: no body is ever sent
        assert await bad.closed_by_peer(timeout=2.0)
    assert logs[0]["event"] == "upstream connection closed"
    assert "exceeds the limit" in logs[0]["reason"] and logs[0]["peer"]
    assert await good.call({"op": "ping", "ref": 1}) == {"ok": True, "ref": 1}
    await good.close()


async def test_frame_of_exactly_the_limit_is_read(sock_dir: str) -> None:
    server = UpstreamServer(FakeHandler(), url=f"unix://{sock_dir}/r.sock", max_frame=1 << 20)
    await server.start()
    raw = await Raw.open(server.url)
    probe = len(msgpack.packb({"op": "ping", "ref": 1, "pad": b"\0" * 70_000}))  # bin 32
    body = msgpack.packb({"op": "ping", "ref": 1, "pad": b"\0" * ((1 << 20) - probe + 70_000)})
    assert len(body) == 1 << 20
    raw.send_bytes(HEADER.pack(len(body)) + body)
    assert await raw.recv() == {"ok": True, "ref": 1}
    await raw.close()
    await server.close(1.0)


@pytest.mark.parametrize(
    "payload",
    [
        HEADER.pack(1) + b"\xc1",  # a byte msgpack never uses
        HEADER.pack(3) + msgpack.packb([1, 2]),  # an array, not a map
        HEADER.pack(1) + msgpack.packb(7),  # a number
        HEADER.pack(0),  # an empty body
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",  # a stray HTTP client: header reads as 1.2 GB
        HEADER.pack(3) + msgpack.packb({1: 2}),  # a map with a non-string key
    ],
)
async def test_unreadable_frames_close_the_connection(
    served: tuple[UpstreamServer, FakeHandler], payload: bytes
) -> None:
    server, _ = served
    bad, good = await Raw.open(server.url), await Raw.open(server.url)
    with capture_logs() as logs:
        bad.send_bytes(payload)
        assert await bad.closed_by_peer(timeout=2.0)
    assert [e["event"] for e in logs] == ["upstream connection closed"]
    assert await good.call({"op": "ping", "ref": 1}) == {"ok": True, "ref": 1}
    await good.close()


async def test_replies_before_a_bad_frame_are_still_sent(
    served: tuple[UpstreamServer, FakeHandler],
) -> None:
    server, _ = served
    raw = await Raw.open(server.url)
    raw.send_bytes(encode_frame({"op": "ping", "ref": 1}) + HEADER.pack(1) + b"\xc1")
    assert await raw.recv() == {"ok": True, "ref": 1}
    assert await raw.closed_by_peer()


async def test_tcp_auth_with_token() -> None:
    server = UpstreamServer(FakeHandler(), url="tcp://127.0.0.1:0", token="s3cret")
    await server.start()
    assert server.port and server.url == f"tcp://127.0.0.1:{server.port}"
    raw = await Raw.open(server.url)
    before = await raw.call({**SUBMIT, "ref": 1})
    assert before["error"] == "unauthorized" and "auth" in before["message"]
    assert (await raw.call({"op": "ping"}))["error"] == "unauthorized"
    with capture_logs() as logs:
        wrong = await raw.call({"op": "auth", "token": "guess"})
    assert wrong["ok"] is False and wrong["error"] == "unauthorized"
    assert logs[0]["event"] == "upstream auth refused"
    assert "guess" not in str(logs) and "s3cret" not in str(logs)
    bad_type = await raw.call({"op": "auth", "token": 1234})
    assert bad_type["error"] == "invalid_request" and "token" in bad_type["message"]
    assert await raw.call({"op": "auth", "token": "s3cret", "ref": 2}) == {"ok": True, "ref": 2}
    assert (await raw.call({**SUBMIT, "ref": 3}))["ok"] is True
    other = await Raw.open(server.url)  # authentication is per connection
    assert (await other.call({"op": "ping"}))["error"] == "unauthorized"
    await raw.close()
    await other.close()
    await server.close(1.0)


async def test_unix_socket_mode_and_stale_file(sock_dir: str) -> None:
    path = os.path.join(sock_dir, "r.sock")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)  # a socket file nobody listens on, as a killed daemon leaves it
    stale.close()
    server = UpstreamServer(FakeHandler(), url=f"unix://{path}", token="only-for-tcp")
    await server.start()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
    raw = await Raw.open(server.url)
    assert (await raw.call({"op": "ping"}))["ok"] is True  # no auth on the Unix socket
    second = UpstreamServer(FakeHandler(), url=f"unix://{path}")
    with pytest.raises(OSError, match="in use"):
        await second.start()  # a live daemon's socket is never taken over
    await raw.close()
    await server.close(1.0)
    assert not os.path.exists(path)


async def test_unix_socket_never_replaces_a_regular_file(sock_dir: str) -> None:
    path = os.path.join(sock_dir, "notes.txt")
    with open(path, "w") as f:
        f.write("keep me")
    with pytest.raises(OSError, match="not a socket"):
        await UpstreamServer(FakeHandler(), url=f"unix://{path}").start()
    with open(path) as f:
        assert f.read() == "keep me"


async def test_events_interleave_with_replies(served: tuple[UpstreamServer, FakeHandler]) -> None:
    server, handler = served
    raw = await Raw.open(server.url)
    assert (await raw.call({"op": "subscribe", "events": ["mdr"], "ref": 1}))["ok"] is True
    raw.send({**SUBMIT, "client_ref": "slow", "ref": 2})
    while not handler.slow:
        await asyncio.sleep(0.01)
    handler.publish({"event": "mdr", "mdr": {"id": "m0", "status": "DELIVERED"}})
    handler.publish({"event": "mo", "mo": {"id": "x"}})  # not subscribed: not sent
    assert await raw.recv() == {"event": "mdr", "mdr": {"id": "m0", "status": "DELIVERED"}}
    handler.release()
    assert (await raw.recv())["ref"] == 2
    (conn,) = server.connections
    await raw.close()
    for _ in range(100):
        if conn.closed:
            break
        await asyncio.sleep(0.01)
    assert conn.closed and not handler.subscribers  # on_close dropped the subscriber


async def test_slow_subscriber_is_disconnected(sock_dir: str) -> None:
    handler = FakeHandler()
    server = UpstreamServer(handler, url=f"unix://{sock_dir}/r.sock", subscriber_buffer=50)
    await server.start()
    slow, other = await Raw.open(server.url), await Raw.open(server.url)
    assert (await slow.call({"op": "subscribe", "events": ["mdr"]}))["ok"] is True
    (conn,) = handler.subscribers
    event = {"event": "mdr", "mdr": {"id": "m", "pad": "x" * 10_000}}
    with capture_logs() as logs:
        for i in range(5_000):  # ~50 MB unless it is cut off first; `slow` never reads
            handler.publish(event)
            if i % 20 == 0:
                await asyncio.sleep(0)
            if conn.closed:
                break
    assert conn.closed and i < 5_000
    assert {"event": "upstream connection closed", "reason": "subscriber too slow",
            "peer": conn.peer, "log_level": "warning"} in logs  # fmt: skip
    assert not handler.subscribers
    assert await other.call({"op": "ping", "ref": 1}) == {"ok": True, "ref": 1}
    await other.close()
    await slow.close()
    await server.close(1.0)


async def test_reading_pauses_while_the_client_does_not_read(
    served: tuple[UpstreamServer, FakeHandler],
) -> None:
    server, handler = served
    handler.big_reply = b"\0" * 100_000
    raw = await Raw.open(server.url)
    for i in range(200):  # one request per read, each answered with 100 KB
        raw.send_bytes(encode_frame({"op": "stats", "ref": i}))
        await asyncio.sleep(0.002)
    served_before_reading = handler.seen.count("stats")
    assert served_before_reading < 200  # 20 MB of replies: the server stopped reading
    replies = [await raw.recv() for _ in range(200)]
    assert [r["ref"] for r in replies] == list(range(200))
    assert handler.seen.count("stats") == 200
    await raw.close()


async def test_close_finishes_pending_replies(sock_dir: str) -> None:
    handler = FakeHandler()
    server = UpstreamServer(handler, url=f"unix://{sock_dir}/r.sock")
    await server.start()
    raw = await Raw.open(server.url)
    raw.send({**SUBMIT, "client_ref": "slow", "ref": 1})
    while not handler.slow:
        await asyncio.sleep(0.01)
    closing = asyncio.ensure_future(server.close(grace_s=2.0))
    await asyncio.sleep(0.05)
    assert not closing.done()  # waits for the reply in progress
    with pytest.raises(OSError):
        await Raw.open(server.url)  # no longer accepting
    handler.release()
    assert (await raw.recv())["ref"] == 1
    assert await raw.closed_by_peer()
    await closing


async def test_close_gives_up_after_grace(sock_dir: str) -> None:
    handler = FakeHandler()
    server = UpstreamServer(handler, url=f"unix://{sock_dir}/r.sock")
    await server.start()
    raw = await Raw.open(server.url)
    raw.send({**SUBMIT, "client_ref": "slow", "ref": 1})
    while not handler.slow:
        await asyncio.sleep(0.01)
    with capture_logs() as logs:
        await asyncio.wait_for(server.close(grace_s=0.1), 2.0)
    assert logs[0]["reason"] == "shutdown grace period over"
    assert await raw.closed_by_peer()
    handler.release()  # a late completion on a closed connection is harmless
    await asyncio.sleep(0.01)


async def test_a_burst_of_events_in_one_loop_pass_stays_bounded(sock_dir: str) -> None:
    handler = FakeHandler()
    server = UpstreamServer(handler, url=f"unix://{sock_dir}/r.sock", subscriber_buffer=50)
    await server.start()
    slow = await Raw.open(server.url)
    assert (await slow.call({"op": "subscribe", "events": ["mdr"]}))["ok"] is True
    (conn,) = handler.subscribers
    event = {"event": "mdr", "mdr": {"id": "m", "pad": "x" * 10_000}}
    for i in range(5_000):  # never yielding: no scheduled flush can run meanwhile
        handler.publish(event)
        if conn.closing:
            break
    assert i < 5_000 and conn.closing  # cut off within the burst, not after it
    await slow.close()
    await server.close(1.0)
