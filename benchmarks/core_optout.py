"""The opt-out check on every submit, against a list of ten million entries.

The list: random mobile-length E.164 recipients (10–12 digits under common country
codes) over five scopes — three programs, one lone sender and STOPALL (5 %) — loaded
the way the daemon loads it from its store, rows grouped by scope. Checks ask one
program scope for recipients drawn the same way (so almost all are on no list), and
for recipients that are on it. Times are CPU time of this process, so other work on a
shared machine counts less. Memory is what the list holds (`OptOutList.nbytes`: arrays,
bitmap, containers), per million entries, with the process's RSS growth beside it.

Run alone: ``python -m benchmarks.core_optout [entries]``.
"""

from __future__ import annotations

import gc
import random
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator

from router.optout import ALL, OptOutList

#: (scope, share of the entries); the shares add up to 1.
SCOPES = (("acme-alerts", 0.40), ("acme-marketing", 0.30), ("globex-otp", 0.15),
          ("18005550100", 0.10), (ALL, 0.05))
COUNTRY_CODES = ("1", "44", "49", "33", "91", "55", "234", "61")
CHECKS = 200_000


def _recipient(rng: random.Random) -> str:
    code = rng.choice(COUNTRY_CODES)
    return code + str(rng.randrange(10**8, 10**(12 - len(code))))


def _entries(entries: int, seed: int) -> Iterator[tuple[str, str]]:
    """The rows, grouped by scope; each scope draws from its own seeded generator."""
    for scope, share in SCOPES:
        rng = random.Random(f"{seed}/{scope}")
        for _ in range(int(entries * share)):
            yield scope, _recipient(rng)


def _rss() -> int:
    """Resident set size in bytes (Linux), 0 where /proc is missing."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096
    except OSError:
        return 0


def _generation_s(entries: int) -> float:
    """CPU seconds that generating `entries` rows costs, timed on a tenth of them."""
    started = time.process_time()
    deque(_entries(entries // 10, seed=3), maxlen=0)
    return (time.process_time() - started) * 10


def _per_check_us(check: Callable[[str, str], bool], pairs: list[tuple[str, str]]) -> float:
    """Best of three CPU-timed passes over `pairs`, in µs per check."""
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        for scope, recipient in pairs:
            check(scope, recipient)
        best = min(best, time.process_time() - started)
    return best / len(pairs) * 1e6


def bench_opt_out(entries: int = 10_000_000) -> dict[str, float]:
    """Build the list, time `is_opted_out` off and on it, and measure its memory.

    Returns {"opt_out_check_us", "opt_out_check_hit_us", "opt_out_mb_per_million",
    "opt_out_load_s"} and prints a table. Raises AssertionError if an entry checks as
    not opted out.
    """
    gc.collect()
    rss_before = _rss()
    started = time.process_time()
    optouts = OptOutList.load(_entries(entries, seed=1))
    load_s = time.process_time() - started
    gen_s = _generation_s(entries)
    gc.collect()
    rss_delta = _rss() - rss_before
    held = optouts.nbytes()
    size = len(optouts)

    rng = random.Random(2)
    strangers = [("acme-alerts", _recipient(rng)) for _ in range(CHECKS)]
    # The first rows of each scope again (same seeds); STOPALL rows checked from a program.
    on_list = [("acme-alerts" if s == ALL else s, r)
               for s, r in _entries(min(entries, CHECKS), seed=1)]
    if not all(optouts.is_opted_out(s, r) for s, r in on_list):
        raise AssertionError("an entry of the list checked as not opted out")
    check = optouts.is_opted_out
    miss_us = _per_check_us(check, strangers)
    hit_us = _per_check_us(check, on_list)
    mb_per_million = held / 1e6 / (size / 1e6)

    rows = [
        ("entries (5 scopes, 5 % STOPALL)", f"{size:,}"),
        ("load (rows generated on the fly)",
         f"{load_s:.1f} CPU-s, of which ~{gen_s:.1f} generating the rows"),
        ("memory held by the list", f"{held / 1e6:,.0f} MB ({mb_per_million:.1f} MB per million)"),
        ("process RSS growth over the load", f"{rss_delta / 1e6:,.0f} MB"),
        ("is_opted_out, recipient on no list", f"{miss_us:.2f} µs"),
        ("is_opted_out, recipient on the list", f"{hit_us:.2f} µs"),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"\n{'opt-out list':<{width}}  value")
    print(f"{'-' * width}  {'-' * 36}")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    return {"opt_out_check_us": miss_us, "opt_out_check_hit_us": hit_us,
            "opt_out_mb_per_million": mb_per_million, "opt_out_load_s": load_s}


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    figures = bench_opt_out(int(args[0]) if args else 10_000_000)
    print(f"RESULT opt_out_check_us={figures['opt_out_check_us']:.2f} us")
    print(f"RESULT opt_out_mb_per_million={figures['opt_out_mb_per_million']:.1f} MB")


if __name__ == "__main__":
    main()
