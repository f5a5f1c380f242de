"""Scheduler.push_or_send: straight through only when a pass would hand out that item alone."""

from __future__ import annotations

import pytest

from router.scheduler import Scheduler
from tests.test_scheduler import Msg, Sink, one_per_second


def test_an_item_with_nothing_before_it_goes_at_once_and_charges_its_number() -> None:
    s: Scheduler[Msg] = Scheduler(one_per_second)
    sink = Sink()
    a = Msg("100")
    assert s.push_or_send(a, 0.0, sink.try_send) is True
    assert sink.sent == [(0.0, a)] and len(s) == 0
    # The number's one-per-second limit was charged: the next one waits in the queue.
    b = Msg("100")
    assert s.push_or_send(b, 0.5, sink.try_send) is False
    assert len(s) == 1 and sink.pop(s, 0.5) == 0
    assert sink.pop(s, 1.0) == 1 and sink.sent[-1] == (1.0, b)


def test_an_item_behind_its_own_lane_or_a_ready_lane_is_queued_in_order() -> None:
    s: Scheduler[Msg] = Scheduler(one_per_second)
    sink = Sink()
    first = Msg("100")
    s.push(first, 0.0)
    behind = Msg("100")
    other = Msg("200")
    assert s.push_or_send(behind, 0.0, sink.try_send) is False   # its lane holds `first`
    assert s.push_or_send(other, 0.0, sink.try_send) is False    # a lane is ready
    assert sink.sent == [] and len(s) == 3
    sink.pop(s, 0.0)
    assert [m for _, m in sink.sent] == [first, other]


def test_a_retry_time_parks_its_lane_until_then() -> None:
    s: Scheduler[Msg] = Scheduler(one_per_second)
    sink = Sink()
    sink.refuse["100"] = 5.0
    a = Msg("100")
    assert s.push_or_send(a, 0.0, sink.try_send) is False
    assert len(s) == 1 and s.next_due() == 5.0
    assert sink.pop(s, 4.9) == 0
    del sink.refuse["100"]
    assert sink.pop(s, 5.0) == 1 and sink.sent == [(5.0, a)]


def test_an_expired_item_is_queued_for_the_pass_to_expire() -> None:
    s: Scheduler[Msg] = Scheduler(one_per_second)
    sink = Sink()
    late = Msg("100", expires_at=1.0)
    assert s.push_or_send(late, 2.0, sink.try_send) is False
    sink.pop(s, 2.0)
    assert sink.expired == [late] and sink.sent == []


def test_a_raising_send_leaves_the_item_queued() -> None:
    s: Scheduler[Msg] = Scheduler(one_per_second)

    def boom(item: Msg, now: float) -> float | None:
        raise RuntimeError("carrier gone")

    a = Msg("100")
    with pytest.raises(RuntimeError):
        s.push_or_send(a, 0.0, boom)
    sink = Sink()
    assert len(s) == 1 and sink.pop(s, 0.0) == 1 and sink.sent == [(0.0, a)]


def test_bad_fields_are_refused_by_name() -> None:
    s: Scheduler[Msg] = Scheduler(one_per_second)
    sink = Sink()
    with pytest.raises(ValueError, match="priority"):
        s.push_or_send(Msg("100", priority=2), 0.0, sink.try_send)
    with pytest.raises(ValueError, match="segments"):
        s.push_or_send(Msg("100", segments=0), 0.0, sink.try_send)
    assert sink.sent == [] and len(s) == 0


def test_not_from_inside_a_pass() -> None:
    s: Scheduler[Msg] = Scheduler(one_per_second)
    s.push(Msg("100"), 0.0)
    seen: list[str] = []

    def nested(item: Msg, now: float) -> float | None:
        try:
            s.push_or_send(Msg("200"), now, lambda i, n: None)
        except RuntimeError as exc:
            seen.append(str(exc))
        return None

    s.pop_ready(0.0, nested, lambda m: None)
    assert seen and "push_or_send" in seen[0]
