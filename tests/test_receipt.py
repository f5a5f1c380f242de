"""Delivery receipts: classification and tolerant parsing of the forms seen in the wild."""

from __future__ import annotations

from datetime import datetime

import pytest

from adapters.smpp.constants import TlvTag
from adapters.smpp.pdu import DataSm, DeliverSm, decode, encode
from adapters.smpp.receipt import (
    Receipt,
    ReceiptError,
    classify,
    parse_date,
    parse_receipt,
    receipt_fields,
)
from router import status as st
from router.dlr_status import StatusTable

RID = TlvTag.RECEIPTED_MESSAGE_ID
STATE = TlvTag.MESSAGE_STATE
NEC = TlvTag.NETWORK_ERROR_CODE
PAYLOAD = TlvTag.MESSAGE_PAYLOAD
UUID = "2b8a3e5e-8f1c-4d5f-9bd5-a1f2c3d4e5f6"
ID65 = "A1" * 32 + "F"

SPEC = (
    b"id:0123456789 sub:001 dlvrd:001 submit date:2405011200 done date:2405011201"
    b" stat:DELIVRD err:000 text:Your code is 4711"
)


def dsm(short_message: bytes = b"", esm_class: int = 0x04, **kw: object) -> DeliverSm:
    return DeliverSm(
        sequence_number=1, source_addr="447700900123", destination_addr="ACME",
        esm_class=esm_class, short_message=short_message, **kw,  # type: ignore[arg-type]
    )


