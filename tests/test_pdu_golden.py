"""Golden vectors: every SMPP 3.4 PDU written out by hand from §4, both ways.

Each vector is decoded whole, fed byte by byte through the framer, and fed
with the start of a following PDU behind it (h11's ``tr()`` idea).
"""

from __future__ import annotations

import pytest

from adapters.smpp.constants import CommandStatus, TlvTag
from adapters.smpp.errors import RemoteProtocolError
from adapters.smpp.pdu import (
    AlertNotification, BindReceiver, BindReceiverResp, BindTransceiver, BindTransceiverResp,
    BindTransmitter, BindTransmitterResp, CancelSm, CancelSmResp, DataSm, DataSmResp, DeliverSm,
    DeliverSmResp, DistributionListDest, EnquireLink, EnquireLinkResp, Framer, GenericNack, Outbind,
    PDU_CLASSES, Pdu, QuerySm, QuerySmResp, ReplaceSm, ReplaceSmResp, SmeDest, SubmitMulti,
    SubmitMultiResp, SubmitSm, SubmitSmResp, Unbind, UnbindResp, UnsuccessSme, decode, encode,
)


def hx(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


UK = "34343737303039303031323300"  # "447700900123\0"
US = "313535353132333435363700"  # "15551234567\0"
MSGID = "3132333435363738393000"  # "1234567890\0"
ACME = "41434d4500"  # "ACME\0"
BIND_BODY = "61636d6500 73656372657400 00 34 01 01 00"  # acme, secret, "", 0x34, 1, 1, ""
BIND_FIELDS = dict(
    system_id="acme", password="secret", interface_version=0x34, addr_ton=1, addr_npi=1
)
RECEIPT_TEXT = b"id:1234567890 stat:DELIVRD"

#: (pdu, its bytes). Header: command_length, command_id, command_status, sequence_number (§3.2).
GOLDEN: list[tuple[Pdu, bytes]] = [
    (BindTransmitter(sequence_number=1, **BIND_FIELDS),
     hx("00000021 00000002 00000000 00000001" + BIND_BODY)),
    (BindReceiver(sequence_number=2, **BIND_FIELDS),
     hx("00000021 00000001 00000000 00000002" + BIND_BODY)),
    (BindTransceiver(sequence_number=3, **BIND_FIELDS),
     hx("00000021 00000009 00000000 00000003" + BIND_BODY)),
    (BindTransmitterResp(sequence_number=1, system_id="SMSC", tlvs={TlvTag.SC_INTERFACE_VERSION: 0x34}),
     hx("0000001a 80000002 00000000 00000001 534d534300 0210 0001 34")),
    # §4.1.4: no body when command_status is non-zero.
    (BindReceiverResp(sequence_number=2, command_status=CommandStatus.ESME_RBINDFAIL),
     hx("00000010 80000001 0000000d 00000002")),
    (BindTransceiverResp(sequence_number=3, system_id="SMSC"),
     hx("00000015 80000009 00000000 00000003 534d534300")),
    (Outbind(sequence_number=4, system_id="smsc", password="pw"),
     hx("00000018 0000000b 00000000 00000004 736d736300 707700")),
    (Unbind(sequence_number=5), hx("00000010 00000006 00000000 00000005")),
    (UnbindResp(sequence_number=5), hx("00000010 80000006 00000000 00000005")),
    (EnquireLink(sequence_number=6), hx("00000010 00000015 00000000 00000006")),
    (EnquireLinkResp(sequence_number=6), hx("00000010 80000015 00000000 00000006")),
    (GenericNack(sequence_number=7, command_status=CommandStatus.ESME_RINVCMDID),
     hx("00000010 80000000 00000003 00000007")),
    (SubmitSm(sequence_number=8, source_addr_ton=5, source_addr="ACME", dest_addr_ton=1, dest_addr_npi=1,
              destination_addr="447700900123", priority_flag=1, validity_period="000001000000000R",
              registered_delivery=1, short_message=b"hello"),
     hx("00000046 00000004 00000000 00000008"
        "00 0500" + ACME + "0101" + UK + "000001 00 30303030303130303030303030303052 00"
        "01000000 05 68656c6c6f")),
    (SubmitSmResp(sequence_number=8, message_id="1234567890"),
     hx("0000001b 80000004 00000000 00000008" + MSGID)),
    (SubmitSmResp(sequence_number=9, command_status=CommandStatus.ESME_RTHROTTLED),
     hx("00000010 80000004 00000058 00000009")),
    (DeliverSm(sequence_number=10, source_addr_ton=1, source_addr_npi=1, source_addr="447700900123",
               dest_addr_ton=5, destination_addr="ACME", esm_class=0x04, short_message=RECEIPT_TEXT,
               tlvs={TlvTag.RECEIPTED_MESSAGE_ID: "1234567890", TlvTag.MESSAGE_STATE: 2,
                     TlvTag.NETWORK_ERROR_CODE: b"\x03\x00\x00"}),
     hx("00000066 00000005 00000000 0000000a"
        "00 0101" + UK + "0500" + ACME + "040000 00 00 00000000 1a" + RECEIPT_TEXT.hex()
        + "001e000b" + MSGID + "04270001 02 04230003 030000")),
    (DeliverSmResp(sequence_number=10), hx("00000011 80000005 00000000 0000000a 00")),
    (DataSm(sequence_number=11, source_addr_ton=1, source_addr_npi=1, source_addr="15551234567",
            dest_addr_ton=1, dest_addr_npi=1, destination_addr="447700900123", registered_delivery=1,
            data_coding=8, tlvs={TlvTag.MESSAGE_PAYLOAD: "hi".encode("utf-16-be")}),
     hx("00000039 00000103 00000000 0000000b"
        "00 0101" + US + "0101" + UK + "00 01 08 0424 0004 00680069")),
    (DataSmResp(sequence_number=11, message_id="abc"),
     hx("00000014 80000103 00000000 0000000b 61626300")),
    (QuerySm(sequence_number=12, message_id="1234567890", source_addr_ton=1, source_addr_npi=1,
             source_addr="447700900123"),
     hx("0000002a 00000003 00000000 0000000c" + MSGID + "0101" + UK)),
    (QuerySmResp(sequence_number=12, message_id="1234567890", final_date="250101120000004+",
                 message_state=2),
     hx("0000002e 80000003 00000000 0000000c" + MSGID + "323530313031313230303030303034 2b00 02 00")),
    (CancelSm(sequence_number=13, message_id="1234567890", source_addr_ton=1, source_addr_npi=1,
              source_addr="447700900123", dest_addr_ton=1, dest_addr_npi=1, destination_addr="15551234567"),
     hx("00000039 00000008 00000000 0000000d 00" + MSGID + "0101" + UK + "0101" + US)),
    (CancelSmResp(sequence_number=13), hx("00000010 80000008 00000000 0000000d")),
    (ReplaceSm(sequence_number=14, message_id="1234567890", source_addr_ton=1, source_addr_npi=1,
               source_addr="447700900123", registered_delivery=1, short_message=b"new"),
     hx("00000032 00000007 00000000 0000000e" + MSGID + "0101" + UK + "00 00 01 00 03 6e6577")),
    (ReplaceSmResp(sequence_number=14), hx("00000010 80000007 00000000 0000000e")),
    (SubmitMulti(sequence_number=15, source_addr_ton=5, source_addr="ACME",
                 dest_addresses=[SmeDest(1, 1, "447700900123"), DistributionListDest("friends")],
                 short_message=b"hi"),
     hx("0000003e 00000021 00000000 0000000f"
        "00 0500" + ACME + "02 01 0101" + UK + "02 667269656e647300"
        "000000 00 00 00000000 02 6869")),
    (SubmitMultiResp(sequence_number=15, message_id="42",
                     unsuccess_sme=[UnsuccessSme(1, 1, "447700900123", CommandStatus.ESME_RINVDSTADR)]),
     hx("00000027 80000021 00000000 0000000f 343200 01 0101" + UK + "0000000b")),
    (AlertNotification(sequence_number=16, source_addr_ton=1, source_addr_npi=1, source_addr="447700900123",
                       esme_addr_ton=1, esme_addr_npi=1, esme_addr="15551234567",
                       tlvs={TlvTag.MS_AVAILABILITY_STATUS: 1}),
     hx("00000032 00000102 00000000 00000010 0101" + UK + "0101" + US + "0422 0001 01")),
]

IDS = [type(p).__name__ + ("_err" if p.command_status else "") for p, _ in GOLDEN]
NEXT = hx("00000010 00000015 00000000 00000063")  # an enquire_link that follows


def test_every_pdu_type_has_a_vector() -> None:
    assert {type(p) for p, _ in GOLDEN} == set(PDU_CLASSES.values())


@pytest.mark.parametrize(("pdu", "wire"), GOLDEN, ids=IDS)
def test_encode(pdu: Pdu, wire: bytes) -> None:
    assert encode(pdu) == wire


@pytest.mark.parametrize(("pdu", "wire"), GOLDEN, ids=IDS)
def test_decode_whole(pdu: Pdu, wire: bytes) -> None:
    got = decode(wire)
    assert type(got) is type(pdu)
    assert got == pdu
    assert got.command_id == int.from_bytes(wire[4:8], "big")


@pytest.mark.parametrize(("pdu", "wire"), GOLDEN, ids=IDS)
def test_framer_byte_by_byte(pdu: Pdu, wire: bytes) -> None:
    framer = Framer()
    got: list[object] = []
    for i in range(len(wire)):
        got += framer.feed(wire[i : i + 1])
        if i < len(wire) - 1:
            assert got == [] and framer.buffered == i + 1
    assert got == [pdu]
    assert framer.buffered == 0


@pytest.mark.parametrize(("pdu", "wire"), GOLDEN, ids=IDS)
def test_framer_with_trailing_data(pdu: Pdu, wire: bytes) -> None:
    framer = Framer()
    assert framer.feed(wire + NEXT[:7]) == [pdu]
    assert framer.buffered == 7
    assert framer.feed(NEXT[7:]) == [EnquireLink(sequence_number=0x63)]
    assert framer.buffered == 0


@pytest.mark.parametrize(("pdu", "wire"), GOLDEN, ids=IDS)
def test_decode_refuses_trailing_data(pdu: Pdu, wire: bytes) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        decode(wire + b"\0")
    assert info.value.command_status == CommandStatus.ESME_RINVCMDLEN
    assert info.value.sequence_number == pdu.sequence_number
    assert info.value.command_id == pdu.command_id


def test_all_golden_vectors_through_one_framer_in_one_feed() -> None:
    stream = b"".join(wire for _, wire in GOLDEN)
    assert Framer().feed(stream) == [pdu for pdu, _ in GOLDEN]


@pytest.mark.parametrize(("pdu", "wire"), GOLDEN, ids=IDS)
def test_is_response_matches_the_command_id_bit(pdu: Pdu, wire: bytes) -> None:
    assert pdu.is_response == bool(pdu.command_id & 0x80000000)
