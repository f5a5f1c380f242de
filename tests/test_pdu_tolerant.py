"""Decoding what carriers really send: tolerant where harmless, typed errors otherwise."""

from __future__ import annotations

import pytest

from adapters.smpp.constants import CommandId, CommandStatus, TlvTag, status_name
from adapters.smpp.errors import FramingError, RemoteProtocolError
from adapters.smpp.pdu import (
    BindTransmitterResp, DeliverSm, DeliverSmResp, QuerySmResp, SubmitSm, SubmitSmResp, decode, encode,
)


def hx(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


def pdu_bytes(command_id: int, body: bytes, status: int = 0, seq: int = 0x2A) -> bytes:
    return (16 + len(body)).to_bytes(4, "big") + command_id.to_bytes(4, "big") + status.to_bytes(
        4, "big"
    ) + seq.to_bytes(4, "big") + body


def receipt_body(tlv_bytes: bytes, short_message: bytes = b"") -> bytes:
    """A deliver_sm body (§4.6.1) with the given short_message and raw TLV octets."""
    return (
        b"\x00\x01\x01447700900123\x00\x05\x00ACME\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00"
        + bytes((len(short_message),)) + short_message + tlv_bytes
    )


# --- responses: bodies present, absent, or odd ---

def test_submit_sm_resp_without_body_on_success() -> None:
    got = decode(hx("00000010 80000004 00000000 00000007"))
    assert got == SubmitSmResp(sequence_number=7, message_id="")


def test_submit_sm_resp_body_on_error_status_is_read() -> None:
    got = decode(pdu_bytes(CommandId.SUBMIT_SM_RESP, b"abc123\x00", CommandStatus.ESME_RTHROTTLED))
    assert got.command_status == CommandStatus.ESME_RTHROTTLED
    assert got.message_id == "abc123"


def test_bind_resp_error_with_empty_system_id_body() -> None:
    got = decode(pdu_bytes(CommandId.BIND_TRANSMITTER_RESP, b"\x00", CommandStatus.ESME_RINVPASWD))
    assert got == BindTransmitterResp(sequence_number=0x2A, command_status=CommandStatus.ESME_RINVPASWD)


def test_bind_resp_error_without_body() -> None:
    got = decode(pdu_bytes(CommandId.BIND_TRANSMITTER_RESP, b"", CommandStatus.ESME_RBINDFAIL))
    assert got.system_id == "" and got.command_status == CommandStatus.ESME_RBINDFAIL


def test_response_message_id_without_nul_takes_the_rest() -> None:
    assert decode(pdu_bytes(CommandId.SUBMIT_SM_RESP, b"0A1B2C")).message_id == "0A1B2C"


def test_response_message_id_longer_than_the_spec_allows() -> None:
    long_id = "7" * 100  # §4.4.2 allows 64 + NUL
    assert decode(pdu_bytes(CommandId.SUBMIT_SM_RESP, long_id.encode() + b"\0")).message_id == long_id


def test_deliver_sm_resp_content_is_ignored_not_fatal() -> None:
    got = decode(pdu_bytes(CommandId.DELIVER_SM_RESP, b"\xff\xfejunk"))
    assert isinstance(got, DeliverSmResp) and got.sequence_number == 0x2A


def test_partial_query_sm_resp_body_leaves_defaults() -> None:
    got = decode(pdu_bytes(CommandId.QUERY_SM_RESP, b"99\x00"))
    assert got == QuerySmResp(sequence_number=0x2A, message_id="99")


def test_tlvs_on_a_response_are_kept() -> None:
    body = b"id1\x00" + hx("001d 0005") + b"busy\x00"
    got = decode(pdu_bytes(CommandId.SUBMIT_SM_RESP, body, CommandStatus.ESME_RSYSERR))
    assert got.tlvs == {TlvTag.ADDITIONAL_STATUS_INFO_TEXT: "busy"}


def test_unknown_command_status_is_kept_as_its_number() -> None:
    got = decode(pdu_bytes(CommandId.SUBMIT_SM_RESP, b"", 0x0000040F))
    assert got.command_status == 0x40F
    assert status_name(got.command_status) == "0x0000040F"
    assert status_name(0x58) == "ESME_RTHROTTLED"


# --- optional parameters ---

def test_vendor_tlvs_round_trip_byte_exact_and_in_order() -> None:
    tlvs = hx("1401 0003 616263") + hx("0427 0001 02") + hx("3fff 0000") + hx("1500 0002 0001")
    wire = pdu_bytes(CommandId.DELIVER_SM, receipt_body(tlvs))
    got = decode(wire)
    assert list(got.tlvs.items()) == [
        (0x1401, b"abc"), (TlvTag.MESSAGE_STATE, 2), (0x3FFF, b""), (0x1500, b"\x00\x01"),
    ]
    assert encode(got) == wire


def test_tlv_running_past_the_pdu_end_is_dropped() -> None:
    tlvs = hx("001e 0004 31323300") + hx("0427 00c8 02")  # message_state claims 200 octets
    got = decode(pdu_bytes(CommandId.DELIVER_SM, receipt_body(tlvs)))
    assert got.tlvs == {TlvTag.RECEIPTED_MESSAGE_ID: "123"}


@pytest.mark.parametrize("tail", [b"\x04", b"\x04\x27", b"\x04\x27\x00"])
def test_stray_tail_shorter_than_a_tlv_header_is_dropped(tail: bytes) -> None:
    got = decode(pdu_bytes(CommandId.DELIVER_SM, receipt_body(hx("0427 0001 05") + tail)))
    assert got.tlvs == {TlvTag.MESSAGE_STATE: 5}


def test_wrongly_sized_integer_tlv_is_kept_raw_and_round_trips() -> None:
    wire = pdu_bytes(CommandId.DELIVER_SM, receipt_body(hx("0427 0002 0002") + hx("020c 0001 07")))
    got = decode(wire)
    assert got.tlvs == {TlvTag.MESSAGE_STATE: b"\x00\x02", TlvTag.SAR_MSG_REF_NUM: b"\x07"}
    assert encode(got) == wire


def test_cstring_tlv_without_nul_is_read_whole() -> None:
    got = decode(pdu_bytes(CommandId.DELIVER_SM, receipt_body(hx("001e 0003 414243"))))
    assert got.tlvs == {TlvTag.RECEIPTED_MESSAGE_ID: "ABC"}


def test_repeated_tag_keeps_the_first() -> None:
    got = decode(pdu_bytes(CommandId.DELIVER_SM, receipt_body(hx("0427 0001 02 0427 0001 05"))))
    assert got.tlvs == {TlvTag.MESSAGE_STATE: 2}


def test_known_tag_where_the_spec_does_not_list_it_is_kept() -> None:
    # receipted_message_id on a bind_transmitter_resp: ignored by the spec's rule, kept here.
    got = decode(pdu_bytes(CommandId.BIND_TRANSMITTER_RESP, b"S\x00" + hx("001e 0002 3100")))
    assert got.tlvs == {TlvTag.RECEIPTED_MESSAGE_ID: "1"}


def test_message_payload_with_empty_short_message() -> None:
    text = "Grüße €".encode("utf-16-be")
    wire = pdu_bytes(CommandId.DELIVER_SM, receipt_body(hx("0424") + len(text).to_bytes(2, "big") + text))
    got = decode(wire)
    assert got.short_message == b"" and got.tlvs == {TlvTag.MESSAGE_PAYLOAD: text}


# --- mandatory fields ---

def test_short_message_is_exactly_sm_length_octets_with_nuls_inside() -> None:
    sm = b"\x00\x40\x00\x00hi\x00"  # UCS-2 / GSM '@' bytes: data, never a terminator
    got = decode(pdu_bytes(CommandId.DELIVER_SM, receipt_body(b"", sm)))
    assert got.short_message == sm and got.tlvs == {}


def test_over_long_address_is_accepted_on_decode() -> None:
    pdu = SubmitSm(sequence_number=3, destination_addr="4" * 20, short_message=b"x")
    wire = bytearray(encode(pdu))
    at = wire.index(b"4" * 20)
    wire[at:at] = b"5" * 15  # 35 digits where §4.4.1 allows 20
    wire[0:4] = len(wire).to_bytes(4, "big")
    assert decode(bytes(wire)).destination_addr == "5" * 15 + "4" * 20


def test_decode_accepts_bytearray_and_memoryview() -> None:
    wire = encode(SubmitSm(sequence_number=4, short_message=b"x"))
    assert decode(bytearray(wire)) == decode(memoryview(wire)) == decode(wire)


# --- malformed requests: typed errors with what a responder needs ---

def _error(wire: bytes) -> RemoteProtocolError:
    with pytest.raises(RemoteProtocolError) as info:
        decode(wire)
    assert not isinstance(info.value, FramingError)
    return info.value


def test_sm_length_past_the_end_is_rinvmsglen() -> None:
    wire = bytearray(encode(SubmitSm(sequence_number=77, short_message=b"hello")))
    wire[-6] = 200
    err = _error(bytes(wire))
    assert (err.command_status, err.sequence_number, err.command_id, err.field) == (
        CommandStatus.ESME_RINVMSGLEN, 77, CommandId.SUBMIT_SM, "short_message",
    )


@pytest.mark.parametrize(
    ("cut_after", "status", "field"),
    [
        (b"\x00\x01\x01AC", CommandStatus.ESME_RINVSRCADR, "source_addr"),
        (b"\x00\x01\x01ACME\x00\x01\x014477", CommandStatus.ESME_RINVDSTADR, "destination_addr"),
        (b"\x00\x01\x01ACME\x00\x01\x01447\x00\x00\x00\x002501", CommandStatus.ESME_RINVSCHED,
         "schedule_delivery_time"),
    ],
)
def test_unterminated_cstring_in_a_request_names_the_field(cut_after: bytes, status: int, field: str) -> None:
    err = _error(pdu_bytes(CommandId.SUBMIT_SM, cut_after, seq=5))
    assert (err.command_status, err.field, err.sequence_number) == (status, field, 5)
    assert field in str(err)


def test_unterminated_system_id_in_bind_is_rinvsysid() -> None:
    err = _error(pdu_bytes(CommandId.BIND_TRANSCEIVER, b"acme"))
    assert (err.command_status, err.field) == (CommandStatus.ESME_RINVSYSID, "system_id")


def test_request_body_ending_before_an_integer_field_is_rinvcmdlen() -> None:
    err = _error(pdu_bytes(CommandId.SUBMIT_SM, b"\x00\x01"))
    assert (err.command_status, err.field) == (CommandStatus.ESME_RINVCMDLEN, "source_addr_npi")


def test_request_without_its_mandatory_body() -> None:
    err = _error(pdu_bytes(CommandId.DELIVER_SM, b"", seq=9))
    assert (err.command_status, err.field, err.sequence_number) == (
        CommandStatus.ESME_RINVCMDLEN, "service_type", 9,
    )


def test_unknown_command_id_is_rinvcmdid() -> None:
    err = _error(pdu_bytes(0x00000099, b"whatever", seq=12))
    assert (err.command_status, err.sequence_number, err.command_id) == (
        CommandStatus.ESME_RINVCMDID, 12, 0x99,
    )


def test_submit_multi_bad_dest_flag() -> None:
    body = b"\x00\x05\x00ACME\x00\x01\x03\x01\x01123\x00"
    err = _error(pdu_bytes(CommandId.SUBMIT_MULTI, body))
    assert (err.command_status, err.field) == (CommandStatus.ESME_RINVDESTFLAG, "dest_flag")


@pytest.mark.parametrize("size", [0, 1, 15])
def test_decode_of_less_than_a_header(size: int) -> None:
    err = _error(b"\x00" * size)
    assert err.command_status == CommandStatus.ESME_RINVCMDLEN and err.sequence_number is None


def test_command_length_disagreeing_with_the_data() -> None:
    wire = bytearray(encode(DeliverSm(sequence_number=3)))
    wire[3] += 1
    err = _error(bytes(wire))
    assert (err.command_status, err.sequence_number) == (CommandStatus.ESME_RINVCMDLEN, 3)


def test_empty_octet_string_tlv_stays_bytes() -> None:
    # source_subaddress is an octet string (§5.3.2.15); length 0 must not read as the integer 0.
    got = decode(pdu_bytes(CommandId.DELIVER_SM, receipt_body(hx("0202 0000"))))
    assert got.tlvs == {TlvTag.SOURCE_SUBADDRESS: b""}