# (name, pdu, expected fields of the Receipt; fields not named are not checked)
FORMS: list[tuple[str, DeliverSm | DataSm, dict[str, object]]] = [
    ("spec", dsm(SPEC), dict(
        message_id="0123456789", stat="DELIVRD", err="000", sub="001", dlvrd="001",
        submit_date="2405011200", done_date="2405011201",
        submitted_at=datetime(2024, 5, 1, 12, 0), done_at=datetime(2024, 5, 1, 12, 1),
        text="Your code is 4711", message_state=None, source_addr="447700900123",
        destination_addr="ACME", esm_class=0x04,
    )),
    ("kannel: hex id, empty text", dsm(
        b"id:1C3B7E04 sub:001 dlvrd:001 submit date:1405011200 done date:1405011201"
        b" stat:DELIVRD err:000 text:"
    ), dict(message_id="1C3B7E04", stat="DELIVRD", text="")),
    ("jasmin: uuid id, 12-digit dates", dsm(
        b"id:" + UUID.encode() + b" sub:001 dlvrd:001 submit date:240501120005"
        b" done date:240501120107 stat:DELIVRD err:000 text:hello"
    ), dict(message_id=UUID, done_at=datetime(2024, 5, 1, 12, 1, 7))),
    ("uppercase keys, lowercase word", dsm(
        b"ID:42 SUB:001 DLVRD:000 SUBMIT DATE:2405011200 DONE DATE:2405011300 STAT:undeliv"
        b" ERR:001 Text:Hi"
    ), dict(message_id="42", stat="UNDELIV", err="001", text="Hi")),
    ("capitalised Text:", dsm(SPEC.replace(b"text:", b"Text:")), dict(text="Your code is 4711")),
    ("missing sub, dlvrd and text", dsm(
        b"id:77 submit date:2405011200 done date:2405011201 stat:EXPIRED err:000"
    ), dict(message_id="77", stat="EXPIRED", sub=None, dlvrd=None, text=None)),
    ("only id and stat", dsm(b"id:77 stat:REJECTD"), dict(
        message_id="77", stat="REJECTD", err=None
    )),
    ("reordered", dsm(
        b"stat:DELIVRD id:991 err:0 done date:2405011201 submit date:2405011200 sub:1 dlvrd:1"
    ), dict(message_id="991", stat="DELIVRD", err="0", submitted_at=datetime(2024, 5, 1, 12, 0))),
    ("extra fields", dsm(
        b"id:5 msgid:999 sub:001 dlvrd:001 submit date:2405011200 done date:2405011201"
        b" stat:DELIVRD err:000 network:23415 text:x"
    ), dict(message_id="5", text="x")),
    ("err 4 digits", dsm(SPEC.replace(b"err:000", b"err:0412")), dict(err="0412")),
    ("err word", dsm(SPEC.replace(b"err:000", b"err:ABSENT_SUBSCRIBER")), dict(
        err="ABSENT_SUBSCRIBER"
    )),
    ("14-digit dates", dsm(
        b"id:1 submit date:20240501120005 done date:20240501235959 stat:DELIVRD"
    ), dict(submitted_at=datetime(2024, 5, 1, 12, 0, 5), done_at=datetime(2024, 5, 1, 23, 59, 59))),
    ("all-zero dates", dsm(
        b"id:1 submit date:0000000000 done date:000000000000 stat:DELIVRD"
    ), dict(submit_date="0000000000", submitted_at=None, done_date="000000000000", done_at=None)),
    ("garbage dates", dsm(
        b"id:1 submit date:yesterday done date:2413450000 stat:DELIVRD err:000"
    ), dict(submit_date="yesterday", submitted_at=None, done_date="2413450000", done_at=None)),
    ("65-character id", dsm(b"id:" + ID65.encode() + b" stat:DELIVRD"), dict(message_id=ID65)),
    ("text with colons and its own id:", dsm(
        b"id:12 sub:001 dlvrd:001 stat:DELIVRD err:000 text:Meet at 10:30 id: 99 stat: ok"
    ), dict(message_id="12", stat="DELIVRD", text="Meet at 10:30 id: 99 stat: ok")),
    ("GSM escape bytes in text", dsm(
        b"id:12 stat:DELIVRD err:000 text:Price 5\x1be \x1b<x\x1b>"
    ), dict(message_id="12", stat="DELIVRD", text="Price 5€ [x]")),
    ("GSM @ is 0x00 inside the text", dsm(b"id:12 stat:DELIVRD text:me\x00example"), dict(
        text="me@example"
    )),
    ("Latin-1 text", dsm(b"id:12 stat:DELIVRD text:Gr\xfc\xdfe", data_coding=3), dict(
        text="Grüße"
    )),
    ("binary data_coding: text kept as octets", dsm(
        b"id:12 stat:DELIVRD text:\x01\xff", data_coding=4
    ), dict(text="\x01\xff")),
    ("NUL-terminated by the SMSC", dsm(b"id:12 stat:DELIVRD\x00"), dict(stat="DELIVRD")),
    ("semicolon separated", dsm(b"id:12;stat:DELIVRD;err:000"), dict(
        message_id="12", stat="DELIVRD"
    )),
    ("receipt in message_payload, sm_length 0", dsm(
        b"", tlvs={PAYLOAD: SPEC}
    ), dict(message_id="0123456789", stat="DELIVRD", text="Your code is 4711")),
    ("data_coding 8 with ASCII inside", dsm(SPEC, data_coding=8), dict(
        message_id="0123456789", stat="DELIVRD", text="Your code is 4711"
    )),
    ("data_coding 8 ASCII of odd length", dsm(SPEC + b"!", data_coding=8), dict(
        message_id="0123456789", text="Your code is 4711!"
    )),
    ("data_coding 8 real UCS-2", dsm(
        ("id:AB12 stat:DELIVRD err:000 text:Привет").encode("utf-16-be"), data_coding=8
    ), dict(message_id="AB12", stat="DELIVRD", text="Привет")),
    ("data_coding 8 UCS-2 with a BOM", dsm(
        ("\ufeffid:AB12 stat:DELIVRD").encode("utf-16-be"), data_coding=8
    ), dict(message_id="AB12", stat="DELIVRD")),
    ("data_coding 8 UCS-2 little-endian with its BOM", dsm(
        ("\ufeffid:AB12 stat:DELIVRD text:ок").encode("utf-16-le"), data_coding=8
    ), dict(message_id="AB12", stat="DELIVRD", text="ок")),
    ("TLV-only, empty text", dsm(b"", tlvs={RID: "0A1B2C", STATE: 2, NEC: b"\x03\x00\x01"}), dict(
        message_id="0A1B2C", stat=None, message_state=2, network_error_code=b"\x03\x00\x01",
        text=None,
    )),
    ("TLV id wins over the text id", dsm(SPEC, tlvs={RID: "75BCD15"}), dict(
        message_id="75BCD15", stat="DELIVRD"
    )),
    ("TLV state beside the word", dsm(SPEC, tlvs={STATE: 5}), dict(
        stat="DELIVRD", message_state=5
    )),
    ("SMPP 5.0 state kept", dsm(b"", tlvs={RID: "9", STATE: 9}), dict(message_state=9)),
    ("state of the wrong size kept by the codec as bytes", dsm(
        b"", tlvs={RID: "9", STATE: b"\x00\x02"}
    ), dict(message_state=2)),
    ("empty TLV id falls back to the text", dsm(SPEC, tlvs={RID: ""}), dict(
        message_id="0123456789"
    )),
    ("data_sm with message_payload", DataSm(
        sequence_number=3, source_addr="15551234567", destination_addr="1800", esm_class=0x04,
        tlvs={PAYLOAD: b"id:ff01 stat:ENROUTE err:000"},
    ), dict(message_id="ff01", stat="ENROUTE", source_addr="15551234567", destination_addr="1800")),
    ("data_sm, TLVs only", DataSm(
        sequence_number=3, esm_class=0x04, tlvs={RID: UUID, STATE: 3}
    ), dict(message_id=UUID, message_state=3, text=None)),
    ("esm_class 0x44: UDHI set on a receipt", dsm(SPEC, esm_class=0x44), dict(
        message_id="0123456789", esm_class=0x44
    )),
    ("UDH bytes before the text", dsm(b"\x05\x00\x03\x2a\x01\x01" + SPEC, esm_class=0x44), dict(
        message_id="0123456789", stat="DELIVRD"
    )),
    ("intermediate notification 0x20", dsm(b"id:5 stat:BUFFRED", esm_class=0x20), dict(
        stat="BUFFRED"
    )),
]


