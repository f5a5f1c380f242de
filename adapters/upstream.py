"""The internal socket server: framing, ordering and flow control in front of a Handler.

Theory of operation. Each accepted connection is one `Connection` (an asyncio.Protocol; no
task per connection or per request). `data_received` feeds a `FrameDecoder`; every complete
frame is unpacked and dispatched at once:

- `ping` and `auth` are answered here; an unknown or missing `op` gets `invalid_request`;
  on a TCP listener with a token every other op waits for a good `auth` (`unauthorized`).
- everything else goes to `Handler.request(op, req, conn)`, which returns the reply map or
  an awaitable of it (e.g. the store's group commit acknowledging durability).

Replies leave in request order. The connection keeps a deque of reply slots: a ready reply
is an encoded frame, an awaited one a `_Slot` filled when its awaitable completes. A
`Deferred` reply (the store's commit future and a way to read the reply once it resolved)
is the cheap form: the slots of one commit wait on its future together, with one callback
per connection and commit. Ready
frames at the head move to an output list written with one `transport.write` per
`data_received` and one per batch of completions (a completion schedules a single flush).

Flow control has two sides. Reading stops (`pause_reading`) while the transport's write
buffer is above its high-water mark (the peer doesn't read its replies) or too many
replies are pending; it resumes when both clear. Events (`send_event`) are written straight
away unless the write buffer is full; then they wait in a bounded list, and a subscriber
whose list overflows is disconnected ("subscriber too slow"): everything stays in the store.

Any frame the connection cannot read (header over `max_frame`, not msgpack, not a map)
closes that connection with one logged line naming the peer; other connections never notice.
"""

from __future__ import annotations

import asyncio
import hmac
import os
import socket
import stat
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, cast

import structlog

from adapters.framing import (
    MAX_FRAME,
    Endpoint,
    FrameDecoder,
    FrameTooLarge,
    decode_body,
    encode_frame,
    parse_url,
)
from router.requests import (
    INTERNAL,
    INVALID_REQUEST,
    UNAUTHORIZED,
    RequestError,
    error_reply,
    parse_op,
)

log = structlog.get_logger("adapters.upstream")

class Deferred(Protocol):
    """A reply ready once `durable` resolves (router.service.AfterCommit): many share one
    future. `result()` is called once `durable` is done and must not raise."""

    durable: asyncio.Future[Any]

    def result(self) -> dict[str, Any]: ...


Reply = dict[str, Any] | Deferred | Awaitable[dict[str, Any]]

#: The transport's write buffer above this pauses reading and holds events.
WRITE_HIGH_WATER = 256 * 1024
#: Replies not yet written, per connection, before reading pauses.
MAX_PENDING_REPLIES = 10_000
#: Events gathered in one loop pass before they are written without waiting for the flush.
_EVENT_BATCH = 256
#: Socket file mode: the daemon's user and group only.
SOCKET_MODE = 0o660


class Handler(Protocol):
    """What serves every op but `ping` and `auth` (the daemon's request router).

    `request` is called on the event loop for each request, in arrival order, with the map
    as received (`op` and `ref` included; the parse functions of `router.requests` accept
    them). It returns the reply map (without `ref`; the server adds it, so the map must be
    one the handler doesn't reuse), a `Deferred`, or an awaitable resolving to the map;
    a `Deferred` is cheapest, then a Future (a coroutine costs a task). It validates with `router.requests`
    and returns `RequestError(...).reply()` for a refusal. An exception raised (or set on
    the awaitable) becomes an `internal` reply and a logged traceback; the connection stays.
    """

    def request(self, op: str, req: dict[str, Any], conn: Connection) -> Reply: ...


class _Slot:
    """A reply waiting for its awaitable; `frame` is set when it completes."""

    __slots__ = ("deferred", "frame", "ref")

    def __init__(self, ref: Any, deferred: Deferred | None = None) -> None:
        self.ref = ref
        self.frame: bytes | None = None
        self.deferred = deferred


