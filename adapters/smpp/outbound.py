"""Building the submit_sm PDUs of one message for one carrier.

`router.text.render` has already cut the text into wire parts in the carrier's form (its
data_coding 0 charset, UDH 8/16-bit reference, SAR or message_payload); this module puts
each part into a submit_sm with the addresses and flags the carrier expects. Sans-IO.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from adapters.smpp.constants import TlvTag
from adapters.smpp.pdu import SubmitSm

#: esm_class bit 6: the short_message starts with a user data header (SMPP 3.4 §5.2.12).
ESM_UDHI = 0x40
#: registered_delivery: SMSC delivery receipt on success or failure (§5.2.17).
RECEIPT_FINAL = 0x01
#: Destinations are E.164 digits: international TON, ISDN NPI.
DEST_TON, DEST_NPI = 1, 1


def build_submit_pdus(
    msg: Any, cfg: Any, parts: Sequence[Any], source: Any, dlr: bool
) -> list[SubmitSm]:
    """One SubmitSm per wire part, in part order.

    `msg` supplies the destination, `source` the sender as an `Address` already mapped
    through the carrier's TON/NPI overrides; `cfg` is the carrier (unused today: kept so
    per-carrier PDU options have one place to go).
    """
    registered = RECEIPT_FINAL if dlr else 0
    pdus: list[SubmitSm] = []
    for part in parts:
        tlvs: dict[int, object] | None = None
        if part.sar is not None:
            ref, total, seq = part.sar
            tlvs = {
                TlvTag.SAR_MSG_REF_NUM: ref,
                TlvTag.SAR_TOTAL_SEGMENTS: total,
                TlvTag.SAR_SEGMENT_SEQNUM: seq,
            }
        if part.message_payload is not None:
            tlvs = {TlvTag.MESSAGE_PAYLOAD: part.message_payload}
        pdus.append(SubmitSm(
            source_addr_ton=source.ton,
            source_addr_npi=source.npi,
            source_addr=source.addr,
            dest_addr_ton=DEST_TON,
            dest_addr_npi=DEST_NPI,
            destination_addr=msg.dest,
            esm_class=ESM_UDHI if part.esm_class_udhi else 0,
            registered_delivery=registered,
            data_coding=part.data_coding,
            short_message=part.short_message,
            tlvs=tlvs,
        ))
    return pdus