@pytest.mark.parametrize(("pdu", "expected"), [f[1:] for f in FORMS], ids=[f[0] for f in FORMS])
def test_forms(pdu: DeliverSm | DataSm, expected: dict[str, object]) -> None:
    assert classify(pdu) == "receipt"
    receipt = parse_receipt(pdu)
    assert isinstance(receipt, Receipt)
    assert receipt.message_id
    assert receipt.stat is not None or receipt.message_state is not None
    for name, value in expected.items():
        assert getattr(receipt, name) == value, name


@pytest.mark.parametrize(("pdu", "expected"), [f[1:] for f in FORMS], ids=[f[0] for f in FORMS])
def test_forms_survive_the_wire(pdu: DeliverSm | DataSm, expected: dict[str, object]) -> None:
    """The same receipts, encoded and decoded by the codec first, read the same."""
    assert parse_receipt(decode(encode(pdu))) == parse_receipt(pdu)


def test_packed_gsm_receipt_with_a_packing_carrier() -> None:
    septets = b"id:42 stat:DELIVRD"
    packed = _pack(septets)
    pdu = dsm(packed, data_coding=0)
    receipt = parse_receipt(pdu, dc0_charset="gsm7_packed")
    assert (receipt.message_id, receipt.stat) == ("42", "DELIVRD")
    # The same carrier sending its receipts unpacked after all still reads.
    assert parse_receipt(dsm(septets), dc0_charset="gsm7_packed").message_id == "42"


def _pack(septets: bytes) -> bytes:
    value = 0
    for i, s in enumerate(septets):
        value |= s << (7 * i)
    return value.to_bytes((7 * len(septets) + 7) // 8, "little")


# --- classification ----------------------------------------------------------------------

MO_TEXT = b"Hi, see you at 10:30"
UDH_MO = b"\x05\x00\x03\x2a\x02\x01" + MO_TEXT


@pytest.mark.parametrize(
    ("pdu", "kind"),
    [
        (dsm(MO_TEXT, esm_class=0x00), "mo"),
        (dsm(UDH_MO, esm_class=0x40), "mo"),
        (dsm(MO_TEXT, esm_class=0x08), "mo"),  # SME ack without receipt content
        (dsm(UDH_MO, esm_class=0x48), "mo"),  # carriers set 0x48 on concatenated MO
        (dsm(MO_TEXT, esm_class=0x10), "mo"),
        (dsm(SPEC, esm_class=0x08), "receipt"),  # ... unless it reads as a receipt
        (dsm(MO_TEXT, esm_class=0x08, tlvs={RID: "1"}), "receipt"),
        (dsm(MO_TEXT, esm_class=0x00, tlvs={RID: "1"}), "receipt"),  # the TLV decides
        (dsm(SPEC, esm_class=0x04), "receipt"),
        (dsm(SPEC, esm_class=0x44), "receipt"),
        (dsm(b"", esm_class=0x04), "receipt"),  # flagged: a receipt even if unreadable
        # Reserved type values (0x24 = 0x20|0x04, 0x18 conversation abort) decide by reading.
        (dsm(b"garbage", esm_class=0x24), "mo"),
        (dsm(SPEC, esm_class=0x24), "receipt"),
        (dsm(MO_TEXT, esm_class=0x18), "mo"),
        (dsm(SPEC, esm_class=0x00), "mo"),  # esm_class 0 without the carrier flag
        (dsm(SPEC, esm_class=0x80), "mo"),  # reply path bit only
    ],
)
def test_classify(pdu: DeliverSm, kind: str) -> None:
    assert classify(pdu) == kind


def test_esm_class_zero_with_the_carrier_flag() -> None:
    assert classify(dsm(SPEC, esm_class=0), receipts_on_esm_class_zero=True) == "receipt"
    # The flag does not swallow that carrier's genuine inbound messages.
    assert classify(dsm(MO_TEXT, esm_class=0), receipts_on_esm_class_zero=True) == "mo"
    assert classify(dsm(b"id:1", esm_class=0), receipts_on_esm_class_zero=True) == "mo"


def test_classify_data_sm() -> None:
    assert classify(DataSm(esm_class=0x04)) == "receipt"
    assert classify(DataSm(esm_class=0, tlvs={PAYLOAD: MO_TEXT})) == "mo"
    assert classify(DataSm(esm_class=0x08, tlvs={PAYLOAD: SPEC})) == "receipt"


# --- refusals ------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("pdu", "field"),
    [
        (dsm(b""), "message_id"),
        (dsm(MO_TEXT), "message_id"),
        (dsm(b"stat:DELIVRD err:000"), "message_id"),
        (dsm(b"id: stat:DELIVRD"), "message_id"),
        (dsm(b"id:" + b"7" * 66 + b" stat:DELIVRD"), "message_id"),
        (dsm(b"id:123 sub:001 dlvrd:001 err:000 text:x"), "stat"),
        (dsm(b"id:123 stat: err:000"), "stat"),
        (dsm(b"", tlvs={RID: "123"}), "stat"),
        (dsm(b"", tlvs={STATE: 2}), "message_id"),
        (dsm(b"\x00\x01\x02\xff\xfe"), "message_id"),
        (DataSm(esm_class=0x04), "message_id"),
    ],
)
def test_unreadable_receipts_raise_naming_the_field(pdu: DeliverSm, field: str) -> None:
    with pytest.raises(ReceiptError) as info:
        parse_receipt(pdu)
    assert info.value.field == field
    assert str(info.value).startswith(field + ":")


