"""Carrier health: rolling error rate, circuit breaker, bind state, observability."""

from __future__ import annotations

from types import SimpleNamespace as NS

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.health import CarrierHealth, Circuit, HealthBoard, Outcome

SETTINGS = NS(error_rate=0.5, window_s=30.0, min_samples=10, cooldown_s=15.0, probes=3)

OK, TRANSIENT, TIMEOUT = Outcome.OK, Outcome.TRANSIENT, Outcome.TIMEOUT
THROTTLED, PERMANENT = Outcome.THROTTLED, Outcome.PERMANENT


def up(settings=SETTINGS, *, now=0.0, binds=("trx-0",)):
    """A carrier with its binds up and a log of circuit transitions."""
    log: list[tuple[str, str, str, str]] = []
    health = CarrierHealth(settings, now=now, name="acme", on_change=lambda *c: log.append(c))
    for bind in binds:
        health.bind_up(bind, True, now)
    return health, log


def feed(health, outcome, count, now, latency=0.05):
    for _ in range(count):
        health.record(outcome, latency, now)


def transitions(log):
    return [(old, new) for _, old, new, _ in log]


def open_by_errors(health, now=1.0):
    feed(health, TRANSIENT, 10, now)
    assert health.usable(now) == "circuit_open"


# -- opening -----------------------------------------------------------------------------


def test_fresh_carrier_is_down_until_a_bind_is_up():
    health = CarrierHealth(SETTINGS, now=0.0)
    assert health.usable(0.0) == "down"
    assert not health.allow(0.0)
    health.bind_up("rx-0", False, 1.0)  # a receiver cannot transmit
    assert health.usable(1.0) == "down"
    health.bind_up("trx-0", True, 2.0)
    assert health.usable(2.0) is None and health.circuit is Circuit.CLOSED


def test_opens_on_error_rate_while_every_bind_is_up():
    health, log = up(binds=("trx-0", "trx-1"))
    feed(health, OK, 5, 1.0)
    feed(health, TRANSIENT, 4, 1.0)
    assert health.usable(1.0) is None  # 9 samples < min_samples
    feed(health, TIMEOUT, 1, 1.0)  # 10 samples, 5 errors: rate reaches 0.5
    assert health.usable(1.0) == "circuit_open"
    assert not health.allow(1.0)
    assert health.snapshot(1.0)["binds_up"] == 2
    assert log[-1][:3] == ("acme", "closed", "open")
    assert "error rate 0.50" in log[-1][3]


@pytest.mark.parametrize(
    ("oks", "errors", "opens"),
    [
        (0, 9, False),  # below min_samples, however bad
        (0, 10, True),
        (6, 5, False),  # 5/11 < 0.5
        (5, 5, True),
        (100, 99, False),
        (99, 100, True),
    ],
)
def test_error_rate_threshold_table(oks, errors, opens):
    health, _ = up()
    feed(health, OK, oks, 1.0)
    feed(health, TRANSIENT, errors, 1.0)
    assert (health.usable(1.0) == "circuit_open") is opens


@pytest.mark.parametrize("neutral", [PERMANENT, THROTTLED])
def test_permanent_and_throttled_are_not_health_samples(neutral):
    health, log = up()
    feed(health, neutral, 100, 1.0)
    feed(health, TRANSIENT, 9, 1.0)
    assert health.usable(1.0) is None and log[-1][2] == "closed"
    snap = health.snapshot(1.0)
    assert snap["samples"] == 9 and snap["error_rate"] == 1.0
    assert snap["throttled"] == (100 if neutral is THROTTLED else 0)


def test_error_window_slides_old_errors_age_out():
    health, _ = up()
    feed(health, TRANSIENT, 9, 1.0)
    assert health.snapshot(20.0)["samples"] == 9
    # 31 s later the nine errors are out of the 30 s window: one more is 1 sample, not 10.
    feed(health, TRANSIENT, 1, 32.0)
    assert health.usable(32.0) is None
    assert health.snapshot(32.0)["samples"] == 1
    # Within the window they add up.
    feed(health, TRANSIENT, 9, 40.0)
    assert health.usable(40.0) == "circuit_open"


def test_window_partially_slides():
    health, _ = up()
    feed(health, OK, 10, 0.5)
    feed(health, TRANSIENT, 9, 20.0)
    assert health.usable(20.0) is None  # 9/19
    # At 31 s the OKs from 0.5 s have aged out; the nine errors remain: one more opens.
    feed(health, TRANSIENT, 1, 31.0)
    assert health.usable(31.0) == "circuit_open"


