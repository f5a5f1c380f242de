"""The opt-out list: which recipients refused messages from which scope.

Theory of operation
-------------------
Every submit asks "has this recipient opted out of this scope, or out of
everything?", and the answer is almost always no.  The list must answer that in
about a microsecond with ten million entries, in about 10 bytes per entry (a
Python set of ten million strings is ~1 GB).

* A recipient is E.164 digits, at most 15 of them and no leading zero, so it is
  an integer below 10**15 < 2**50.  It is stored as ``h = x * _MUL mod 2**64``:
  multiplying by an odd constant is a bijection on 64-bit integers (``x`` comes
  back as ``h * _MUL_INV``), and its top bits mix every digit of ``x``
  (Fibonacci hashing), so they spread sequential number ranges evenly.
* Each scope (and the every-scope list of STOPALL, scope :data:`ALL`) is a
  :class:`_HashBlocks`: the ``h`` values, cut by their top bits into blocks of
  ~32–128, each a sorted ``array('Q')``.  A lookup bisects one small block; an
  insert or delete moves at most a kilobyte.  Changes are applied in place, so
  there is no overlay to merge: a block is already the "small sorted run".
* In front of all scopes sits one bitmap indexed by the top bits of ``h``, with
  16–32 bits per entry (a one-hash Bloom filter over recipients).  A recipient
  whose bit is clear is on no list at all, which answers the common case with
  one byte read; a set bit (3–6 % of strangers) falls through to the exact
  blocks.  Opt-ins leave their bit set (a rare extra fall-through); the bitmap
  is rebuilt from the blocks whenever the entries outgrow it, as are the blocks
  split, so both costs are amortised over the entries that caused them.
* STOPALL then START in one scope re-subscribes that scope only: the pair goes
  into a small ``resubscribed`` map that overrides the every-scope entry.

The module is pure: no clock, no I/O.  The durable copy (the consent records)
lives in the store; :meth:`OptOutList.load` rebuilds the list from it at start.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from itertools import groupby, islice
from operator import itemgetter
from sys import getsizeof
from typing import Any

__all__ = ["ALL", "OptOutError", "OptOutList"]

#: The scope that stands for every scope (STOPALL). No sender or program can be
#: named "*": program names are [A-Za-z0-9_-], senders digits or names with a letter.
ALL = "*"

#: Odd 64-bit multiplier (2**64 / golden ratio) and its inverse modulo 2**64.
_MUL = 0x9E3779B97F4A7C15
_MASK = (1 << 64) - 1
_MUL_INV = pow(_MUL, -1, 1 << 64)
#: E.164 has at most 15 digits (ITU-T E.164 §6), so every recipient is below this.
_LIMIT = 10**15

#: Blocks are built ~64 entries full and split when the average passes 128.
_BUILD_AVG = 64
_SPLIT_AVG = 128
#: Filter bits per entry at least (at most twice that, sizes being powers of two):
#: 3-6 % of strangers then reach the blocks.
_FILTER_BITS_PER_ENTRY = 16
_FILTER_MIN_BITS = 1 << 16
#: Recipients validated and hashed per C-level pass while loading.
_LOAD_BATCH = 1 << 16


class OptOutError(ValueError):
    """A scope or recipient that cannot be on the list; the message names the field."""


def _number(recipient: object) -> int:
    """The integer of a recipient given as E.164 digits (`+` allowed) or as an int.

    Raises OptOutError naming `recipient` for anything else.
    """
    if type(recipient) is str:
        digits = recipient[1:] if recipient[:1] == "+" else recipient
        if digits.isdigit() and digits.isascii() and len(digits) <= 15 and digits[0] != "0":
            return int(digits)
    elif type(recipient) is int and 0 < recipient < _LIMIT:
        return recipient
    raise OptOutError(
        f"recipient must be E.164 digits (1-15, no leading 0), got {recipient!r:.40}"
    )


def _hash_checked(recipient: object) -> int:
    """The stored form of a recipient. Raises OptOutError naming `recipient`."""
    return (_number(recipient) * _MUL) & _MASK


def _hashes(recipients: list[Any]) -> Iterator[int]:
    """The stored forms of many recipients, validated and hashed by C-level `map`s.

    A bulk load spends its time here; per-element Python code would double it.
    Raises OptOutError naming the first malformed recipient.
    """
    try:  # str methods refuse a non-str with TypeError
        well_formed = (all(map(str.isdigit, recipients)) and all(map(str.isascii, recipients))
                       and max(map(len, recipients), default=0) <= 15
                       and "0" not in set(map(itemgetter(0), recipients)))
    except TypeError:
        well_formed = False
    if not well_formed:
        return map(_hash_checked, recipients)  # raises on the first bad one
    return map(_MASK.__and__, map(_MUL.__mul__, map(int, recipients)))


def _recipient(h: int) -> str:
    return str((h * _MUL_INV) & _MASK)


def _check_scope(scope: object) -> str:
    if type(scope) is not str or not scope:
        raise OptOutError(f"scope must be a non-empty string, got {scope!r}")
    return scope


def _depth(entries: int) -> int:
    """Top bits that pick a block, so that blocks hold about _BUILD_AVG entries."""
    return max(0, (entries // _BUILD_AVG).bit_length())


class _HashBlocks:
    """An exact set of 64-bit hashes: sorted `array('Q')` blocks picked by top bits."""

    __slots__ = ("blocks", "shift", "size")

    def __init__(self) -> None:
        self.blocks = [array("Q")]
        self.shift = 64
        self.size = 0

    @classmethod
    def build(cls, hashes: array[int], filt: bytearray, fshift: int) -> _HashBlocks:
        """A set of `hashes` (duplicates allowed), marking each in `filt` on the way.

        Hashes are dealt into their blocks, then each small block is sorted: no
        sort of the whole array, and no list of all the hashes as Python ints.
        """
        depth = _depth(len(hashes))
        shift = 64 - depth
        blocks = [array("Q") for _ in range(1 << depth)]
        for h in hashes:
            blocks[h >> shift].append(h)
            f = h >> fshift
            filt[f >> 3] |= 1 << (f & 7)
        table = cls()
        table.shift = shift
        table.blocks = [array("Q", sorted(set(b))) for b in blocks]
        table.size = sum(map(len, table.blocks))
        return table

    def __contains__(self, h: int) -> bool:
        block = self.blocks[h >> self.shift]
        i = bisect_left(block, h)
        return i < len(block) and block[i] == h

    def __iter__(self) -> Iterator[int]:
        for block in self.blocks:
            yield from block

    def add(self, h: int) -> bool:
        """Insert `h`; False if it was there already."""
        block = self.blocks[h >> self.shift]
        i = bisect_left(block, h)
        if i < len(block) and block[i] == h:
            return False
        block.insert(i, h)
        self.size += 1
        if self.size > _SPLIT_AVG * len(self.blocks):
            self._split()
        return True

    def discard(self, h: int) -> bool:
        """Remove `h`; False if it was not there. Blocks never merge back (opt-ins are rare)."""
        block = self.blocks[h >> self.shift]
        i = bisect_left(block, h)
        if i < len(block) and block[i] == h:
            del block[i]
            self.size -= 1
            return True
        return False

    def _split(self) -> None:
        """One more top bit: each block's halves are already sorted, cut at the bit."""
        self.shift -= 1
        bit = 1 << self.shift
        blocks: list[array[int]] = []
        for j, block in enumerate(self.blocks):
            cut = bisect_left(block, (2 * j + 1) * bit)
            blocks += (block[:cut], block[cut:])
        self.blocks = blocks


