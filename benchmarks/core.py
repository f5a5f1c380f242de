"""Core benchmarks: routing decisions, the scheduler under real limits, memory per number.

Run: ``python -m benchmarks.core``.  Prints a table, then RESULT lines.

Scheduler scenario (fixed seed): 100,000 active source numbers under real
limits — 90 % long codes at 1 segment/s (burst 1), 9 % toll-free at 3/s
(burst 3), 1 % short codes at 100/s (burst 100) — with a fixed mix of 70 %
1-part and 30 % 3-part messages, on a simulated clock advancing 50 ms per
step.  Every number starts with one queued message; 50,000 messages per
simulated second then arrive at random numbers (~80 % of the long codes'
capacity, so queues form and drain).  ``try_send`` always accepts.  One
scheduler op is one message enqueued *and* handed out; only ``push`` and
``pop_ready`` are timed, in process CPU time (the figure should not depend on
what else the machine is doing).

``bytes_per_active_number`` is the limiter-only figure: a number with live
limiter state, its string and its cached limits, by tracemalloc.  The table
also shows the cost with a lane holding one queued message (the message
itself excluded).
"""

from __future__ import annotations

import gc
import random
import time
import tracemalloc
from collections.abc import Callable

from router.scheduler import Scheduler
from router.throttle import Gcra

NUMBERS = 100_000
STEP_S = 0.05
ARRIVALS_PER_S = 50_000
SIM_SECONDS = 10
SEED = 20240601


class Msg:
    """A queued message as the scheduler sees it."""

    __slots__ = ("dest", "expires_at", "priority", "segments", "source")

    def __init__(self, source: str, dest: str, priority: int, segments: int,
                 expires_at: float) -> None:
        self.source = source
        self.dest = dest
        self.priority = priority
        self.segments = segments
        self.expires_at = expires_at


def numbers(count: int = NUMBERS) -> list[str]:
    """90 % long codes, 9 % toll-free, 1 % short codes."""
    out = []
    for i in range(count):
        kind = i % 100
        if kind == 0:
            out.append(f"{60000 + i // 100}")
        elif kind <= 9:
            out.append(f"1800{i:07d}")
        else:
            out.append(f"1202{i:07d}")
    return out


#: The `[limits]` table as the config would give it: first matching prefix wins.
LIMITS = [("1800", 3.0, 3), ("6", 100.0, 100)]
DEFAULT = (1.0, 1)


def policy(number: str) -> tuple[float, int]:
    """Per-number (segments per second, burst), as from `[[limits.numbers]]`."""
    for prefix, mps, burst in LIMITS:
        if number.startswith(prefix):
            return mps, burst
    return DEFAULT


def bench_scheduler(repeat: int = 3) -> dict[str, float]:
    """The scenario's best of ``repeat`` runs (as timeit: the least disturbed one)."""
    runs = [_scheduler_run() for _ in range(repeat)]
    return min(runs, key=lambda run: run["seconds"])


def _scheduler_run() -> dict[str, float]:
    """Run the scenario once; returns counts and the timed CPU seconds."""
    rng = random.Random(SEED)
    pool = numbers()
    sched: Scheduler[Msg] = Scheduler(policy)
    taken = 0

    def accept(item: Msg, now: float) -> None:
        return None

    def expired(item: Msg) -> None:
        raise AssertionError("nothing expires in this scenario")

    def batch(count: int, now: float) -> list[Msg]:
        return [Msg(rng.choice(pool), "447700900123", int(rng.random() < 0.1),
                    3 if rng.random() < 0.3 else 1, now + 86400.0) for _ in range(count)]

    pushed = 0
    timed = 0.0
    first = [Msg(n, "447700900123", 0, 3 if rng.random() < 0.3 else 1, 86400.0) for n in pool]
    per_step = int(ARRIVALS_PER_S * STEP_S)
    now = 0.0
    steps = int(SIM_SECONDS / STEP_S)
    for step in range(steps + 1):
        now = step * STEP_S
        items = first if step == 0 else batch(per_step, now)
        t0 = time.process_time()
        for item in items:
            sched.push(item, now)
        taken += sched.pop_ready(now, accept, expired, 1_000_000)
        timed += time.process_time() - t0
        pushed += len(items)
    return {"pushed": pushed, "taken": taken, "left": len(sched), "seconds": timed,
            "sim_seconds": now}


