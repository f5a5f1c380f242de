"""Receipts waiting for their submit_sm_resp: bounded in time and in count.

A carrier may send the receipt before the response that names the id (SMPP-NOTES,
"Delivery receipts"), so an unmatched receipt is held for a while and matched when the
response comes. Held receipts are indexed by the same ``(carrier, key)`` pairs the
correlator looks receipts up under, and by ``(carrier, source, destination)`` so a message
that goes in doubt can be settled by a receipt that came first.

Every held receipt leaves: matched (``take_*``), after ``hold_s`` (``expire``), or evicted
oldest first when more than ``hold_max`` are held. The last two make it an *orphan*, which
the caller counts and keeps for the record. Arrival order is time order, so one deque
serves as the deadline queue; taken receipts are marked dead and skipped when they reach
its front.
"""

from __future__ import annotations

from collections import deque
from typing import Any

#: (carrier, normalised id key) — as in the correlator's index.
Key = tuple[str, str]
#: (carrier, receipt source_addr digits, receipt destination_addr digits).
AddrKey = tuple[str, str, str]


class Held:
    """One held receipt with what was worked out from it on arrival."""

    __slots__ = ("addr", "at", "carrier", "keys", "live", "receipt", "seq", "status")

    def __init__(
        self, carrier: str, receipt: Any, status: str, keys: tuple[str, ...], addr: AddrKey, at: float
    ) -> None:
        self.carrier = carrier
        self.receipt = receipt
        self.status = status
        self.keys = keys
        self.addr = addr
        self.at = at
        self.seq = 0  # arrival number, set when held
        self.live = True


class HeldReceipts:
    """The hold: add, take by id key or address, expire by time, evict by count.

    Raises:
        ValueError: ``hold_s`` is negative or not a number, or ``hold_max`` < 1.
    """

    __slots__ = ("_by_addr", "_by_key", "_live", "_order", "_seq", "hold_max", "hold_s")

    def __init__(self, hold_s: float, hold_max: int) -> None:
        if not hold_s >= 0:  # also refuses NaN
            raise ValueError(f"hold_s: {hold_s!r} is not a non-negative number of seconds")
        if hold_max < 1:
            raise ValueError(f"hold_max: {hold_max!r} is less than 1")
        self.hold_s = hold_s
        self.hold_max = hold_max
        self._order: deque[Held] = deque()
        self._by_key: dict[Key, list[Held]] = {}
        self._by_addr: dict[AddrKey, list[Held]] = {}
        self._live = 0
        self._seq = 0

    def __len__(self) -> int:
        return self._live

    def add(self, held: Held) -> list[Held]:
        """Hold a receipt; returns the receipts evicted to stay within ``hold_max``."""
        carrier = held.carrier
        self._seq += 1
        held.seq = self._seq
        for key in held.keys:
            self._by_key.setdefault((carrier, key), []).append(held)
        self._by_addr.setdefault(held.addr, []).append(held)
        self._order.append(held)
        self._live += 1
        evicted = []
        while self._live > self.hold_max:
            evicted.append(self._pop_oldest())
        return evicted

    def take_for_keys(self, carrier: str, keys: tuple[str, ...]) -> list[Held]:
        """Remove and return the receipts held under any of ``keys``, in arrival order."""
        found: list[Held] = []
        by_key = self._by_key
        for key in keys:
            lst = by_key.get((carrier, key))
            if lst:
                found.extend(h for h in lst if h not in found)
        for h in found:
            self._remove(h)
        found.sort(key=lambda h: h.seq)
        return found

    def take_for_addr(self, addr: AddrKey) -> list[Held]:
        """Remove and return the receipts held with these addresses, in arrival order."""
        found = list(self._by_addr.get(addr, ()))
        for h in found:
            self._remove(h)
        return found

    def expire(self, now: float) -> list[Held]:
        """Remove and return the receipts held ``hold_s`` or longer (orphans now)."""
        out = []
        order = self._order
        limit = now - self.hold_s
        while order and (not order[0].live or order[0].at <= limit):
            held = order.popleft()
            if held.live:
                self._unindex(held)
                out.append(held)
        return out

    def next_due(self) -> float | None:
        """When the oldest held receipt becomes an orphan, or None when none is held."""
        order = self._order
        while order and not order[0].live:
            order.popleft()
        return order[0].at + self.hold_s if order else None

    # -- internals ---------------------------------------------------------------------

    def _pop_oldest(self) -> Held:
        order = self._order
        while True:
            held = order.popleft()
            if held.live:
                self._unindex(held)
                return held

    def _remove(self, held: Held) -> None:
        """Unindex a taken receipt; its deque slot is dropped when it reaches the front."""
        self._unindex(held)
        order = self._order
        while order and not order[0].live:
            order.popleft()

    def _unindex(self, held: Held) -> None:
        held.live = False
        self._live -= 1
        carrier = held.carrier
        for key in held.keys:
            _discard(self._by_key, (carrier, key), held)
        _discard(self._by_addr, held.addr, held)


def _discard(index: dict[Any, list[Held]], key: Any, held: Held) -> None:
    lst = index.get(key)
    if lst is None:
        return
    try:
        lst.remove(held)
    except ValueError:
        return
    if not lst:
        del index[key]