class OptOutList:
    """Opted-out (scope, recipient) pairs, STOPALL as scope :data:`ALL`.

    Scopes are opaque strings (a program name or a sender); recipients are E.164 digits
    with an optional `+`. Methods that store raise OptOutError for a malformed scope or
    recipient; lookups raise it for a recipient that is not a number below 10**15.
    """

    __slots__ = ("_all", "_entries", "_fcap", "_filter", "_fshift", "_resub", "_scopes")

    def __init__(self) -> None:
        self._scopes: dict[str, _HashBlocks] = {}
        self._all = _HashBlocks()
        #: recipient hash -> scopes re-subscribed after a STOPALL.
        self._resub: dict[int, set[str]] = {}
        self._entries = 0
        self._size_filter(0)

    @classmethod
    def load(
        cls,
        entries: Iterable[tuple[str, str]],
        resubscribed: Iterable[tuple[str, str]] = (),
    ) -> OptOutList:
        """A list holding `entries` (scope, recipient), scope ALL for STOPALL.

        `resubscribed` are the (scope, recipient) pairs that sent START to that scope
        after a STOPALL (see :meth:`resubscribed`). Building sorts block by block, so
        ten million entries take seconds and little more memory than the result; it is
        fastest with the entries grouped by scope (`ORDER BY scope`), any order works.
        Raises OptOutError naming the field of the first malformed pair.
        """
        grouped: dict[str, array[int]] = {}
        for scope, rows in groupby(entries, key=itemgetter(0)):
            hashes = grouped.get(scope)
            if hashes is None:
                hashes = grouped[_check_scope(scope)] = array("Q")
            recipients = map(itemgetter(1), rows)
            # Bounded batches: a streamed load never holds all the recipient strings.
            while batch := list(islice(recipients, _LOAD_BATCH)):
                hashes.extend(_hashes(batch))
        out = cls()
        out._size_filter(sum(map(len, grouped.values())))
        everyone = grouped.pop(ALL, None)
        build = _HashBlocks.build
        if everyone is not None:
            out._all = build(everyone, out._filter, out._fshift)
        out._scopes = {s: build(hs, out._filter, out._fshift) for s, hs in grouped.items()}
        out._entries = out._all.size + sum(t.size for t in out._scopes.values())
        for scope, recipient in resubscribed:
            out._resub.setdefault(_hash_checked(recipient), set()).add(_check_scope(scope))
        return out

    def __len__(self) -> int:
        """Stored pairs, STOPALL entries included (re-subscriptions are not entries)."""
        return self._entries

    def __iter__(self) -> Iterator[tuple[str, str]]:
        """Every stored (scope, recipient), STOPALL entries with scope ALL; no order."""
        for h in self._all:
            yield ALL, _recipient(h)
        for scope, table in self._scopes.items():
            for h in table:
                yield scope, _recipient(h)

    def nbytes(self) -> int:
        """Bytes held by the list: blocks, their lists, the bitmap and the containers.

        Scope strings, shared with the config, are not counted; nor are the small sets
        of re-subscribed scopes beyond their dict.
        """
        tables = (self._all, *self._scopes.values())
        blocks = sum(getsizeof(b) for t in tables for b in t.blocks)
        lists = sum(getsizeof(t.blocks) + getsizeof(t) for t in tables)
        return (blocks + lists + getsizeof(self._filter) + getsizeof(self._scopes)
                + getsizeof(self._resub))

    def resubscribed(self) -> Iterator[tuple[str, str]]:
        """The (scope, recipient) pairs that START re-enabled despite a STOPALL."""
        for h, scopes in self._resub.items():
            for scope in scopes:
                yield scope, _recipient(h)

    def is_opted_out(self, scope: str, recipient: str) -> bool:
        """Whether `recipient` may not get messages from `scope`: the check on every submit.

        A recipient on no list costs one bitmap probe (:meth:`blocked_by` inlined).
        Raises OptOutError for a recipient that is not a number below 10**15.
        """
        try:
            x = int(recipient)
        except (TypeError, ValueError):
            raise OptOutError(f"recipient must be E.164 digits, got {recipient!r:.40}") from None
        if not 0 < x < _LIMIT:
            raise OptOutError(f"recipient must be E.164 digits, got {recipient!r:.40}")
        h = (x * _MUL) & _MASK
        f = h >> self._fshift
        if not self._filter[f >> 3] >> (f & 7) & 1:
            return False
        return self._exact(scope, h) is not None

    def blocked_by(self, scope: str, recipient: str) -> str | None:
        """`scope` if the recipient opted out of it, ALL if a STOPALL blocks it, else None.

        Raises OptOutError for a malformed recipient.
        """
        return self._exact(scope, _hash_checked(recipient))

    def _exact(self, scope: str, h: int) -> str | None:
        table = self._scopes.get(scope)
        if table is not None and h in table:
            return scope
        if h in self._all and scope not in self._resub.get(h, ()):
            return ALL
        return None

    def opt_out(self, scope: str, recipient: str) -> bool:
        """Opt `recipient` out of `scope` (ALL: of every scope, clearing re-subscriptions).

        Returns whether that changed an answer. Raises OptOutError.
        """
        h = _hash_checked(recipient)
        if _check_scope(scope) == ALL:
            added = self._all.add(h)
            changed = self._resub.pop(h, None) is not None
        else:
            scopes = self._resub.get(h)
            changed = scopes is not None and scope in scopes
            if changed:
                self._drop_resub(h, scope)
            table = self._scopes.get(scope)
            if table is None:
                table = self._scopes[scope] = _HashBlocks()
            added = table.add(h)
        if added:
            self._entries += 1
            self._mark(h)
        return added or changed

    def opt_in(self, scope: str, recipient: str) -> bool:
        """Re-subscribe `recipient` to `scope` only (ALL: undo a STOPALL only).

        After a STOPALL, START to one scope re-enables that scope and no other (CTIA:
        the recipient asked that sender for messages again). Returns whether that changed
        an answer. Raises OptOutError.
        """
        h = _hash_checked(recipient)
        if _check_scope(scope) == ALL:
            removed = self._all.discard(h)
            self._entries -= removed
            return self._resub.pop(h, None) is not None or removed
        table = self._scopes.get(scope)
        changed = table is not None and table.discard(h)
        self._entries -= changed
        if h in self._all:
            scopes = self._resub.setdefault(h, set())
            changed = changed or scope not in scopes
            scopes.add(scope)
        return changed

    def _drop_resub(self, h: int, scope: str) -> None:
        scopes = self._resub[h]
        scopes.discard(scope)
        if not scopes:
            del self._resub[h]

    def _mark(self, h: int) -> None:
        """Set `h`'s filter bit; rebuild the filter when the entries outgrow it."""
        if self._entries > self._fcap:
            self._rebuild_filter()
            return
        f = h >> self._fshift
        self._filter[f >> 3] |= 1 << (f & 7)

    def _size_filter(self, entries: int) -> None:
        bits = max(_FILTER_MIN_BITS, entries * _FILTER_BITS_PER_ENTRY)
        depth = (bits - 1).bit_length()
        self._fshift = 64 - depth
        self._fcap = (1 << depth) // _FILTER_BITS_PER_ENTRY
        self._filter = bytearray(1 << max(0, depth - 3))

    def _rebuild_filter(self) -> None:
        """A fresh filter from the blocks: drops the bits of opted-in pairs too."""
        self._size_filter(self._entries)
        filt, shift = self._filter, self._fshift
        for table in (self._all, *self._scopes.values()):
            for block in table.blocks:
                for h in block:
                    f = h >> shift
                    filt[f >> 3] |= 1 << (f & 7)
