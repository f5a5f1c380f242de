"""Every correlation entry has a lifetime: receipt timeouts, holds, keep times, restarts."""

from __future__ import annotations

import pytest

from router.correlator import Correlator
from router.correlator_timers import DeadlineQueue
from router.model import DELIVERED, SUBMITTED, UNDELIVERABLE, UNKNOWN, Message
from router.receipt_hold import Held, HeldReceipts
from tests.test_correlator import (
    T0,
    accept,
    carrier,
    correlator,
    go_in_doubt,
    receipt,
    send,
    submitted,
)

TIMEOUT = 600.0
KEEP = 100.0


def short() -> Correlator:
    return correlator(carrier("acme", message_id_format="same", receipt_timeout_s=TIMEOUT),
                      hold_s=10.0, hold_max=3, final_keep_s=KEEP)


# -- receipt timeout ---------------------------------------------------------------------


def test_no_final_receipt_in_time_makes_the_record_unknown_no_receipt() -> None:
    c = short()
    msg = submitted(c, "m1", "1")
    c.on_receipt("acme", receipt("1", "ENROUTE"), T0 + 1)
    assert c.next_due() == T0 + TIMEOUT
    assert c.expire(T0 + TIMEOUT - 0.001) == ([], [])
    changed, orphans = c.expire(T0 + TIMEOUT)
    assert (changed, orphans) == ([msg], [])
    assert (msg.status, msg.error, msg.error_code, msg.done_at, msg.dlr_stat) == (
        UNKNOWN, "no_receipt", None, T0 + TIMEOUT, "ENROUTE")
    assert c.stats["no_receipt"] == 1
    assert c.expire(T0 + TIMEOUT + 1) == ([], [])  # once only


def test_a_late_final_receipt_settles_a_no_receipt_record() -> None:
    c = short()
    msg = submitted(c, "m1", "1")
    c.expire(T0 + TIMEOUT)
    res = c.on_receipt("acme", receipt("1", "UNDELIV", "002"), T0 + TIMEOUT + 50)
    assert (res.outcome, res.changed) == ("matched", True)
    assert (msg.status, msg.error, msg.error_code, msg.done_at) == (
        UNDELIVERABLE, None, 2, T0 + TIMEOUT + 50)


def test_a_late_intermediate_does_not_reopen_a_no_receipt_record() -> None:
    c = short()
    msg = submitted(c, "m1", "1")
    c.expire(T0 + TIMEOUT)
    assert c.on_receipt("acme", receipt("1", "ENROUTE"), T0 + TIMEOUT + 1).stale
    assert (msg.status, msg.error) == (UNKNOWN, "no_receipt")


def test_no_receipt_for_a_multipart_keeps_a_part_that_failed_deciding() -> None:
    c = short()
    msg = send("m1", parts=2)
    accept(c, msg, 0, "1", T0)
    accept(c, msg, 1, "2", T0)
    c.on_receipt("acme", receipt("2", "UNDELIV", "7"), T0 + 1)
    c.expire(T0 + TIMEOUT)
    assert msg.part_status == [UNKNOWN, UNDELIVERABLE]
    assert (msg.status, msg.error_code) == (UNDELIVERABLE, 7)


def test_timeouts_are_per_carrier() -> None:
    c = correlator(carrier("fast", message_id_format="same", receipt_timeout_s=60),
                   carrier("slow", message_id_format="same", receipt_timeout_s=6000))
    slow = submitted(c, "s", "1", carrier_name="slow")
    fast = submitted(c, "f", "1", T0 + 10, carrier_name="fast")
    assert c.next_due() == T0 + 70
    assert c.expire(T0 + 70)[0] == [fast]
    assert slow.status == SUBMITTED


# -- keep time and memory ----------------------------------------------------------------


