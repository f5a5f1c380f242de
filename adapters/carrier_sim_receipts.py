"""What the simulated carrier puts in its receipts, and when it sends them (pure, no I/O).

The text form is "vendor specific" in SMPP 3.4 (Appendix B gives the usual
layout); ``receipt_style`` picks one of the forms SMPP-NOTES.md lists from the
field, so a client can be tested against each:

- ``spec``: Appendix B text plus the receipted_message_id and message_state
  TLVs (§5.3.2.12, §5.3.2.35).
- ``kannel``: the text only, ``Text:`` capitalised and 12-digit dates
  (YYMMDDhhmmss), as Kannel's SMSC emulation writes them.
- ``uppercase``: the text only, every key and a hex id upper-cased.
- ``minimal``: ``id:X stat:WORD`` and nothing else.
- ``tlv``: the TLVs only (with network_error_code on failure), short_message empty.
- ``payload``: the Appendix B text in message_payload, sm_length 0, no other TLV.

Everything here takes times as arguments; ``DueQueue`` is the heap behind the
simulator's single receipt timer.
"""

from __future__ import annotations

import heapq
import time
from typing import Any

from adapters.smpp.constants import MessageState, TlvTag
from adapters.smpp.pdu import DeliverSm

__all__ = [
    "ID_FORMATS",
    "RECEIPT_ID_FORMATS",
    "RECEIPT_STYLES",
    "DueQueue",
    "ReceiptMaker",
    "format_id",
    "receipt_id",
]

ID_FORMATS = ("dec", "hex", "uuid")
RECEIPT_ID_FORMATS = ("same", "dec", "hex")
RECEIPT_STYLES = ("spec", "kannel", "uppercase", "minimal", "tlv", "payload")

#: §5.2.12 esm_class message type bits: SMSC delivery receipt.
ESM_DELIVERY_RECEIPT = 0x04
#: §5.3.2.31 network_error_code: network type 3 (GSM), then a 2-octet error code.
_GSM_NETWORK = 3
#: Appendix B: "the first 20 characters of the short message".
TEXT_CHARS = 20
#: §5.2.12: the short_message starts with a user data header.
_UDHI = 0x40
_PRINTABLE = bytes(c if 0x20 <= c < 0x7F and c not in b":" else 0x2E for c in range(256))


def format_id(number: int, fmt: str) -> str:
    """The message id ``number`` spelled ``dec`` or ``hex`` (lower case). Raises ValueError otherwise."""
    if fmt == "dec":
        return str(number)
    if fmt == "hex":
        return format(number, "x")
    raise ValueError(f"id format: expected dec or hex, got {fmt!r}")


def receipt_id(resp_id: str, number: int, fmt: str) -> str:
    """The id a receipt carries for the submit answered with ``resp_id`` (counter ``number``)."""
    return resp_id if fmt == "same" else format_id(number, fmt)


def preview(short_message: bytes, esm_class: int) -> str:
    """The text: field, first 20 octets after any UDH, non-printables (and ':') as '.'."""
    if esm_class & _UDHI and short_message:
        short_message = short_message[1 + short_message[0] :]
    return short_message[:TEXT_CHARS].translate(_PRINTABLE).decode("ascii")


class _DateCache:
    """Receipt dates are per minute (or second): format each once, not once per receipt."""

    __slots__ = ("fmt", "_key", "_text", "_step")

    def __init__(self, fmt: str, step: int) -> None:
        self.fmt, self._step, self._key, self._text = fmt, step, -1, ""

    def __call__(self, wall: float) -> str:
        key = int(wall) // self._step
        if key != self._key:
            self._key = key
            self._text = time.strftime(self.fmt, time.gmtime(wall))
        return self._text


