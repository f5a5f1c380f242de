"""The fair scheduler: messages wait in their source number's queue until sent.

Theory of operation
-------------------
A *lane* is the FIFO of one (source number, priority).  Every non-empty lane is
in exactly one of two places:

* a *ready ring* (one deque per priority): it may be able to send now;
* the *wake heap* of ``(due, seq, lane)``: it waits for its number's limiter,
  the destination's limiter, a ``retry_at`` from ``try_send`` or its head's
  expiry, whichever comes first.  ``lane.wake == seq`` marks the one live
  entry; older entries are stale and skipped when they surface.

:meth:`Scheduler.pop_ready` first moves every lane that became due from the
heap to its ring, then serves the priority-1 ring and then the priority-0 ring
round robin: each visit sends at most the lane's head, and a lane that sent
goes to the back of its ring.  A sender with 100,000 queued messages thus
costs a sender with one message at most one visit per pass, and every ready
priority-1 head goes before any priority-0 head.  A lane whose head cannot go
is parked in the heap without being charged, so only its own queue waits.

The carrier limiter is not ours: ``try_send`` consults it (through the bind
pool) and answers with ``retry_at`` when the carrier is at its limit.

A lane that empties is deleted and an idle number's limiter entry disappears
once its bucket refills, so idle numbers keep no state.  The scheduler never
drops a message: items leave through ``try_send`` (taken), ``on_expired`` or
:meth:`Scheduler.remove_if`.  Pure code: time comes in as ``now``.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

from router.throttle import Gcra, LimitPolicy

__all__ = ["Schedulable", "Scheduler"]

#: Lane states kept in ``_Lane.wake`` besides a positive heap sequence number.
_READY = 0
_DEAD = -1

#: Lanes compact their list once this many consumed slots lead it.
_COMPACT_AT = 64


class Schedulable(Protocol):
    """What the scheduler reads from an item (router.model's message fits)."""

    source: str
    dest: str
    priority: int
    segments: int
    expires_at: float


T_item = TypeVar("T_item", bound=Schedulable)


class _Lane:
    """The FIFO of one (source, priority): a list consumed from ``head``.

    A list with a head index costs ~90 B for a one-message lane, where a deque
    starts at ~630 B; at 100,000 active numbers that is the difference.
    """

    __slots__ = ("blocked_until", "head", "items", "priority", "source", "wake")

    def __init__(self, source: str, priority: int, item: Schedulable) -> None:
        self.source = source
        self.priority = priority
        #: Queued items from ``head`` on; consumed slots hold None.
        self.items: list[Any] = [item]
        self.head = 0
        self.blocked_until = -math.inf
        self.wake = _READY


class Scheduler(Generic[T_item]):
    """Per-number queues served fairly under per-number and per-destination limits.

    ``source_limits(number) -> (segments per second, burst)``;
    ``destination_mps`` 0 turns the destination limiter off.
    Callbacks given to :meth:`pop_ready` may :meth:`push`; they must not call
    :meth:`pop_ready`, :meth:`remove_if` or :meth:`set_limits` (RuntimeError).
    """

    __slots__ = ("_busy", "_depth", "_dst", "_heap", "_lanes", "_now", "_rings", "_seq",
                 "_src")

    def __init__(
        self,
        source_limits: LimitPolicy,
        destination_mps: float = 0.0,
        destination_burst: int = 1,
    ) -> None:
        """Raises: ValueError naming destination_mps or destination_burst."""
        self._src = Gcra.per_key(source_limits)
        self._dst: Gcra | None = _destination_limiter(None, destination_mps, destination_burst)
        self._lanes: tuple[dict[str, _Lane], dict[str, _Lane]] = ({}, {})
        self._rings: tuple[deque[_Lane], deque[_Lane]] = (deque(), deque())
        self._heap: list[tuple[float, int, _Lane]] = []
        self._seq = 0
        self._depth = [0, 0]
        self._now = -math.inf
        self._busy = False

    # -- in ---------------------------------------------------------------

    def push(self, item: T_item, now: float) -> None:
        """Queue ``item`` behind its (source, priority) lane. O(1).

        Raises: ValueError naming ``priority`` (0 or 1) or ``segments`` (int >= 1).
        """
        priority = item.priority
        if priority != 0 and priority != 1:
            raise ValueError(f"priority must be 0 or 1, got {priority!r}")
        segments = item.segments
        if type(segments) is not int or segments < 1:
            raise ValueError(f"segments must be an integer >= 1, got {segments!r}")
        lanes = self._lanes[priority]
        source = item.source
        lane = lanes.get(source)
        if lane is None:
            lanes[source] = lane = _Lane(source, priority, item)
            self._rings[priority].append(lane)
        else:
            lane.items.append(item)
        self._depth[priority] += 1
        if now > self._now:
            self._now = now

    def push_or_send(self, item: T_item, now: float,
                     try_send: Callable[[T_item, float], float | None]) -> bool:
        """Hand ``item`` straight to ``try_send`` when nothing queued goes before it; else
        :meth:`push` it. True when ``try_send`` took it (its limiters are then charged).

        Straight through means: no lane is ready or due, its own lane is empty, it has
        not expired and its number's and destination's limiters conform, so a
        :meth:`pop_ready` now would hand out this item and nothing else. It costs a
        fraction of a push and a pass. When ``try_send`` answers a retry time the item
        is queued with its lane waiting until then; when it raises, the item is queued
        and the exception propagates.

        Raises: ValueError as :meth:`push`; RuntimeError when called from inside a
        :meth:`pop_ready` callback.
        """
        self._not_busy("push_or_send")
        priority = item.priority
        source = item.source
        heap = self._heap
        if ((priority != 0 and priority != 1) or self._rings[0] or self._rings[1]
                or (heap and heap[0][0] <= now) or source in self._lanes[priority]
                or item.expires_at <= now):
            self.push(item, now)
            return False
        dst = self._dst
        if self._src.conforms_at(source, now) > now or (dst is not None and dst.conforms_at(item.dest, now) > now):
            self.push(item, now)
            return False
        segments = item.segments
        if type(segments) is not int or segments < 1:
            raise ValueError(f"segments must be an integer >= 1, got {segments!r}")
        if now > self._now:
            self._now = now
        self._busy = True
        try:
            retry_at = try_send(item, now)
        except BaseException:
            self._busy = False
            self.push(item, now)
            raise
        self._busy = False
        if retry_at is None:
            self._src.acquire(source, segments, now)
            if dst is not None:
                dst.acquire(item.dest, segments, now)
            return True
        self.push(item, now)
        lane = self._lanes[priority][source]
        ring = self._rings[priority]
        if ring and ring[-1] is lane:
            ring.pop()
        lane.blocked_until = retry_at
        expires = item.expires_at
        self._park(lane, retry_at if retry_at < expires else expires)
        return False

    # -- out --------------------------------------------------------------

    def pop_ready(
        self,
        now: float,
        try_send: Callable[[T_item, float], float | None],
        on_expired: Callable[[T_item], None],
        limit: int = 1000,
    ) -> int:
        """Hand every item that may go at ``now`` to ``try_send``; return how many it took.

        ``try_send(item, now)`` returns None when it took the item (the source
        and destination limiters are then charged ``item.segments``) or the
        time to retry (nothing charged; the lane waits until then).  Items
        whose ``expires_at <= now`` leave through ``on_expired`` instead.  At
        most ``limit`` items are taken and ``limit`` expired per call; what is
        left is due at once (see :meth:`next_due`).  An exception from a
        callback propagates with the scheduler left consistent.

        Raises: RuntimeError when called from inside one of its own callbacks.
        """
        if self._busy:
            raise RuntimeError("pop_ready called from inside a scheduler callback")
        self._busy = True
        try:
            self._now = now
            self._wake_due(now)
            taken = self._serve(self._rings[1], now, try_send, on_expired, limit)
            if taken < limit:
                taken += self._serve(self._rings[0], now, try_send, on_expired, limit - taken)
            return taken
        finally:
            self._busy = False

    def _wake_due(self, now: float) -> None:
        heap, rings = self._heap, self._rings
        heappop = heapq.heappop
        while heap and heap[0][0] <= now:
            _, seq, lane = heappop(heap)
            if lane.wake == seq:
                lane.wake = _READY
                rings[lane.priority].append(lane)

    def _serve(self, ring: deque[_Lane], now: float, try_send: Callable[[T_item, float], float | None],
               on_expired: Callable[[T_item], None], limit: int) -> int:
        """Round robin over one ring. Kept in one function: this is the hot loop."""
        src, dst = self._src, self._dst
        src_conforms_at, src_acquire = src.conforms_at, src.acquire
        depth = self._depth
        park = self._park
        taken = expired = 0
        while ring and taken < limit:
            lane = ring.popleft()
            if lane.wake != _READY:
                continue                      # deleted by remove_if while queued here
            item = lane.items[lane.head]
            while item.expires_at <= now:
                if expired >= limit:
                    ring.appendleft(lane)     # budget spent: due again at once
                    return taken
                expired += 1
                gone = item
                item = self._drop_head(lane)
                try:
                    on_expired(gone)
                except BaseException:
                    self._restore(lane, ring)
                    raise
                if item is None:
                    break
            if item is None:
                continue
            source = lane.source
            wait = lane.blocked_until
            if wait <= now:
                wait = src_conforms_at(source, now)
                if wait <= now and dst is not None:
                    wait = dst.conforms_at(item.dest, now)
            if wait > now:
                expires = item.expires_at
                park(lane, wait if wait < expires else expires)
                continue
            try:
                retry_at = try_send(item, now)
            except BaseException:
                ring.appendleft(lane)
                raise
            if retry_at is not None:
                lane.blocked_until = retry_at
                expires = item.expires_at
                park(lane, retry_at if retry_at < expires else expires)
                continue
            segments = item.segments
            wait = src_acquire(source, segments, now)
            if dst is not None:
                dst.acquire(item.dest, segments, now)
            taken += 1
            depth[lane.priority] -= 1
            item = self._advance(lane)
            if item is None:
                continue
            if wait > now:                    # park now rather than revisit to learn it
                expires = item.expires_at
                park(lane, wait if wait < expires else expires)
            else:
                ring.append(lane)
        return taken

    def _drop_head(self, lane: _Lane) -> T_item | None:
        """Remove an expired head (the caller reports it); the new head or None."""
        self._depth[lane.priority] -= 1
        return self._advance(lane)

    def _advance(self, lane: _Lane) -> T_item | None:
        """Step past the head; delete the lane when empty. Returns the new head."""
        items = lane.items
        head = lane.head + 1
        if head == len(items):
            lane.wake = _DEAD
            del self._lanes[lane.priority][lane.source]
            return None
        if head >= _COMPACT_AT and head * 2 >= len(items):
            del items[:head]
            head = 0
        else:
            items[head - 1] = None            # let the sent item go
        lane.head = head
        following: T_item = items[head]
        return following

    def _park(self, lane: _Lane, due: float) -> None:
        self._seq = seq = self._seq + 1
        lane.wake = seq
        heapq.heappush(self._heap, (due, seq, lane))

    def _restore(self, lane: _Lane, ring: deque[_Lane]) -> None:
        """Put back a lane taken off its ring when a callback raised."""
        if lane.wake == _READY:
            ring.appendleft(lane)

    # -- timers and introspection -------------------------------------------

    def next_due(self) -> float | None:
        """When :meth:`pop_ready` next has work; None when nothing is queued.

        A value at or before the current time means "now": lanes are ready.
        O(log n) amortised (stale heap entries are dropped here).
        """
        if self._rings[1] or self._rings[0]:
            return self._now
        heap = self._heap
        while heap and heap[0][2].wake != heap[0][1]:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def __len__(self) -> int:
        return self._depth[0] + self._depth[1]

    def depth_by_priority(self) -> dict[int, int]:
        """Queued items per priority."""
        return {0: self._depth[0], 1: self._depth[1]}

    def top_sources(self, n: int) -> list[tuple[str, int]]:
        """The ``n`` numbers with the most queued items, deepest first. O(lanes)."""
        depth: dict[str, int] = {}
        for lanes in self._lanes:
            for source, lane in lanes.items():
                depth[source] = depth.get(source, 0) + len(lane.items) - lane.head
        return heapq.nsmallest(n, depth.items(), key=lambda kv: (-kv[1], kv[0]))

    # -- maintenance ----------------------------------------------------------

    def remove_if(self, predicate: Callable[[T_item], bool]) -> list[T_item]:
        """Take every queued item for which ``predicate`` holds out; return them. O(n).

        Raises: RuntimeError when called from inside a pop_ready callback.
        """
        self._not_busy("remove_if")
        removed: list[T_item] = []
        died = False
        for priority, lanes in enumerate(self._lanes):
            for source, lane in list(lanes.items()):
                keep: list[T_item] = []
                item: T_item
                for item in lane.items[lane.head:]:
                    (removed if predicate(item) else keep).append(item)
                gone = len(lane.items) - lane.head - len(keep)
                if not gone:
                    continue
                self._depth[priority] -= gone
                if keep:
                    lane.items, lane.head = keep, 0
                else:
                    lane.wake = _DEAD
                    del lanes[source]
                    died = True
        if died:
            self._heap = [e for e in self._heap if e[2].wake == e[1]]
            heapq.heapify(self._heap)
        return removed

    def set_limits(self, source_limits: LimitPolicy, destination_mps: float = 0.0,
                   destination_burst: int = 1) -> None:
        """Config reload: new limits, live limiter state and queues kept.

        Every waiting lane is made ready so it is re-judged under the new
        limits on the next :meth:`pop_ready` (a retry_at still holds).

        Raises: ValueError naming destination_mps or destination_burst;
        RuntimeError when called from inside a pop_ready callback.
        """
        self._not_busy("set_limits")
        dst = _destination_limiter(self._dst, destination_mps, destination_burst)
        self._src.set_policy(source_limits)
        self._dst = dst
        for _, seq, lane in self._heap:
            if lane.wake == seq:
                lane.wake = _READY
                self._rings[lane.priority].append(lane)
        self._heap = []

    def prune(self, now: float) -> int:
        """Drop limiter state of numbers and destinations refilled by ``now``. O(keys)."""
        pruned = self._src.prune(now)
        return pruned + (self._dst.prune(now) if self._dst is not None else 0)

    @property
    def source_limiter(self) -> Gcra:
        """The per-number limiter (read it; charging it is the scheduler's job)."""
        return self._src

    def _not_busy(self, what: str) -> None:
        if self._busy:
            raise RuntimeError(f"{what} called from inside a pop_ready callback")


def _destination_limiter(current: Gcra | None, mps: float, burst: int) -> Gcra | None:
    """The destination limiter for ``mps`` (0 = off), reusing ``current``'s state.

    Raises: ValueError naming destination_mps or destination_burst.
    """
    if isinstance(mps, bool) or not isinstance(mps, (int, float)) or not math.isfinite(mps) or mps < 0:
        raise ValueError(f"destination_mps must be a finite number >= 0, got {mps!r}")
    if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
        raise ValueError(f"destination_burst must be an integer >= 1, got {burst!r}")
    if mps == 0:
        return None
    if current is None:
        return Gcra(mps, burst)
    current.set_rate(mps, burst)
    return current
