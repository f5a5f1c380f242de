"""The MDR rules for a receipt matched to one part of a message (DESIGN.md, "MDR fields").

* An intermediate state (the table says SUBMITTED) updates ``dlr_stat`` of an open record
  and finishes nothing.
* A final state finishes the part (``msg.part_status[i]``); a carrier with
  ``receipt_first_part_only`` finishes every part with part 1's receipt. When every part is
  final the MDR is final: ``aggregate_parts`` decides the status, ``done_at`` is set, and
  unless it is DELIVERED the receipt that decided it gives ``error`` / ``error_code``.
* Nothing overwrites a final state, except a final receipt settling an UNKNOWN: a part that
  is UNKNOWN because we never heard (in doubt, no receipt) or because the carrier said
  UNKNOWN stays open to a later final receipt, even when another part's failure already
  made the record final. A late intermediate never reopens anything.
* The same receipt again (same word, same outcome for the part) is a duplicate and changes
  nothing, so carrier replays are harmless.

Functions here mutate the ``Message`` and the ``PartEntry`` records only; the correlator
does the indexing and the clocks.
"""

from __future__ import annotations

from typing import Any, Final

from router.model import Message, aggregate_parts
from router.status import DELIVERED, EXPIRED, FINAL, SUBMITTED, UNDELIVERABLE, UNKNOWN

#: What applying a receipt did.
DUPLICATE: Final = "duplicate"  # the part already had this receipt
STALE: Final = "stale"  # the record is closed to it (final, or SUBMITTED without dlr)
UNCHANGED: Final = "unchanged"  # news for the part, none for the record
UPDATED: Final = "updated"  # the record changed and is still open
FINISHED: Final = "finished"  # the record became final (or was settled anew)

#: Final record states that receipts decided while a part was still UNKNOWN: that part's
#: final receipt settles it and the record is aggregated again, so the end state does not
#: depend on the order receipts came in (UNKNOWN + EXPIRED is EXPIRED; a later UNDELIV for
#: the UNKNOWN part makes it UNDELIVERABLE, as that order the other way round would have).
_SETTLED_BY_RECEIPTS: Final = frozenset({UNDELIVERABLE, EXPIRED})

#: network_error_code TLV (§5.3.2.31): network type (1 octet), error code (2 octets).
_NETWORK_ERROR_CODE_LEN: Final = 3


class PartEntry:
    """What the correlator knows of one accepted part, and the last receipt applied to it.

    ``resp_id`` is the carrier id the part is indexed by and ``keys`` the keys it was
    indexed under (removal uses them: see router/msgid.py). ``word`` / ``status`` /
    ``error`` / ``error_code`` come from the last receipt applied; ``deferred`` holds
    receipts that matched while the message was still being sent.
    """

    __slots__ = ("deferred", "error", "error_code", "index", "keys", "resp_id", "status", "track", "word")

    def __init__(self, track: Any, index: int, resp_id: str, keys: tuple[str, ...]) -> None:
        self.track = track
        self.index = index
        self.resp_id = resp_id
        self.keys = keys
        self.word: str | None = None
        self.status: str | None = None
        self.error: str | None = None
        self.error_code: int | None = None
        self.deferred: list[tuple[Any, str]] | None = None


def receipt_error(receipt: Any) -> tuple[str | None, int | None]:
    """``(error, error_code)`` from a receipt: ``err`` digits → a code, a word → the error.

    Without ``err``, a 3-octet network_error_code TLV gives the code.
    """
    err = getattr(receipt, "err", None)
    if err is not None:
        text = str(err).strip()
        if text.isdigit() and text.isascii():
            return None, int(text)
        if text:
            return text, None
    nec = getattr(receipt, "network_error_code", None)
    if isinstance(nec, (bytes, bytearray)) and len(nec) == _NETWORK_ERROR_CODE_LEN:
        return None, int.from_bytes(nec[1:3], "big")
    return None, None


def accepts_receipts(msg: Message) -> bool | None:
    """True if receipts may change the record now, False if closed, None while sending.

    Open: SUBMITTED waiting for a receipt, or UNKNOWN (a final receipt may settle it).
    Closed: any other final state, and SUBMITTED with ``dlr`` false. Anything else (QUEUED,
    SENDING) is a message whose parts the send path still owns.
    """
    status = msg.status
    if status == SUBMITTED:
        return bool(msg.dlr)
    if status == UNKNOWN:
        return True
    if status in FINAL:
        return False
    return None


