"""A fake daemon behind the socket server, and a raw frame-level client, for the socket tests.

`FakeHandler` serves the ops the way the daemon will: it validates with `router.requests`,
answers at once or with a Future (like a group commit), and registers subscribers. A
`client_ref` steers a submit: "slow" waits for `release()`, "boom" raises in the handler,
"boom-later" fails its Future.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from adapters.framing import HEADER, decode_body, encode_frame
from adapters.upstream import Connection, UpstreamServer
from router.requests import (
    UNKNOWN_ID,
    RequestError,
    error_reply,
    parse_consent,
    parse_consent_status,
    parse_status,
    parse_submit,
    parse_submit_many,
    parse_subscribe,
)


class FakeHandler:
    def __init__(self) -> None:
        self.seen: list[str] = []
        self.slow: list[asyncio.Future[dict[str, Any]]] = []
        self.subscribers: set[Connection] = set()
        self.accepted: dict[str, Any] = {}
        self.opted_out: set[tuple[str, str]] = set()
        self.big_reply = b""

    def request(self, op: str, req: dict[str, Any], conn: Connection) -> Any:
        self.seen.append(op)
        try:
            return getattr(self, "_" + op)(req, conn)
        except RequestError as exc:
            return exc.reply()

    def release(self) -> None:
        """Complete every slow submit."""
        for future in self.slow:
            future.set_result({"ok": True, "id": "slow", "segments": 1, "encoding": "gsm7"})
        self.slow.clear()

    def publish(self, event: dict[str, Any]) -> None:
        frame = encode_frame(event)
        for conn in list(self.subscribers):
            if event["event"] in conn.subscriptions:
                conn.send_event(frame)

    def _submit(self, req: dict[str, Any], conn: Connection) -> Any:
        sub = parse_submit(req, max_segments=10, default_validity_s=86400)
        if sub.client_ref == "boom":
            raise RuntimeError("handler bug")
        future = asyncio.get_running_loop().create_future()
        if sub.client_ref == "boom-later":
            future.set_exception(RuntimeError("store failed"))
            return future
        if sub.client_ref == "slow":
            self.slow.append(future)
            return future
        rid = f"m{len(self.accepted) + 1}"
        self.accepted[rid] = sub
        future.set_result(
            {"ok": True, "id": rid, "segments": sub.segments, "encoding": sub.encoding}
        )
        return future

    def _submit_many(self, req: dict[str, Any], conn: Connection) -> dict[str, Any]:
        results = []
        for item in parse_submit_many(req, max_segments=10, default_validity_s=86400):
            if isinstance(item, RequestError):
                results.append(item.reply())
            else:
                rid = f"m{len(self.accepted) + 1}"
                self.accepted[rid] = item
                results.append({"ok": True, "id": rid, "segments": item.segments,
                                "encoding": item.encoding})  # fmt: skip
        return {"ok": True, "results": results}

    def _status(self, req: dict[str, Any], conn: Connection) -> dict[str, Any]:
        rid = parse_status(req)
        if rid not in self.accepted:
            return error_reply(UNKNOWN_ID, f'id "{rid}" is unknown')
        return {"ok": True, "mdr": {"id": rid, "status": "QUEUED"}}

    def _subscribe(self, req: dict[str, Any], conn: Connection) -> dict[str, Any]:
        conn.subscriptions |= parse_subscribe(req)
        self.subscribers.add(conn)
        conn.on_close(self.subscribers.discard)
        return {"ok": True}

    def _stats(self, req: dict[str, Any], conn: Connection) -> dict[str, Any]:
        return {"ok": True, "carriers": [], "queues": {}, "blob": self.big_reply}

    def _opt_out(self, req: dict[str, Any], conn: Connection) -> dict[str, Any]:
        c = parse_consent(req)
        self.opted_out.add((c.scope, c.recipient))
        return {"ok": True}

    def _opt_in(self, req: dict[str, Any], conn: Connection) -> dict[str, Any]:
        c = parse_consent(req)
        self.opted_out.discard((c.scope, c.recipient))
        return {"ok": True}

    def _consent_status(self, req: dict[str, Any], conn: Connection) -> dict[str, Any]:
        c = parse_consent_status(req)
        out = (c.scope, c.recipient) in self.opted_out
        return {"ok": True, "opted_out": out, "since": None, "keyword": None, "source": None}


class Raw:
    """A frame-level test client: write any bytes, read replies one by one."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, url: str) -> Raw:
        if url.startswith("unix://"):
            reader, writer = await asyncio.open_unix_connection(url[len("unix://") :])
        else:
            host, port = url[len("tcp://") :].rsplit(":", 1)
            reader, writer = await asyncio.open_connection(host, int(port))
        return cls(reader, writer)

    def send(self, m: dict[str, Any]) -> None:
        self.writer.write(encode_frame(m))

    def send_bytes(self, data: bytes) -> None:
        self.writer.write(data)

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            (length,) = HEADER.unpack(await self.reader.readexactly(4))
            return decode_body(await self.reader.readexactly(length))

    async def call(self, m: dict[str, Any]) -> dict[str, Any]:
        self.send(m)
        return await self.recv()

    async def closed_by_peer(self, timeout: float = 5.0) -> bool:
        """True when the server closes the connection within `timeout` (frames are skipped)."""
        try:
            async with asyncio.timeout(timeout):
                while await self.reader.read(65536):
                    pass
        except TimeoutError:
            return False
        except ConnectionError:
            pass
        return True

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except ConnectionError:
            pass


@pytest.fixture
def sock_dir() -> Iterator[str]:
    # A short path: AF_UNIX paths are limited to about 100 bytes.
    path = tempfile.mkdtemp(prefix="up", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
async def served(sock_dir: str) -> AsyncIterator[tuple[UpstreamServer, FakeHandler]]:
    handler = FakeHandler()
    server = UpstreamServer(handler, url=f"unix://{os.path.join(sock_dir, 'r.sock')}")
    await server.start()
    yield server, handler
    await server.close(1.0)


SUBMIT = {"op": "submit", "from": "ACME", "to": "+4915112345678", "text": "hello"}
