"""Interop with an independent implementation, smpplib, driven without a socket.

Ours encodes → smpplib parses the same field values; smpplib generates → ours
decodes them. smpplib differs from §5.3.2 on a few TLV sizes (its
source_addr_subunit and its_session_info), so only tags both agree on are used.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from smpplib import command as sl_command, command_codes as sl_codes, smpp as sl_smpp

from adapters.smpp.constants import TlvTag
from adapters.smpp.pdu import DataSm, DeliverSm, Pdu, SubmitSm, decode, encode
from tests.test_pdu_golden import GOLDEN

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class _NoSocket:
    """What smpplib wants from a client when it builds or parses a PDU."""

    sequence = 0

    def next_sequence(self) -> int:
        return 0


def smpplib_name(command_id: int) -> str | None:
    try:
        name = sl_codes.get_command_name(command_id)
        sl_command.factory(name, client=_NoSocket())
    except Exception:  # noqa: BLE001 - smpplib lacks outbind, cancel_sm, replace_sm, submit_multi
        return None
    return name


def smpplib_parse(wire: bytes) -> Any:
    return sl_smpp.parse_pdu(wire, client=_NoSocket())


def smpplib_make(name: str, seq: int, **fields: Any) -> bytes:
    pdu = sl_smpp.make_pdu(name, client=_NoSocket(), **fields)
    pdu.sequence = seq
    return pdu.generate()


def as_smpplib(value: object) -> object:
    return value.encode("latin-1") if isinstance(value, str) else value


def assert_same(ours: Pdu, theirs: Any) -> None:
    assert (theirs.sequence, theirs.status) == (ours.sequence_number, ours.command_status)
    for name in ours._names:
        value = as_smpplib(getattr(ours, name))
        if value == b"" and getattr(theirs, name) is None:
            continue  # smpplib leaves a trailing empty short_message unset
        assert getattr(theirs, name) == value, name
    for tag, value in ours.tlvs.items():
        assert getattr(theirs, sl_command.get_optional_name(tag)) == as_smpplib(value), hex(tag)


INTEROP_GOLDEN = [(p, w) for p, w in GOLDEN if smpplib_name(p.command_id) and not p.command_status]


def test_smpplib_covers_the_pdus_we_expect() -> None:
    names = {smpplib_name(p.command_id) for p, _ in INTEROP_GOLDEN}
    assert {"submit_sm", "deliver_sm", "data_sm", "bind_transceiver", "query_sm_resp", "alert_notification"} <= names


@pytest.mark.parametrize(("pdu", "wire"), INTEROP_GOLDEN, ids=[type(p).__name__ for p, _ in INTEROP_GOLDEN])
def test_ours_encodes_smpplib_parses(pdu: Pdu, wire: bytes) -> None:
    assert_same(pdu, smpplib_parse(encode(pdu)))


ascii_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20)
u8 = st.integers(0, 255)
shared_int_tlvs = st.fixed_dictionaries(
    {},
    optional={
        TlvTag.SAR_MSG_REF_NUM: st.integers(0, 0xFFFF), TlvTag.SAR_TOTAL_SEGMENTS: u8,
        TlvTag.SAR_SEGMENT_SEQNUM: u8, TlvTag.USER_MESSAGE_REFERENCE: st.integers(0, 0xFFFF),
        TlvTag.SOURCE_PORT: st.integers(0, 0xFFFF), TlvTag.DESTINATION_PORT: st.integers(0, 0xFFFF),
        TlvTag.MESSAGE_PAYLOAD: st.binary(min_size=1, max_size=200), TlvTag.PAYLOAD_TYPE: u8,
        TlvTag.MORE_MESSAGES_TO_SEND: u8, TlvTag.LANGUAGE_INDICATOR: u8,
    },
)
receipt_tlvs = st.fixed_dictionaries(
    {},
    optional={
        TlvTag.RECEIPTED_MESSAGE_ID: st.text(st.sampled_from("0123456789abcdef-"), min_size=1, max_size=64),
        TlvTag.MESSAGE_STATE: st.integers(0, 9), TlvTag.NETWORK_ERROR_CODE: st.binary(min_size=3, max_size=3),
    },
)


@st.composite
def sm_fields(draw: Any, data_sm: bool = False) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "service_type": draw(ascii_text.map(lambda s: s[:5])),
        "source_addr_ton": draw(u8), "source_addr_npi": draw(u8), "source_addr": draw(ascii_text),
        "dest_addr_ton": draw(u8), "dest_addr_npi": draw(u8), "destination_addr": draw(ascii_text),
        "esm_class": draw(u8), "registered_delivery": draw(u8), "data_coding": draw(u8),
    }
    if not data_sm:
        fields.update(
            protocol_id=draw(u8), priority_flag=draw(u8), replace_if_present_flag=draw(u8),
            sm_default_msg_id=draw(u8), short_message=draw(st.binary(max_size=254)),
            schedule_delivery_time=draw(st.sampled_from(["", "250101120000004+"])),
            validity_period=draw(st.sampled_from(["", "000001000000000R"])),
        )
    return fields


@FAST
@given(st.sampled_from([SubmitSm, DeliverSm, DataSm]), st.data())
def test_random_messages_ours_to_smpplib(cls: type, data: Any) -> None:
    fields = data.draw(sm_fields(data_sm=cls is DataSm))
    tlvs = data.draw(shared_int_tlvs)
    if cls is not SubmitSm:
        tlvs.update(data.draw(receipt_tlvs))
    if TlvTag.MESSAGE_PAYLOAD in tlvs and cls is not DataSm:
        fields["short_message"] = b""  # smpplib refuses both at once
    pdu = cls(sequence_number=data.draw(st.integers(1, 0x7FFFFFFF)), tlvs=tlvs, **fields)
    assert_same(pdu, smpplib_parse(encode(pdu)))


def _tlv_kwargs(tlvs: dict[int, object]) -> dict[str, object]:
    return {sl_command.get_optional_name(tag): value for tag, value in tlvs.items()}


@FAST
@given(st.sampled_from([SubmitSm, DeliverSm, DataSm]), st.data())
def test_random_messages_smpplib_to_ours(cls: type, data: Any) -> None:
    fields = data.draw(sm_fields(data_sm=cls is DataSm))
    tlvs = data.draw(shared_int_tlvs)
    if cls is not SubmitSm:
        tlvs.update(data.draw(receipt_tlvs))
    if TlvTag.MESSAGE_PAYLOAD in tlvs and cls is not DataSm:
        fields["short_message"] = b""  # smpplib refuses both at once
    seq = data.draw(st.integers(1, 0x7FFFFFFF))
    wire = smpplib_make(smpplib_name(cls.command_id), seq, **fields, **_tlv_kwargs(tlvs))  # type: ignore[arg-type]
    assert decode(wire) == cls(sequence_number=seq, tlvs=tlvs, **fields)


@pytest.mark.parametrize(("pdu", "wire"), INTEROP_GOLDEN, ids=[type(p).__name__ for p, _ in INTEROP_GOLDEN])
def test_smpplib_generates_ours_decodes(pdu: Pdu, wire: bytes) -> None:
    fields = {name: getattr(pdu, name) for name in pdu._names}
    if "short_message" in fields:
        fields["short_message"] = fields["short_message"] or None  # smpplib writes sm_length from it
    theirs = smpplib_make(
        smpplib_name(pdu.command_id), pdu.sequence_number, status=pdu.command_status, **fields,
        **_tlv_kwargs(pdu.tlvs),
    )
    assert decode(theirs) == pdu
