"""The fair scheduler on a manual clock."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import count

import pytest

from router.scheduler import Scheduler

_ids = count()


@dataclass(eq=False)
class Msg:
    source: str
    dest: str = "447700900000"
    priority: int = 0
    segments: int = 1
    expires_at: float = math.inf
    id: int = field(default_factory=lambda: next(_ids))


def one_per_second(number: str) -> tuple[float, int]:
    return 1.0, 1


def unlimited(number: str) -> tuple[float, int]:
    return 1e9, 1_000_000


class Sink:
    """try_send / on_expired that record what they saw."""

    def __init__(self) -> None:
        self.sent: list[tuple[float, Msg]] = []
        self.expired: list[Msg] = []
        self.refuse: dict[str, float] = {}          # source -> retry_at

    def try_send(self, item: Msg, now: float) -> float | None:
        retry_at = self.refuse.get(item.source)
        if retry_at is not None and retry_at > now:
            return retry_at
        self.sent.append((now, item))
        return None

    def on_expired(self, item: Msg) -> None:
        self.expired.append(item)

    def pop(self, s: Scheduler[Msg], now: float, limit: int = 1000) -> int:
        return s.pop_ready(now, self.try_send, self.on_expired, limit)


def test_an_idle_scheduler_has_nothing_due() -> None:
    s: Scheduler[Msg] = Scheduler(one_per_second)
    assert s.next_due() is None and len(s) == 0
    assert Sink().pop(s, 0.0) == 0


def test_one_number_is_paced_and_charged_by_segments() -> None:
    s: Scheduler[Msg] = Scheduler(one_per_second)
    sink = Sink()
    msgs = [Msg("12025550100", segments=n) for n in (3, 1, 1)]
    for m in msgs:
        s.push(m, 0.0)
    assert s.next_due() == 0.0
    assert sink.pop(s, 0.0) == 1
    assert s.next_due() == 3.0                       # 3 parts went at once: 3 s of debt
    assert sink.pop(s, 2.9) == 0
    assert sink.pop(s, 3.0) == 1
    assert s.next_due() == 4.0
    assert sink.pop(s, 4.0) == 1
    assert [m for _, m in sink.sent] == msgs
    assert [t for t, _ in sink.sent] == [0.0, 3.0, 4.0]
    assert s.next_due() is None and len(s) == 0


def test_cold_senders_are_not_starved_by_a_hot_one() -> None:
    s: Scheduler[Msg] = Scheduler(unlimited)
    sink = Sink()
    for _ in range(100_000):
        s.push(Msg("hot"), 0.0)
    cold = [Msg(f"1202555{i:04d}") for i in range(1000)]
    for m in cold:
        s.push(m, 0.0)
    # One pass visits each lane once: the hot number sends one, each cold one.
    assert sink.pop(s, 0.0, limit=1001) == 1001
    assert {m.id for _, m in sink.sent} >= {m.id for m in cold}
    assert sum(1 for _, m in sink.sent if m.source == "hot") == 1
    assert s.top_sources(2) == [("hot", 99_999)]


def test_cold_senders_go_first_when_the_hot_one_is_limited() -> None:
    s: Scheduler[Msg] = Scheduler(one_per_second)
    sink = Sink()
    for _ in range(100_000):
        s.push(Msg("hot"), 0.0)
    cold = [Msg(f"1202555{i:04d}") for i in range(1000)]
    for m in cold:
        s.push(m, 0.0)
    assert sink.pop(s, 0.0, limit=10_000) == 1001
    assert s.next_due() == 1.0
    assert len(s) == 99_999


def test_every_ready_priority_one_head_goes_before_any_priority_zero_head() -> None:
    s: Scheduler[Msg] = Scheduler(unlimited)
    sink = Sink()
    for i in range(50):
        s.push(Msg(f"n{i}", priority=0), 0.0)
        s.push(Msg(f"n{i}", priority=1), 0.0)
        s.push(Msg(f"p{i}", priority=1), 0.0)
    assert s.depth_by_priority() == {0: 50, 1: 100}
    assert sink.pop(s, 0.0) == 150
    priorities = [m.priority for _, m in sink.sent]
    assert priorities == [1] * 100 + [0] * 50


def test_a_limited_number_sends_priority_one_first() -> None:
    s: Scheduler[Msg] = Scheduler(one_per_second)
    sink = Sink()
    low = Msg("n", priority=0)
    high = Msg("n", priority=1)
    s.push(low, 0.0)
    s.push(high, 0.5)
    sink.pop(s, 1.0)
    sink.pop(s, 2.0)
    assert [m for _, m in sink.sent] == [high, low]


def test_order_is_kept_per_source_destination_and_priority() -> None:
    s: Scheduler[Msg] = Scheduler(lambda n: (5.0, 2))
    sink = Sink()
    pushed = [Msg(f"s{i % 7}", dest=f"d{i % 3}", priority=i % 2, segments=1 + i % 3)
              for i in range(600)]
    for m in pushed:
        s.push(m, 0.0)
    now = 0.0
    while len(s):
        now += 0.05
        sink.pop(s, now)
    assert len(sink.sent) == 600
    for key in {(m.source, m.dest, m.priority) for m in pushed}:
        want = [m.id for m in pushed if (m.source, m.dest, m.priority) == key]
        got = [m.id for _, m in sink.sent if (m.source, m.dest, m.priority) == key]
        assert got == want


def test_expired_items_leave_through_on_expired_and_are_never_sent() -> None:
    s: Scheduler[Msg] = Scheduler(one_per_second)
    sink = Sink()
    first = Msg("n")
    stale = [Msg("n", expires_at=1.5), Msg("n", expires_at=1.5)]
    last = Msg("n", expires_at=100.0)
    for m in [first, *stale, last]:
        s.push(m, 0.0)
    sink.pop(s, 0.0)
    assert s.next_due() == 1.0
    sink.pop(s, 1.0)                                 # the first stale one goes in time
    assert s.next_due() == 1.5                       # its follower expires before 2.0
    sink.pop(s, 1.5)
    assert sink.expired == stale[1:]
    assert [m for _, m in sink.sent] == [first, stale[0]]
    assert s.next_due() == 2.0
    sink.pop(s, 2.0)
    assert [m for _, m in sink.sent] == [first, stale[0], last]
    assert len(s) == 0 and s.depth_by_priority() == {0: 0, 1: 0}


def test_an_item_expiring_while_blocked_by_retry_at_is_expired_on_time() -> None:
    s: Scheduler[Msg] = Scheduler(unlimited)
    sink = Sink()
    m = Msg("n", expires_at=5.0)
    s.push(m, 0.0)
    sink.refuse["n"] = 60.0
    sink.pop(s, 0.0)
    assert s.next_due() == 5.0
    sink.pop(s, 5.0)
    assert sink.expired == [m] and not sink.sent and len(s) == 0


def test_retry_at_blocks_only_that_numbers_queue() -> None:
    s: Scheduler[Msg] = Scheduler(unlimited)
    sink = Sink()
    sink.refuse["blocked"] = 10.0
    blocked = [Msg("blocked"), Msg("blocked")]
    others = [Msg("free"), Msg("free"), Msg("other")]
    for m in blocked + others:
        s.push(m, 0.0)
    assert sink.pop(s, 0.0) == 3
    assert {m.id for _, m in sink.sent} == {m.id for m in others}
    assert s.next_due() == 10.0 and len(s) == 2
    assert sink.pop(s, 9.99) == 0
    assert sink.pop(s, 10.0) == 2
    assert [m for _, m in sink.sent][3:] == blocked


def test_refusal_charges_no_limiter() -> None:
    s: Scheduler[Msg] = Scheduler(one_per_second)
    sink = Sink()
    sink.refuse["n"] = 0.5
    s.push(Msg("n", segments=3), 0.0)
    sink.pop(s, 0.0)
    assert s.source_limiter.tat("n") is None
    sink.pop(s, 0.5)
    assert len(sink.sent) == 1 and s.source_limiter.tat("n") == 3.5


def test_destination_limiter_paces_one_destination_across_sources() -> None:
    s: Scheduler[Msg] = Scheduler(unlimited, destination_mps=1.0, destination_burst=1)
    sink = Sink()
    for i in range(3):
        s.push(Msg(f"s{i}", dest="447700900001"), 0.0)
    s.push(Msg("s9", dest="447700900002"), 0.0)
    assert sink.pop(s, 0.0) == 2                     # one per destination
    assert s.next_due() == 1.0
    assert sink.pop(s, 1.0) == 1
    assert sink.pop(s, 1.5) == 0
    assert sink.pop(s, 2.0) == 1
    times = [t for t, m in sink.sent if m.dest == "447700900001"]
    assert times == [0.0, 1.0, 2.0]


def test_next_due_is_the_earliest_waiting_lane() -> None:
    s: Scheduler[Msg] = Scheduler(lambda n: (1.0 / int(n), 1))
    sink = Sink()
    for n in ("5", "2", "9"):
        s.push(Msg(n), 0.0)
        s.push(Msg(n), 0.0)
    sink.pop(s, 0.0)
    assert s.next_due() == 2.0
    sink.pop(s, 2.0)
    assert s.next_due() == 5.0
    s.push(Msg("7"), 3.0)
    assert s.next_due() == 3.0                       # a new number is ready at once


def test_limit_bounds_one_call_and_leaves_the_rest_due_now() -> None:
    s: Scheduler[Msg] = Scheduler(unlimited)
    sink = Sink()
    for i in range(25):
        s.push(Msg(f"n{i}"), 0.0)
    assert sink.pop(s, 1.0, limit=10) == 10
    assert s.next_due() == 1.0
    assert sink.pop(s, 1.0, limit=10) == 10
    assert sink.pop(s, 1.0, limit=10) == 5


def test_expiry_work_per_call_is_bounded_too() -> None:
    s: Scheduler[Msg] = Scheduler(unlimited)
    sink = Sink()
    for _ in range(25):
        s.push(Msg("n", expires_at=1.0), 0.0)
    assert sink.pop(s, 2.0, limit=10) == 0
    assert len(sink.expired) == 10 and s.next_due() == 2.0
    sink.pop(s, 2.0, limit=10)
    sink.pop(s, 2.0, limit=10)
    assert len(sink.expired) == 25 and len(s) == 0 and s.next_due() is None


def test_remove_if_takes_items_out_and_keeps_the_rest_flowing() -> None:
    s: Scheduler[Msg] = Scheduler(one_per_second)
    sink = Sink()
    keep = [Msg("a", dest="1"), Msg("a", dest="3")]
    drop = [Msg("a", dest="2"), Msg("b", dest="2", priority=1), Msg("b", dest="2")]
    for m in (keep[0], drop[0], drop[1], keep[1], drop[2]):
        s.push(m, 0.0)
    sink.pop(s, 0.0)                                  # b -> dest 2 (p1), a -> dest 1
    removed = s.remove_if(lambda m: m.dest == "2")
    assert {m.id for m in removed} == {drop[0].id, drop[2].id}
    assert len(s) == 1 and s.depth_by_priority() == {0: 1, 1: 0}
    assert s.next_due() == 1.0
    sink.pop(s, 1.0)
    assert [m for _, m in sink.sent] == [drop[1], keep[0], keep[1]]
    assert s.next_due() is None


def test_remove_if_of_a_waiting_lane_clears_its_timer() -> None:
    s: Scheduler[Msg] = Scheduler(one_per_second)
    sink = Sink()
    s.push(Msg("a"), 0.0)
    s.push(Msg("a"), 0.0)
    sink.pop(s, 0.0)
    assert s.next_due() == 1.0
    assert len(s.remove_if(lambda m: True)) == 1
    assert s.next_due() is None and s._heap == []


def test_top_sources_and_depths() -> None:
    s: Scheduler[Msg] = Scheduler(one_per_second)
    for source, n in (("a", 3), ("b", 5), ("c", 1), ("d", 5)):
        for i in range(n):
            s.push(Msg(source, priority=i % 2), 0.0)
    assert s.top_sources(3) == [("b", 5), ("d", 5), ("a", 3)]
    assert len(s) == 14 and s.depth_by_priority() == {0: 9, 1: 5}


def test_set_limits_rejudges_waiting_numbers_and_keeps_state() -> None:
    s: Scheduler[Msg] = Scheduler(lambda n: (0.1, 1))
    sink = Sink()
    for _ in range(3):
        s.push(Msg("n"), 0.0)
    sink.pop(s, 0.0)
    assert s.next_due() == 10.0
    s.set_limits(lambda n: (1.0, 3), destination_mps=0.0)
    assert s.source_limiter.tat("n") == 10.0          # the debt is kept...
    sink.pop(s, 0.1)
    assert s.next_due() == pytest.approx(8.0)        # ...and judged with the new burst
    sink.pop(s, 8.0)
    assert len(sink.sent) == 2 and s.next_due() == pytest.approx(9.0)
    with pytest.raises(ValueError, match="destination_mps"):
        s.set_limits(one_per_second, destination_mps=-1)
    with pytest.raises(ValueError, match="destination_burst"):
        s.set_limits(one_per_second, destination_mps=1, destination_burst=0)


def test_idle_numbers_keep_no_state() -> None:
    s: Scheduler[Msg] = Scheduler(one_per_second, destination_mps=2.0)
    sink = Sink()
    for i in range(1000):
        s.push(Msg(f"n{i}", dest=f"d{i}"), 0.0)
    sink.pop(s, 0.0, limit=5000)
    assert len(s) == 0 and s._lanes == ({}, {}) and s.next_due() is None
    assert len(s.source_limiter) == 1000
    assert s.prune(1.0) == 2000
    assert len(s.source_limiter) == 0


def test_a_hundred_thousand_distinct_numbers() -> None:
    s: Scheduler[Msg] = Scheduler(one_per_second)
    sink = Sink()
    for i in range(100_000):
        s.push(Msg(f"1{i:010d}", segments=1 + 2 * (i % 2)), 0.0)
        s.push(Msg(f"1{i:010d}"), 0.0)
    assert sink.pop(s, 0.0, limit=1_000_000) == 100_000
    assert s.next_due() == 1.0                       # single-part heads
    assert sink.pop(s, 1.0, limit=1_000_000) == 50_000
    assert sink.pop(s, 3.0, limit=1_000_000) == 50_000
    assert len(s) == 0 and s.next_due() is None


@pytest.mark.parametrize(("kw", "field"), [({"priority": 2}, "priority"),
                                           ({"segments": 0}, "segments"),
                                           ({"segments": 1.0}, "segments")])
def test_bad_items_are_refused_naming_the_field(kw: dict[str, object], field: str) -> None:
    s: Scheduler[Msg] = Scheduler(one_per_second)
    with pytest.raises(ValueError, match=field):
        s.push(Msg("n", **kw), 0.0)  # type: ignore[arg-type]
    assert len(s) == 0


def test_a_raising_callback_loses_nothing() -> None:
    s: Scheduler[Msg] = Scheduler(unlimited)
    m = Msg("n")
    s.push(m, 0.0)

    def boom(item: Msg, now: float) -> float | None:
        raise OSError("store down")

    with pytest.raises(OSError):
        s.pop_ready(0.0, boom, lambda item: None)
    sink = Sink()
    assert sink.pop(s, 0.0) == 1 and sink.sent[0][1] is m


def test_callbacks_may_push_but_not_reenter() -> None:
    s: Scheduler[Msg] = Scheduler(unlimited)
    s.push(Msg("a"), 0.0)
    later = Msg("b")
    seen: list[Msg] = []

    def try_send(item: Msg, now: float) -> float | None:
        seen.append(item)
        if item.source == "a":
            s.push(later, now)
            with pytest.raises(RuntimeError, match="remove_if"):
                s.remove_if(lambda m: True)
        return None

    assert s.pop_ready(0.0, try_send, lambda item: None) == 2
    assert seen[-1] is later


def test_retry_at_holds_the_queue_even_when_its_head_expires() -> None:
    s: Scheduler[Msg] = Scheduler(unlimited)
    head, follower = Msg("n", expires_at=5.0), Msg("n")
    s.push(head, 0.0)
    s.push(follower, 0.0)
    offered: list[tuple[float, Msg]] = []
    expired: list[Msg] = []

    def refuse_once(item: Msg, now: float) -> float | None:
        offered.append((now, item))
        return 60.0 if len(offered) == 1 else None

    s.pop_ready(0.0, refuse_once, expired.append)
    s.pop_ready(5.0, refuse_once, expired.append)
    assert expired == [head]
    assert s.next_due() == 60.0                      # the carrier asked for 60 s
    s.pop_ready(60.0, refuse_once, expired.append)
    assert offered == [(0.0, head), (60.0, follower)]
