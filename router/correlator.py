"""Delivery receipts → message parts → MDRs (DESIGN.md, "The flow of one message", step 5).

Theory of operation
-------------------
Every accepted part is indexed under ``(carrier, key)`` for each key its carrier's
``IdMatcher`` gives the response id (router/msgid.py); a receipt is looked up under
``(carrier, key)`` for the keys of its own id, in order, first hit wins. The bind is not
part of the key, so a receipt matches on whichever bind of the carrier it arrives, and
the carrier is, so two carriers' ids never collide. Keys are exact strings: a prefix
never matches. Two ids may share a key (``0123`` and ``123`` under ``same``, or a carrier
recycling ids); the newest part under a key wins.

A matched receipt is applied by the MDR rules of router/receipt_apply.py. While the
message is still being sent (another part awaits its response) the receipt waits on its
part and is applied when the send path is done with the message.

An unmatched receipt either settles an in-doubt message — when its addresses match
exactly one in-doubt message of that carrier still missing a part's id (receipt source =
the message's destination, receipt destination = its source), found through a dict keyed
by ``(carrier, dest, source)`` — or it is held (router/receipt_hold.py) until its response
comes, ``hold_s`` passes or ``hold_max`` newer ones push it out; then it is an orphan.

Lifetimes (every entry has one, so memory stays bounded over weeks). Each tracked message
has one deadline in a ``DeadlineQueue``, in one of two phases:

``WAIT``
    waiting for a final receipt, until the carrier's ``receipt_timeout_s`` after it was
    submitted (or went in doubt). A SUBMITTED record then becomes UNKNOWN / ``no_receipt``.
``KEEP``
    final: entries stay ``final_keep_s`` so duplicates and late receipts are recognised
    (and a late final receipt can still settle an UNKNOWN), then are dropped.

Pure: no I/O, no clock; the daemon calls ``expire(now)`` at ``next_due()``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Protocol

from router.correlator_timers import DeadlineQueue
from router.dlr_status import StatusTable
from router.model import Message
from router.msgid import IdMatcher, MessageIdError
from router.receipt_apply import (
    DUPLICATE,
    FINISHED,
    STALE,
    UNCHANGED,
    PartEntry,
    accepts_receipts,
    apply_receipt,
    no_receipt,
)
from router.receipt_hold import AddrKey, Held, HeldReceipts
from router.status import FINAL, SUBMITTED, UNKNOWN

#: ReceiptResult.outcome values.
MATCHED: Final = "matched"  # applied to its part (see `changed` / `stale`)
DUPLICATE_RECEIPT: Final = "duplicate"  # the part already had this very receipt
DEFERRED: Final = "deferred"  # matched a message still being sent; applied when it is done
HELD: Final = "held"  # no part yet: waiting for its response (or an in-doubt message)
IN_DOUBT_SETTLED: Final = "orphan_in_doubt_settled"  # unmatched, settled the in-doubt one
BAD_ID: Final = "bad_id"  # the receipt's id cannot be read (empty, too long)
UNKNOWN_CARRIER: Final = "unknown_carrier"  # not a configured carrier

_WAIT: Final = 0
_KEEP: Final = 1

#: Receipts kept on a part while its message is being sent; more are replays.
_MAX_DEFERRED: Final = 8


class CarrierLike(Protocol):
    """What the correlator reads of a carrier's config (router.config.CarrierConfig)."""

    @property
    def message_id_format(self) -> str: ...
    @property
    def status_map(self) -> Mapping[str, str]: ...
    @property
    def receipt_timeout_s(self) -> float: ...
    @property
    def receipt_first_part_only(self) -> bool: ...


class ReceiptResult:
    """What one receipt did: ``outcome`` (see the module constants), the message it
    concerned (or None), whether the MDR ``changed`` (store and publish it), the MDR
    ``status`` the receipt maps to, and ``stale`` (matched a record closed to it)."""

    __slots__ = ("changed", "msg", "outcome", "stale", "status")

    def __init__(
        self, outcome: str, msg: Message | None = None, changed: bool = False,
        status: str | None = None, stale: bool = False,
    ) -> None:
        self.outcome = outcome
        self.msg = msg
        self.changed = changed
        self.status = status
        self.stale = stale

    def __repr__(self) -> str:
        mid = self.msg.id if self.msg is not None else None
        return (f"ReceiptResult({self.outcome}, msg={mid}, changed={self.changed}, "
                f"status={self.status}, stale={self.stale})")


