"""Deadlines for correlation entries: deques per span, a heap for the rest, lazy deletion.

Most deadlines are "now + span" for a handful of spans (each carrier's receipt timeout,
the final-keep time, the hold time) and ``now`` only moves forward, so per span they arrive
in order: a deque per span is a heap with O(1) push and pop. A deadline that would break a
deque's order (a message loaded from the store at start, a clock that stepped back) goes to
one heap instead, so order is never assumed where it does not hold.

Entries are never removed in place. Each owner carries a ``token`` that it bumps whenever
its deadline changes or it is forgotten; an entry whose token no longer matches is stale
and is dropped when it reaches the front (lazy deletion). Memory stays bounded because
every owner has at most one live entry and stale ones leave as their time passes.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterator
from itertools import count
from typing import Protocol


class Timed(Protocol):
    """Anything with a deadline token (bumped to cancel the pending deadline)."""

    token: int


# (deadline, tie-breaker, owner, token at push time)
_Entry = tuple[float, int, Timed, int]


class DeadlineQueue:
    """Deadlines of ``Timed`` owners, popped in time order once due.

    Pure: time is passed in. ``push`` is O(1) for in-order deadlines of a known span,
    O(log n) otherwise; ``pop_due`` and ``next_due`` are amortised O(1) per entry.
    """

    __slots__ = ("_deques", "_heap", "_seq")

    def __init__(self) -> None:
        self._deques: dict[float, deque[_Entry]] = {}
        self._heap: list[_Entry] = []
        self._seq = count()

    def push(self, owner: Timed, deadline: float, span: float) -> None:
        """Arm ``owner`` at ``deadline`` (``span`` = its distance from now, the deque key).

        The caller bumps ``owner.token`` first if an earlier deadline must be cancelled.
        """
        entry = (deadline, next(self._seq), owner, owner.token)
        dq = self._deques.get(span)
        if dq is None:
            dq = self._deques[span] = deque()
        if not dq or dq[-1][0] <= deadline:
            dq.append(entry)
        else:
            heapq.heappush(self._heap, entry)

    def _heads(self) -> Iterator[tuple[float, deque[_Entry] | None]]:
        for dq in self._deques.values():
            while dq and dq[0][2].token != dq[0][3]:
                dq.popleft()
            if dq:
                yield dq[0][0], dq
        heap = self._heap
        while heap and heap[0][2].token != heap[0][3]:
            heapq.heappop(heap)
        if heap:
            yield heap[0][0], None

    def next_due(self) -> float | None:
        """The earliest live deadline, or None when nothing is armed."""
        best: float | None = None
        for deadline, _ in self._heads():
            if best is None or deadline < best:
                best = deadline
        return best

    def pop_due(self, now: float) -> Iterator[Timed]:
        """Yield every live owner whose deadline is at or before ``now``, earliest first.

        Popping bumps the owner's token, so the spent entry can never fire again; the
        caller re-arms it with ``push`` or lets it go. Safe to push while iterating.
        """
        while True:
            best: tuple[float, deque[_Entry] | None] | None = None
            for head in self._heads():
                if best is None or head[0] < best[0]:
                    best = head
            if best is None or best[0] > now:
                return
            dq = best[1]
            entry = dq.popleft() if dq is not None else heapq.heappop(self._heap)
            owner = entry[2]
            owner.token += 1  # this entry is spent; a re-arm pushes a new one
            yield owner

    def __len__(self) -> int:
        """Entries held, stale ones included (for memory accounting in tests)."""
        return sum(len(dq) for dq in self._deques.values()) + len(self._heap)

    def drop_empty(self) -> None:
        """Forget deques of spans no longer in use (after a config reload)."""
        for span in [s for s, dq in self._deques.items() if not dq]:
            del self._deques[span]