def bench_gcra() -> float:
    """try_acquire calls per second on a per-number limiter (100k keys, round robin)."""
    g = Gcra.per_key(policy)
    pool = numbers()
    now = 0.0
    t0 = time.process_time()
    for rnd in range(5):
        now = rnd * 0.5
        for n in pool:
            g.try_acquire(n, 1, now)
    return 5 * len(pool) / (time.process_time() - t0)


def _traced(build: Callable[[], object]) -> tuple[int, object]:
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    keep = build()
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return after - before, keep


def memory_limiter_only(count: int = NUMBERS) -> float:
    """Bytes per number with a live TAT, the number's string included."""
    def build() -> Gcra:
        g = Gcra.per_key(policy)
        for i in range(count):
            g.acquire(f"1202{i:07d}", 3, 0.0)         # a fresh string, as after a message
        return g
    size, keep = _traced(build)
    assert isinstance(keep, Gcra) and len(keep) == count
    return size / count


def memory_with_queues(count: int = NUMBERS) -> float:
    """Bytes per number with a live TAT and a lane holding one queued message.

    The messages (and the number strings they carry) exist before the
    measurement: they belong to the message model, not to the scheduler.
    """
    pool = [f"1202{i:07d}" for i in range(count)]
    msgs = [Msg(n, "447700900123", 0, 1, 86400.0) for n in pool for _ in (0, 1)]

    def build() -> Scheduler[Msg]:
        sched: Scheduler[Msg] = Scheduler(policy)
        for m in msgs:
            sched.push(m, 0.0)
        sched.pop_ready(0.0, lambda item, now: None, lambda item: None, count)
        return sched
    size, keep = _traced(build)
    assert isinstance(keep, Scheduler) and len(keep) == count
    assert len(keep.source_limiter) == count
    return size / count


def bench_routing() -> dict[str, float] | None:
    """The routing figures from benchmarks.core_routing, or None if it is not there."""
    try:
        from benchmarks.core_routing import bench_routing as run
    except ImportError:
        return None
    return dict(run())


def main() -> None:
    """Print the table and the RESULT lines."""
    figures = bench_routing()
    routing = None if figures is None else figures["routing_decisions_per_s"]
    sched = bench_scheduler()
    gcra_rate = bench_gcra()
    limiter_b = memory_limiter_only()
    queued_b = memory_with_queues()
    ops = sched["taken"] / sched["seconds"]

    rows = [
        ("routing decisions, steady", "routing benchmark not available" if figures is None
         else f"{routing:,.0f} /s (cold table: "
              f"{figures.get('routing_decisions_per_s_cold', 0):,.0f} /s)"),
        ("scheduler: active numbers", f"{NUMBERS:,} (90% 1/s, 9% 3/s, 1% 100/s)"),
        ("scheduler: simulated", f"{sched['sim_seconds']:.0f} s, {sched['pushed']:,} pushed, "
                                 f"{sched['taken']:,} handed out, {sched['left']:,} left"),
        ("scheduler: timed push+pop", f"{sched['seconds']:.2f} CPU-s (best of 3 runs)"),
        ("scheduler ops (push + hand-out)", f"{ops:,.0f} per CPU-second"),
        ("GCRA try_acquire, 100k keys", f"{gcra_rate:,.0f} per CPU-second"),
        ("bytes/number, limiter only", f"{limiter_b:,.0f} B (TAT, number string, cached limits)"),
        ("bytes/number, limiter + lane", f"{queued_b:,.0f} B (TAT + lane of one; message excluded)"),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"{'benchmark':<{width}}  value")
    print(f"{'-' * width}  {'-' * 40}")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    if routing is not None:
        print(f"RESULT routing_decisions_per_s={routing:.0f} 1/s")
    print(f"RESULT scheduler_ops_per_s={ops:.0f} 1/s")
    print(f"RESULT bytes_per_active_number={limiter_b:.0f} B")
    from benchmarks.core_optout import main as opt_out_main

    opt_out_main([])  # the opt-out list at 10M entries: its own table and RESULT lines


if __name__ == "__main__":
    main()
