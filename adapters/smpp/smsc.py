"""The SMSC side over asyncio: accept connections, one SMSC-role ``Session`` each.

Theory of operation
-------------------
This is the thin adapter of STYLE.md §4 (aioquic ``asyncio/protocol.py``): every
accepted socket is one ``SmscConnection`` (an ``asyncio.Protocol``; no task per
connection or per PDU) wrapping a ``Session(Role.SMSC)``.  Bytes go into
``receive_data``; the events go to the connection's handler, which answers
through ``send_response``/``send``; everything the session queued during one
call leaves in one ``transport.write``.  Sends made outside ``data_received``
(a timer, another connection's traffic) schedule one flush per loop pass, so a
burst of deliver_sm to one bind is still one write.

One timer per connection is re-armed from ``get_timer()`` after every call into
the session.  It is armed lazily: only moved earlier, never cancelled when the
deadline moves later (it then fires, finds nothing due and re-arms).

Two switches serve fault injection without knowing about it:

- ``count_pdus``: feed the session one whole PDU at a time and call the
  handler once per PDU (even when the PDU raised no event), with
  ``pdus_received`` up to date, so "after N PDUs" can be exact even when many
  PDUs arrive in one read.  Fixed when the connection is made.
- ``muted``: whatever the session queues is discarded instead of written —
  nothing is answered, not even enquire_link; the socket stays open, and the
  session's deadlines (our keepalive above all) wait until it is unmuted.

Flow control: while the transport's write buffer is over its high-water mark
(the peer doesn't read), reading pauses, so a client that never reads its
responses cannot make us buffer without bound.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any, Protocol

from adapters.smpp.constants import DEFAULT_MAX_PDU_BYTES, HEADER_SIZE
from adapters.smpp.events import Event
from adapters.smpp.session import Role, Session, State

__all__ = ["ConnectionHandler", "SmscConnection", "SmscServer", "default_session"]


class ConnectionHandler(Protocol):
    """What ``on_connection`` returns: the application's side of one connection."""

    def handle_events(self, conn: SmscConnection, events: list[Event], now: float) -> None:
        """Act on what the session reported (answer requests with ``conn.send_response``)."""

    def connection_lost(self, conn: SmscConnection, exc: Exception | None) -> None:
        """The socket is gone; ``conn.session.in_flight()`` lists what was never answered."""


OnConnection = Callable[["SmscConnection"], ConnectionHandler]
SessionFactory = Callable[[], Session]


def default_session() -> Session:
    """An SMSC session with a 64-request window, 30 s timeouts and no keepalive of ours."""
    return Session(Role.SMSC, window=64, response_timeout_s=30.0, enquire_link_s=0.0, bind_timeout_s=30.0)


_ids = itertools.count(1)
#: How often a muted connection looks again whether it may run its timers.
_MUTED_RECHECK_S = 0.25


