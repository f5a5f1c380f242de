"""A carrier that sends receipts nobody should have to read: each one is acknowledged with
ESME_ROK, read as far as it can be, and ends the message in the status its words say —
while the bind stays up and the other carrier keeps delivering."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.e2e.breaker_rig import (
    ESM_UDHI_ACK,
    EVIL_TO,
    SENDER,
    TAG_MESSAGE_STATE,
    TAG_PAYLOAD,
    TAG_RECEIPTED_ID,
    Rig,
    deliver,
    deliver_body,
    receipt_text,
    tlv,
)
from tests.e2e.harness import until

ROK = 0


async def submitted(rig: Rig) -> tuple[str, str]:
    """Submit one message to the raw carrier; (router id, carrier id) once it is SUBMITTED."""
    reply = await rig.client.submit(SENDER, EVIL_TO, text="receipt me")
    assert reply["ok"], reply
    mdr = await until(lambda: _submitted(rig, reply["id"]), what="SUBMITTED")
    return reply["id"], mdr["carrier_ids"][0]


async def _submitted(rig: Rig, router_id: str) -> dict | None:
    mdr = (await rig.client.status(router_id))["mdr"]
    return mdr if mdr["status"] == "SUBMITTED" else None


#: (name, body builder from the carrier id, the MDR status it must end in)
READABLE = [
    ("bad-dates", lambda cid: deliver_body(receipt_text(cid, date="99999999999999")), "DELIVERED"),
    ("zero-dates", lambda cid: deliver_body(receipt_text(cid, date="0000000000")), "DELIVERED"),
    ("unknown-stat-word", lambda cid: deliver_body(receipt_text(cid, stat="WHATEVR")), "UNKNOWN"),
    ("ucs2-label-ascii-inside", lambda cid: deliver_body(receipt_text(cid), data_coding=8), "DELIVERED"),
    ("payload-only", lambda cid: deliver_body(b"", tlvs=tlv(TAG_PAYLOAD, receipt_text(cid))), "DELIVERED"),
    ("tlv-receipt-then-overrun", lambda cid: deliver_body(
        b"", tlvs=tlv(TAG_RECEIPTED_ID, cid.encode() + b"\0") + tlv(TAG_MESSAGE_STATE, b"\x02")
        + tlv(0x1401, b"\x01\x02", length=500)), "DELIVERED"),
]


@pytest.mark.parametrize(("body", "status"), [(b, s) for _, b, s in READABLE], ids=[n for n, _, _ in READABLE])
async def test_odd_receipts_are_acknowledged_and_settle(tmp_path: Path, body, status: str) -> None:
    async with Rig(tmp_path) as rig:
        await rig.bound()
        router_id, carrier_id = await submitted(rig)
        conn = await rig.evil_conn()
        assert await deliver(conn, body(carrier_id)) == ROK
        mdr = await rig.final(router_id)
        assert mdr["status"] == status, mdr
        if status == "UNKNOWN":
            assert mdr["dlr_stat"] == "WHATEVR"


async def test_unreadable_receipts_cost_nothing(tmp_path: Path) -> None:
    """Receipts that match nothing or cannot be read are acknowledged; the bind stays, the
    message they do not name is untouched, and a good receipt afterwards still settles it."""
    async with Rig(tmp_path) as rig:
        await rig.bound()
        router_id, carrier_id = await submitted(rig)
        conn = await rig.evil_conn()
        bodies = [
            deliver_body(receipt_text("F" * 70)),                                  # 70-char id
            deliver_body(f"id:{carrier_id} sub:001 dlvrd:001 err:000".encode()),   # no stat
            deliver_body(b"stat:DELIVRD err:000"),                                 # no id
            deliver_body(b"\xff\xfe\x00garbage\x00" * 10),                         # noise
            deliver_body(b"", tlvs=tlv(TAG_RECEIPTED_ID, b"123", length=4000)),    # TLV overrun
            deliver_body(b"", tlvs=tlv(TAG_PAYLOAD, b"")),                         # empty payload
        ]
        for body in bodies:
            assert await deliver(conn, body) == ROK, body
        # sm_length past the PDU's end: a mandatory field cannot be read, so an error
        # status (§4.6.2) — and still the bind stays.
        cut = deliver_body(receipt_text(carrier_id))[:-7]
        assert await deliver(conn, cut) != ROK
        assert await rig.status(router_id) == "SUBMITTED"
        assert conn.transport is not None and not conn.transport.is_closing()
        assert await deliver(conn, deliver_body(receipt_text(carrier_id))) == ROK
        assert (await rig.final(router_id))["status"] == "DELIVERED"
        await rig.good_still_delivers()


async def test_plain_mo_flagged_0x48_is_an_inbound_message(tmp_path: Path) -> None:
    """esm_class 0x48 on a concatenated MO (UDHI + "SME delivery ack") without a receipt id:
    an inbound message reaches subscribers, no MDR changes."""
    async with Rig(tmp_path) as rig:
        await rig.bound()
        router_id, _ = await submitted(rig)
        events = await rig.client.subscribe(["mo"])
        conn = await rig.evil_conn()
        udh = b"\x05\x00\x03\x2a\x02"
        parts = [udh + b"\x01" + b"hello ", udh + b"\x02" + b"world"]
        for part in parts:
            assert await deliver(conn, deliver_body(part, esm_class=ESM_UDHI_ACK)) == ROK
        event = await asyncio.wait_for(anext(aiter(events)), 10)
        assert event["event"] == "mo" and event["mo"]["text"] == "hello world", event
        assert await rig.status(router_id) == "SUBMITTED"
