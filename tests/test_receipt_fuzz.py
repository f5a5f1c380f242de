"""Whatever a carrier puts in a receipt, reading it yields a Receipt or a ReceiptError."""

from __future__ import annotations

from hypothesis import event, example, given, settings
from hypothesis import strategies as hs

from adapters.smpp.constants import TlvTag
from adapters.smpp.pdu import DataSm, DeliverSm
from adapters.smpp.receipt import Receipt, ReceiptError, classify, parse_receipt
from router.dlr_status import StatusTable
from router.status import ALL

TABLE = StatusTable()
DC0 = hs.sampled_from(["gsm7", "gsm7_packed", "latin1", "ascii"])
KEYS = [b"id:", b"ID:", b"stat:", b"sub:", b"dlvrd:", b"submit date:", b"done date:", b"err:",
        b"text:", b"Text:", b" ", b"DELIVRD", b"0", b"f", b"-", b":", b"\x00", b"\x1b"]
# Receipt-shaped noise finds more corners than uniform bytes alone.
shaped = hs.lists(hs.sampled_from(KEYS) | hs.binary(max_size=6), max_size=20).map(b"".join)
tlv_values = hs.fixed_dictionaries(
    {},
    optional={
        TlvTag.RECEIPTED_MESSAGE_ID: hs.text(max_size=70) | hs.binary(max_size=70),
        TlvTag.MESSAGE_STATE: hs.integers(0, 255) | hs.binary(max_size=5),
        TlvTag.NETWORK_ERROR_CODE: hs.binary(max_size=4),
        TlvTag.MESSAGE_PAYLOAD: hs.binary(max_size=300) | shaped,
    },
)


def check(pdu: DeliverSm | DataSm, dc0: str) -> None:
    try:
        receipt = parse_receipt(pdu, dc0_charset=dc0)
    except ReceiptError as exc:
        assert exc.field in ("message_id", "stat")
        event("ReceiptError")
    else:
        event("Receipt")
        assert isinstance(receipt, Receipt)
        assert receipt.message_id and len(receipt.message_id) <= 65
        assert receipt.status(TABLE) in ALL
    assert classify(pdu, receipts_on_esm_class_zero=True, dc0_charset=dc0) in ("receipt", "mo")


@settings(max_examples=300, deadline=None)
@given(
    short_message=hs.binary(max_size=255) | shaped,
    esm_class=hs.sampled_from([0x04, 0x44, 0x20, 0x08, 0x48, 0x10, 0x00]) | hs.integers(0, 255),
    data_coding=hs.sampled_from([0, 1, 3, 4, 8]) | hs.integers(0, 255),
    tlvs=tlv_values,
    dc0=DC0,
)
@example(b"id:1 stat:DELIVRD", 0x04, 8, {}, "gsm7")
@example(b"\xff" * 255, 0x04, 8, {}, "gsm7")
@example(b"id:\x00 stat:\x00", 0x04, 0, {}, "gsm7_packed")
def test_deliver_sm_reads_or_raises_receipt_error(
    short_message: bytes, esm_class: int, data_coding: int, tlvs: dict, dc0: str
) -> None:
    check(DeliverSm(esm_class=esm_class, data_coding=data_coding, short_message=short_message,
                    tlvs=dict(tlvs)), dc0)


@settings(max_examples=100, deadline=None)
@given(data_coding=hs.integers(0, 255), tlvs=tlv_values, dc0=DC0)
def test_data_sm_reads_or_raises_receipt_error(data_coding: int, tlvs: dict, dc0: str) -> None:
    check(DataSm(esm_class=0x04, data_coding=data_coding, tlvs=dict(tlvs)), dc0)