class SmscConnection(asyncio.Protocol):
    """One accepted socket and its SMSC-role session (see the module docstring)."""

    def __init__(
        self,
        server: SmscServer,
        session: Session,
        *,
        count_pdus: bool = False,
        max_pdu_bytes: int = DEFAULT_MAX_PDU_BYTES,
    ) -> None:
        self.id = next(_ids)
        self.session = session
        self.count_pdus = count_pdus
        self.muted = False
        #: Whole PDUs received (kept only with ``count_pdus``).
        self.pdus_received = 0
        #: ``transport.write`` calls so far: a handler compares it to see what was written.
        self.writes = 0
        self.peer: Any = None
        self.handler: ConnectionHandler | None = None
        self._server = server
        self._loop = asyncio.get_running_loop()
        self._transport: Any = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._flush_pending = False
        self._in_receive = False
        self._closed = False
        self._split = bytearray()
        self._chunks: list[bytes] = []
        self._max_pdu = max_pdu_bytes

    # ------------------------------------------------------------ asyncio side

    def connection_made(self, transport: Any) -> None:  # asyncio.Protocol
        self._transport = transport
        self.peer = transport.get_extra_info("peername")
        self._server.connections.add(self)
        self.handler = self._server.on_connection(self)
        self._after_call()

    def data_received(self, data: bytes) -> None:  # asyncio.Protocol
        if self._closed:
            return
        now = self._loop.time()
        self._in_receive = True
        try:
            if self.count_pdus:
                self._receive_each(data, now)
            else:
                events = self.session.receive_data(data, now)
                if events:
                    self.handler.handle_events(self, events, now)  # type: ignore[union-attr]
        finally:
            self._in_receive = False
        self._after_call()

    def connection_lost(self, exc: Exception | None) -> None:  # asyncio.Protocol
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.session.close()
        self._server.connections.discard(self)
        if self.handler is not None:
            self.handler.connection_lost(self, exc)

    def pause_writing(self) -> None:  # the peer is not reading: stop reading too
        if not self._closed:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        if not self._closed:
            self._transport.resume_reading()

    # ---------------------------------------------------------- handler's side

    @property
    def closed(self) -> bool:
        """True once the connection is closing or gone."""
        return self._closed

    def send(self, pdu: Any) -> int:
        """Queue request ``pdu`` (deliver_sm, unbind, ...) and return its sequence number.

        Raises what ``Session.send`` raises (WindowFull above all); nothing is
        queued then.  Written within this loop pass.
        """
        seq = self.session.send(pdu, self._loop.time())
        self._queued()
        return seq

    def send_response(self, pdu: Any) -> None:
        """Queue response ``pdu``; raises what ``Session.send_response`` raises."""
        self.session.send_response(pdu, self._loop.time())
        self._queued()

    def flush(self) -> None:
        """Write what the session has queued now (unless muted), re-arm the timer."""
        self._after_call()

    def close(self) -> None:
        """Write what is queued, then close the socket (FIN)."""
        if self._closed:
            return
        self._after_call()
        self._closed = True
        self.session.close()
        self._transport.close()

    def abort(self) -> None:
        """Drop the socket at once (RST), discarding anything unwritten."""
        if self._transport is not None and not self._transport.is_closing():
            self._closed = True
            self._transport.abort()

    # ---------------------------------------------------------------- inside

    def _receive_each(self, data: bytes, now: float) -> None:
        buf = self._split
        buf += data
        handler = self.handler
        session = self.session
        pos, avail = 0, len(buf)
        while avail - pos >= 4 and session.state is not State.CLOSED:
            length = int.from_bytes(buf[pos : pos + 4], "big")
            if not HEADER_SIZE <= length <= self._max_pdu:
                pdu_bytes = bytes(buf[pos:])  # the session reports the lost framing
                pos = avail
            elif avail - pos < length:
                break
            else:
                pdu_bytes = bytes(buf[pos : pos + length])
                pos += length
                self.pdus_received += 1
            events = session.receive_data(pdu_bytes, now)
            handler.handle_events(self, events, now)  # type: ignore[union-attr]
            self._collect()
        del buf[:pos]

    def _queued(self) -> None:
        if self._in_receive or self._flush_pending or self._closed:
            return
        self._flush_pending = True
        self._loop.call_soon(self._scheduled_flush)

    def _scheduled_flush(self) -> None:
        self._flush_pending = False
        if not self._closed:
            self._after_call()

    def _collect(self) -> None:
        data = self.session.data_to_send()
        if data and not self.muted:
            self._chunks.append(data)

    def _after_call(self) -> None:
        session = self.session
        if self._closed:
            session.data_to_send()  # gone or going: nothing more is written
            return
        self._collect()
        chunks = self._chunks
        if chunks:
            self._transport.write(chunks[0] if len(chunks) == 1 else b"".join(chunks))
            chunks.clear()
            self.writes += 1
        if session.state is State.CLOSED:
            if not self._closed:
                self._closed = True
                self._transport.close()
            return
        when = session.get_timer()
        if when is not None and (self._timer is None or when < self._timer_at):
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = when
            self._timer = self._loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self._closed:
            return
        if self.muted:
            # Muted means silent, not dead: our unanswerable keepalive must not
            # time the session out.  Deadlines wait until we speak again.
            self._timer_at = self._loop.time() + _MUTED_RECHECK_S
            self._timer = self._loop.call_at(self._timer_at, self._on_timer)
            return
        # asyncio may run a handle up to one clock tick early: never ask for less than its deadline.
        now = max(self._loop.time(), self._timer_at)
        events = self.session.handle_timer(now)
        if events:
            self.handler.handle_events(self, events, now)  # type: ignore[union-attr]
        self._after_call()


class SmscServer:
    """A listening socket whose every connection is an SMSC-role session.

    ``on_connection(conn)`` is called for each new connection and returns its
    handler.  ``session_factory`` builds each connection's ``Session``;
    ``count_pdus(conn_number)``, when given, decides per connection whether it
    is fed PDU by PDU (see the module docstring).
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        on_connection: OnConnection,
        session_factory: SessionFactory = default_session,
        count_pdus: Callable[[], bool] | None = None,
        max_pdu_bytes: int = DEFAULT_MAX_PDU_BYTES,
    ) -> None:
        self.host = host
        self.on_connection = on_connection
        self.connections: set[SmscConnection] = set()
        self._port = port
        self._session_factory = session_factory
        self._count_pdus = count_pdus
        self._max_pdu = max_pdu_bytes
        self._server: asyncio.AbstractServer | None = None

    @property
    def port(self) -> int:
        """The bound port (the ephemeral one when constructed with 0, once started)."""
        return self._port

    async def start(self) -> None:
        """Start listening. Raises OSError when the address cannot be bound."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, self.host, self._port, reuse_address=True)
        self._port = self._server.sockets[0].getsockname()[1]

    def close_connections(self, abort: bool = False) -> None:
        """Close every open connection (``abort``: RST without writing what is queued)."""
        for conn in list(self.connections):
            conn.abort() if abort else conn.close()

    async def stop(self) -> None:
        """Stop accepting, close every connection and wait for the listener to close."""
        if self._server is not None:
            self._server.close()
        self.close_connections()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    def _protocol(self) -> SmscConnection:
        split = self._count_pdus() if self._count_pdus is not None else False
        return SmscConnection(self, self._session_factory(), count_pdus=split, max_pdu_bytes=self._max_pdu)