class _Track:
    """One message known to the correlator: its parts' entries, in-doubt address, deadline."""

    __slots__ = ("addr", "carrier", "deferred", "msg", "parts", "phase", "token")

    def __init__(self, msg: Message, carrier: str) -> None:
        self.msg = msg
        self.carrier = carrier
        self.parts: list[PartEntry | None] = []
        self.addr: AddrKey | None = None
        self.token = 0
        self.phase = _WAIT
        self.deferred = False  # some part holds receipts that came while it was sent


def _digits(number: str | None) -> str:
    return (number or "").strip().lstrip("+")


def _in_doubt(msg: Message) -> bool:
    return msg.status == UNKNOWN and msg.error == "in_doubt"


class Correlator:
    """Receipt correlation and MDR assembly for every carrier (pure; time passed in).

    Raises:
        ValueError: a carrier's ``message_id_format`` or ``status_map`` is invalid (naming
            it), ``hold_s`` / ``final_keep_s`` is negative, or ``hold_max`` < 1.
    """

    def __init__(
        self, carriers: Mapping[str, CarrierLike], *, hold_s: float = 60.0,
        hold_max: int = 100_000, final_keep_s: float = 3600.0,
    ) -> None:
        if not final_keep_s >= 0:
            raise ValueError(f"final_keep_s: {final_keep_s!r} is not a non-negative number of seconds")
        self.final_keep_s = final_keep_s
        self._cfg: dict[str, CarrierLike] = {}
        self._matchers: dict[str, IdMatcher] = {}
        self._tables: dict[str, StatusTable] = {}
        self._first_part_only: frozenset[str] = frozenset()
        #: (carrier, key) → the part, or a list of parts sharing the key (newest last):
        #: a list only on a collision, as one per key would double the index's memory.
        self._index: dict[tuple[str, str], PartEntry | list[PartEntry]] = {}
        self._tracks: dict[str, _Track] = {}
        self._doubt: dict[AddrKey, list[_Track]] = {}
        self._timers = DeadlineQueue()
        self._held = HeldReceipts(hold_s, hold_max)
        self._evicted: list[tuple[float, str, Any]] = []
        self._counts = dict.fromkeys(
            ("matched", "duplicates", "stale", "deferred", "held", "orphans", "settled_in_doubt",
             "no_receipt", "bad_ids", "unknown_carrier"), 0)
        self.set_carriers(carriers)

    # -- configuration -----------------------------------------------------------------

    def set_carriers(self, carriers: Mapping[str, CarrierLike]) -> None:
        """Apply a config (also a reload): new tables; a matcher is kept, with what it
        learned, while its ``message_id_format`` is unchanged. Entries are kept.

        Raises:
            ValueError: a ``message_id_format`` or ``status_map`` is invalid; nothing changes.
        """
        matchers: dict[str, IdMatcher] = {}
        tables: dict[str, StatusTable] = {}
        for name, cfg in carriers.items():
            old = self._matchers.get(name)
            try:
                if old is not None and old.fmt == cfg.message_id_format:
                    matchers[name] = old
                else:
                    matchers[name] = IdMatcher(cfg.message_id_format)
                tables[name] = StatusTable(cfg.status_map)
            except ValueError as exc:
                raise ValueError(f"carriers.{name}.{exc}") from None
        self._cfg, self._matchers, self._tables = dict(carriers), matchers, tables
        self._first_part_only = frozenset(n for n, c in carriers.items() if c.receipt_first_part_only)

    def learned(self, carrier: str) -> str | None:
        """The id rule in force for ``carrier`` (learned by ``auto``), or None."""
        matcher = self._matchers.get(carrier)
        return None if matcher is None else matcher.learned

    @property
    def stats(self) -> dict[str, int]:
        """Counters, plus ``index_size`` (id keys indexed), ``held_size`` and ``tracked``."""
        out = dict(self._counts)
        out["index_size"] = len(self._index)
        out["held_size"] = len(self._held)
        out["tracked"] = len(self._tracks)
        return out

    # -- the send path -----------------------------------------------------------------

    def on_accepted(self, msg: Message, part: int, now: float) -> list[Message]:
        """Part ``part`` of ``msg`` was accepted with ``msg.carrier_ids[part]``.

        Call it after the send path recorded the response. Indexes the part, then applies
        receipts held for it (receipt before response) and receipts that waited while the
        message was being sent. Returns the messages whose MDR changed.

        Raises:
            ValueError: ``msg.carrier`` is not a configured carrier, or ``part`` has no
                carrier id; the message names it.
        """
        track = self._tracks.get(msg.id)
        if track is None or track.carrier != msg.carrier:
            track = self._track_of(msg, now)
        else:
            track.msg = msg
        matcher = self._matcher(track.carrier)
        ids = msg.carrier_ids
        resp_id = ids[part] if 0 <= part < len(ids) else None
        if not resp_id:
            raise ValueError(f"carrier_ids[{part}]: message {msg.id} has no carrier id for part {part}")
        try:
            keys = matcher.keys_for_response(resp_id)
        except MessageIdError:
            self._counts["bad_ids"] += 1
            return []
        entry = self._add_part(track, part, resp_id, keys)
        changed = False
        if len(self._held):
            for held in self._held.take_for_keys(track.carrier, keys):
                self._observe(matcher, resp_id, held.receipt)
                changed |= self._deliver(entry, held.receipt, held.status, now).changed
        if track.deferred:
            changed |= self._flush_deferred(track, now)
        if track.addr is not None and not _in_doubt(msg):
            self._undoubt(track)
        return [msg] if changed else []

    def on_in_doubt(self, msg: Message, now: float) -> list[Message]:
        """``msg`` went UNKNOWN / ``in_doubt`` (a part got no response).

        Registers its addresses for settlement by an unmatched receipt, applies receipts
        its accepted parts collected meanwhile, and settles it with receipts already held
        for its addresses (the receipt came before the response timeout). Returns the
        messages whose MDR changed.

        Raises:
            ValueError: ``msg.carrier`` is not a configured carrier.
        """
        track = self._track_of(msg, now)
        self._matcher(track.carrier)
        changed = self._flush_deferred(track, now) if track.deferred else False
        if not _in_doubt(msg):
            return [msg] if changed else []
        self._doubt_register(track)
        self._arm(track, _WAIT, now, self._timeout(track))
        if self._unique_doubt(track.addr) is track:
            assert track.addr is not None
            for held in self._held.take_for_addr(track.addr):
                res = self._settle_doubt(track, held.receipt, held.status, now)
                if res is None:
                    self._hold(held.carrier, held.receipt, held.status, held.keys, held.at)
                else:
                    changed |= res.changed
        return [msg] if changed else []

    def track(self, msg: Message, now: float) -> None:
        """Rebuild the entries of a message loaded from the store at start.

        Indexes every part with a carrier id and arms the message's deadline from its
        stored times (SUBMITTED: ``submitted_at`` + receipt timeout; in doubt: ``done_at`` +
        receipt timeout; other final states: ``done_at`` + ``final_keep_s``). Held receipts
        are not consulted. A message of an unknown carrier is skipped.
        """
        if msg.carrier not in self._matchers:
            return
        track = self._track_of(msg, now, arm=False)
        matcher = self._matchers[track.carrier]
        for i, cid in enumerate(msg.carrier_ids):
            if cid:
                try:
                    self._add_part(track, i, cid, matcher.keys_for_response(cid))
                except MessageIdError:
                    self._counts["bad_ids"] += 1
        timeout = self._timeout(track)
        if msg.status == SUBMITTED and msg.dlr:
            self._arm(track, _WAIT, msg.submitted_at or now, timeout)
        elif _in_doubt(msg):
            self._doubt_register(track)
            self._arm(track, _WAIT, msg.done_at or now, timeout)
        elif msg.status in FINAL or msg.status == SUBMITTED:
            start = msg.done_at or msg.submitted_at or now
            self._arm(track, _KEEP, start, self.final_keep_s)
        else:
            self._arm(track, _WAIT, now, timeout)

    def forget(self, msg: Message) -> None:
        """Drop every entry of ``msg`` (pruned, or handed elsewhere)."""
        track = self._tracks.get(msg.id)
        if track is not None:
            self._drop(track)

    # -- receipts ----------------------------------------------------------------------

    def on_receipt(self, carrier: str, receipt: Any, now: float) -> ReceiptResult:
        """Match one receipt from ``carrier`` (any bind) and apply it.

        ``receipt`` is anything with ``message_id``, ``status(table)``, ``dlr_stat``,
        ``err``, ``source_addr`` and ``destination_addr`` (adapters/smpp/receipt.py,
        ``Receipt``). Never raises for a receipt's content: an unreadable id is the
        outcome ``bad_id``, an unconfigured carrier ``unknown_carrier``.
        """
        matcher = self._matchers.get(carrier)
        if matcher is None:
            self._counts["unknown_carrier"] += 1
            return ReceiptResult(UNKNOWN_CARRIER)
        status = receipt.status(self._tables[carrier])
        receipt_id = receipt.message_id
        try:
            keys = matcher.keys_for_receipt(receipt_id)
        except MessageIdError:
            self._counts["bad_ids"] += 1
            return ReceiptResult(BAD_ID, status=status)
        index = self._index
        for key in keys:
            found = index.get((carrier, key))
            if found is not None:
                entry = found[-1] if isinstance(found, list) else found
                res = self._deliver(entry, receipt, status, now)
                if res.outcome == MATCHED and matcher.learned is None:
                    self._observe(matcher, entry.resp_id, receipt)
                return res
        addr = (carrier, _digits(receipt.source_addr), _digits(receipt.destination_addr))
        track = self._unique_doubt(addr)
        if track is not None:
            settled = self._settle_doubt(track, receipt, status, now)
            if settled is not None:
                return settled
        self._hold(carrier, receipt, status, keys, now)
        return ReceiptResult(HELD, status=status)

    # -- time --------------------------------------------------------------------------

    def next_due(self) -> float | None:
        """When ``expire`` has work next (a held receipt's end, a receipt timeout, the end
        of a final record's keep time), or None when nothing is pending."""
        due = [t for t in (self._timers.next_due(), self._held.next_due()) if t is not None]
        if self._evicted:
            due.append(self._evicted[0][0])
        return min(due) if due else None

    def expire(self, now: float) -> tuple[list[Message], list[tuple[str, Any]]]:
        """Run every deadline due at ``now``.

        Returns the messages whose MDR changed (receipt timeouts → UNKNOWN / ``no_receipt``)
        and the receipts that became orphans as ``(carrier, receipt)`` (held past
        ``hold_s``, or evicted by ``hold_max`` since the last call), for the daemon to log
        and store.
        """
        orphans = [(carrier, receipt) for _, carrier, receipt in self._evicted]
        self._evicted.clear()
        expired = self._held.expire(now)
        self._counts["orphans"] += len(expired)
        orphans.extend((h.carrier, h.receipt) for h in expired)
        changed: list[Message] = []
        for owner in self._timers.pop_due(now):
            track: _Track = owner  # type: ignore[assignment]
            if track.phase == _KEEP:
                self._drop(track)
            elif self._wait_over(track, now):
                changed.append(track.msg)
        return changed, orphans

    # -- internals: tracks and the index -----------------------------------------------

    def _matcher(self, carrier: str) -> IdMatcher:
        matcher = self._matchers.get(carrier)
        if matcher is None:
            raise ValueError(f"carrier: {carrier!r} is not a configured carrier")
        return matcher

    def _timeout(self, track: _Track) -> float:
        cfg = self._cfg.get(track.carrier)
        return cfg.receipt_timeout_s if cfg is not None else self.final_keep_s

    def _track_of(self, msg: Message, now: float, *, arm: bool = True) -> _Track:
        """The message's track, new (and armed) if needed; a changed carrier starts afresh."""
        carrier = msg.carrier or ""
        track = self._tracks.get(msg.id)
        if track is not None and track.carrier != carrier:
            self._drop(track)  # sent again elsewhere: the old carrier's ids mean nothing now
            track = None
        if track is not None:
            track.msg = msg  # the same message, possibly reloaded
        if track is None:
            self._matcher(carrier)
            track = self._tracks[msg.id] = _Track(msg, carrier)
            if arm:
                if msg.dlr:
                    self._arm(track, _WAIT, now, self._timeout(track))
                else:
                    self._arm(track, _KEEP, now, self.final_keep_s)
        return track

    def _arm(self, track: _Track, phase: int, start: float, span: float) -> None:
        track.token += 1
        track.phase = phase
        self._timers.push(track, start + span, span)

    def _add_part(self, track: _Track, part: int, resp_id: str, keys: tuple[str, ...]) -> PartEntry:
        parts = track.parts
        if len(parts) <= part:
            parts.extend([None] * (part + 1 - len(parts)))
        old = parts[part]
        if old is not None:
            if old.resp_id == resp_id and old.keys == keys:
                return old
            self._unindex(old)
        entry = parts[part] = PartEntry(track, part, resp_id, keys)
        index, carrier = self._index, track.carrier
        for key in keys:
            k = (carrier, key)
            found = index.get(k)
            if found is None:
                index[k] = entry
            elif isinstance(found, list):
                found.append(entry)
            else:
                index[k] = [found, entry]
        return entry

    def _unindex(self, entry: PartEntry) -> None:
        index, carrier = self._index, entry.track.carrier
        for key in entry.keys:
            k = (carrier, key)
            found = index.get(k)
            if found is entry:
                del index[k]
            elif isinstance(found, list) and entry in found:
                found.remove(entry)
                if len(found) == 1:
                    index[k] = found[0]

    def _drop(self, track: _Track) -> None:
        track.token += 1  # cancels its pending deadline
        for entry in track.parts:
            if entry is not None:
                self._unindex(entry)
        track.parts = []
        if track.addr is not None:
            self._undoubt(track)
        if self._tracks.get(track.msg.id) is track:
            del self._tracks[track.msg.id]

    # -- internals: applying receipts --------------------------------------------------

    def _deliver(self, entry: PartEntry, receipt: Any, status: str, now: float) -> ReceiptResult:
        """Apply a receipt matched to ``entry`` (or keep it while the message is sent)."""
        track: _Track = entry.track
        msg = track.msg
        if accepts_receipts(msg) is None:
            pending = entry.deferred
            if pending is None:
                pending = entry.deferred = []
            if len(pending) < _MAX_DEFERRED:
                pending.append((receipt, status))
            track.deferred = True
            self._counts["deferred"] += 1
            return ReceiptResult(DEFERRED, msg, False, status)
        outcome = apply_receipt(
            msg, track.parts, entry, status, receipt.dlr_stat, receipt, now,
            first_part_only=track.carrier in self._first_part_only,
        )
        if outcome == DUPLICATE:
            self._counts["duplicates"] += 1
            return ReceiptResult(DUPLICATE_RECEIPT, msg, False, status)
        self._counts["matched"] += 1
        if outcome == STALE:
            self._counts["stale"] += 1
            return ReceiptResult(MATCHED, msg, False, status, stale=True)
        if outcome == UNCHANGED:
            return ReceiptResult(MATCHED, msg, False, status)
        if _in_doubt(msg):
            pass  # still waiting for the missing part: keep the receipt-timeout deadline
        else:
            if outcome == FINISHED:
                self._arm(track, _KEEP, now, self.final_keep_s)
            if track.addr is not None:
                self._undoubt(track)
        return ReceiptResult(MATCHED, msg, True, status)

    def _flush_deferred(self, track: _Track, now: float) -> bool:
        """Apply receipts that waited while the message was being sent, if it is done."""
        if accepts_receipts(track.msg) is None:
            return False
        track.deferred = False
        changed = False
        for entry in track.parts:
            if entry is not None and entry.deferred:
                pending, entry.deferred = entry.deferred, None
                for receipt, status in pending:
                    changed |= self._deliver(entry, receipt, status, now).changed
        return changed

    def _observe(self, matcher: IdMatcher, resp_id: str, receipt: Any) -> None:
        receipt_id = receipt.message_id
        if _plain_digits(resp_id) and _plain_digits(receipt_id):
            return  # two all-digit ids never vote (router/msgid.py, "Learning"): skip the work
        try:
            matcher.observe_match(resp_id, receipt_id)
        except MessageIdError:
            pass  # both ids were read before; nothing to learn from a pair that is not

    def _hold(self, carrier: str, receipt: Any, status: str, keys: tuple[str, ...], now: float) -> None:
        addr = (carrier, _digits(receipt.source_addr), _digits(receipt.destination_addr))
        self._counts["held"] += 1
        for old in self._held.add(Held(carrier, receipt, status, keys, addr, now)):
            self._counts["orphans"] += 1
            self._evicted.append((now, old.carrier, old.receipt))

    def _wait_over(self, track: _Track, now: float) -> bool:
        """A WAIT deadline passed; True if the MDR changed (→ no_receipt)."""
        msg = track.msg
        state = accepts_receipts(msg)
        if state is None:  # parts still being sent (retries): wait another period
            self._arm(track, _WAIT, now, self._timeout(track))
            return False
        self._arm(track, _KEEP, now, self.final_keep_s)
        if msg.status == SUBMITTED and state:
            no_receipt(msg, track.parts, now)
            self._counts["no_receipt"] += 1
            return True
        return False

    # -- internals: in-doubt messages --------------------------------------------------

    def _doubt_register(self, track: _Track) -> None:
        if track.addr is not None:
            return
        msg = track.msg
        track.addr = (track.carrier, _digits(msg.dest), _digits(msg.source))
        self._doubt.setdefault(track.addr, []).append(track)

    def _undoubt(self, track: _Track) -> None:
        addr, track.addr = track.addr, None
        lst = self._doubt.get(addr) if addr is not None else None
        if lst is not None and track in lst:
            lst.remove(track)
            if not lst:
                del self._doubt[addr]  # type: ignore[arg-type]

    def _unique_doubt(self, addr: AddrKey | None) -> _Track | None:
        """The one in-doubt message with these addresses still missing a part's id."""
        lst = self._doubt.get(addr) if addr is not None else None
        if not lst:
            return None
        for track in [t for t in lst if not _in_doubt(t.msg)]:
            self._undoubt(track)  # settled meanwhile (a late response)
        open_ = [t for t in self._doubt.get(addr, ()) if _unidentified(t.msg) is not None]  # type: ignore[arg-type]
        return open_[0] if len(open_) == 1 else None

    def _settle_doubt(self, track: _Track, receipt: Any, status: str, now: float) -> ReceiptResult | None:
        """Give the in-doubt message's first id-less part this receipt's id, and apply it."""
        msg = track.msg
        part = _unidentified(msg)
        if part is None:
            return None
        try:
            keys = self._matchers[track.carrier].keys_for_receipt(receipt.message_id)
        except (MessageIdError, KeyError):
            return None
        ids = msg.carrier_ids
        if len(ids) <= part:
            ids.extend([None] * (part + 1 - len(ids)))
        ids[part] = receipt.message_id
        entry = self._add_part(track, part, receipt.message_id, keys)
        self._counts["settled_in_doubt"] += 1
        res = self._deliver(entry, receipt, status, now)
        return ReceiptResult(IN_DOUBT_SETTLED, msg, True, status, res.stale)


def _plain_digits(id: str) -> bool:
    """An id msgid reads as numeric and all digits (1–31 ASCII digits, blanks stripped)."""
    id = id.strip()
    return len(id) < 32 and id.isascii() and id.isdigit()


def _unidentified(msg: Message) -> int | None:
    """The first part that got no response (UNKNOWN, no carrier id), or None."""
    ids = msg.carrier_ids
    for i, s in enumerate(msg.part_status):
        if s == UNKNOWN and (i >= len(ids) or not ids[i]):
            return i
    return None
