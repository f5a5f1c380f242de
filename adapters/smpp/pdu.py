"""Sans-IO SMPP 3.4 codec: PDU classes, ``encode``/``decode`` and the ``Framer``.

Theory of operation. Every PDU of §4 is a ``__slots__`` class named as in the
spec, whose mandatory fields are attributes with the spec's names and whose
optional parameters live in ``tlvs`` (see ``tlv.py``). A class's ``_layout``
(``fields.py``) drives the reference body codec, which names the offending
field in every error. submit_sm, deliver_sm, data_sm and their resps also have
hand-written fast paths (``fastpath.py``); whenever a fast path meets anything
unusual it gives up and the reference codec decides, so both always agree.

Encoding is strict (spec lengths and ranges, ``LocalProtocolError``);
decoding is tolerant where carriers deviate (over-long strings, bodies on
error responses, absent response bodies, odd TLVs) and otherwise raises
``RemoteProtocolError`` carrying the status to answer a malformed request with.
Nothing here does I/O or reads a clock.
"""

from __future__ import annotations

import struct
from typing import Any, ClassVar

from . import fastpath
from .buffer import Reader, Writer
from .constants import DEFAULT_MAX_PDU_BYTES, HEADER_SIZE, CommandId, CommandStatus as S
from .errors import FramingError, LocalProtocolError, RemoteProtocolError
from .fields import (
    ALERT_NOTIFICATION_LAYOUT, BIND_LAYOUT, BIND_RESP_LAYOUT, CANCEL_SM_LAYOUT, DATA_SM_LAYOUT,
    MESSAGE_ID_RESP_LAYOUT, OUTBIND_LAYOUT, QUERY_SM_LAYOUT, QUERY_SM_RESP_LAYOUT, REPLACE_SM_LAYOUT,
    SM_LAYOUT, SUBMIT_MULTI_LAYOUT, SUBMIT_MULTI_RESP_LAYOUT, DistributionListDest, Field, SmeDest,
    UnsuccessSme, default_of, read_body, write_body,
)
from .tlv import decode_tlvs, encode_tlvs

__all__ = [
    "Pdu", "encode", "decode", "Framer", "PDU_CLASSES", "SmeDest", "DistributionListDest", "UnsuccessSme",
    "BindTransmitter", "BindTransmitterResp", "BindReceiver", "BindReceiverResp", "BindTransceiver",
    "BindTransceiverResp", "Outbind", "Unbind", "UnbindResp", "EnquireLink", "EnquireLinkResp",
    "GenericNack", "SubmitSm", "SubmitSmResp", "DeliverSm", "DeliverSmResp", "DataSm", "DataSmResp",
    "QuerySm", "QuerySmResp", "CancelSm", "CancelSmResp", "ReplaceSm", "ReplaceSmResp", "SubmitMulti",
    "SubmitMultiResp", "AlertNotification",
]

#: §3.2: command_length, command_id, command_status, sequence_number.
_HEADER = struct.Struct(">IIII")
#: §3.2 / §5.1.4: sequence numbers are 0x00000001–0x7FFFFFFF (0 only where nothing else is known).
_SEQ_MAX = 0x7FFFFFFF

class Pdu:
    """Base of every PDU: header fields, ``tlvs`` and equality over all fields.

    Constructors take keyword arguments only; omitted fields get the spec's
    defaults (0, "", b"", []). Raises TypeError for an unknown field name.
    """

    __slots__ = ("sequence_number", "command_status", "tlvs")
    command_id: ClassVar[int]
    is_response: ClassVar[bool] = False
    _layout: ClassVar[tuple[Field, ...]] = ()
    #: §4.1.2, §4.4.2: "the body is not returned if command_status is non-zero".
    _omit_body_on_error: ClassVar[bool] = False
    _names: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._names = tuple(f.name for f in cls._layout)

    def __init__(
        self, *, sequence_number: int = 0, command_status: int = 0,
        tlvs: dict[int, object] | None = None, **fields: object,
    ) -> None:
        self.sequence_number = sequence_number
        self.command_status = command_status
        self.tlvs = {} if tlvs is None else tlvs
        for f in self._layout:
            setattr(self, f.name, fields.pop(f.name) if f.name in fields else default_of(f.kind))
        if fields:
            raise TypeError("%s has no field(s) %s" % (type(self).__name__, ", ".join(sorted(fields))))

    def _values(self) -> tuple[object, ...]:
        return (self.sequence_number, self.command_status, *[getattr(self, n) for n in self._names], self.tlvs)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._values() == other._values()  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        parts = ["sequence_number=%d" % self.sequence_number]
        if self.command_status:
            parts.append("command_status=0x%08X" % self.command_status)
        parts += ["%s=%r" % (n, getattr(self, n)) for n in self._names]
        if self.tlvs:
            parts.append("tlvs={%s}" % ", ".join("0x%04X: %r" % kv for kv in self.tlvs.items()))
        return "%s(%s)" % (type(self).__name__, ", ".join(parts))


