"""Traffic under faults: a carrier dies and returns, fails, throttles; numbers are held to their limits.

The router runs in process (`Router`) with in-process simulators; times come from the
simulators' own receive stamps (`SubmitRecord.at`), i.e. what the carrier saw.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

from tests.e2e.harness import Load, Router, SimOptions, route, text_of, tokens_of, until

#: A carrier's death must move traffic within this (bind loss is seen at once; the
#: margin is for a loaded 2-core machine).
DETECT_S = 1.0
#: ... and its return bring it back within this (reconnect_max_s is 0.3 in test configs).
RECOVER_S = 3.0


def _pair(tmp_path: Path, sim: SimOptions | None = None, **entries: dict) -> Router:
    return Router(
        tmp_path,
        {"cheap": sim or SimOptions(), "dear": SimOptions()},
        [route("", ("cheap", 0.001), ("dear", 0.002))],
        entries=entries,
    )


async def test_dead_cheapest_carrier_fails_over_and_comes_back(tmp_path: Path) -> None:
    async with _pair(tmp_path) as r:
        load = Load(r.socket_url, interval=0.01)
        load.start()
        first = r.sims["cheap"]
        await until(lambda: len(first.received) >= 30, what="traffic on cheap")
        killed_at = time.time()
        await first.stop()
        await until(lambda: any(rec.at > killed_at for rec in r.sims["dear"].received), what="traffic on dear")
        await asyncio.sleep(0.5)
        revived = await r.restart_sim("cheap")
        revived_at = time.time()
        await until(lambda: len(revived.received) >= 20, timeout=10, what="traffic back on cheap")
        await load.stop()
        ids = {mid: tok for tok, (mid, _) in load.acked.items()}
        await until(lambda: "SENDING" not in r.mdr_status(ids).values() and "QUEUED" not in r.mdr_status(ids).values(),
                    what="every message settled")
        status = r.mdr_status(ids)
        dear = r.sims["dear"].received

    moved = min(rec.at for rec in dear if rec.at > killed_at) - killed_at
    back = min(rec.at for rec in revived.received) - revived_at
    assert moved < DETECT_S, f"traffic moved {moved:.2f} s after the kill"
    assert back < RECOVER_S, f"traffic came back {back:.2f} s after the carrier did"
    # Only the cheap carrier's downtime went to the dear one.
    assert all(killed_at <= rec.at <= revived_at + RECOVER_S for rec in dear)
    seen = tokens_of([*first.received, *dear, *revived.received])
    for token, (mid, _) in load.acked.items():
        if status[mid] == "UNKNOWN":  # in flight when the carrier died: in doubt, never resent
            assert len(seen.get(token, [])) <= 1, token
        else:
            assert len(seen.get(token, [])) == 1, (token, status[mid], seen.get(token))
    assert not load.refused and not load.lost


async def test_system_error_fails_over_to_the_next_carrier(tmp_path: Path) -> None:
    async with _pair(tmp_path, SimOptions(fail_rate=1.0)) as r:
        replies = [await r.client.submit("ACME", "4915112345678", text=f"sys {i}") for i in range(12)]
        ids = [m["id"] for m in replies]
        await until(lambda: set(r.mdr_status(ids).values()) <= {"SUBMITTED", "DELIVERED"}, what="all accepted")
        mdrs = [(await r.client.status(i))["mdr"] for i in ids]
        cheap, dear = r.sims["cheap"].received, r.sims["dear"].received

    assert all(rec.status == 0x08 for rec in cheap)  # ESME_RSYSERR every time
    assert sorted(text_of(rec) for rec in dear) == sorted(f"sys {i}" for i in range(12))
    assert all(m["carrier"] == "dear" for m in mdrs)
    first = mdrs[0]["attempts"]
    assert [(a["carrier"], a["status"]) for a in first] == [("cheap", "ESME_RSYSERR"), ("dear", "ESME_ROK")]
    # The breaker opens after min_samples failures: later messages skip cheap altogether.
    assert len(cheap) < 12


async def test_throttled_carrier_keeps_its_messages_slower_and_in_order(tmp_path: Path) -> None:
    # The carrier takes 20/s while the config says 200: it answers ESME_RTHROTTLED.
    n, real_tps = 50, 20
    sim = SimOptions(throttle_tps=real_tps)
    async with _pair(tmp_path, sim, cheap={"tps": 200, "throttle_failover_s": 30}) as r:
        replies = []
        for i in range(n):  # paced under the configured tps, so none overflows to dear
            replies.append(await r.client.submit("4930111", "4915112345678", text=f"thr {i:03d}"))
            await asyncio.sleep(0.006)
        ids = [m["id"] for m in replies]
        await until(lambda: set(r.mdr_status(ids).values()) <= {"SUBMITTED", "DELIVERED"}, timeout=20,
                    what="all accepted")
        mdrs = [(await r.client.status(i))["mdr"] for i in ids]
        cheap = r.sims["cheap"].received

    accepted = [rec for rec in cheap if rec.status == 0]
    throttled = [rec for rec in cheap if rec.status == 0x58]
    assert throttled, "the simulator did throttle"
    was_throttled = [m for m in mdrs if any(a["status"] == "ESME_RTHROTTLED" for a in m["attempts"])]
    assert was_throttled
    for m in was_throttled:  # retried on the same carrier, never failed over
        assert m["carrier"] == "cheap" and {a["carrier"] for a in m["attempts"]} == {"cheap"}, m
    on_cheap = [m["id"] for m in mdrs if m["carrier"] == "cheap"]
    texts = [text_of(rec) for rec in accepted]
    assert texts == sorted(texts), "order kept on the carrier"
    assert len(accepted) == len(on_cheap)
    span = accepted[-1].at - accepted[0].at
    assert span >= (len(accepted) / real_tps - 1) * 0.9, f"{len(accepted)} at {real_tps}/s took {span:.2f} s"
    # While cheap's limiter is lowered, new messages overflow to dear ("at capacity").
    assert len(accepted) + len(r.sims["dear"].received) == n


async def test_per_number_limits_hold_at_the_carrier(tmp_path: Path) -> None:
    three_parts = "y" * 400
    router = Router(
        tmp_path, {"cheap": SimOptions()}, [route("", ("cheap", 0.001))],
        limits={"default_mps": 1000, "burst": 1000},
        number_limits=[{"match": "1800", "mps": 10, "burst": 1}],
    )
    async with router as r:
        texts = [three_parts, "a", "b", "c", "d"]
        await asyncio.gather(
            *(r.client.submit("18005550100", "4915112345678", text=t) for t in texts),
            *(r.client.submit("4930999", "4915112345678", text=f"free {i}") for i in range(5)),
        )
        await until(lambda: len(r.sims["cheap"].received) >= 3 + 4 + 5, what="all parts")
        recs = r.sims["cheap"].received

    limited = [rec for rec in recs if rec.source_addr == "18005550100"]
    free = [rec for rec in recs if rec.source_addr == "4930999"]
    starts = [limited[0].at] + [rec.at for rec in limited[3:]]  # the 3 parts go together
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    # 10 segments/s: the 3-part message holds the number 0.3 s, each single one 0.1 s.
    slack = 0.01
    assert gaps[0] >= 0.3 - slack and all(g >= 0.1 - slack for g in gaps[1:]), gaps
    assert limited[2].at - limited[0].at < 0.05, "parts of one message go together"
    # The unlimited number is not queued behind the limited one.
    assert max(rec.at for rec in free) < starts[1]