class Connection(asyncio.Protocol):
    """One client connection. The handler sees these attributes and methods:

    `peer` (for logs), `subscriptions` (the handler's to fill on `subscribe`), `closed`,
    `closing`, `authenticated`, `send_event(event)`, `on_close(callback)`, `close(reason)`.
    """

    def __init__(self, server: UpstreamServer, number: int) -> None:
        self._server = server
        self._decoder = FrameDecoder(server.max_frame)
        self._transport: asyncio.Transport | None = None
        self._queue: deque[bytes | _Slot] = deque()
        self._out: list[bytes] = []
        self._held_events: list[bytes] = []
        self._close_callbacks: list[Callable[[Connection], None]] = []
        #: Slots of Deferred replies by the commit future they wait on.
        self._deferred: dict[asyncio.Future[Any], list[_Slot]] = {}
        self._flush_scheduled = False
        self._write_paused = False
        self._reading_paused = False
        self._draining = False
        self._closing = False
        self.peer = f"conn#{number}"
        self.subscriptions: set[str] = set()
        self.closed = False
        self.authenticated = server.token is None or server.endpoint.kind == "unix"

    # -- what the handler uses ----------------------------------------------------------

    def send_event(self, event: dict[str, Any] | bytes) -> None:
        """Push an event frame (a map, or a frame already made by `encode_frame` when the
        same event goes to many subscribers). It may go out between two replies. A closed
        connection drops it; one that can't keep up is disconnected."""
        if self._closing:
            return
        frame = event if type(event) is bytes else encode_frame(event)  # type: ignore[arg-type]
        if self._write_paused:
            self._held_events.append(frame)
            if len(self._held_events) > self._server.subscriber_buffer:
                self.close("subscriber too slow", abort=True)
            return
        self._out.append(frame)
        if len(self._out) >= _EVENT_BATCH:
            self._flush()  # a burst in one loop pass: write now so flow control sees it
        else:
            self._schedule_flush()

    @property
    def closing(self) -> bool:
        """True from the moment the connection starts closing (events are dropped)."""
        return self._closing

    def on_close(self, callback: Callable[[Connection], None]) -> None:
        """Call `callback(conn)` once the connection is gone (e.g. to drop a subscriber)."""
        if self.closed:
            callback(self)
        else:
            self._close_callbacks.append(callback)

    def close(self, reason: str | None = None, *, abort: bool = False) -> None:
        """Close now: logs `reason` if given; `abort` drops unsent bytes."""
        if self._closing or self._transport is None:
            return
        self._closing = True
        if reason is not None:
            log.warning("upstream connection closed", peer=self.peer, reason=reason)
        if abort:
            self._transport.abort()
        else:
            self._transport.close()

    # -- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = transport = cast(asyncio.Transport, transport)
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        name = transport.get_extra_info("peername")
        if isinstance(name, tuple) and name:
            self.peer = f"{name[0]}:{name[1]}"
        self._server._connections.add(self)

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        decoder = self._decoder
        decoder.feed(data)
        fatal = None
        try:
            while not self._closing and (body := decoder.next_frame()) is not None:
                fatal = self._received(body)
                if fatal is not None:
                    break
        except FrameTooLarge as exc:
            fatal = str(exc)
        self._flush()
        if fatal is not None:
            self.close(fatal)

    def eof_received(self) -> bool:
        # The peer finished sending: answer what is pending, then close (see _flush).
        self._draining = True
        self._flush()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = self._closing = True
        self._queue.clear()
        self._deferred.clear()
        self._held_events.clear()
        self._server._forget(self)
        callbacks, self._close_callbacks = self._close_callbacks, []
        for callback in callbacks:
            try:
                callback(self)
            except Exception:
                log.exception("upstream close callback failed", peer=self.peer)

    def pause_writing(self) -> None:
        self._write_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._held_events:
            self._out.extend(self._held_events)
            self._held_events.clear()
            self._schedule_flush()
        self._update_reading()

    # -- internals ----------------------------------------------------------------------

    def drain(self) -> None:
        """Stop taking requests; close once every pending reply is written."""
        self._draining = True
        self._update_reading()
        self._flush()

    def _received(self, body: bytes) -> str | None:
        """Dispatch one frame; returns why the connection must close, if it must."""
        try:
            req = decode_body(body)
        except ValueError as exc:
            return str(exc)
        ref = req.get("ref")
        reply = self._server._dispatch(req, self)
        if isinstance(reply, dict):
            self._push(self._encode(ref, reply))
            return None
        durable = getattr(reply, "durable", None)
        if durable is not None:
            slot = _Slot(ref, reply)  # type: ignore[arg-type]
            self._queue.append(slot)
            waiting = self._deferred.get(durable)
            if waiting is None:
                self._deferred[durable] = [slot]
                durable.add_done_callback(self._commit_done)
            else:
                waiting.append(slot)
            return None
        slot = _Slot(ref)
        self._queue.append(slot)
        try:
            future = asyncio.ensure_future(reply)  # type: ignore[arg-type]
        except TypeError:
            log.error("handler reply is neither a map nor awaitable", peer=self.peer, op=req["op"])
            slot.frame = self._encode(ref, _internal(req["op"]))
            return None
        future.add_done_callback(lambda f: self._completed(slot, f, req["op"]))
        return None

    def _push(self, frame: bytes) -> None:
        if self._queue:
            self._queue.append(frame)
        else:
            self._out.append(frame)

    def _completed(self, slot: _Slot, future: asyncio.Future[dict[str, Any]], op: str) -> None:
        if future.cancelled():
            reply = error_reply(INTERNAL, f"{op} was cancelled inside the router")
        elif (exc := future.exception()) is not None:
            log.error("upstream handler failed", peer=self.peer, op=op, exc_info=exc)
            reply = _internal(op)
        else:
            reply = future.result()
        if self.closed:
            return
        slot.frame = self._encode(slot.ref, reply)
        self._schedule_flush()

    def _commit_done(self, durable: asyncio.Future[Any]) -> None:
        slots = self._deferred.pop(durable, ())
        if self.closed:
            return
        encode = self._encode
        for slot in slots:
            deferred = slot.deferred
            assert deferred is not None
            try:
                reply = deferred.result()
            except Exception:
                log.exception("upstream deferred reply failed", peer=self.peer)
                reply = _internal("request")
            slot.frame = encode(slot.ref, reply)
            slot.deferred = None
        self._schedule_flush()

    def _encode(self, ref: Any, reply: dict[str, Any]) -> bytes:
        reply["ref"] = ref
        try:
            return encode_frame(reply)
        except Exception:
            log.exception("upstream reply not encodable", peer=self.peer)
            return encode_frame({"ref": ref, **_internal("reply")})

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self.closed or self._transport is None:
            return
        queue, out = self._queue, self._out
        while queue:
            head = queue[0]
            if isinstance(head, _Slot):
                if head.frame is None:
                    break
                head = head.frame
            out.append(head)
            queue.popleft()
        if out:
            data = out[0] if len(out) == 1 else b"".join(out)
            out.clear()
            if not self._closing:
                self._transport.write(data)
        if self._reading_paused or len(queue) >= MAX_PENDING_REPLIES:
            self._update_reading()
        if self._draining and not queue and not self._closing:
            self.close()

    def _update_reading(self) -> None:
        if self._closing or self._transport is None:
            return
        pause = self._draining or self._write_paused or len(self._queue) >= MAX_PENDING_REPLIES
        if pause and not self._reading_paused:
            self._transport.pause_reading()
        elif not pause and self._reading_paused:
            self._transport.resume_reading()
        self._reading_paused = pause


