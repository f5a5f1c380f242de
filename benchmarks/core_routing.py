"""Routing decisions per second on a realistic 50,000-prefix table.

The table: route prefixes of 1–7 digits under real country codes, three carriers with
rate decks of about the same size, most routes priced by the decks, some by route
costs, a few restricted to source numbers or tags. One carrier's circuit is open, so
every decision also records skips. Destinations are a fixed random set of mobile-length
numbers from 1,000 senders. Times are CPU time of this process (one core), so other
work on a shared machine does not count against it.

Run alone: ``python -m benchmarks.core_routing``.
"""

from __future__ import annotations

import random
import time
from types import SimpleNamespace as NS
from typing import Any

from router.health import HealthBoard, Outcome
from router.routing import RoutingTable

#: Country codes weighted roughly by SMS traffic (heavier codes get more prefixes).
COUNTRY_CODES = {
    "1": 20, "44": 8, "49": 6, "33": 5, "34": 4, "39": 4, "31": 3, "7": 5, "91": 10,
    "86": 6, "55": 6, "52": 5, "62": 5, "63": 4, "234": 4, "254": 2, "27": 3, "20": 3,
    "971": 2, "966": 2, "61": 3, "81": 3, "82": 2, "90": 3, "48": 2, "351": 1, "353": 1,
}
CARRIERS = ("acme", "globex", "initech")
HEALTH = NS(error_rate=0.5, window_s=30.0, min_samples=20, cooldown_s=15.0, probes=3)


def _prefixes(rng: random.Random, count: int) -> list[str]:
    codes, weights = list(COUNTRY_CODES), list(COUNTRY_CODES.values())
    out: set[str] = set()
    while len(out) < count:
        code = rng.choices(codes, weights)[0]
        length = rng.randint(max(1, len(code)), 7)
        out.add(code + "".join(rng.choices("0123456789", k=length - len(code))))
    return sorted(out)


def _deck(rng: random.Random, count: int) -> dict[str, float]:
    return {p: round(rng.uniform(0.001, 0.08), 5) for p in _prefixes(rng, count)}


def _routes(rng: random.Random, count: int) -> list[Any]:
    routes = [NS(prefix="", carriers=[NS(name=c, cost=None) for c in CARRIERS], sources=[], tags={})]
    for prefix in _prefixes(rng, count - 1):
        chosen = rng.sample(CARRIERS, rng.randint(2, 3))
        priced = rng.random() < 0.2  # a fifth of the routes carry negotiated route costs
        carriers = [NS(name=c, cost=round(rng.uniform(0.001, 0.05), 4) if priced else None) for c in chosen]
        roll = rng.random()
        sources = ["1800", "1888"] if roll < 0.03 else []
        tags = {"campaign": "otp"} if 0.03 <= roll < 0.06 else {}
        routes.append(NS(prefix=prefix, carriers=carriers, sources=sources, tags=tags))
    return routes


def _board(now: float) -> HealthBoard:
    board = HealthBoard()
    for name in CARRIERS:
        board.add(name, HEALTH, now=now).bind_up("trx-0", True, now)
    for _ in range(HEALTH.min_samples):  # globex answers everything with errors
        board["globex"].record(Outcome.TRANSIENT, 0.05, now)
    return board


def _traffic(rng: random.Random, count: int) -> list[tuple[str, str, dict[str, str] | None]]:
    codes, weights = list(COUNTRY_CODES), list(COUNTRY_CODES.values())
    senders = [f"1{rng.randint(200, 999)}{rng.randint(0, 9_999_999):07d}" for _ in range(990)]
    senders += [f"1800{rng.randint(0, 9_999_999):07d}" for _ in range(10)]
    tag_sets = [None, None, None, {"campaign": "otp"}, {"campaign": "mkt"}]
    traffic = []
    for _ in range(count):
        code = rng.choices(codes, weights)[0]
        dest = code + "".join(rng.choices("0123456789", k=11 - len(code)))
        traffic.append((dest, rng.choice(senders), rng.choice(tag_sets)))
    return traffic


def _pass(table: RoutingTable, traffic: list[Any], usable: Any) -> tuple[float, int]:
    decide = table.decide
    skipped = 0
    start = time.process_time()
    for dest, source, tags in traffic:
        decision = decide(dest, source, tags, usable)
        if decision is not None and decision.skipped:
            skipped += 1
    return time.process_time() - start, skipped


def bench_routing(prefixes: int = 50_000, decisions: int = 200_000) -> dict[str, float]:
    """Decisions per second of ``RoutingTable.decide`` on a ``prefixes``-route table.

    The table resolves each prefix on first use (bounded by the table, not the
    traffic). The first pass over the fixed destinations pays for that and is shown
    as the cold figure; the headline is the second pass, the steady state of a
    daemon that has seen these destinations' prefixes since its last reload.
    """
    rng = random.Random(20240611)
    decks = {name: _deck(rng, prefixes) for name in CARRIERS}
    routes = _routes(rng, prefixes)
    start = time.process_time()
    table = RoutingTable.build(routes, decks)
    build_s = time.process_time() - start
    usable = _board(0.0).checker(1.0)
    traffic = _traffic(rng, decisions)
    cold_s, _ = _pass(table, traffic, usable)
    timed_s, skipped = _pass(table, traffic, usable)
    return {
        "routing_decisions_per_s": round(decisions / timed_s),
        "routing_decisions_per_s_cold": round(decisions / cold_s),
        "routing_build_s": round(build_s, 3),
        "routing_skipped_share": round(skipped / decisions, 3),
    }


def main() -> None:
    prefixes, decisions = 50_000, 200_000
    result = bench_routing(prefixes, decisions)
    print(f"routing: {prefixes:,} route prefixes, 3 rate decks of ~{prefixes:,}, {decisions:,} decisions")
    print(f"  {'table build':<34}{result['routing_build_s']:>12.3f} s")
    print(f"  {'decisions/s, cold table':<34}{result['routing_decisions_per_s_cold']:>12,}")
    print(f"  {'decisions/s, steady state':<34}{result['routing_decisions_per_s']:>12,}")
    print(f"  {'decisions that skipped a carrier':<34}{result['routing_skipped_share']:>12.1%}")
    print(f"RESULT routing_decisions_per_s={result['routing_decisions_per_s']} 1/s")


if __name__ == "__main__":
    main()
