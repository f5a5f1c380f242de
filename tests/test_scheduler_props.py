"""Property tests: random traffic on a manual clock never breaks a limit or an item."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from itertools import count

from hypothesis import given, settings
from hypothesis import strategies as st

from router.scheduler import Scheduler

SOURCES = ["12025550100", "18005550100", "55555", "ACME"]
DESTS = ["447700900001", "447700900002", "33612345678"]
#: rate, burst per source: a long code, a toll-free, a short code, a slow one.
LIMITS = {"12025550100": (1.0, 1), "18005550100": (3.0, 3), "55555": (20.0, 5), "ACME": (0.5, 2)}

_ids = count()


@dataclass(eq=False)
class Msg:
    source: str
    dest: str
    priority: int
    segments: int
    expires_at: float
    id: int


push_op = st.tuples(st.just("push"), st.sampled_from(SOURCES), st.sampled_from(DESTS),
                    st.integers(0, 1), st.integers(1, 3),
                    st.one_of(st.none(), st.floats(0.0, 20.0)))
tick_op = st.tuples(st.just("tick"), st.floats(0.0, 3.0), st.integers(1, 20),
                    st.floats(0.0, 1.0), st.floats(0.0, 2.0))
remove_op = st.tuples(st.just("remove"), st.sampled_from(DESTS))
ops = st.lists(st.one_of(push_op, push_op, push_op, tick_op, tick_op, remove_op),
               min_size=1, max_size=80)


def _window_ok(sends: list[tuple[float, int]], rate: float, burst: int) -> bool:
    """Segments sent in [t_i, t_j] <= rate * (t_j - t_i) + burst - 1 + parts of the last."""
    for j, (tj, nj) in enumerate(sends):
        total = 0
        for i in range(j, -1, -1):
            ti, ni = sends[i]
            total += ni
            if total > rate * (tj - ti) + burst - 1 + nj + 1e-6:
                return False
    return True


@settings(max_examples=60, deadline=None)
@given(ops=ops, dest_limit=st.booleans())
def test_random_traffic_keeps_every_limit_and_every_item(ops: list[tuple], dest_limit: bool) -> None:
    dest_mps, dest_burst = (2.0, 2) if dest_limit else (0.0, 1)
    s: Scheduler[Msg] = Scheduler(LIMITS.__getitem__, dest_mps, dest_burst)
    now = 0.0
    pushed: list[Msg] = []
    sent: list[tuple[float, Msg]] = []
    expired: list[Msg] = []
    removed: list[Msg] = []
    refuse_p = 0.0
    refuse_for = 0.0
    decision = count()

    def try_send(item: Msg, at: float) -> float | None:
        assert at < item.expires_at, "an expired item was offered"
        # A deterministic pseudo-random refusal (the carrier at its limit).
        if refuse_p and (next(decision) * 0.618) % 1.0 < refuse_p:
            return at + refuse_for
        sent.append((at, item))
        return None

    for op in ops:
        if op[0] == "push":
            _, source, dest, priority, segments, ttl = op
            m = Msg(source, dest, priority, segments,
                    float("inf") if ttl is None else now + ttl, next(_ids))
            pushed.append(m)
            s.push(m, now)
        elif op[0] == "tick":
            _, dt, limit, refuse_p, refuse_for = op
            due = s.next_due()
            before = len(sent) + len(expired)
            now += dt
            s.pop_ready(now, try_send, expired.append, limit)
            if due is None or now < due:
                assert len(sent) + len(expired) == before, "work before next_due"
        else:
            removed += s.remove_if(lambda m, d=op[1]: m.dest == d)

    # Drain: no more refusals; everything must come out.
    refuse_p = 0.0
    for _ in range(10_000):
        due = s.next_due()
        if due is None:
            break
        now = max(now, due)
        s.pop_ready(now, try_send, expired.append, 1000)
    assert len(s) == 0 and s.next_due() is None

    # Nothing lost, nothing duplicated.
    out = [m.id for _, m in sent] + [m.id for m in expired] + [m.id for m in removed]
    assert sorted(out) == sorted(m.id for m in pushed)
    assert all(now_at < m.expires_at for now_at, m in sent)

    # Rates per source and per destination, in every window.
    by_source: dict[str, list[tuple[float, int]]] = defaultdict(list)
    by_dest: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for t, m in sent:
        by_source[m.source].append((t, m.segments))
        by_dest[m.dest].append((t, m.segments))
    for source, sends in by_source.items():
        assert _window_ok(sends, *LIMITS[source]), source
    if dest_limit:
        for sends in by_dest.values():
            assert _window_ok(sends, dest_mps, dest_burst)

    # Order per (source, destination, priority).
    position = {m.id: i for i, m in enumerate(pushed)}
    lanes: dict[tuple[str, str, int], list[int]] = defaultdict(list)
    for _, m in sent:
        lanes[(m.source, m.dest, m.priority)].append(position[m.id])
    assert all(ids == sorted(ids) for ids in lanes.values())


@settings(max_examples=40, deadline=None)
@given(parts=st.lists(st.integers(1, 3), min_size=1, max_size=40),
       step=st.sampled_from([0.01, 0.1, 0.25, 1.0]))
def test_single_part_traffic_never_exceeds_rate_times_window_plus_burst(
        parts: list[int], step: float) -> None:
    """Backlogged single-segment senders: the classic bound, rate * w + burst."""
    s: Scheduler[Msg] = Scheduler(LIMITS.__getitem__)
    for i, _ in enumerate(parts):
        for source in SOURCES:
            s.push(Msg(source, DESTS[0], i % 2, 1, float("inf"), next(_ids)), 0.0)
    sent: list[tuple[float, Msg]] = []
    now = 0.0
    while len(s):
        s.pop_ready(now, lambda m, t: sent.append((t, m)), lambda m: None, 1000)  # type: ignore[func-returns-value]
        now += step
    for source, (rate, burst) in LIMITS.items():
        times = [t for t, m in sent if m.source == source]
        for j, tj in enumerate(times):
            for i in range(j + 1):
                assert j - i + 1 <= rate * (tj - times[i]) + burst + 1e-6
