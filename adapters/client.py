"""Client library for the internal socket: `AsyncClient` (asyncio) and `Client` (blocking).

Both speak the frames of `adapters.framing` and number requests with a counter `ref`.
Every call returns the reply map, `ok: false` included: a refusal such as `invalid_number`
or `opted_out` is an answer the caller decides about. Connect with `check=True` to have
`ok: false` raised as `ClientError(code, message)` instead. `submit_many` is judged on its
own `ok`; its per-message results are always returned as they are.

Connection-level failures raise: `ConnectionLost` (the router closed the connection),
`TimeoutError` (no reply within `timeout` seconds), `ClientError` from `connect` when
`auth` fails.

    client = await AsyncClient.connect("unix:///run/smpp-router.sock")
    reply = await client.submit("ACME", "+4915112345678", text="Your code is 1234")
    subscription = await client.subscribe(["mdr"])
    async for event in subscription: ...
"""

from __future__ import annotations

import asyncio
import itertools
import selectors
import socket
from collections import deque
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from typing import Any, cast

from adapters.framing import MAX_FRAME, Endpoint, FrameDecoder, decode_body, encode_frame, parse_url

#: Events a subscriber holds unread before the client stops reading the socket (the router
#: then disconnects it as too slow once its own bound is passed).
EVENT_QUEUE_LIMIT = 10_000


