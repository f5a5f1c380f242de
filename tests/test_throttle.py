"""GCRA limiter and carrier AIMD, on a manual clock."""

from __future__ import annotations

import math

import pytest

from router.throttle import CarrierLimiter, Gcra

# -- debt semantics ----------------------------------------------------------

def test_three_part_message_goes_at_once_then_waits_three_seconds() -> None:
    g = Gcra(rate=1.0, burst=1)
    assert g.try_acquire("12025550100", 3, now=10.0)
    assert g.conforms_at("12025550100", 10.0) == 13.0
    assert not g.try_acquire("12025550100", 1, now=12.999)
    assert g.try_acquire("12025550100", 1, now=13.0)
    assert g.conforms_at("12025550100", 13.0) == 14.0


def test_burst_three_lets_three_single_parts_through_at_once() -> None:
    g = Gcra(rate=1.0, burst=3)
    assert [g.try_acquire("n", 1, 0.0) for _ in range(4)] == [True, True, True, False]
    assert g.conforms_at("n", 0.0) == 1.0          # one segment refilled per second
    assert g.try_acquire("n", 1, 1.0)
    assert not g.try_acquire("n", 1, 1.0)


def test_burst_admits_a_multipart_message_while_conforming() -> None:
    g = Gcra(rate=2.0, burst=2)
    assert g.try_acquire("n", 1, 0.0)              # TAT 0.5, still conforms (tau 0.5)
    assert g.try_acquire("n", 3, 0.0)              # all 3 parts go: TAT 2.0
    assert g.conforms_at("n", 0.0) == 1.5
    assert not g.try_acquire("n", 1, 1.49)


def test_acquire_returns_when_the_key_conforms_next() -> None:
    g = Gcra(rate=2.0, burst=3)
    assert g.acquire("n", 1, 0.0) == 0.0             # still inside the burst
    assert g.acquire("n", 3, 0.0) == 1.0             # TAT 2.0 - tau 1.0
    assert g.conforms_at("n", 0.0) == 1.0


def test_keys_are_independent_and_unknown_keys_conform_now() -> None:
    g = Gcra(rate=1.0, burst=1)
    g.acquire("a", 5, 0.0)
    assert g.conforms_at("b", 0.0) == 0.0
    assert g.conforms_at("a", 1.0) == 5.0


