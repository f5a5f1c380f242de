"""The baseline: the same load sent straight into the simulators by a minimal pipelined ESME.

No router in between: what the carrier side (and this process, generating the load)
can absorb.  Each connection is an ``asyncio.Protocol`` bound as a transceiver that
keeps ``window`` submit_sm outstanding, builds each PDU with precompiled ``struct``
packing, and answers a batch of responses with one write of new submits.  Texts are
rendered by ``router.text.render`` (the router pays that too) and routed as the
scenario's routes say: UK numbers to the first carrier, US numbers to the second.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections import deque
from collections.abc import Iterator

from benchmarks._load import Message
from router.text import measure, render

__all__ = ["run_direct"]

_HEADER = struct.Struct(">IIII")
#: SMPP 3.4 §5.1.2.1 command ids: bind_transceiver, submit_sm, deliver_sm; bit 31 marks a response.
_BIND_TRX, _SUBMIT_SM, _DELIVER_SM, _RESP = 0x09, 0x04, 0x05, 0x80000000
#: §4.4.1 from esm_class to sm_length: esm_class, protocol_id, priority_flag,
#: schedule_delivery_time (empty), validity_period (empty), registered_delivery,
#: replace_if_present_flag, data_coding, sm_default_msg_id, sm_length.
_TAIL = struct.Struct(">BBBxxBBBBB")
#: §5.2.5 / §5.2.6: international E.164 numbers, TON 1 / NPI 1.
_ADDR_INTL = b"\x01\x01"
#: §5.2.12: UDHI, the short_message starts with a user data header.
_UDHI = 0x40


def _submit_bodies(msg: Message, registered_delivery: int) -> list[bytes]:
    """The submit_sm bodies (§4.4.1) of every part of ``msg``."""
    encoding, _ = measure(msg.text)
    head = b"\0" + _ADDR_INTL + msg.source.encode() + b"\0" + _ADDR_INTL + msg.dest.encode() + b"\0"
    pack = _TAIL.pack
    return [
        head + pack(_UDHI if p.esm_class_udhi else 0, 0, 0, registered_delivery, 0, p.data_coding, 0,
                    len(p.short_message)) + p.short_message
        for p in render(msg.text, encoding, ref=msg.token)
    ]


class _Feed:
    """Hands out submit_sm bodies per carrier from one message stream until its deadline."""

    def __init__(self, stream: Iterator[Message], deadline: float, registered_delivery: int) -> None:
        self.stream = stream
        self.deadline = deadline
        self.registered_delivery = registered_delivery
        self.pending: tuple[deque[bytes], deque[bytes]] = (deque(), deque())
        self.messages = 0
        self.exhausted = False
        self.started_at: float | None = None

    def next_body(self, carrier: int) -> bytes | None:
        queue = self.pending[carrier]
        while not queue:
            if self.exhausted:
                return None
            now = time.time()
            if now >= self.deadline:
                self.exhausted = True
                return None
            msg = next(self.stream, None)
            if msg is None:
                self.exhausted = True
                return None
            if self.started_at is None:
                self.started_at = now
            self.messages += 1
            self.pending[0 if msg.dest.startswith("44") else 1].extend(
                _submit_bodies(msg, self.registered_delivery)
            )
        return queue.popleft()


class _Esme(asyncio.Protocol):
    """One transceiver bind keeping ``window`` submit_sm in flight."""

    def __init__(self, feed: _Feed, carrier: int, window: int, system_id: str) -> None:
        self.feed = feed
        self.carrier = carrier
        self.window = window
        self.system_id = system_id
        self.buf = b""
        self.seq = 1
        self.outstanding = 0
        self.responses = 0
        self.errors = 0
        self.bound = False
        self.idle: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        body = self.system_id.encode() + b"\0bench\0\0\x34\x00\x00\0"  # §4.1.5
        transport.write(_HEADER.pack(16 + len(body), _BIND_TRX, 0, 1) + body)  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.idle.done():
            self.idle.set_exception(ConnectionError(f"simulator closed the bind ({exc or 'EOF'})"))

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        pos, size = 0, len(buf)
        unpack, pack = _HEADER.unpack_from, _HEADER.pack
        out: list[bytes] = []
        while size - pos >= 16:
            length, cid, status, seq = unpack(buf, pos)
            if size - pos < length:
                break
            pos += length
            if cid == _SUBMIT_SM | _RESP:
                self.outstanding -= 1
                self.responses += 1
                if status:
                    self.errors += 1
            elif cid == _DELIVER_SM:  # a receipt: answer it (§4.6.2), nothing else
                out.append(pack(17, _DELIVER_SM | _RESP, 0, seq) + b"\0")
            elif cid == _BIND_TRX | _RESP:
                if status:
                    raise ConnectionError(f"bind refused with status 0x{status:08X}")
                self.bound = True
        self.buf = buf[pos:]
        if self.bound:
            self._fill(out)
        if out and self.transport is not None:
            self.transport.write(b"".join(out))
        if self.bound and self.outstanding == 0 and self.feed.exhausted and not self.idle.done():
            self.idle.set_result(None)

    def _fill(self, out: list[bytes]) -> None:
        pack, feed, carrier, seq = _HEADER.pack, self.feed, self.carrier, self.seq
        while self.outstanding < self.window:
            body = feed.next_body(carrier)
            if body is None:
                break
            seq += 1
            out.append(pack(16 + len(body), _SUBMIT_SM, 0, seq))
            out.append(body)
            self.outstanding += 1
        self.seq = seq


async def run_direct(
    ports: tuple[int, int], names: tuple[str, str], stream: Iterator[Message], seconds: float,
    binds: int, window: int, registered_delivery: int = 0,
) -> tuple[int, float, int]:
    """Send ``stream`` for ``seconds`` over ``binds`` transceivers per simulator.

    Returns (messages sent, time.time() of the first, error responses).  Raises
    ConnectionError when a bind is refused or closed, TimeoutError when the
    simulators stop answering.
    """
    loop = asyncio.get_running_loop()
    feed = _Feed(stream, float("inf"), registered_delivery)
    esmes: list[_Esme] = []
    transports = []
    try:
        for carrier, (port, name) in enumerate(zip(ports, names)):
            for _ in range(binds):
                esme = _Esme(feed, carrier, window, name)
                transport, _ = await loop.create_connection(lambda e=esme: e, "127.0.0.1", port)  # type: ignore[misc]
                transports.append(transport)
                esmes.append(esme)
        # Every bind is answered before the clock starts: the deadline is set now.
        async with asyncio.timeout(5.0):
            while not all(e.bound for e in esmes):
                await asyncio.sleep(0.01)
        feed.deadline = time.time() + seconds
        for e in esmes:
            out: list[bytes] = []
            e._fill(out)
            assert e.transport is not None
            e.transport.write(b"".join(out))
        async with asyncio.timeout(seconds + 30.0):
            while not feed.exhausted:
                await asyncio.sleep(0.05)
            for e in esmes:
                if e.outstanding == 0 and not e.idle.done():
                    e.idle.set_result(None)
            await asyncio.gather(*(e.idle for e in esmes))
    finally:
        for t in transports:
            t.close()
    assert feed.started_at is not None
    return feed.messages, feed.started_at, sum(e.errors for e in esmes)
