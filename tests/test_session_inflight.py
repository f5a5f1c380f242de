"""Sequence numbers, deadlines and tombstones of the session's in-flight table."""

from __future__ import annotations

import pytest

from adapters.smpp.inflight import MAX_SEQUENCE, InFlight


def add_next(inflight: InFlight, request: object, deadline: float, windowed: bool = True) -> int:
    seq = inflight.peek_sequence()
    inflight.add(seq, request, deadline, windowed)
    return seq


def test_wraps_to_one_and_skips_live_and_buried_numbers() -> None:
    inflight = InFlight(first_sequence=1, tombstones=8)
    # Left over from the start of the lap round the sequence space ...
    inflight.add(3, "timed out", 1.0, True)
    inflight.add(1, "still waiting", 50.0, True)
    assert [e.seq for e in inflight.expire(1.0)] == [3]
    # ... which is almost over again.
    inflight.add(MAX_SEQUENCE - 2, "recent", 60.0, True)
    seqs = [add_next(inflight, n, 100.0) for n in range(4)]
    assert seqs == [MAX_SEQUENCE - 1, MAX_SEQUENCE, 2, 4]


def test_deadlines_fire_in_send_order_and_skip_settled() -> None:
    inflight = InFlight(first_sequence=1, tombstones=8)
    a = add_next(inflight, "a", 10.0)
    b = add_next(inflight, "b", 11.0)
    c = add_next(inflight, "c", 12.0, windowed=False)
    assert inflight.windowed == 2 and inflight.next_deadline() == 10.0
    inflight.settle(inflight.entries[b])
    assert inflight.next_deadline() == 10.0
    inflight.settle(inflight.entries[a])
    assert inflight.next_deadline() == 12.0 and inflight.windowed == 0
    assert [e.seq for e in inflight.expire(11.99)] == []
    assert [e.seq for e in inflight.expire(12.0)] == [c]
    assert inflight.entries == {} and inflight.next_deadline() is None
    assert inflight.pop_tombstone(c) == "c" and inflight.pop_tombstone(a) is None


def test_tombstones_are_bounded_fifo() -> None:
    inflight = InFlight(first_sequence=1, tombstones=3)
    seqs = [add_next(inflight, n, float(n)) for n in range(5)]
    assert [e.request for e in inflight.expire(10.0)] == [0, 1, 2, 3, 4]
    assert inflight.tombstone_count == 3
    assert [inflight.pop_tombstone(s) for s in seqs] == [None, None, 2, 3, 4]


def test_no_tombstones_when_turned_off() -> None:
    inflight = InFlight(first_sequence=1, tombstones=0)
    seq = add_next(inflight, "x", 1.0)
    inflight.expire(2.0)
    assert inflight.pop_tombstone(seq) is None


def test_snapshot_lists_live_requests_in_send_order() -> None:
    inflight = InFlight(first_sequence=7, tombstones=4)
    for name in "xyz":
        add_next(inflight, name, 5.0)
    inflight.settle(inflight.entries[8])
    assert inflight.snapshot() == [(7, "x"), (9, "z")]


@pytest.mark.parametrize(("field", "kwargs"), [("first_sequence", {"first_sequence": 0, "tombstones": 1}),
                                               ("tombstones", {"first_sequence": 1, "tombstones": -1})])
def test_bad_arguments_name_the_field(field: str, kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=field):
        InFlight(**kwargs)


def test_answered_requests_behind_a_lost_one_are_not_kept_until_it_times_out() -> None:
    """One request never answered must not pin every later (answered) request in memory."""
    from adapters.smpp.pdu import SubmitSm

    table = InFlight(1, tombstones=16)
    lost = SubmitSm(sequence_number=1)
    table.add_windowed(1, lost, 30.0)
    for seq in range(2, 100_002):
        req = SubmitSm(sequence_number=seq)
        table.add_windowed(seq, req, 30.0)
        assert table.settle_response(seq, int(req.command_id) | 0x80000000) is not None
    assert len(table.entries) == 1
    assert len(table._deadlines) <= 2 * len(table.entries) + 64
    assert table.next_deadline() == 30.0
    (expired,) = table.expire(30.0)
    assert expired.request is lost
