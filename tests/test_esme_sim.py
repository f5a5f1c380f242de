"""CarrierPool against the carrier simulator (the SMSC role of our own session), in process."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from adapters.carrier_sim import CarrierSim
from adapters.smpp import pdu as P
from adapters.smpp.esme import ResultKind
from tests.test_esme import Recorder, bound, carrier, make_pool, send, wait_until  # noqa: F401


@pytest.fixture
async def start_sim() -> AsyncIterator[Callable[..., Any]]:
    sims: list[CarrierSim] = []

    async def start(**options: Any) -> CarrierSim:
        sim = CarrierSim(**options)
        await sim.start()
        sims.append(sim)
        return sim

    yield start
    for sim in sims:
        await sim.stop()


def with_receipt(text: str) -> P.SubmitSm:
    return P.SubmitSm(
        source_addr_ton=5, source_addr="ACME", dest_addr_ton=1, dest_addr_npi=1,
        destination_addr="447700900123", registered_delivery=1, short_message=text.encode(),
    )


async def test_window_and_receipts_against_the_simulator(start_sim: Any, make_pool: Any) -> None:
    sim = await start_sim(window=4)
    rec = Recorder()
    receipts: list[str] = []

    def on_deliver(bind_id: str, pdu: Any) -> int:
        receipts.append(bind_id)
        return 0

    pool = await make_pool(carrier(sim.port, binds={"transceiver": 2}, window=4), rec, on_deliver=on_deliver)
    await bound(pool, 2)
    now = time.time()
    for i in range(200):
        pool.submit(i, [with_receipt(f"m{i}")], now)
    await wait_until(lambda: len(rec.results) == 200 and len(receipts) == 200, timeout=10.0)
    assert sorted(rec.final(ResultKind.ACCEPTED)) == list(range(200))  # type: ignore[type-var]
    assert sim.stats["window_violations"] == 0 and sim.stats["submits"] == 200
    assert len({r.message_id for _, _, r in rec.results}) == 200
    await wait_until(lambda: sim.stats["receipts_acked"] == 200)
    assert set(receipts) <= {"transceiver-0", "transceiver-1"}


async def test_already_bound_then_bound_against_the_simulator(start_sim: Any, make_pool: Any) -> None:
    sim = await start_sim(alybnd_first=1)
    rec = Recorder()
    pool = await make_pool(carrier(sim.port, stale_session_s=0.2), rec)
    await bound(pool)
    assert [c[2:] for c in rec.changes] == [(False, "already_bound"), (True, "bound")]
    assert sim.stats["binds_refused"] == 1 and sim.stats["binds"] == 1


async def test_simulator_throttling_lowers_the_rate_and_loses_nothing(start_sim: Any, make_pool: Any) -> None:
    sim = await start_sim(throttle_tps=40)
    rec = Recorder()
    pool = await make_pool(carrier(sim.port, tps=400.0, window=4), rec)
    await bound(pool)
    tokens = [f"m{i}" for i in range(60)]
    await send(pool, tokens)
    await wait_until(lambda: len(rec.final(ResultKind.ACCEPTED)) == 60, timeout=10.0)
    assert sorted(rec.final(ResultKind.ACCEPTED)) == sorted(tokens)  # each exactly once
    assert rec.final(ResultKind.THROTTLED) and pool.stats["tps_now"] < 400.0
    statuses = sim.stats["submit_status"]
    assert statuses["ESME_ROK"] == 60 and statuses["ESME_RTHROTTLED"] == len(rec.final(ResultKind.THROTTLED))
