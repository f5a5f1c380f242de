"""Outstanding requests of one session: sequence numbers, window, deadlines, tombstones.

Theory of operation
-------------------
Every request we send gets an ``Outstanding`` entry in a dict keyed by sequence
number, so matching a response is one dict lookup.  Response deadlines are
``now + timeout`` with one constant timeout, so they are reached in send order:
a deque in send order is already sorted by deadline.  Settling a request only
removes it from the dict; its deque entry is dropped lazily when it reaches the
head (an entry is live while ``entries[seq] is entry``), which ``next_deadline``
does after every call into the session.  A request that is never answered
holds the head until it times out, and everything answered behind it piles up:
when the deque grows past twice the live entries (plus slack) it is rebuilt
from its live entries, in order.  That is O(n) once per n additions, so every
call stays O(1) amortised and memory stays proportional to what is in flight.

A request that times out leaves a tombstone (FIFO, bounded): carriers answer
late, and a late response must settle the message instead of being reported as
an unknown sequence.  New sequence numbers skip both live entries and
tombstones, so a late response can never be mistaken for the answer to a newer
request.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import Any

from adapters.smpp.constants import RESPONSE_BIT

#: §5.1.2.4 sequence numbers run 0x00000001-0x7FFFFFFF; 0 is never assigned.
MAX_SEQUENCE = 0x7FFFFFFF


class Outstanding:
    """One request on the wire: its sequence number, the PDU, its deadline."""

    __slots__ = ("seq", "request", "deadline", "windowed")

    def __init__(self, seq: int, request: Any, deadline: float, windowed: bool) -> None:
        self.seq = seq
        self.request = request
        self.deadline = deadline
        self.windowed = windowed


class InFlight:
    """Bookkeeping for the requests a session has sent and not yet seen answered."""

    __slots__ = ("entries", "windowed", "_next_seq", "_deadlines", "_tombstones", "_max_tombstones")

    def __init__(self, first_sequence: int, tombstones: int) -> None:
        """Raises ValueError naming the argument when it is out of range."""
        if not 1 <= first_sequence <= MAX_SEQUENCE:
            raise ValueError(f"first_sequence must be 1..0x7FFFFFFF, got {first_sequence!r}")
        if tombstones < 0:
            raise ValueError(f"tombstones must be >= 0, got {tombstones!r}")
        #: seq -> live entry; read directly by the session on the hot path.
        self.entries: dict[int, Outstanding] = {}
        #: how many live entries count against the window.
        self.windowed = 0
        self._next_seq = first_sequence
        self._deadlines: deque[Outstanding] = deque()
        self._tombstones: OrderedDict[int, Any] = OrderedDict()
        self._max_tombstones = tombstones

    def peek_sequence(self) -> int:
        """The sequence number the next ``add`` must use: never 0, never in use."""
        seq = self._next_seq
        entries = self.entries
        tombstones = self._tombstones
        # Bounded: entries + tombstones are far fewer than 2**31 numbers.
        while seq in entries or seq in tombstones:
            seq = seq + 1 if seq < MAX_SEQUENCE else 1
        self._next_seq = seq
        return seq

    def add(self, seq: int, request: Any, deadline: float, windowed: bool, timed: bool = True) -> Outstanding:
        """Record ``request`` under ``seq`` (from ``peek_sequence``).

        ``timed=False`` keeps the entry out of the deadline deque, for requests
        whose timeout differs from the response timeout (bind).
        """
        entry = Outstanding(seq, request, deadline, windowed)
        self.entries[seq] = entry
        if windowed:
            self.windowed += 1
        if timed:
            deadlines = self._deadlines
            deadlines.append(entry)
            if len(deadlines) > 2 * len(self.entries) + 64:
                self._compact()  # settled entries are dropped lazily; keep the deque bounded
        self._next_seq = seq + 1 if seq < MAX_SEQUENCE else 1
        return entry

    def add_windowed(self, seq: int, request: Any, deadline: float) -> None:
        """``add(seq, request, deadline, True)`` for traffic, the hot path: one call, no branches taken."""
        entry = Outstanding(seq, request, deadline, True)
        entries = self.entries
        entries[seq] = entry
        self.windowed += 1
        deadlines = self._deadlines
        deadlines.append(entry)
        if len(deadlines) > 2 * len(entries) + 64:
            self._compact()
        self._next_seq = seq + 1 if seq < MAX_SEQUENCE else 1

    def settle_response(self, seq: int, command_id: int) -> Outstanding | None:
        """Settle and return the windowed entry that response ``command_id`` under ``seq`` answers.

        None, with nothing changed, when ``seq`` is not live, its request is
        not windowed, or ``command_id`` is not that request's response
        (generic_nack included): the caller's slow path decides those.
        """
        entry = self.entries.get(seq)
        if entry is None or not entry.windowed or command_id != entry.request.command_id | RESPONSE_BIT:
            return None
        del self.entries[seq]
        self.windowed -= 1
        return entry

    def skip(self, seq: int) -> None:
        """Mark ``seq`` (from ``peek_sequence``) used by a request nothing answers."""
        self._next_seq = seq + 1 if seq < MAX_SEQUENCE else 1

    def settle(self, entry: Outstanding) -> None:
        """Forget a live entry (answered, or timed out)."""
        del self.entries[entry.seq]
        if entry.windowed:
            self.windowed -= 1

    def pop_tombstone(self, seq: int) -> Any:
        """The timed-out request sent as ``seq``, removed; None when there is none."""
        return self._tombstones.pop(seq, None)

    def next_deadline(self) -> float | None:
        """The earliest response deadline of a live timed entry."""
        deadlines = self._deadlines
        if not deadlines:
            return None
        head = deadlines[0]
        if self.entries.get(head.seq) is head:
            return head.deadline
        self._prune()
        return deadlines[0].deadline if deadlines else None

    def expire(self, now: float) -> list[Outstanding]:
        """Remove and return the live entries whose deadline is ``<= now``, oldest first.

        Each leaves a tombstone (the oldest tombstones are forgotten first).
        """
        expired: list[Outstanding] = []
        deadlines = self._deadlines
        entries = self.entries
        while deadlines and deadlines[0].deadline <= now:
            entry = deadlines.popleft()
            if entries.get(entry.seq) is not entry:
                continue
            self.settle(entry)
            self.bury(entry)
            expired.append(entry)
        return expired

    def bury(self, entry: Outstanding) -> None:
        """Keep a tombstone for a settled-by-timeout ``entry``."""
        if self._max_tombstones:
            self._tombstones[entry.seq] = entry.request
            if len(self._tombstones) > self._max_tombstones:
                self._tombstones.popitem(last=False)

    def snapshot(self) -> list[tuple[int, Any]]:
        """Every live (seq, request), in send order."""
        return [(seq, entry.request) for seq, entry in self.entries.items()]

    @property
    def tombstone_count(self) -> int:
        """How many timed-out sequence numbers are remembered."""
        return len(self._tombstones)

    def _compact(self) -> None:
        # Keeps send order, so the deque stays sorted by deadline.
        entries = self.entries
        self._deadlines = deque(e for e in self._deadlines if entries.get(e.seq) is e)

    def _prune(self) -> None:
        deadlines = self._deadlines
        entries = self.entries
        while deadlines and entries.get(deadlines[0].seq) is not deadlines[0]:
            deadlines.popleft()