class _Request(Pdu):
    __slots__ = ()
    _response_type: ClassVar[type[Pdu]]

    def response(self, command_status: int = 0, **fields: object) -> Any:
        """The matching ``*Resp`` with this request's sequence_number. Raises TypeError on bad fields."""
        return self._response_type(sequence_number=self.sequence_number, command_status=command_status, **fields)


class _Response(Pdu):
    __slots__ = ()
    is_response = True


def _slots(layout: tuple[Field, ...]) -> tuple[str, ...]:
    return tuple(f.name for f in layout)


# --- session management, §4.1-4.3, §4.11 ---
class _Bind(_Request):
    __slots__ = _slots(BIND_LAYOUT)
    _layout = BIND_LAYOUT


class _BindResp(_Response):
    __slots__ = _slots(BIND_RESP_LAYOUT)
    _layout = BIND_RESP_LAYOUT
    _omit_body_on_error = True


class BindTransmitter(_Bind):
    __slots__ = ()
    command_id = CommandId.BIND_TRANSMITTER


class BindTransmitterResp(_BindResp):
    __slots__ = ()
    command_id = CommandId.BIND_TRANSMITTER_RESP


class BindReceiver(_Bind):
    __slots__ = ()
    command_id = CommandId.BIND_RECEIVER


class BindReceiverResp(_BindResp):
    __slots__ = ()
    command_id = CommandId.BIND_RECEIVER_RESP


class BindTransceiver(_Bind):
    __slots__ = ()
    command_id = CommandId.BIND_TRANSCEIVER


class BindTransceiverResp(_BindResp):
    __slots__ = ()
    command_id = CommandId.BIND_TRANSCEIVER_RESP


class Outbind(_Request):
    """§4.1.7: no response exists; ``response()`` is not meaningful for it."""

    __slots__ = _slots(OUTBIND_LAYOUT)
    command_id = CommandId.OUTBIND
    _layout = OUTBIND_LAYOUT


class Unbind(_Request):
    __slots__ = ()
    command_id = CommandId.UNBIND


class UnbindResp(_Response):
    __slots__ = ()
    command_id = CommandId.UNBIND_RESP


class EnquireLink(_Request):
    __slots__ = ()
    command_id = CommandId.ENQUIRE_LINK


class EnquireLinkResp(_Response):
    __slots__ = ()
    command_id = CommandId.ENQUIRE_LINK_RESP


class GenericNack(_Response):
    __slots__ = ()
    command_id = CommandId.GENERIC_NACK


# --- message submission and delivery, §4.4-4.7 (the hot path: plain __init__) ---
class _ShortMessagePdu(_Request):
    __slots__ = _slots(SM_LAYOUT)
    _layout = SM_LAYOUT

    def __init__(
        self, *, sequence_number: int = 0, command_status: int = 0, service_type: str = "",
        source_addr_ton: int = 0, source_addr_npi: int = 0, source_addr: str = "",
        dest_addr_ton: int = 0, dest_addr_npi: int = 0, destination_addr: str = "",
        esm_class: int = 0, protocol_id: int = 0, priority_flag: int = 0,
        schedule_delivery_time: str = "", validity_period: str = "", registered_delivery: int = 0,
        replace_if_present_flag: int = 0, data_coding: int = 0, sm_default_msg_id: int = 0,
        short_message: bytes = b"", tlvs: dict[int, object] | None = None,
    ) -> None:
        self.sequence_number = sequence_number
        self.command_status = command_status
        self.service_type = service_type
        self.source_addr_ton = source_addr_ton
        self.source_addr_npi = source_addr_npi
        self.source_addr = source_addr
        self.dest_addr_ton = dest_addr_ton
        self.dest_addr_npi = dest_addr_npi
        self.destination_addr = destination_addr
        self.esm_class = esm_class
        self.protocol_id = protocol_id
        self.priority_flag = priority_flag
        self.schedule_delivery_time = schedule_delivery_time
        self.validity_period = validity_period
        self.registered_delivery = registered_delivery
        self.replace_if_present_flag = replace_if_present_flag
        self.data_coding = data_coding
        self.sm_default_msg_id = sm_default_msg_id
        self.short_message = short_message
        self.tlvs = {} if tlvs is None else tlvs


class _MessageIdResp(_Response):
    __slots__ = ("message_id",)
    _layout = MESSAGE_ID_RESP_LAYOUT

    def __init__(
        self, *, sequence_number: int = 0, command_status: int = 0, message_id: str = "",
        tlvs: dict[int, object] | None = None,
    ) -> None:
        self.sequence_number = sequence_number
        self.command_status = command_status
        self.message_id = message_id
        self.tlvs = {} if tlvs is None else tlvs


class SubmitSm(_ShortMessagePdu):
    __slots__ = ()
    command_id = CommandId.SUBMIT_SM


class SubmitSmResp(_MessageIdResp):
    __slots__ = ()
    command_id = CommandId.SUBMIT_SM_RESP
    _omit_body_on_error = True


class DeliverSm(_ShortMessagePdu):
    __slots__ = ()
    command_id = CommandId.DELIVER_SM


class DeliverSmResp(_MessageIdResp):
    __slots__ = ()
    command_id = CommandId.DELIVER_SM_RESP


class DataSm(_Request):
    __slots__ = _slots(DATA_SM_LAYOUT)
    command_id = CommandId.DATA_SM
    _layout = DATA_SM_LAYOUT

    def __init__(
        self, *, sequence_number: int = 0, command_status: int = 0, service_type: str = "",
        source_addr_ton: int = 0, source_addr_npi: int = 0, source_addr: str = "",
        dest_addr_ton: int = 0, dest_addr_npi: int = 0, destination_addr: str = "",
        esm_class: int = 0, registered_delivery: int = 0, data_coding: int = 0,
        tlvs: dict[int, object] | None = None,
    ) -> None:
        self.sequence_number = sequence_number
        self.command_status = command_status
        self.service_type = service_type
        self.source_addr_ton = source_addr_ton
        self.source_addr_npi = source_addr_npi
        self.source_addr = source_addr
        self.dest_addr_ton = dest_addr_ton
        self.dest_addr_npi = dest_addr_npi
        self.destination_addr = destination_addr
        self.esm_class = esm_class
        self.registered_delivery = registered_delivery
        self.data_coding = data_coding
        self.tlvs = {} if tlvs is None else tlvs


class DataSmResp(_MessageIdResp):
    __slots__ = ()
    command_id = CommandId.DATA_SM_RESP


# --- message management and the rest, §4.5, §4.8-4.10, §4.12 ---
class SubmitMulti(_Request):
    __slots__ = _slots(SUBMIT_MULTI_LAYOUT)
    command_id = CommandId.SUBMIT_MULTI
    _layout = SUBMIT_MULTI_LAYOUT


class SubmitMultiResp(_Response):
    __slots__ = _slots(SUBMIT_MULTI_RESP_LAYOUT)
    command_id = CommandId.SUBMIT_MULTI_RESP
    _layout = SUBMIT_MULTI_RESP_LAYOUT


class QuerySm(_Request):
    __slots__ = _slots(QUERY_SM_LAYOUT)
    command_id = CommandId.QUERY_SM
    _layout = QUERY_SM_LAYOUT


class QuerySmResp(_Response):
    __slots__ = _slots(QUERY_SM_RESP_LAYOUT)
    command_id = CommandId.QUERY_SM_RESP
    _layout = QUERY_SM_RESP_LAYOUT


class CancelSm(_Request):
    __slots__ = _slots(CANCEL_SM_LAYOUT)
    command_id = CommandId.CANCEL_SM
    _layout = CANCEL_SM_LAYOUT


class CancelSmResp(_Response):
    __slots__ = ()
    command_id = CommandId.CANCEL_SM_RESP


class ReplaceSm(_Request):
    __slots__ = _slots(REPLACE_SM_LAYOUT)
    command_id = CommandId.REPLACE_SM
    _layout = REPLACE_SM_LAYOUT


class ReplaceSmResp(_Response):
    __slots__ = ()
    command_id = CommandId.REPLACE_SM_RESP


class AlertNotification(_Request):
    """§4.12: no response exists; ``response()`` is not meaningful for it."""

    __slots__ = _slots(ALERT_NOTIFICATION_LAYOUT)
    command_id = CommandId.ALERT_NOTIFICATION
    _layout = ALERT_NOTIFICATION_LAYOUT


for _req, _resp in (
    (BindTransmitter, BindTransmitterResp), (BindReceiver, BindReceiverResp),
    (BindTransceiver, BindTransceiverResp), (Unbind, UnbindResp), (EnquireLink, EnquireLinkResp),
    (SubmitSm, SubmitSmResp), (DeliverSm, DeliverSmResp), (DataSm, DataSmResp),
    (QuerySm, QuerySmResp), (CancelSm, CancelSmResp), (ReplaceSm, ReplaceSmResp),
    (SubmitMulti, SubmitMultiResp), (Outbind, GenericNack), (AlertNotification, GenericNack),
):
    _req._response_type = _resp

#: command_id -> PDU class, every PDU of §4.
PDU_CLASSES: dict[int, type[Pdu]] = {
    cls.command_id: cls
    for cls in (
        BindTransmitter, BindTransmitterResp, BindReceiver, BindReceiverResp, BindTransceiver,
        BindTransceiverResp, Outbind, Unbind, UnbindResp, EnquireLink, EnquireLinkResp, GenericNack,
        SubmitSm, SubmitSmResp, DeliverSm, DeliverSmResp, DataSm, DataSmResp, QuerySm, QuerySmResp,
        CancelSm, CancelSmResp, ReplaceSm, ReplaceSmResp, SubmitMulti, SubmitMultiResp,
        AlertNotification,
    )
}

_FAST_DECODE = {
    CommandId.SUBMIT_SM: fastpath.decode_sm, CommandId.DELIVER_SM: fastpath.decode_sm,
    CommandId.DATA_SM: fastpath.decode_data_sm, CommandId.SUBMIT_SM_RESP: fastpath.decode_message_id_resp,
    CommandId.DELIVER_SM_RESP: fastpath.decode_message_id_resp,
    CommandId.DATA_SM_RESP: fastpath.decode_message_id_resp,
}
_FAST_ENCODE = {
    SubmitSm: fastpath.encode_sm, DeliverSm: fastpath.encode_sm, DataSm: fastpath.encode_data_sm,
    SubmitSmResp: fastpath.encode_message_id_resp, DeliverSmResp: fastpath.encode_message_id_resp,
    DataSmResp: fastpath.encode_message_id_resp,
}


def encode(pdu: Pdu) -> bytes:
    """The whole PDU, header included.

    Raises LocalProtocolError naming the field when a value breaks the spec
    (C-string too long or not latin-1, integer out of range, a request with a
    non-zero command_status, a sequence_number outside 0..0x7FFFFFFF).
    """
    fast = _FAST_ENCODE.get(type(pdu))
    if fast is not None:
        try:
            return fast(pdu)
        except Exception:  # noqa: BLE001 - anything odd: the reference encoder decides and names it
            pass
    return _encode_reference(pdu)


def _encode_reference(pdu: Pdu) -> bytes:
    cls = type(pdu)
    if not isinstance(pdu, Pdu) or cls not in PDU_CLASSES.values():
        raise LocalProtocolError("pdu: %r is not an SMPP PDU" % (pdu,), field="pdu")
    seq, status = pdu.sequence_number, pdu.command_status
    if not isinstance(seq, int) or not 0 <= seq <= _SEQ_MAX:
        raise LocalProtocolError("sequence_number: %r is not in 0..0x7FFFFFFF" % (seq,), field="sequence_number")
    if not isinstance(status, int) or not 0 <= status <= 0xFFFFFFFF:
        raise LocalProtocolError("command_status: %r is not a 32-bit status" % (status,), field="command_status")
    if status and not cls.is_response:
        raise LocalProtocolError("command_status: must be 0 in a request (§3.2)", field="command_status")
    if not isinstance(pdu.tlvs, dict):
        raise LocalProtocolError("tlvs: expected a dict, got %r" % (pdu.tlvs,), field="tlvs")
    w = Writer()
    if not (status and cls._omit_body_on_error):
        write_body(w, cls._layout, pdu)
        w.parts.append(encode_tlvs(pdu.tlvs))
    body = w.getvalue()
    return _HEADER.pack(HEADER_SIZE + len(body), cls.command_id, status, seq) + body


def decode(data: bytes | bytearray | memoryview) -> Pdu:
    """One whole PDU (header included, nothing after it) into its PDU object.

    Raises RemoteProtocolError with ``command_status`` (what to answer a request
    with), ``sequence_number`` and ``command_id`` set as far as they are known:
    ESME_RINVCMDLEN when command_length disagrees with ``len(data)``,
    ESME_RINVCMDID for an unknown command_id (answer with generic_nack), and a
    field-specific status (ESME_RINVPARLEN, ESME_RINVMSGLEN, ESME_RINVSRCADR, ...)
    for a malformed body.
    """
    if type(data) is not bytes:
        data = bytes(data)
    size = len(data)
    if size < HEADER_SIZE:
        raise RemoteProtocolError(
            "command_length: %d octets cannot hold the 16-octet header" % size, S.ESME_RINVCMDLEN,
            field="command_length",
        )
    length, command_id, status, seq = _HEADER.unpack_from(data)
    if length != size:
        raise RemoteProtocolError(
            "command_length: says %d, the PDU has %d octets" % (length, size), S.ESME_RINVCMDLEN,
            seq, command_id, "command_length",
        )
    cls = PDU_CLASSES.get(command_id)
    if cls is None:
        raise RemoteProtocolError(
            "command_id: 0x%08X is not an SMPP 3.4 command" % command_id, S.ESME_RINVCMDID,
            seq, command_id, "command_id",
        )
    fast = _FAST_DECODE.get(command_id)
    if fast is not None:
        try:
            return fast(cls, data, seq, status)
        except (ValueError, IndexError):
            pass  # malformed or unusual: the reference decoder decides and names the field
    return _decode_reference(cls, data, seq, status)


def _decode_reference(cls: type[Pdu], data: bytes, seq: int, status: int) -> Pdu:
    reader = Reader(data, HEADER_SIZE, len(data))
    fields: dict[str, object] = {}
    try:
        read_body(reader, cls._layout, fields, cls.is_response)
    except RemoteProtocolError as exc:
        exc.sequence_number, exc.command_id = seq, cls.command_id
        raise
    tlvs = decode_tlvs(data, reader.pos, len(data))
    return cls(sequence_number=seq, command_status=status, tlvs=tlvs, **fields)


class Framer:
    """Splits a byte stream into PDUs; O(n) buffering, no I/O.

    ``feed`` returns whole PDUs in order; a PDU whose body does not decode is
    returned as its RemoteProtocolError in the same list (the framer has
    already moved past it, so the caller answers it and goes on). Raises
    FramingError when command_length is below 16 or above ``max_pdu_bytes``,
    checked as soon as its 4 octets arrive; framing is then lost for good and
    every later ``feed`` raises the same error. The PDUs that were complete
    before the bad length in the same ``feed`` are on the error's ``pdus``.
    """

    __slots__ = ("max_pdu_bytes", "_buf", "_error")

    def __init__(self, max_pdu_bytes: int = DEFAULT_MAX_PDU_BYTES) -> None:
        if max_pdu_bytes < HEADER_SIZE:
            raise ValueError("max_pdu_bytes: must be at least %d" % HEADER_SIZE)
        self.max_pdu_bytes = max_pdu_bytes
        self._buf = bytearray()
        self._error: FramingError | None = None

    @property
    def buffered(self) -> int:
        """Octets received but not yet part of a whole PDU."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Pdu | RemoteProtocolError]:
        """Add received octets; return the PDUs (or their decode errors) now complete.

        Raises FramingError when framing is lost.
        """
        if self._error is not None:
            raise self._error
        buf = self._buf
        buf += data
        out: list[Pdu | RemoteProtocolError] = []
        pos, avail, max_len = 0, len(buf), self.max_pdu_bytes
        while avail - pos >= 4:
            length = int.from_bytes(buf[pos : pos + 4], "big")
            if not HEADER_SIZE <= length <= max_len:
                del buf[:pos]
                self._error = self._framing_error(length)
                self._error.pdus = out
                raise self._error
            if avail - pos < length:
                break
            try:
                out.append(decode(bytes(buf[pos : pos + length])))
            except RemoteProtocolError as exc:
                out.append(exc)
            pos += length
        if pos:
            del buf[:pos]
        return out

    def _framing_error(self, length: int) -> FramingError:
        buf = self._buf
        command_id = int.from_bytes(buf[4:8], "big") if len(buf) >= 8 else None
        seq = int.from_bytes(buf[12:16], "big") if len(buf) >= 16 else None
        return FramingError(
            "command_length: %d is outside %d..%d; framing lost" % (length, HEADER_SIZE, self.max_pdu_bytes),
            S.ESME_RINVCMDLEN, seq, command_id, "command_length",
        )