def test_final_entries_are_dropped_after_the_keep_time() -> None:
    c = short()
    msgs = [submitted(c, f"m{n}", str(n)) for n in range(50)]
    for n in range(50):
        c.on_receipt("acme", receipt(str(n)), T0 + 1)
    assert c.stats["index_size"] == 50
    assert c.on_receipt("acme", receipt("3"), T0 + KEEP).outcome == "duplicate"
    c.expire(T0 + 1 + KEEP)
    assert (c.stats["index_size"], c.stats["tracked"]) == (0, 0)
    assert all(m.status == DELIVERED for m in msgs)
    # a replay after that is just unknown now: held, then an orphan
    assert c.on_receipt("acme", receipt("3"), T0 + 2 * KEEP).outcome == "held"


def test_everything_leaves_memory_whatever_happened_to_it() -> None:
    c = short()
    delivered = submitted(c, "d", "1")
    silent = submitted(c, "s", "2")
    no_dlr = submitted(c, "n", "3", dlr=False)
    doubt = send("u")
    go_in_doubt(doubt, 0, T0)
    c.on_in_doubt(doubt, T0)
    c.on_receipt("acme", receipt("1"), T0 + 1)
    c.on_receipt("acme", receipt("99", source="49000"), T0 + 1)  # held → orphan
    changed, orphans = [], []
    while (due := c.next_due()) is not None:  # as the daemon's timer does
        assert due <= T0 + TIMEOUT + KEEP
        more, gone = c.expire(due)
        changed += more
        orphans += gone
    assert changed == [silent] and len(orphans) == 1
    assert (delivered.status, no_dlr.status, doubt.status) == (DELIVERED, SUBMITTED, UNKNOWN)
    stats = c.stats
    assert (stats["index_size"], stats["held_size"], stats["tracked"]) == (0, 0, 0)
    assert c.next_due() is None
    assert len(c._timers) == 0 and not c._doubt


def test_forget_drops_a_message_at_once() -> None:
    c = short()
    msg = submitted(c, "m1", "1")
    c.forget(msg)
    assert c.stats["index_size"] == 0 and c.next_due() is None
    assert c.on_receipt("acme", receipt("1"), T0 + 1).outcome == "held"
    assert msg.status == SUBMITTED


def test_a_replayed_carrier_id_goes_to_the_newest_message() -> None:
    # carriers recycle ids: the old, final record must not swallow the new one's receipt
    c = short()
    old = submitted(c, "old", "7")
    c.on_receipt("acme", receipt("7"), T0 + 1)
    new = submitted(c, "new", "7", T0 + 2)
    c.on_receipt("acme", receipt("7", "UNDELIV"), T0 + 3)
    assert (old.status, new.status) == (DELIVERED, UNDELIVERABLE)
    c.expire(T0 + 3 + KEEP)
    assert c.stats["index_size"] == 0


# -- holds -------------------------------------------------------------------------------


def test_held_receipts_become_orphans_after_hold_s() -> None:
    c = short()
    r = receipt("5")
    c.on_receipt("acme", r, T0)
    assert c.next_due() == T0 + 10
    assert c.expire(T0 + 9.9) == ([], [])
    assert c.expire(T0 + 10) == ([], [("acme", r)])
    assert (c.stats["orphans"], c.stats["held_size"]) == (1, 0)
    msg = submitted(c, "m1", "5", T0 + 11)  # too late: the response finds nothing
    assert msg.status == SUBMITTED


def test_the_hold_is_bounded_in_count_oldest_evicted_first() -> None:
    c = short()
    rs = [receipt(str(n)) for n in range(5)]
    for n, r in enumerate(rs):
        c.on_receipt("acme", r, T0 + n * 0.1)
    assert (c.stats["held_size"], c.stats["orphans"]) == (3, 2)
    assert c.next_due() == T0 + 0.3  # evicted ones are due at once
    assert c.expire(T0 + 0.5) == ([], [("acme", r) for r in rs[:2]])
    msg = send("m1")
    assert accept(c, msg, 0, "4", T0 + 1) == [msg]  # the newest is still held
    assert msg.status == DELIVERED