class ClientError(Exception):
    """A reply with `ok: false`, raised (with `check=True`, or when `auth` fails)."""

    def __init__(self, code: str, message: str, reply: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.reply = reply


class ConnectionLost(ConnectionError):
    """The router closed the connection (or it broke) before the reply arrived."""


def submit_map(
    from_: str,
    to: str,
    text: str | None = None,
    data: bytes | None = None,
    data_coding: int | None = None,
    dlr: bool = True,
    priority: int = 0,
    validity_s: int | None = None,
    client_ref: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The wire map of one message (for `submit_many`); None-valued options are left out."""
    m: dict[str, Any] = {"from": from_, "to": to, "dlr": dlr, "priority": priority}
    for key, value in (
        ("text", text),
        ("data", data),
        ("data_coding", data_coding),
        ("validity_s", validity_s),
        ("client_ref", client_ref),
    ):
        if value is not None:
            m[key] = value
    if tags is not None:
        m["tags"] = dict(tags)
    return m


def _consent_map(from_: str, to: str, source: str | None) -> dict[str, Any]:
    m: dict[str, Any] = {"from": from_, "to": to}
    if source is not None:
        m["source"] = source
    return m


def _checked(reply: dict[str, Any], check: bool) -> dict[str, Any]:
    if check and reply.get("ok") is not True:
        raise ClientError(str(reply.get("error")), str(reply.get("message")), reply)
    return reply


def _is_event(msg: dict[str, Any]) -> bool:
    return "event" in msg and "ref" not in msg


class _Calls:
    """The named calls, written once over `request(op, fields)` for both clients."""

    def request(self, op: str, fields: dict[str, Any]) -> Any:
        raise NotImplementedError

    def submit(
        self,
        from_: str,
        to: str,
        text: str | None = None,
        data: bytes | None = None,
        data_coding: int | None = None,
        dlr: bool = True,
        priority: int = 0,
        validity_s: int | None = None,
        client_ref: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> Any:
        """Submit one message: `{ok, id, segments, encoding}` or a refusal."""
        fields = submit_map(
            from_, to, text, data, data_coding, dlr, priority, validity_s, client_ref, tags
        )
        return self.request("submit", fields)

    def submit_many(self, messages: Iterable[Mapping[str, Any]]) -> Any:
        """Submit wire maps (see `submit_map`): `{ok, results: [...]}`, one result each."""
        return self.request("submit_many", {"messages": [dict(m) for m in messages]})

    def status(self, id: str) -> Any:
        """The MDR of router id `id`: `{ok, mdr}` or `unknown_id`."""
        return self.request("status", {"id": id})

    def ping(self) -> Any:
        """`{ok: true}` when the router answers."""
        return self.request("ping", {})

    def stats(self) -> Any:
        """Carriers, binds, health and queues (DESIGN.md `stats`)."""
        return self.request("stats", {})

    def opt_out(self, from_: str, to: str, source: str | None = None) -> Any:
        """Record that `to` opted out of sender or program `from_`."""
        return self.request("opt_out", _consent_map(from_, to, source))

    def opt_in(self, from_: str, to: str, source: str | None = None) -> Any:
        """Record that `to` opted in again to sender or program `from_`."""
        return self.request("opt_in", _consent_map(from_, to, source))

    def consent_status(self, from_: str, to: str) -> Any:
        """`{ok, opted_out, since, keyword, source}` for recipient `to` and scope `from_`."""
        return self.request("consent_status", {"from": from_, "to": to})


# -- asyncio -------------------------------------------------------------------------


class _AsyncProtocol(asyncio.Protocol):
    def __init__(self, client: AsyncClient, max_frame: int) -> None:
        self.client = client
        self.decoder = FrameDecoder(max_frame)
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.decoder.feed(data)
        try:
            while (body := self.decoder.next_frame()) is not None:
                self.client._received(decode_body(body))
        except ValueError as exc:  # FrameTooLarge included: framing is lost
            assert self.transport is not None
            self.transport.abort()
            self.client._lost(ConnectionLost(f"unreadable frame from the router: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.client._lost(ConnectionLost(f"connection to the router lost ({exc or 'closed'})"))


class AsyncClient(_Calls):
    """Pipelined asyncio client: concurrent calls share the connection, each awaiting the
    reply with its `ref`. Calls return coroutines resolving to the reply map."""

    def __init__(self, *, check: bool, timeout: float | None) -> None:
        self.check = check
        self.timeout = timeout
        self._protocol: _AsyncProtocol | None = None
        self._refs = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._events: asyncio.Queue[dict[str, Any] | BaseException] = asyncio.Queue()
        self._paused = False
        self._error: BaseException | None = None

    @classmethod
    async def connect(
        cls,
        url: str,
        token: str | None = None,
        *,
        check: bool = False,
        timeout: float | None = 30.0,
        max_frame: int = MAX_FRAME,
    ) -> AsyncClient:
        """Connect (and `auth` when `token` is given). Raises OSError when the router can't
        be reached, ClientError when the token is refused, ValueError for a bad URL."""
        ep = parse_url(url)
        self = cls(check=check, timeout=timeout)
        loop = asyncio.get_running_loop()
        factory = lambda: _AsyncProtocol(self, max_frame)  # noqa: E731
        if ep.kind == "unix":
            _, self._protocol = await loop.create_unix_connection(factory, ep.path)
        else:
            _, self._protocol = await loop.create_connection(factory, ep.host, ep.port)
        if token is not None:
            reply = await self._call("auth", {"token": token})
            if reply.get("ok") is not True:
                await self.close()
                raise ClientError(str(reply.get("error")), str(reply.get("message")), reply)
        return self

    async def request(self, op: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Send any op with its fields; the reply map (raises ClientError when checked)."""
        return _checked(await self._call(op, fields), self.check)

    async def subscribe(self, events: Iterable[str]) -> AsyncIterator[dict[str, Any]]:
        """Subscribe to `mdr` and/or `mo`; returns an async iterator of event maps once the
        router confirmed. It ends after `close()`, raises ConnectionLost if the router
        drops the connection. Raises ClientError when the router refuses the subscription."""
        reply = await self._call("subscribe", {"events": list(events)})
        _checked(reply, True)
        return self._iter_events()

    async def close(self) -> None:
        """Close the connection; pending calls fail with ConnectionLost."""
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()
        self._lost(None)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _call(self, op: str, fields: dict[str, Any]) -> dict[str, Any]:
        if self._error is not None or self._protocol is None or self._protocol.transport is None:
            raise ConnectionLost("client is closed")
        ref = next(self._refs)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[ref] = future
        self._protocol.transport.write(encode_frame({**fields, "op": op, "ref": ref}))
        try:
            async with asyncio.timeout(self.timeout):
                return await future
        finally:
            self._waiting.pop(ref, None)

    def _received(self, msg: dict[str, Any]) -> None:
        if _is_event(msg):
            self._events.put_nowait(msg)
            if self._events.qsize() >= EVENT_QUEUE_LIMIT and not self._paused:
                self._set_reading(paused=True)
            return
        future = self._waiting.pop(msg.get("ref"), None)  # type: ignore[arg-type]
        if future is not None and not future.done():
            future.set_result(msg)

    def _lost(self, exc: ConnectionLost | None) -> None:
        if self._error is not None:
            return
        self._error = exc or ConnectionLost("client is closed")
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(self._error)
        self._waiting.clear()
        self._events.put_nowait(exc if exc is not None else StopAsyncIteration())

    def _set_reading(self, *, paused: bool) -> None:
        transport = self._protocol.transport if self._protocol else None
        if transport is not None and not transport.is_closing():
            transport.pause_reading() if paused else transport.resume_reading()
        self._paused = paused

    async def _iter_events(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            item = await self._events.get()
            if isinstance(item, BaseException):
                self._events.put_nowait(item)  # every iterator sees the end
                if isinstance(item, StopAsyncIteration):
                    return
                raise item
            if self._paused and self._events.qsize() < EVENT_QUEUE_LIMIT // 2:
                self._set_reading(paused=False)
            yield item


# -- blocking ------------------------------------------------------------------------


class Client(_Calls):
    """Blocking client on the `socket` module (scripts, `smpp-router send`, load tools).
    Calls return the reply map. Events that arrive while a call waits are kept for
    `subscribe`'s iterator."""

    def __init__(
        self, sock: socket.socket, *, check: bool, timeout: float | None, max_frame: int
    ) -> None:
        self.check = check
        self.timeout = timeout
        self._sock = sock
        self._decoder = FrameDecoder(max_frame)
        self._refs = itertools.count(1)
        self._events: deque[dict[str, Any]] = deque()

    @classmethod
    def connect(
        cls,
        url: str,
        token: str | None = None,
        *,
        check: bool = False,
        timeout: float | None = 30.0,
        max_frame: int = MAX_FRAME,
    ) -> Client:
        """Connect (and `auth` when `token` is given). Raises OSError when the router can't
        be reached, ClientError when the token is refused, ValueError for a bad URL."""
        sock = _open(parse_url(url), timeout)
        self = cls(sock, check=check, timeout=timeout, max_frame=max_frame)
        if token is not None:
            reply = self._call("auth", {"token": token})
            if reply.get("ok") is not True:
                self.close()
                raise ClientError(str(reply.get("error")), str(reply.get("message")), reply)
        return self

    def request(self, op: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Send any op with its fields; the reply map (raises ClientError when checked)."""
        return _checked(self._call(op, fields), self.check)

    def subscribe(
        self, events: Iterable[str], idle_timeout: float | None = None
    ) -> Iterator[dict[str, Any]]:
        """Subscribe; returns an iterator of event maps that blocks for the next one (for
        ever, or up to `idle_timeout` seconds: TimeoutError). Raises ClientError when the
        router refuses, ConnectionLost when it drops the connection."""
        _checked(self._call("subscribe", {"events": list(events)}), True)
        return self._iter_events(idle_timeout)

    def submit_pipelined(
        self, messages: Iterable[Mapping[str, Any]], window: int = 256
    ) -> list[dict[str, Any]]:
        """Submit many messages (each the keyword arguments of `submit`), keeping up to
        `window` requests in flight; the replies in order. Reading and writing interleave,
        so no window size can deadlock against the router's flow control. Raises
        ConnectionLost, TimeoutError (no progress for `timeout` seconds)."""
        if window < 1:
            raise ValueError(f"window must be at least 1, got {window}")
        maps = ({**submit_map(**m), "op": "submit"} for m in messages)
        return self._pipeline(maps, window)

    def close(self) -> None:
        """Close the socket."""
        self._sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _call(self, op: str, fields: dict[str, Any]) -> dict[str, Any]:
        ref = next(self._refs)
        self._sock.sendall(encode_frame({**fields, "op": op, "ref": ref}))
        while True:
            msg = self._read_message(self.timeout)
            got = msg.get("ref")
            if _is_event(msg):
                self._events.append(msg)
            elif got == ref:
                return msg
            elif not (type(got) is int and got < ref):  # older: a call that timed out
                raise ConnectionLost(f"reply for ref {got!r} while waiting for {ref}")

    def _read_message(self, timeout: float | None) -> dict[str, Any]:
        while (body := self._decoder.next_frame()) is None:
            if timeout == self.timeout:
                self._decoder.feed(self._recv())
                continue
            self._sock.settimeout(timeout)
            try:
                self._decoder.feed(self._recv())
            finally:
                self._sock.settimeout(self.timeout)
        return decode_body(body)

    def _recv(self) -> bytes:
        try:
            data = self._sock.recv(1 << 16)
        except ConnectionError as exc:
            raise ConnectionLost(f"connection to the router lost ({exc})") from exc
        except socket.timeout:
            raise TimeoutError("no data from the router in time") from None
        if not data:
            raise ConnectionLost("the router closed the connection")
        return data

    def _iter_events(self, idle_timeout: float | None) -> Iterator[dict[str, Any]]:
        while True:
            while self._events:
                yield self._events.popleft()
            msg = self._read_message(idle_timeout)
            if _is_event(msg):
                yield msg

    def _pipeline(self, maps: Iterator[dict[str, Any]], window: int) -> list[dict[str, Any]]:
        sock, results = self._sock, list[dict[str, Any]]()
        outgoing = bytearray()
        expected: deque[int] = deque()
        exhausted = False
        sock.setblocking(False)
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(sock, selectors.EVENT_READ)
                while not exhausted or expected:
                    while not exhausted and len(expected) < window:
                        m = next(maps, None)
                        if m is None:
                            exhausted = True
                            break
                        expected.append(ref := next(self._refs))
                        m["ref"] = ref
                        outgoing += encode_frame(m)
                    mask = selectors.EVENT_READ | (selectors.EVENT_WRITE if outgoing else 0)
                    selector.modify(sock, mask)
                    ready = selector.select(self.timeout)
                    if not ready:
                        raise TimeoutError(f"no progress within {self.timeout} s")
                    if ready[0][1] & selectors.EVENT_WRITE:
                        del outgoing[: sock.send(outgoing)]
                    if ready[0][1] & selectors.EVENT_READ:
                        self._read_ready(expected, results)
        finally:
            sock.settimeout(self.timeout)
        return results

    def _read_ready(self, expected: deque[int], results: list[dict[str, Any]]) -> None:
        """Read what the socket has; replies go to `results`, checked against `expected`."""
        try:
            self._decoder.feed(self._recv())
        except BlockingIOError:  # readiness was spurious
            return
        while (body := self._decoder.next_frame()) is not None:
            msg = decode_body(body)
            if _is_event(msg):
                self._events.append(msg)
                continue
            got, ref = msg.get("ref"), expected[0] if expected else None
            if got == ref:
                expected.popleft()
                results.append(msg)
            elif not (type(got) is int and ref is not None and got < ref):
                raise ConnectionLost(f"reply for ref {got!r} while waiting for {ref}")


def _open(ep: Endpoint, timeout: float | None) -> socket.socket:
    if ep.kind == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(ep.path)
        except BaseException:
            sock.close()
            raise
        return sock
    sock = socket.create_connection((ep.host, ep.port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock
