"""Sans-IO SMPP 3.4 codec: PDU classes, ``encode``/``decode`` and the ``Framer``.

This is the codec's public face; ``encode``/``decode`` live in ``codec.py``
and ``Framer`` in ``framer.py``, re-exported here.

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

from typing import Any, ClassVar

from . import fastpath
from .codec import PDU_CLASSES, decode, encode, register
from .constants import CommandId
from .framer import Framer
from .fields import (
    ALERT_NOTIFICATION_LAYOUT, BIND_LAYOUT, BIND_RESP_LAYOUT, CANCEL_SM_LAYOUT, DATA_SM_LAYOUT,
    MESSAGE_ID_RESP_LAYOUT, OUTBIND_LAYOUT, QUERY_SM_LAYOUT, QUERY_SM_RESP_LAYOUT, REPLACE_SM_LAYOUT,
    SM_LAYOUT, SUBMIT_MULTI_LAYOUT, SUBMIT_MULTI_RESP_LAYOUT, DistributionListDest, Field, SmeDest,
    UnsuccessSme, default_of,
)

__all__ = [
    "Pdu", "encode", "decode", "Framer", "PDU_CLASSES", "SmeDest", "DistributionListDest", "UnsuccessSme",
    "BindTransmitter", "BindTransmitterResp", "BindReceiver", "BindReceiverResp", "BindTransceiver",
    "BindTransceiverResp", "Outbind", "Unbind", "UnbindResp", "EnquireLink", "EnquireLinkResp",
    "GenericNack", "SubmitSm", "SubmitSmResp", "DeliverSm", "DeliverSmResp", "DataSm", "DataSmResp",
    "QuerySm", "QuerySmResp", "CancelSm", "CancelSmResp", "ReplaceSm", "ReplaceSmResp", "SubmitMulti",
    "SubmitMultiResp", "AlertNotification",
]


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

#: Register every PDU of §4 with the codec; the hot ones get their fast paths.
_FAST = {
    SubmitSm: (fastpath.decode_sm, fastpath.encode_sm),
    DeliverSm: (fastpath.decode_sm, fastpath.encode_sm),
    DataSm: (fastpath.decode_data_sm, fastpath.encode_data_sm),
    SubmitSmResp: (fastpath.decode_message_id_resp, fastpath.encode_message_id_resp),
    DeliverSmResp: (fastpath.decode_message_id_resp, fastpath.encode_message_id_resp),
    DataSmResp: (fastpath.decode_message_id_resp, fastpath.encode_message_id_resp),
}
for _cls in (
    BindTransmitter, BindTransmitterResp, BindReceiver, BindReceiverResp, BindTransceiver,
    BindTransceiverResp, Outbind, Unbind, UnbindResp, EnquireLink, EnquireLinkResp, GenericNack,
    SubmitSm, SubmitSmResp, DeliverSm, DeliverSmResp, DataSm, DataSmResp, QuerySm, QuerySmResp,
    CancelSm, CancelSmResp, ReplaceSm, ReplaceSmResp, SubmitMulti, SubmitMultiResp,
    AlertNotification,
):
    register(_cls, *_FAST.get(_cls, (None, None)))