# --- status ---------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("stat", "state", "status"),
    [
        ("DELIVRD", None, st.DELIVERED),
        ("UNDELIV", None, st.UNDELIVERABLE),
        ("ACCEPTD", None, st.SUBMITTED),
        ("NOROUTE", None, st.UNKNOWN),
        (None, 2, st.DELIVERED),
        (None, 9, st.UNKNOWN),
        ("DELIVRD", 5, st.UNDELIVERABLE),  # both, disagreeing: the TLV wins
        ("UNDELIV", 2, st.DELIVERED),
        ("DELIVRD", 0, st.DELIVERED),  # a state outside 1–8 defers to the word
        ("DELIVRD", 42, st.DELIVERED),
        (None, None, st.UNKNOWN),
    ],
)
def test_status(stat: str | None, state: int | None, status: str) -> None:
    receipt = Receipt(message_id="1", stat=stat, message_state=state)
    assert receipt.status(StatusTable()) == status


def test_status_uses_the_carrier_table() -> None:
    receipt = parse_receipt(dsm(b"id:1 stat:BUFFRED"))
    assert receipt.status(StatusTable()) == st.SUBMITTED
    assert receipt.status(StatusTable({"BUFFRED": "UNDELIVERABLE"})) == st.UNDELIVERABLE


def test_dlr_stat_is_the_raw_word_or_the_state_word() -> None:
    assert Receipt(message_id="1", stat="NOROUTE").dlr_stat == "NOROUTE"
    assert Receipt(message_id="1", message_state=2).dlr_stat == "DELIVRD"
    assert Receipt(message_id="1", message_state=77).dlr_stat == "77"


# --- pieces -----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2405011200", datetime(2024, 5, 1, 12, 0)),
        ("240501120059", datetime(2024, 5, 1, 12, 0, 59)),
        ("20240501120059", datetime(2024, 5, 1, 12, 0, 59)),
        ("2024-05-01 12:00:59", datetime(2024, 5, 1, 12, 0, 59)),
        ("0000000000", None),
        ("00000000000000", None),
        ("2402301200", None),  # 30 February
        ("24050112", None),  # 8 digits
        ("240501120059000", None),
        ("", None),
        (None, None),
        ("２４０５０１１２００", None),  # full-width digits are not a date
    ],
)
def test_parse_date(value: str | None, expected: datetime | None) -> None:
    assert parse_date(value) == expected


def test_receipt_fields_keeps_unknown_keys_and_first_occurrence() -> None:
    fields = receipt_fields("id:1 id:2 Submit_Date:2405011200 foo:bar stat:DELIVRD text:a:b")
    assert fields == {
        "id": "1", "submit date": "2405011200", "foo": "bar", "stat": "DELIVRD", "text": "a:b",
    }
