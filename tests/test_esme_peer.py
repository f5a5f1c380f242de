"""A raw-socket SMSC written from bytes, for the carrier pool tests.

It frames, parses and answers with ``struct`` only, never with our codec or
session, so a mistake shared by both ends of our own session cannot hide.
The tests in this file check the peer itself against the spec's byte layout
(and against our decoder, which must agree with it).
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from typing import Any

HEADER = struct.Struct(">IIII")
#: §5.1.2.1 command ids the peer understands.
BIND_RECEIVER, BIND_TRANSMITTER, SUBMIT_SM, DELIVER_SM, UNBIND = 0x01, 0x02, 0x04, 0x05, 0x06
BIND_TRANSCEIVER, ENQUIRE_LINK, DATA_SM = 0x09, 0x15, 0x103
GENERIC_NACK, RESP = 0x80000000, 0x80000000
BINDS = {BIND_RECEIVER: "receiver", BIND_TRANSMITTER: "transmitter", BIND_TRANSCEIVER: "transceiver"}
#: §5.1.3 statuses used by the tests.
ROK, RALYBND, RTHROTTLED, RINVDSTADR, RINVBNDSTS = 0x00, 0x05, 0x58, 0x0B, 0x04


def frame(command_id: int, status: int, seq: int, body: bytes = b"") -> bytes:
    """One PDU: the 16-octet header (§3.2) and ``body``."""
    return HEADER.pack(16 + len(body), command_id, status, seq) + body


def cstring(text: str) -> bytes:
    return text.encode("latin-1") + b"\0"


def parse_submit(body: bytes) -> dict[str, Any]:
    """§4.4.1 submit_sm mandatory fields needed by the tests, read by hand."""
    fields: dict[str, Any] = {}
    pos = 0

    def cstr() -> str:
        nonlocal pos
        end = body.index(b"\0", pos)
        value = body[pos:end].decode("latin-1")
        pos = end + 1
        return value

    fields["service_type"] = cstr()
    pos += 2
    fields["source_addr"] = cstr()
    pos += 2
    fields["destination_addr"] = cstr()
    pos += 3  # esm_class, protocol_id, priority_flag
    cstr()
    cstr()
    pos += 4  # registered_delivery, replace_if_present, data_coding, sm_default_msg_id
    length = body[pos]
    fields["short_message"] = body[pos + 1 : pos + 1 + length]
    return fields


def deliver_sm(seq: int, text: bytes, source: str = "447700900123", dest: str = "ACME") -> bytes:
    """§4.6.1 a plain MO deliver_sm."""
    body = (
        cstring("") + b"\x01\x01" + cstring(source) + b"\x05\x00" + cstring(dest)
        + b"\x00\x00\x00" + cstring("") + cstring("") + b"\x00\x00\x00\x00" + bytes([len(text)]) + text
    )
    return frame(DELIVER_SM, 0, seq, body)


class RawConn(asyncio.Protocol):
    """One ESME connection as the raw SMSC sees it."""

    def __init__(self, smsc: RawSmsc) -> None:
        self.smsc = smsc
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.bind_kind: str | None = None
        self.system_id = ""
        self.password = ""
        self.held: list[bytes] = []  # submit_sm_resps not sent yet
        self.outstanding = 0
        self.next_seq = 1
        self.inbound: list[tuple[int, int, int, bytes]] = []  # every PDU: (cid, status, seq, body)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.smsc.conns.append(self)

    def connection_lost(self, exc: Exception | None) -> None:
        if self in self.smsc.conns:
            self.smsc.conns.remove(self)
        self.smsc.closed += 1

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while len(self.buf) >= 16:
            length, cid, status, seq = HEADER.unpack_from(self.buf)
            if len(self.buf) < length:
                return
            body = self.buf[16:length]
            self.buf = self.buf[length:]
            self.inbound.append((cid, status, seq, body))
            self.smsc.on_pdu(self, cid, status, seq, body)

    def send_request(self, command_id: int, body: bytes = b"") -> int:
        seq = self.next_seq
        self.next_seq += 1
        self.write(frame(command_id, 0, seq, body))
        return seq

    def release(self, count: int | None = None) -> None:
        """Send held submit_sm_resps (all, or the first ``count``)."""
        count = len(self.held) if count is None else count
        out, self.held = self.held[:count], self.held[count:]
        self.outstanding -= len(out)
        self.write(b"".join(out))


class RawSmsc:
    """A scriptable SMSC: binds, answers submit_sm, counts what it sees."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.port = 0
        self.conns: list[RawConn] = []
        self.closed = 0
        self.binds: list[tuple[str, str, str]] = []  # (kind, system_id, password)
        self.bind_statuses: list[int] = []  # answers for the next binds, then ROK
        self.submits: list[tuple[int, dict[str, Any], float]] = []  # (seq, fields, loop time)
        self.hold = False  # keep submit_sm_resps until release()
        self.max_outstanding = 0
        self.answer_enquire_link = True
        self.answer_unbind = True
        self.silent = False  # answer nothing at all (a stalled SMSC)
        #: custom answer to a submit_sm: (conn, seq, fields) -> bytes to send, or None for the default.
        self.on_submit: Callable[[RawConn, int, dict[str, Any]], bytes | None] | None = None
        self.next_id = 1000
        self.unbinds = 0

    async def start(self, port: int = 0, ssl: Any = None) -> int:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            lambda: RawConn(self), "127.0.0.1", port, reuse_address=True, ssl=ssl
        )
        self.port = self.server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        """Stop listening and drop every connection (an SMSC killed)."""
        if self.server is not None:
            self.server.close()
        for conn in list(self.conns):
            if conn.transport is not None:
                conn.transport.abort()
        if self.server is not None:
            await self.server.wait_closed()
        self.server = None
        await asyncio.sleep(0)

    def on_pdu(self, conn: RawConn, cid: int, status: int, seq: int, body: bytes) -> None:
        if self.silent:
            return
        if cid in BINDS:
            system_id, password = body.split(b"\0")[:2]
            conn.system_id, conn.password = system_id.decode(), password.decode()
            self.binds.append((BINDS[cid], conn.system_id, conn.password))
            answer = self.bind_statuses.pop(0) if self.bind_statuses else ROK
            conn.bind_kind = BINDS[cid] if answer == ROK else None
            conn.write(frame(cid | RESP, answer, seq, cstring("SIM") if answer == ROK else b""))
        elif cid == SUBMIT_SM:
            self._submit(conn, seq, body)
        elif cid == ENQUIRE_LINK:
            if self.answer_enquire_link:
                conn.write(frame(ENQUIRE_LINK | RESP, 0, seq))
        elif cid == UNBIND:
            self.unbinds += 1
            if self.answer_unbind:
                conn.write(frame(UNBIND | RESP, 0, seq))
        # responses (deliver_sm_resp, enquire_link_resp, generic_nack) are only recorded

    def _submit(self, conn: RawConn, seq: int, body: bytes) -> None:
        fields = parse_submit(body)
        self.submits.append((seq, fields, asyncio.get_running_loop().time()))
        answer = self.on_submit(conn, seq, fields) if self.on_submit is not None else None
        if answer is None:
            self.next_id += 1
            answer = frame(SUBMIT_SM | RESP, ROK, seq, cstring(str(self.next_id)))
        conn.outstanding += 1
        self.max_outstanding = max(self.max_outstanding, conn.outstanding)
        conn.held.append(answer)
        if not self.hold:
            conn.release()

    def texts(self) -> list[bytes]:
        return [fields["short_message"] for _, fields, _ in self.submits]


# ----------------------------------------------------------- tests of the peer


def test_frame_layout_is_the_spec_header() -> None:
    data = frame(SUBMIT_SM | RESP, RTHROTTLED, 7, cstring("42"))
    assert data == b"\x00\x00\x00\x13\x80\x00\x00\x04\x00\x00\x00\x58\x00\x00\x00\x07" + b"42\x00"


def test_peer_and_codec_agree_on_submit_sm() -> None:
    from adapters.smpp import pdu as P

    sm = P.SubmitSm(sequence_number=9, source_addr="ACME", destination_addr="447700900123", short_message=b"hi")
    data = P.encode(sm)
    length, cid, status, seq = HEADER.unpack_from(data)
    assert (length, cid, status, seq) == (len(data), SUBMIT_SM, 0, 9)
    fields = parse_submit(data[16:])
    assert fields["source_addr"] == "ACME"
    assert fields["destination_addr"] == "447700900123"
    assert fields["short_message"] == b"hi"
    decoded = P.decode(deliver_sm(3, b"yo"))
    assert isinstance(decoded, P.DeliverSm) and decoded.short_message == b"yo" and decoded.sequence_number == 3