def test_long_gap_empties_the_window():
    health, _ = up()
    feed(health, TRANSIENT, 5, 1.0)
    assert health.snapshot(1_000_000.0)["samples"] == 0


def test_bind_loss_opens_at_once():
    health, log = up(binds=("trx-0", "tx-1"))
    health.bind_down("trx-0", 1.0)
    assert health.usable(1.0) is None  # tx-1 still transmits
    health.bind_down("tx-1", 2.0)
    assert health.usable(2.0) == "down"
    assert log[-1] == ("acme", "closed", "open", "no transmitting bind")
    assert not health.snapshot(2.0)["healthy"]


# -- recovering --------------------------------------------------------------------------


def test_half_opens_after_cooldown_and_closes_after_probes():
    health, log = up()
    open_by_errors(health, 1.0)
    assert health.usable(15.9) == "circuit_open"
    assert health.usable(16.0) is None and health.circuit is Circuit.HALF_OPEN
    assert [health.allow(16.0) for _ in range(4)] == [True, True, True, False]
    assert health.usable(16.0) == "circuit_half_open"  # all probe slots out
    feed(health, OK, 2, 16.5)
    assert health.circuit is Circuit.HALF_OPEN
    feed(health, OK, 1, 16.6)
    assert health.circuit is Circuit.CLOSED and health.usable(16.6) is None
    assert transitions(log) == [("open", "closed"), ("closed", "open"), ("open", "half_open"), ("half_open", "closed")]
    # The window starts fresh: the errors that opened it do not count any more.
    assert health.snapshot(17.0)["samples"] == 0


@pytest.mark.parametrize("failure", [TRANSIENT, TIMEOUT])
def test_probe_failure_reopens_for_another_cooldown(failure):
    health, log = up()
    open_by_errors(health, 1.0)
    assert health.allow(16.0)
    assert health.allow(16.0)
    health.record(OK, 0.1, 16.1)
    health.record(failure, None, 16.2)
    assert health.usable(16.2) == "circuit_open"
    assert log[-1][1:3] == ("half_open", "open") and failure.value in log[-1][3]
    assert health.usable(31.1) == "circuit_open"
    assert health.usable(31.2) is None and health.circuit is Circuit.HALF_OPEN


@pytest.mark.parametrize("neutral", [PERMANENT, THROTTLED])
def test_neutral_probe_result_frees_the_slot(neutral):
    health, _ = up()
    open_by_errors(health, 1.0)
    assert [health.allow(16.0) for _ in range(3)] == [True, True, True]
    health.record(neutral, 0.1, 16.1)
    assert health.circuit is Circuit.HALF_OPEN
    assert health.allow(16.1) and not health.allow(16.1)


def test_release_returns_an_unused_probe_slot():
    health, _ = up()
    open_by_errors(health, 1.0)
    assert [health.allow(16.0) for _ in range(3)] == [True, True, True]
    health.release(16.0)
    assert health.usable(16.0) is None and health.allow(16.0)


def test_answers_to_messages_sent_before_half_open_are_not_probes():
    health, _ = up()
    open_by_errors(health, 1.0)
    assert health.usable(16.0) is None  # half-open, no probe handed out yet
    health.record(TIMEOUT, None, 16.0)  # a late timeout from before the circuit opened
    assert health.circuit is Circuit.HALF_OPEN


def test_no_half_open_without_a_transmitting_bind():
    health, log = up()
    open_by_errors(health, 1.0)
    health.bind_down("trx-0", 2.0)
    assert health.usable(100.0) == "down" and health.circuit is Circuit.OPEN
    # Opened by errors: the bind coming back does not skip the cooldown ...
    health.bind_up("trx-0", True, 10.0)
    assert health.usable(10.0) == "circuit_open"
    # ... which is counted from the opening.
    assert health.usable(16.0) is None and health.circuit is Circuit.HALF_OPEN


def test_bind_back_after_outage_half_opens_at_once_then_probes():
    health, log = up()
    health.bind_down("trx-0", 1.0)
    health.bind_up("trx-0", True, 2.0)
    assert health.circuit is Circuit.HALF_OPEN and health.usable(2.0) is None
    assert not health.snapshot(2.0)["healthy"]
    for _ in range(3):
        assert health.allow(2.1)
        health.record(OK, 0.02, 2.2)
    assert health.circuit is Circuit.CLOSED and health.snapshot(2.2)["healthy"]
    assert transitions(log) == [
        ("open", "closed"), ("closed", "open"), ("open", "half_open"), ("half_open", "closed"),
    ]
    assert [reason for *_, reason in log][1:3] == ["no transmitting bind", "bind back"]


