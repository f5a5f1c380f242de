"""Strict encoding: every spec violation is a LocalProtocolError naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.smpp.constants import CommandId, CommandStatus, MessageState, TlvTag
from adapters.smpp.errors import LocalProtocolError
from adapters.smpp.pdu import (
    BindReceiver, BindTransmitter, DataSm, DeliverSm, DistributionListDest, EnquireLink, Outbind,
    QuerySm, QuerySmResp, ReplaceSm, SmeDest, SubmitMulti, SubmitMultiResp, SubmitSm, SubmitSmResp,
    UnsuccessSme, decode, encode,
)


def _refused(pdu: Any, field: str) -> LocalProtocolError:
    with pytest.raises(LocalProtocolError) as info:
        encode(pdu)
    assert info.value.field == field
    assert field in str(info.value)
    return info.value


@pytest.mark.parametrize(
    ("cls", "field", "longest"),
    [
        (BindTransmitter, "system_id", 15), (BindTransmitter, "password", 8),
        (BindTransmitter, "system_type", 12), (BindReceiver, "address_range", 40),
        (Outbind, "password", 8), (SubmitSm, "service_type", 5), (SubmitSm, "source_addr", 20),
        (SubmitSm, "destination_addr", 20), (DeliverSm, "source_addr", 20),
        (DataSm, "source_addr", 64), (DataSm, "destination_addr", 64), (SubmitSmResp, "message_id", 64),
        (QuerySm, "message_id", 64),
    ],
)
def test_cstring_limits(cls: type, field: str, longest: int) -> None:
    assert decode(encode(cls(**{field: "x" * longest}))).__getattribute__(field) == "x" * longest
    _refused(cls(**{field: "x" * (longest + 1)}), field)


@pytest.mark.parametrize("field", ["schedule_delivery_time", "validity_period"])
def test_time_fields_are_empty_or_16_characters(field: str) -> None:
    assert encode(SubmitSm(**{field: "000001000000000R"}))
    _refused(SubmitSm(**{field: "0000010000R"}), field)
    _refused(ReplaceSm(**{field: "1" * 17}), field)


def test_query_sm_resp_final_date_is_a_time() -> None:
    _refused(QuerySmResp(final_date="2501"), "final_date")


@pytest.mark.parametrize(
    ("value", "why"), [("a\0b", "NUL"), ("Ω", "latin-1"), (b"ACME", "str"), (None, "str")]
)
def test_bad_cstring_values(value: object, why: str) -> None:
    err = _refused(SubmitSm(source_addr=value), "source_addr")  # type: ignore[arg-type]
    assert why in str(err)


def test_latin1_text_round_trips_losslessly() -> None:
    pdu = SubmitSm(source_addr="Café ÿ")
    assert decode(encode(pdu)).source_addr == "Café ÿ"


@pytest.mark.parametrize("field", ["esm_class", "data_coding", "source_addr_ton", "registered_delivery"])
@pytest.mark.parametrize("value", [256, -1, 1.0, "1"])
def test_integer_fields_out_of_range(field: str, value: object) -> None:
    _refused(SubmitSm(**{field: value}), field)
    if field in ("esm_class", "data_coding", "registered_delivery"):
        _refused(DataSm(**{field: value}), field)


def test_short_message_limits() -> None:
    assert decode(encode(SubmitSm(short_message=b"\x01" * 254))).short_message == b"\x01" * 254
    _refused(SubmitSm(short_message=b"\x01" * 255), "short_message")
    _refused(DeliverSm(short_message="text"), "short_message")  # type: ignore[arg-type]


def test_sequence_number_range() -> None:
    assert encode(EnquireLink(sequence_number=0x7FFFFFFF))
    _refused(EnquireLink(sequence_number=0x80000000), "sequence_number")
    _refused(SubmitSm(sequence_number=-1), "sequence_number")


def test_command_status_must_be_zero_in_requests_and_fit_32_bits_in_responses() -> None:
    _refused(SubmitSm(command_status=CommandStatus.ESME_RSYSERR), "command_status")
    _refused(EnquireLink(command_status=1), "command_status")
    _refused(SubmitSmResp(command_status=1 << 32), "command_status")


@pytest.mark.parametrize(
    ("tlvs", "field"),
    [
        ({0x1400: 5}, "tlv 0x1400"),  # unknown tag: only bytes are possible
        ({TlvTag.MESSAGE_PAYLOAD: "text"}, "message_payload"),
        ({TlvTag.SAR_MSG_REF_NUM: 70000}, "sar_msg_ref_num"),
        ({TlvTag.RECEIPTED_MESSAGE_ID: "9" * 65}, "receipted_message_id"),
        ({TlvTag.MESSAGE_PAYLOAD: b"x" * 65536}, "message_payload"),
        ({0x10000: b""}, "tlvs"),
        ({TlvTag.MESSAGE_STATE: 2.0}, "message_state"),
    ],
)
def test_bad_tlvs(tlvs: dict[int, object], field: str) -> None:
    _refused(SubmitSm(tlvs=tlvs), field)
    _refused(QuerySm(tlvs=tlvs), field)


def test_tlvs_must_be_a_dict() -> None:
    _refused(SubmitSm(tlvs=[(1, b"")]), "tlvs")  # type: ignore[arg-type]


def test_typed_tlv_values_encode_per_spec_size() -> None:
    wire = encode(SubmitSmResp(tlvs={TlvTag.SAR_MSG_REF_NUM: 0x0102, TlvTag.QOS_TIME_TO_LIVE: 5,
                                     TlvTag.RECEIPTED_MESSAGE_ID: "ab"}))
    assert wire[17:] == bytes.fromhex("020c00020102 0017000400000005 001e0003616200")


def test_submit_multi_lists_are_checked() -> None:
    _refused(SubmitMulti(dest_addresses=[("1", "2")]), "dest_addresses")
    _refused(SubmitMulti(dest_addresses=[SmeDest(1, 1, "1" * 21)]), "destination_addr")
    _refused(SubmitMulti(dest_addresses=[DistributionListDest("n" * 21)]), "dl_name")
    _refused(SubmitMulti(dest_addresses=[SmeDest()] * 255), "number_of_dests")
    _refused(SubmitMultiResp(unsuccess_sme=[UnsuccessSme(error_status_code=-1)]), "error_status_code")


def test_error_resps_with_no_body_per_spec() -> None:
    # §4.4.2: "not returned if command_status is non-zero"; a carrier's body is still read (tolerant).
    wire = encode(SubmitSmResp(sequence_number=5, command_status=CommandStatus.ESME_RTHROTTLED, message_id="x"))
    assert wire == bytes.fromhex("00000010 80000004 00000058 00000005")


def test_response_builds_the_matching_resp() -> None:
    req = SubmitSm(sequence_number=41, short_message=b"x")
    ok = req.response(message_id="abc")
    assert ok == SubmitSmResp(sequence_number=41, message_id="abc")
    bad = DeliverSm(sequence_number=7).response(CommandStatus.ESME_RSYSERR)
    assert (bad.command_id, bad.command_status, bad.sequence_number) == (CommandId.DELIVER_SM_RESP, 8, 7)
    assert EnquireLink(sequence_number=3).response().command_id == CommandId.ENQUIRE_LINK_RESP
    with pytest.raises(TypeError, match="no_such_field"):
        req.response(no_such_field=1)


def test_constructors_refuse_unknown_fields_and_default_per_spec() -> None:
    with pytest.raises(TypeError):
        SubmitSm(sourceaddr="x")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="colour"):
        QuerySm(colour=1)
    sm = SubmitSm()
    assert (sm.sequence_number, sm.command_status, sm.source_addr, sm.short_message, sm.tlvs) == (0, 0, "", b"", {})
    assert SubmitMulti().dest_addresses == [] and SubmitMulti().dest_addresses is not SubmitMulti().dest_addresses
    assert SubmitSm().tlvs is not SubmitSm().tlvs


def test_enums_cover_the_spec() -> None:
    assert len(CommandId) == 27
    assert {CommandStatus.ESME_RTHROTTLED: 0x58, CommandStatus.ESME_RMSGQFUL: 0x14,
            CommandStatus.ESME_RINVOPTPARSTREAM: 0xC0, CommandStatus.ESME_RINVPARLEN: 0xC2,
            CommandStatus.ESME_RUNKNOWNERR: 0xFF, CommandStatus.ESME_RX_R_APPN: 0x66} == {
        k: k.value for k in (CommandStatus.ESME_RTHROTTLED, CommandStatus.ESME_RMSGQFUL,
                             CommandStatus.ESME_RINVOPTPARSTREAM, CommandStatus.ESME_RINVPARLEN,
                             CommandStatus.ESME_RUNKNOWNERR, CommandStatus.ESME_RX_R_APPN)}
    assert len([s for s in CommandStatus if s <= 0xFF]) == 48  # §5.1.3 lists 48 codes
    assert [m.value for m in MessageState][1:9] == list(range(1, 9))


def test_cstring_tlv_outside_latin1_is_named() -> None:
    _refused(DeliverSm(tlvs={TlvTag.RECEIPTED_MESSAGE_ID: "id€"}), "receipted_message_id")
    _refused(DeliverSm(tlvs={TlvTag.RECEIPTED_MESSAGE_ID: "a\0b"}), "receipted_message_id")
    _refused(DeliverSm(tlvs={"x": b""}), "tlvs")  # type: ignore[dict-item]