class ReceiptMaker:
    """Builds the receipt deliver_sm for one style; one instance per simulator."""

    __slots__ = ("style", "_date", "_done_date")

    def __init__(self, style: str) -> None:
        """Raises ValueError naming receipt_style for an unknown style."""
        if style not in RECEIPT_STYLES:
            raise ValueError(f"receipt_style: expected one of {', '.join(RECEIPT_STYLES)}, got {style!r}")
        self.style = style
        # Two caches: submit and done dates alternate, each would evict the other.
        fmt, step = ("%y%m%d%H%M%S", 1) if style == "kannel" else ("%y%m%d%H%M", 60)
        self._date = _DateCache(fmt, step)
        self._done_date = _DateCache(fmt, step)

    def text(self, rid: str, submitted: float, done: float, delivered: bool, err: int, preview_text: str) -> str:
        """The receipt text of this style (empty for ``tlv``); times are wall-clock seconds."""
        style = self.style
        stat = "DELIVRD" if delivered else "UNDELIV"
        if style == "minimal":
            return f"id:{rid} stat:{stat}"
        if style == "tlv":
            return ""
        dlvrd = "001" if delivered else "000"
        sub, done_s = self._date(submitted), self._done_date(done)
        if style == "uppercase":
            return (
                f"ID:{rid.upper()} SUB:001 DLVRD:{dlvrd} SUBMIT DATE:{sub} DONE DATE:{done_s}"
                f" STAT:{stat} ERR:{err:03d} TEXT:{preview_text}"
            )
        label = "Text" if style == "kannel" else "text"
        return (
            f"id:{rid} sub:001 dlvrd:{dlvrd} submit date:{sub} done date:{done_s}"
            f" stat:{stat} err:{err:03d} {label}:{preview_text}"
        )

    def deliver_sm(
        self, submit: Any, rid: str, submitted: float, done: float, delivered: bool, err: int
    ) -> DeliverSm:
        """The receipt for ``submit`` (a submit_sm or data_sm): addresses swapped, esm_class 0x04."""
        style = self.style
        text = self.text(rid, submitted, done, delivered, err, preview(getattr(submit, "short_message", b""),
                                                                        submit.esm_class))
        tlvs: dict[int, object] | None = None
        body = text.encode("ascii")
        if style == "spec" or style == "tlv":
            state = MessageState.DELIVERED if delivered else MessageState.UNDELIVERABLE
            tlvs = {TlvTag.RECEIPTED_MESSAGE_ID: rid, TlvTag.MESSAGE_STATE: int(state)}
            if style == "tlv" and not delivered:
                tlvs[TlvTag.NETWORK_ERROR_CODE] = bytes((_GSM_NETWORK, err >> 8 & 0xFF, err & 0xFF))
        elif style == "payload":
            tlvs = {TlvTag.MESSAGE_PAYLOAD: body}
            body = b""
        return DeliverSm(
            source_addr_ton=submit.dest_addr_ton,
            source_addr_npi=submit.dest_addr_npi,
            source_addr=submit.destination_addr,
            dest_addr_ton=submit.source_addr_ton,
            dest_addr_npi=submit.source_addr_npi,
            destination_addr=submit.source_addr,
            esm_class=ESM_DELIVERY_RECEIPT,
            short_message=body,
            tlvs=tlvs,
        )


class DueQueue:
    """Items ordered by due time: push, pop everything due, ask the next due time.

    One heap behind one timer, however many receipts are waiting; ties keep
    push order.
    """

    __slots__ = ("_heap", "_count")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Any]] = []
        self._count = 0

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, due: float, item: Any) -> None:
        """Add ``item`` due at ``due``."""
        self._count += 1
        heapq.heappush(self._heap, (due, self._count, item))

    def next_due(self) -> float | None:
        """The earliest due time, or None when empty."""
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> list[Any]:
        """Remove and return every item due at or before ``now``, earliest first."""
        heap = self._heap
        out = []
        while heap and heap[0][0] <= now:
            out.append(heapq.heappop(heap)[2])
        return out

    def clear(self) -> list[Any]:
        """Remove and return everything, earliest first."""
        out = [entry[2] for entry in sorted(self._heap)]
        self._heap.clear()
        return out