def test_rate_held_exactly_over_a_simulated_minute() -> None:
    """1 seg/s, backlogged with mixed 1- and 3-part messages, 10 ms ticks."""
    g = Gcra(rate=1.0, burst=1)
    pattern = [1, 3, 1, 1, 3, 3, 1]
    sent: list[tuple[float, int]] = []
    i = 0
    for tick in range(60_000 // 10):
        now = tick / 100
        while g.try_acquire("n", pattern[i % len(pattern)], now):
            sent.append((now, pattern[i % len(pattern)]))
            i += 1
    total = sum(n for _, n in sent)
    # The debt is exact: every segment sent moved the TAT by one second.
    assert g.tat("n") == pytest.approx(total)
    # Backlogged all minute: the last admission came within one message of 60 s.
    assert 60 <= g.tat("n") <= 60 + 3
    # Any window: rate * w + (burst - 1) + parts of the window's last message.
    for a in range(0, 60, 5):
        for w in (1, 7, 30):
            inside = [n for t, n in sent if a <= t < a + w]
            if inside:
                assert sum(inside) <= w + 0 + inside[-1]
    # Per minute, single-part sends would be <= 60 + burst; debt lets the last
    # message run over by its extra parts at most.
    assert total <= 60 + 1 + (3 - 1)


def test_fractional_rates_do_not_drift() -> None:
    g = Gcra(rate=3.0, burst=3)
    sent = 0
    for tick in range(100_001):
        now = tick / 1000                           # 100 s at 1 ms
        while g.try_acquire("tf", 1, now):
            sent += 1
    assert sent == 300 + 3


# -- state and pruning -------------------------------------------------------

def test_refilled_keys_keep_no_state() -> None:
    g = Gcra(rate=1.0, burst=2)
    for i in range(100):
        g.acquire(f"n{i}", 1 + i % 3, now=0.0)
    assert len(g) == 100
    assert g.prune(now=2.0) == 67                   # the 1- and 2-segment ones
    assert len(g) == 33
    assert g.prune(now=3.0) == 33
    assert len(g) == 0


def test_reading_a_refilled_key_deletes_it_lazily() -> None:
    g = Gcra(rate=10.0, burst=1)
    g.acquire("n", 1, 0.0)
    assert g.conforms_at("n", 0.05) == pytest.approx(0.1)
    assert len(g) == 1
    assert g.conforms_at("n", 0.1) == 0.1
    assert len(g) == 0 and g.tat("n") is None


# -- per-key policy ------------------------------------------------------------

def _policy(number: str) -> tuple[float, int]:
    if number.startswith("1800"):
        return 3.0, 3
    if len(number) <= 8:
        return 100.0, 100
    return 1.0, 1


def test_per_key_policy_sets_each_numbers_rate_and_burst() -> None:
    g = Gcra.per_key(_policy)
    assert sum(g.try_acquire("18005550100", 1, 0.0) for _ in range(5)) == 3
    assert sum(g.try_acquire("12025550100", 1, 0.0) for _ in range(5)) == 1
    assert sum(g.try_acquire("55555", 1, 0.0) for _ in range(200)) == 100
    assert g.conforms_at("18005550100", 0.0) == pytest.approx(1 / 3)


def test_policy_cache_is_bounded_by_its_size_or_the_live_keys() -> None:
    calls: list[str] = []

    def policy(number: str) -> tuple[float, int]:
        calls.append(number)
        return _policy(number)

    g = Gcra.per_key(policy, cache_size=8)
    for i in range(50):                              # 50 live keys: all cached
        g.acquire(f"1202555{i:04d}", 1, 0.0)
    assert len(g._params) == 50 and len(calls) == 50
    g.acquire("12025550000", 1, 0.0)
    assert len(calls) == 50                          # a hit
    for i in range(50, 100):                         # one live key at a time
        g.prune(float(i))
        g.acquire(f"1202555{i:04d}", 1, float(i))
    assert len(g._params) <= 8
    g.acquire("12025550000", 1, 200.0)               # evicted: asked again
    assert calls.count("12025550000") == 2
    assert g.tat("12025550000") == 201.0


def test_policy_answer_is_validated_naming_the_key() -> None:
    g = Gcra.per_key(lambda number: (0.0, 1))
    with pytest.raises(ValueError, match=r"rate for '999'"):
        g.acquire("999", 1, 0.0)


@pytest.mark.parametrize("answer", [None, (1.0,), "fast"])
def test_policy_answer_of_the_wrong_shape_is_refused(answer: object) -> None:
    g = Gcra.per_key(lambda number: answer)  # type: ignore[arg-type,return-value]
    with pytest.raises(ValueError, match=r"policy for '999'"):
        g.acquire("999", 1, 0.0)


def test_prune_also_drops_cached_answers_of_idle_numbers() -> None:
    g = Gcra.per_key(_policy, cache_size=8)
    for i in range(100):
        g.acquire(f"1202555{i:04d}", 1, 0.0)
    assert len(g._params) == 100
    g.prune(5.0)
    assert len(g._params) == 0 and len(g) == 0


def test_set_rate_keeps_live_state() -> None:
    g = Gcra(rate=1.0, burst=1)
    g.acquire("n", 2, 0.0)
    g.set_rate(2.0, 1)
    assert g.tat("n") == 2.0
    g.acquire("n", 2, 2.0)
    assert g.tat("n") == 3.0


@pytest.mark.parametrize(("rate", "burst", "field"), [
    (0, 1, "rate"), (-1.0, 1, "rate"), (math.nan, 1, "rate"), (math.inf, 1, "rate"),
    ("1", 1, "rate"), (1.0, 0, "burst"), (1.0, 1.5, "burst"), (1.0, True, "burst"),
])
def test_bad_limits_are_refused_naming_the_field(rate: object, burst: object, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        Gcra(rate, burst)  # type: ignore[arg-type]


@pytest.mark.parametrize("n", [0, -1, 1.0, True])
def test_bad_segment_counts_are_refused(n: object) -> None:
    g = Gcra(1.0)
    with pytest.raises(ValueError, match="segments"):
        g.try_acquire("k", n, 0.0)  # type: ignore[arg-type]
    assert len(g) == 0


# -- carrier limiter with AIMD -----------------------------------------------------

def test_carrier_limiter_paces_at_its_tps() -> None:
    c = CarrierLimiter(tps=10, burst=1)
    assert c.available_at(1, 0.0) == 0.0
    assert c.acquire(3, 0.0) == pytest.approx(0.3)
    assert c.available_at(1, 0.0) == pytest.approx(0.3)


def test_throttled_halves_once_per_interval_down_to_the_floor() -> None:
    c = CarrierLimiter(tps=100, burst=1)
    assert c.floor == 10.0
    c.on_throttled(0.0)
    assert c.tps == 50.0 and c.throttled_since == 0.0
    for _ in range(64):                              # a whole window of throttled resps
        c.on_throttled(0.5)
    assert c.tps == 50.0
    for t in (1.0, 2.0, 3.0, 4.0, 5.0):
        c.on_throttled(t)
    assert c.tps == 10.0                             # 25, 12.5, then floored
    assert c.throttled_since == 0.0
    assert c.throttled_for(31.0) == 31.0
    c.acquire(1, 10.0)
    assert c.available_at(1, 10.0) == pytest.approx(10.1)


def test_success_recovers_additively_at_most_once_per_interval() -> None:
    c = CarrierLimiter(tps=100, burst=1)
    c.on_throttled(0.0)
    c.on_throttled(1.0)
    assert c.tps == 25.0
    c.on_success(1.5)                                # too soon after the decrease
    assert c.tps == 25.0 and c.throttled_since is None and c.throttled_for(9.0) == 0.0
    c.on_success(2.0)
    c.on_success(2.5)
    assert c.tps == 35.0                             # step = tps / 10, once per second
    for t in range(3, 20):
        c.on_success(float(t))
    assert c.tps == 100.0                            # capped at the configured tps


def test_throttle_right_after_an_increase_still_decreases() -> None:
    c = CarrierLimiter(tps=100)
    c.on_throttled(0.0)
    c.on_success(1.0)
    assert c.tps == 60.0
    c.on_throttled(1.2)
    assert c.tps == 30.0


def test_small_carriers_floor_at_one_tps_or_their_tps() -> None:
    assert CarrierLimiter(tps=5).floor == 1.0
    assert CarrierLimiter(tps=0.5).floor == 0.5
    c = CarrierLimiter(tps=2)
    for t in range(10):
        c.on_throttled(float(t))
    assert c.tps == 1.0


def test_set_tps_on_reload() -> None:
    c = CarrierLimiter(tps=100)
    c.set_tps(200)
    assert c.tps == 200.0 and c.floor == 20.0
    c.on_throttled(0.0)
    assert c.tps == 100.0
    c.set_tps(50)                                    # a lowered rate stays lowered...
    assert c.tps == 50.0
    c.set_tps(400)
    assert c.tps == 50.0 and c.configured_tps == 400.0   # ...and recovers by AIMD
    c.on_success(5.0)
    assert c.tps == 90.0
    with pytest.raises(ValueError, match="rate"):
        c.set_tps(0)


def test_carrier_limiter_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match="decrease"):
        CarrierLimiter(10, decrease=1.0)
    with pytest.raises(ValueError, match="interval"):
        CarrierLimiter(10, interval=0)
    with pytest.raises(ValueError, match="segments"):
        CarrierLimiter(10).available_at(0, 0.0)