def _part_settled(status: str) -> bool:
    return status in FINAL and status != UNKNOWN


def apply_receipt(
    msg: Message,
    parts: list[PartEntry | None],
    entry: PartEntry,
    status: str,
    word: str,
    receipt: Any,
    now: float,
    *,
    first_part_only: bool = False,
) -> str:
    """Apply one matched receipt (already mapped to ``status``) to part ``entry.index``.

    ``parts`` are the message's part entries by index (None where a part has none). The
    caller has checked ``accepts_receipts(msg)`` is not None. Returns DUPLICATE, STALE,
    UNCHANGED, UPDATED or FINISHED.
    """
    if entry.word == word and entry.status == status:
        return DUPLICATE
    i = entry.index
    part_status = msg.part_status
    if i >= len(part_status) or _part_settled(part_status[i]):
        return STALE
    if not accepts_receipts(msg) and not (
        status in FINAL and part_status[i] == UNKNOWN and msg.status in _SETTLED_BY_RECEIPTS
    ):
        return STALE
    if status not in FINAL:
        if msg.status != SUBMITTED:
            return STALE  # a late intermediate never touches a final (UNKNOWN) record
        entry.word, entry.status = word, status
        if msg.dlr_stat == word:
            return UNCHANGED  # another part's intermediate said the same
        msg.dlr_stat = word
        return UPDATED
    if status == UNKNOWN and entry.status == UNKNOWN:
        return STALE  # UNKNOWN after UNKNOWN: nothing new to say
    error, code = receipt_error(receipt)
    _record(entry, word, status, error, code)
    part_status[i] = status
    if first_part_only and i == 0:
        _close_all(part_status, parts, entry)
    aggregate = aggregate_parts(part_status)
    if aggregate is None:
        msg.dlr_stat = word
        return UPDATED
    finish(msg, parts, aggregate, word, now)
    return FINISHED


def _record(entry: PartEntry, word: str, status: str, error: str | None, code: int | None) -> None:
    entry.word, entry.status, entry.error, entry.error_code = word, status, error, code


def _close_all(part_status: list[str], parts: list[PartEntry | None], first: PartEntry) -> None:
    """receipt_first_part_only: every part not settled by its own receipt takes part 1's."""
    for j in range(1, len(part_status)):
        if not _part_settled(part_status[j]):
            part_status[j] = first.status or UNKNOWN
            other = parts[j] if j < len(parts) else None
            if other is not None:
                _record(other, first.word or "", part_status[j], first.error, first.error_code)


def finish(msg: Message, parts: list[PartEntry | None], status: str, word: str, now: float) -> None:
    """Make the record final with ``status``; the part that decided it gives the error.

    ``word`` is the receipt that completed the record: ``dlr_stat`` for DELIVERED, and the
    fallback when the deciding part has no receipt of its own (UNKNOWN because we never
    heard: its ``error`` — ``in_doubt``, ``no_receipt`` — stays).
    """
    if msg.status != status or msg.done_at is None:
        msg.done_at = now  # an UNKNOWN that stays UNKNOWN keeps its time
    msg.status = status
    if status == DELIVERED:
        msg.dlr_stat = word
        msg.error = msg.error_code = None
        return
    decider = None
    for j, s in enumerate(msg.part_status):
        if s == status:
            decider = parts[j] if j < len(parts) else None
            break
    if decider is None or decider.status != status:
        msg.dlr_stat = word or msg.dlr_stat
        return
    msg.dlr_stat = decider.word
    msg.error, msg.error_code = decider.error, decider.error_code


def no_receipt(msg: Message, parts: list[PartEntry | None], now: float) -> None:
    """Receipt timeout: open parts become UNKNOWN and the record final, ``no_receipt``.

    A part that already failed still decides (UNDELIVERABLE comes before UNKNOWN).
    """
    part_status = msg.part_status
    for j, s in enumerate(part_status):
        if s not in FINAL:
            part_status[j] = UNKNOWN
    msg.error, msg.error_code = "no_receipt", None
    finish(msg, parts, aggregate_parts(part_status) or UNKNOWN, "", now)