def test_half_open_bind_loss_opens_again():
    health, log = up()
    health.bind_down("trx-0", 1.0)
    health.bind_up("trx-0", True, 2.0)
    assert health.allow(2.0)
    health.bind_down("trx-0", 3.0)
    assert health.usable(3.0) == "down" and log[-1][1:] == ("half_open", "open", "no transmitting bind")


# -- observability -----------------------------------------------------------------------


def test_snapshot_and_latency_ewma():
    health, _ = up(binds=("trx-0",))
    health.bind_up("rx-0", False, 0.0)
    health.record(OK, 0.100, 1.0)
    assert health.snapshot(1.0)["latency_ms"] == pytest.approx(100.0)
    health.record(TRANSIENT, 0.200, 1.0)
    health.record(TIMEOUT, None, 1.0)  # no latency for a timeout
    snap = health.snapshot(1.0)
    assert snap == {
        "healthy": True,
        "circuit": "closed",
        "reason": "bind up",
        "since": 0.0,
        "error_rate": pytest.approx(2 / 3),
        "latency_ms": pytest.approx(120.0),  # 100 + 0.2 * (200 - 100)
        "samples": 3,
        "throttled": 0,
        "binds_up": 2,
        "tx_binds_up": 1,
    }


def test_on_change_fires_once_per_transition():
    health, log = up()
    open_by_errors(health, 1.0)
    feed(health, TRANSIENT, 50, 2.0)  # already open: no new transition
    for t in (16.0, 16.0, 17.0):
        health.usable(t)
    assert transitions(log) == [("open", "closed"), ("closed", "open"), ("open", "half_open")]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("error_rate", 0),
        ("error_rate", 1.5),
        ("error_rate", "0.5"),
        ("window_s", 0),
        ("window_s", float("inf")),
        ("min_samples", 0),
        ("min_samples", 2.5),
        ("cooldown_s", -1),
        ("probes", 0),
        ("probes", True),
        ("probes", None),
    ],
)
def test_bad_settings_name_the_key(key, value):
    bad = NS(**{**vars(SETTINGS), key: value})
    with pytest.raises(ValueError, match=f"health.{key}"):
        CarrierHealth(bad, now=0.0)


def test_board_usable_and_checker():
    board = HealthBoard()
    a = board.add("a", SETTINGS, now=0.0)
    board.add("b", SETTINGS, now=0.0)
    a.bind_up("trx-0", True, 0.0)
    check = board.checker(1.0)
    assert [check(n) for n in ("a", "b", "zz")] == [None, "down", "unknown_carrier"]
    assert board.usable("b", 1.0) == "down"
    assert set(board.snapshot(1.0)) == {"a", "b"}
    board.remove("b")
    assert board.usable("b", 1.0) == "unknown_carrier"


# -- state machine property ----------------------------------------------------------------

EVENTS = st.lists(
    st.tuples(
        st.sampled_from(["ok", "transient", "timeout", "permanent", "throttled", "allow", "up", "down", "rx"]),
        st.floats(0, 5, allow_nan=False),
    ),
    max_size=60,
)


@settings(max_examples=120, deadline=None)
@given(EVENTS)
def test_circuit_invariants(events):
    s = NS(error_rate=0.5, window_s=10.0, min_samples=3, cooldown_s=2.0, probes=2)
    health = CarrierHealth(s, now=0.0)
    now, tx = 0.0, False
    for kind, dt in events:
        now += dt
        if kind == "up":
            health.bind_up("trx", True, now)
            tx = True
        elif kind == "down":
            health.bind_down("trx", now)
            tx = False
        elif kind == "rx":
            health.bind_up("rx", False, now)
        elif kind == "allow":
            health.allow(now)
        else:
            health.record(Outcome(kind), 0.01, now)
        reason = health.usable(now)
        snap = health.snapshot(now)
        # Never usable without a transmitting bind; healthy only when closed.
        if not tx:
            assert reason == "down" and not health.allow(now)
        assert snap["healthy"] == (snap["circuit"] == "closed")
        assert 0.0 <= snap["error_rate"] <= 1.0 and snap["samples"] >= 0
        if health.circuit is Circuit.OPEN:
            assert reason in ("down", "circuit_open")
        if health.circuit is Circuit.CLOSED:
            assert reason is None