def _internal(op: str) -> dict[str, Any]:
    return error_reply(INTERNAL, f"{op} failed inside the router; the error is logged")


class UpstreamServer:
    """The internal socket: listens on `url`, answers `ping`/`auth`, hands the rest to `handler`.

    `url` is `unix:///abs/path` or `tcp://host:port` (port 0 picks a free port: read
    `server.port` after `start()`). With a `token`, a TCP connection must `auth` before
    any other op; a Unix socket relies on its file mode (0660) instead.
    """

    def __init__(
        self,
        handler: Handler,
        *,
        url: str,
        token: str | None = None,
        max_frame: int = MAX_FRAME,
        subscriber_buffer: int = 10_000,
    ) -> None:
        self.endpoint = parse_url(url)
        self.token = token
        self.max_frame = max_frame
        #: Events held for one subscriber whose socket is full, before it is disconnected.
        self.subscriber_buffer = subscriber_buffer
        self.port: int | None = self.endpoint.port if self.endpoint.kind == "tcp" else None
        self._handler = handler
        self._token_bytes = token.encode() if token is not None else None
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[Connection] = set()
        self._count = 0
        self._idle: asyncio.Future[None] | None = None

    @property
    def connections(self) -> frozenset[Connection]:
        """The open connections (for stats and tests)."""
        return frozenset(self._connections)

    async def start(self) -> None:
        """Listen. Raises OSError when the address is taken or the socket path is in use."""
        loop = asyncio.get_running_loop()
        ep = self.endpoint
        if ep.kind == "unix":
            _remove_stale_socket(ep.path)
            self._server = await loop.create_unix_server(self._connection, ep.path)
            os.chmod(ep.path, SOCKET_MODE)
        else:
            self._server = await loop.create_server(self._connection, ep.host, ep.port)
            self.port = self._server.sockets[0].getsockname()[1]
        log.info("upstream socket listening", url=str(self.url))

    @property
    def url(self) -> str:
        """The URL actually listened on (with the chosen port)."""
        ep = self.endpoint
        if ep.kind == "unix":
            return str(ep)
        return str(Endpoint("tcp", host=ep.host, port=self.port or 0))

    async def close(self, grace_s: float = 5.0) -> None:
        """Stop accepting, let each connection finish its pending replies (up to `grace_s`),
        then close what is left and remove the socket file."""
        if self._server is None:
            return
        self._server.close()
        if self._connections:
            self._idle = asyncio.get_running_loop().create_future()
            for conn in list(self._connections):
                conn.drain()
            try:
                await asyncio.wait_for(asyncio.shield(self._idle), grace_s)
            except TimeoutError:
                for conn in list(self._connections):
                    conn.close("shutdown grace period over", abort=True)
        await self._server.wait_closed()
        self._server = None
        if self.endpoint.kind == "unix":
            _unlink_quietly(self.endpoint.path)

    def _connection(self) -> Connection:
        self._count += 1
        return Connection(self, self._count)

    def _forget(self, conn: Connection) -> None:
        self._connections.discard(conn)
        if not self._connections and self._idle is not None and not self._idle.done():
            self._idle.set_result(None)

    def _dispatch(self, req: dict[str, Any], conn: Connection) -> Reply:
        try:
            op = parse_op(req)
        except RequestError as exc:
            return exc.reply()
        if op == "auth":
            return self._auth(req, conn)
        if not conn.authenticated:
            return error_reply(UNAUTHORIZED, f"{op} needs a successful auth first")
        if op == "ping":
            return {"ok": True}
        try:
            return self._handler.request(op, req, conn)
        except Exception:
            log.exception("upstream handler failed", peer=conn.peer, op=op)
            return _internal(op)

    def _auth(self, req: dict[str, Any], conn: Connection) -> dict[str, Any]:
        token = req.get("token")
        if type(token) is not str:
            return error_reply(INVALID_REQUEST, "token must be a string")
        if self._token_bytes is not None and not hmac.compare_digest(
            token.encode(), self._token_bytes
        ):
            log.warning("upstream auth refused", peer=conn.peer)
            return error_reply(UNAUTHORIZED, "token is wrong")
        conn.authenticated = True
        return {"ok": True}


def _remove_stale_socket(path: str) -> None:
    """Unlink a socket file left by a dead process. Raises OSError if a live process
    listens on it, or if the path is something other than a socket."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise OSError(f"{path} exists and is not a socket; not replacing it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        _unlink_quietly(path)
        return
    finally:
        probe.close()
    raise OSError(f"{path} is in use by a running process")


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