def test_restart_rebuilds_the_index_from_stored_messages() -> None:
    c = short()
    sub = Message("s", "1", "2", accepted_at=T0, status=SUBMITTED)
    sub.carrier, sub.carrier_ids, sub.part_status, sub.submitted_at = "acme", ["10", "11"], [SUBMITTED] * 2, T0
    doubt = Message("d", "1", "3", accepted_at=T0, status=UNKNOWN)
    doubt.carrier, doubt.carrier_ids, doubt.part_status = "acme", [None], [UNKNOWN]
    doubt.error, doubt.done_at = "in_doubt", T0
    old = Message("o", "1", "4", accepted_at=T0, status=UNKNOWN)
    old.carrier, old.carrier_ids, old.part_status = "acme", ["12"], [UNKNOWN]
    old.error, old.done_at = "no_receipt", T0 - TIMEOUT
    for m in (sub, doubt, old):
        c.track(m, T0 + 5)
    now = T0 + 6
    c.on_receipt("acme", receipt("10", source="2", dest="1"), now)
    c.on_receipt("acme", receipt("11", source="2", dest="1"), now)
    assert sub.status == DELIVERED
    assert c.on_receipt("acme", receipt("77", source="3", dest="1"), now).msg is doubt
    assert doubt.status == DELIVERED
    # the old no_receipt record's keep time had run out already: dropped at once
    c.expire(now)
    assert c.on_receipt("acme", receipt("12", source="4", dest="1"), now).outcome == "held"


def test_a_stored_submitted_message_past_its_timeout_expires_at_start() -> None:
    c = short()
    msg = Message("s", "1", "2", accepted_at=T0, status=SUBMITTED)
    msg.carrier, msg.carrier_ids, msg.part_status, msg.submitted_at = "acme", ["1"], [SUBMITTED], T0
    c.track(msg, T0 + 2 * TIMEOUT)
    assert c.next_due() == T0 + TIMEOUT
    assert c.expire(T0 + 2 * TIMEOUT)[0] == [msg]
    assert msg.error == "no_receipt"


@pytest.mark.parametrize(("kw", "field"), [
    ({"hold_s": -1}, "hold_s"), ({"hold_max": 0}, "hold_max"),
    ({"final_keep_s": float("nan")}, "final_keep_s"),
])
def test_bad_limits_are_refused_by_name(kw: dict[str, float], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        correlator(**kw)


# -- the building blocks -----------------------------------------------------------------


class Owner:
    def __init__(self, name: str) -> None:
        self.name = name
        self.token = 0


def test_deadline_queue_orders_spans_and_out_of_order_pushes() -> None:
    q = DeadlineQueue()
    a, b, c, d = (Owner(n) for n in "abcd")
    q.push(a, 100.0, 100.0)
    q.push(b, 30.0, 10.0)
    q.push(c, 20.0, 100.0)  # earlier than a on the same span: goes to the heap
    q.push(d, 50.0, 10.0)
    d.token += 1  # cancelled
    assert q.next_due() == 20.0
    assert [o.name for o in q.pop_due(60.0)] == ["c", "b"]
    assert q.next_due() == 100.0
    q.push(b, 70.0, 10.0)  # re-armed after popping
    assert [o.name for o in q.pop_due(1000.0)] == ["b", "a"]
    assert q.next_due() is None and len(q) == 0


def test_held_receipts_are_taken_by_key_or_address_once() -> None:
    h = HeldReceipts(5.0, 10)
    one = Held("acme", "r1", DELIVERED, ("same:1", "hex:1"), ("acme", "2", "1"), 0.0)
    two = Held("acme", "r2", DELIVERED, ("same:2",), ("acme", "2", "1"), 1.0)
    h.add(one)
    h.add(two)
    assert [x.receipt for x in h.take_for_keys("acme", ("hex:1", "same:1"))] == ["r1"]
    assert h.take_for_keys("acme", ("same:1",)) == []
    assert h.take_for_keys("globex", ("same:2",)) == []
    assert [x.receipt for x in h.take_for_addr(("acme", "2", "1"))] == ["r2"]
    assert len(h) == 0 and h.next_due() is None and h.expire(100.0) == []
