"""What carriers send us: delivery receipts into MDRs, inbound messages (MO) out.

Every deliver_sm / data_sm a pool receives comes here (`CarrierPool(on_deliver=...)`). A
receipt goes to the correlator; the MDR it changes is saved, and the deliver_sm_resp waits
for the group commit that holds it (so a crash makes the carrier redeliver, and a
redelivery changes nothing). A receipt that matches no part yet is held by the correlator
and recorded in the store's receipt table; one that cannot be read is counted, recorded
raw and still acknowledged — it is never passed on as an inbound message. Anything else
is an MO: reassembled when concatenated, shown to compliance (`on_keyword`, which sets its
`keyword` / `action` and adds consent records to the same commit), stored, and published.

The answer is a Future of the command_status only when there is something to wait for;
one Future serves every receipt of the same commit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import structlog

from adapters.smpp.constants import TlvTag
from adapters.smpp.receipt import ReceiptError, classify, parse_receipt
from router.correlator import IN_DOUBT_SETTLED, Correlator
from router.model import FINAL, Message, iso_ms
from router.mo import InboundMessage, Reassembler

log = structlog.get_logger("router.inbound")

ESME_ROK = 0
_SAR = (int(TlvTag.SAR_MSG_REF_NUM), int(TlvTag.SAR_TOTAL_SEGMENTS), int(TlvTag.SAR_SEGMENT_SEQNUM))
_PAYLOAD = int(TlvTag.MESSAGE_PAYLOAD)
#: SMPP 3.4 §5.2.12 esm_class message type bits (mask 0x3C): 0x08 SME delivery
#: acknowledgement, 0x10 SME manual/user acknowledgement. Sent by the handset side on its
#: own: a keyword in one is honoured but never answered (no reply loops).
_ESM_TYPE_MASK = 0x3C
_ESM_SME_ACKS = frozenset({0x08, 0x10})

#: `on_keyword(mo, now, auto_reply)`: compliance's look at an MO before it is stored.
KeywordHook = Callable[[InboundMessage, float, bool], object]


class Inbound:
    """Handles every deliver_sm / data_sm of every carrier."""

    def __init__(
        self,
        carriers: Mapping[str, Any],
        store: Any,
        correlator: Correlator,
        reassembler: Reassembler,
        *,
        clock: Callable[[], float],
        on_mdr: Callable[[Message], None],
        on_mo: Callable[[InboundMessage], None],
        on_receipt: Callable[[str, dict[str, Any]], None] | None = None,
        metrics: Any = None,
    ) -> None:
        self.carriers = carriers
        self.store = store
        self.correlator = correlator
        self.reassembler = reassembler
        self._clock = clock
        self._on_mdr = on_mdr
        self._on_mo = on_mo
        self._on_receipt = on_receipt
        self._metrics = metrics
        #: Called when a receipt settles a message that was in doubt (the daemon's count).
        self.on_in_doubt_settled: Callable[[Message | None], None] | None = None
        #: Compliance (router/consent.py `ConsentDesk.on_mo`), shown every MO first.
        self.on_keyword: KeywordHook | None = None
        self._acks: dict[asyncio.Future[None], asyncio.Future[int]] = {}
        self.stats = {"receipts": 0, "unreadable_receipts": 0, "mo_parts": 0, "mo": 0}

    def handler(self, carrier: str) -> Callable[[str, Any], int | asyncio.Future[int]]:
        """The `on_deliver` callback for one carrier's pool."""
        return lambda bind_id, pdu: self.deliver(carrier, bind_id, pdu)

    def deliver(self, carrier: str, bind_id: str, pdu: Any) -> int | asyncio.Future[int]:
        cfg = self.carriers[carrier]
        now = self._clock()
        kind = classify(
            pdu, receipts_on_esm_class_zero=cfg.receipts_on_esm_class_zero,
            dc0_charset=cfg.dc0_charset,
        )
        if kind == "receipt":
            self._receipt(carrier, cfg, pdu, now)
        else:
            self._mo(carrier, cfg, pdu, now)
        return self._ack()

    # -- receipts ----------------------------------------------------------------------

    def _receipt(self, carrier: str, cfg: Any, pdu: Any, now: float) -> None:
        self.stats["receipts"] += 1
        try:
            receipt = parse_receipt(pdu, dc0_charset=cfg.dc0_charset)
        except ReceiptError as exc:
            self.stats["unreadable_receipts"] += 1
            log.warning("unreadable receipt kept raw", carrier=carrier, field=exc.field, error=str(exc))
            self.store.save_receipt(carrier, None, "unreadable", now, raw=bytes(pdu.short_message or b""))
            return
        res = self.correlator.on_receipt(carrier, receipt, now)
        if self._metrics is not None and res.status is not None:
            self._metrics.receipt(carrier, res.status)
        msg = res.msg
        if res.outcome == IN_DOUBT_SETTLED and self.on_in_doubt_settled is not None:
            self.on_in_doubt_settled(msg)
        if msg is None:
            self.store.save_receipt(carrier, receipt, res.outcome, now)
        elif res.changed:
            self.store.save(msg)
            self._on_mdr(msg)
            if self._metrics is not None:
                self._metrics.mdr(msg.status)
                if msg.status in FINAL and msg.done_at is not None:
                    self._metrics.delivery_latency(max(0.0, msg.done_at - msg.accepted_at))
        if self._on_receipt is not None:
            self._on_receipt(carrier, {
                "carrier": carrier,
                "carrier_id": receipt.message_id,
                "stat": receipt.dlr_stat,
                "err": receipt.err,
                "message_state": receipt.message_state,
                "text": receipt.text,
                "received_at": iso_ms(now),
                "matched_id": msg.id if msg is not None else None,
            })

    # -- inbound messages --------------------------------------------------------------

    def _mo(self, carrier: str, cfg: Any, pdu: Any, now: float) -> None:
        self.stats["mo_parts"] += 1
        tlvs = pdu.tlvs or {}
        sar = None
        if all(t in tlvs for t in _SAR):
            values = tuple(tlvs[t] for t in _SAR)
            if all(isinstance(v, int) for v in values):
                sar = values  # type: ignore[assignment]
        payload = tlvs.get(_PAYLOAD)
        esm_class = getattr(pdu, "esm_class", 0) or 0
        auto = esm_class & _ESM_TYPE_MASK in _ESM_SME_ACKS
        done = self.reassembler.add(
            carrier=carrier, source=pdu.source_addr, dest=pdu.destination_addr,
            esm_class=esm_class, data_coding=pdu.data_coding,
            short_message=getattr(pdu, "short_message", b"") or b"", sar=sar,
            message_payload=payload if isinstance(payload, (bytes, bytearray)) else None,
            dc0_charset=cfg.dc0_charset, now=now,
        )
        for mo in done:
            self.emit_mo(mo, auto_reply=auto)

    def emit_mo(self, mo: InboundMessage, *, auto_reply: bool = False) -> None:
        """Store and publish a complete (or expired partial) inbound message.

        `auto_reply`: the carrier marked it as an automatic acknowledgement. Compliance
        sees it first; its failure is logged and never costs the MO.
        """
        self.stats["mo"] += 1
        mo.id = self.store.next_mo_id()
        if self.on_keyword is not None:
            try:
                self.on_keyword(mo, self._clock(), auto_reply)
            except Exception:  # noqa: BLE001 - one bad decision must not lose the MO
                log.exception("compliance failed on an inbound message", mo_id=mo.id, carrier=mo.carrier)
        self.store.save_mo(mo)
        self._on_mo(mo)

    def expire(self, now: float) -> None:
        """Deliver incomplete MO sets past their holding time, as partial messages."""
        for mo in self.reassembler.expire(now):
            self.emit_mo(mo)

    # -- acknowledgement ---------------------------------------------------------------

    def _ack(self) -> int | asyncio.Future[int]:
        durable = self.store.durable()
        if durable.done():
            return ESME_ROK
        ack = self._acks.get(durable)
        if ack is None:
            ack = durable.get_loop().create_future()
            self._acks[durable] = ack
            durable.add_done_callback(self._committed)
        return ack

    def _committed(self, durable: asyncio.Future[None]) -> None:
        ack = self._acks.pop(durable, None)
        if ack is None or ack.done():
            return
        if durable.cancelled() or durable.exception() is not None:
            # Not recorded: a temporary error makes the carrier deliver it again.
            ack.set_result(0x64)  # ESME_RX_T_APPN
        else:
            ack.set_result(ESME_ROK)
