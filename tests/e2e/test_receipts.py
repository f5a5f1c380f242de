"""Delivery receipts end to end: what the carrier answers and reports becomes the right MDR.

The router runs in process (`Router`) against simulated carriers; each test reads the
simulator's own record of every submit (`SubmitRecord.message_id` is the id it answered)
and checks the MDR the router made of it: status, `dlr_stat`, `carrier_ids` in part order,
`done_at`. DESIGN.md flow step 5 and "MDR fields"; SMPP-NOTES.md "Delivery receipts".
"""

from __future__ import annotations

import asyncio
import csv
import io
import sqlite3
import sys
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any

import pytest

from adapters.client import AsyncClient
from tests.e2e.harness import Router, SimOptions, route, text_of, tokens_of, until

TO = "4915112345678"
#: Destinations the simulator reports UNDELIV for (`undeliverable_numbers`).
DEAD_PREFIX = "4477"
DEAD_TO = "447700900123"
#: MDR statuses no later event may change (an UNKNOWN may still be settled, see below).
FINAL = frozenset({"DELIVERED", "UNDELIVERABLE", "EXPIRED", "REJECTED", "FAILED", "UNKNOWN"})


def _router(tmp_path: Path, sim: SimOptions, **entry: Any) -> Router:
    return Router(tmp_path, {"acme": sim}, [route("", ("acme", 0.001))], entries={"acme": entry})


async def _submit(r: Router, n: int, *, to: str = TO, prefix: str = "t", **kw: Any) -> dict[str, str]:
    """Submit `n` messages concurrently, each text carrying a token; token → router id."""
    tokens = [f"{prefix}{i:06d}" for i in range(n)]
    text = kw.pop("text", "")
    replies = await asyncio.gather(*(
        r.client.submit("ACME", to, text=f"{text}msg {t}", client_ref=t, **kw) for t in tokens
    ))
    assert all(rep["ok"] for rep in replies), [rep for rep in replies if not rep["ok"]]
    return {t: rep["id"] for t, rep in zip(tokens, replies)}


async def _settled(r: Router, ids: Iterable[str], want: AbstractSet[str], timeout: float = 15.0) -> dict[str, dict[str, Any]]:
    """Wait until every id has a status in `want`; router id → MDR (through the `status` op)."""
    ids = list(ids)
    await until(lambda: set(r.mdr_status(ids).values()) <= want, timeout,
                f"statuses {sorted(want)}, have {sorted(set(r.mdr_status(ids).values()))}")
    return {i: (await r.client.status(i))["mdr"] for i in ids}


def _answered(r: Router, prefix: str = "t") -> dict[str, list[str]]:
    """Token → the message ids the simulator answered for its parts, in part order."""
    return {tok: [rec.message_id for rec in recs] for tok, recs in tokens_of(r.sims["acme"].received, prefix).items()}


def _check_delivered(mdrs: Mapping[str, Mapping[str, Any]], ids: Mapping[str, str],
                     answered: Mapping[str, list[str]]) -> None:
    for token, mid in ids.items():
        mdr = mdrs[mid]
        assert mdr["status"] == "DELIVERED", mdr
        assert mdr["dlr_stat"] == "DELIVRD", mdr
        assert mdr["error"] is None and mdr["error_code"] is None, mdr
        assert mdr["carrier_ids"] == answered[token], (mdr, answered[token])
        assert mdr["done_at"] is not None and mdr["done_at"] >= mdr["submitted_at"], mdr


# -- message ids spelled differently in the response and the receipt ----------------------

#: (carrier message_id_format, simulator id_format, simulator receipt_id_format). The ids
#: start at 0xFFF0 so the run holds hex ids with letters (fff0) and all-digit ones (10000,
#: which is 65536 in the receipt), the ambiguity `auto` has to live with.
ID_CASES = [
    pytest.param("auto", "hex", "dec", id="auto-hex-resp-dec-receipt"),
    pytest.param("auto", "dec", "hex", id="auto-dec-resp-hex-receipt"),
    pytest.param("dec", "hex", "dec", id="dec-hex-resp-dec-receipt"),
    pytest.param("hex", "dec", "hex", id="hex-dec-resp-hex-receipt"),
]


@pytest.mark.parametrize(("fmt", "resp", "receipt"), ID_CASES)
async def test_ids_in_other_bases_correlate(tmp_path: Path, fmt: str, resp: str, receipt: str) -> None:
    sim = SimOptions(id_format=resp, receipt_id_format=receipt, first_id=0xFFF0, dlr_delay_ms=20)
    async with _router(tmp_path, sim, message_id_format=fmt, receipt_timeout_s=3) as r:
        ids = await _submit(r, 40)
        mdrs = await _settled(r, ids.values(), FINAL)
        answered = _answered(r)

    # Hex spellings of 65520.. (on whichever side is hex) include letters and digits only.
    hex_side = [a[0] for a in answered.values()] if resp == "hex" else [format(int(a[0]), "x") for a in answered.values()]
    assert any(not h.isdigit() for h in hex_side) and any(h.isdigit() for h in hex_side)
    _check_delivered(mdrs, ids, answered)


async def test_receipt_before_its_submit_response(tmp_path: Path) -> None:
    sim = SimOptions(receipts_first=True, id_format="hex", receipt_id_format="dec", first_id=0xA0)
    async with _router(tmp_path, sim) as r:
        ids = await _submit(r, 30)
        mdrs = await _settled(r, ids.values(), FINAL)
        answered = _answered(r)

    _check_delivered(mdrs, ids, answered)


async def test_receipts_on_the_receiver_bind(tmp_path: Path) -> None:
    async with _router(tmp_path, SimOptions(), binds={"transmitter": 1, "receiver": 1}) as r:
        ids = await _submit(r, 30)
        mdrs = await _settled(r, ids.values(), FINAL)
        answered = _answered(r)
        sim = r.sims["acme"]

    _check_delivered(mdrs, ids, answered)
    # Submits went on the transmitter only; every receipt came back on the receiver.
    assert {a["bind"] for m in mdrs.values() for a in m["attempts"]} == {"transmitter-0"}
    assert sim.stats["receipts_acked"] == 30


def _parts_by_token(records: Iterable[Any]) -> dict[str, list[str]]:
    """Token → answered ids of all parts of its message, grouped by UDH reference.

    Only the last part carries the token in its text; the parts of one message share the
    8-bit reference (IEI 0x00, 3GPP TS 23.040 §9.2.3.24.1) and are numbered by the UDH.
    """
    by_ref: dict[int, dict[int, Any]] = {}
    for rec in records:
        udh = rec.short_message[:6]
        assert rec.esm_class & 0x40 and udh[:3] == b"\x05\x00\x03", "a UDH part"
        by_ref.setdefault(udh[3], {})[udh[5]] = rec
    out = {}
    for parts in by_ref.values():
        ordered = [parts[i] for i in sorted(parts)]
        token = text_of(ordered[-1]).split()[-1]
        out[token] = [rec.message_id for rec in ordered]
    return out


async def test_multipart_with_a_receipt_per_part(tmp_path: Path) -> None:
    text = "".join(f"{i:04d} " for i in range(80))  # 400 GSM characters: 3 parts
    async with _router(tmp_path, SimOptions(dlr_delay_ms=30, id_format="hex", first_id=0xFFFE)) as r:
        ids = await _submit(r, 5, text=text)
        mdrs = await _settled(r, ids.values(), FINAL)
        answered = _parts_by_token(r.sims["acme"].received)
        receipts = r.sims["acme"].stats["receipts_acked"]

    assert receipts == 15, "one receipt per part"
    assert sorted(answered) == sorted(ids) and all(len(parts) == 3 for parts in answered.values())
    _check_delivered(mdrs, ids, answered)
    assert all(m["segments"] == 3 and m["cost"] == pytest.approx(0.003) for m in mdrs.values())


async def test_undeliverable_number_ends_undeliverable(tmp_path: Path) -> None:
    async with _router(tmp_path, SimOptions(undeliverable_numbers=(DEAD_PREFIX,))) as r:
        dead = await _submit(r, 5, to=DEAD_TO, prefix="d")
        alive = await _submit(r, 5, prefix="a")
        mdrs = await _settled(r, [*dead.values(), *alive.values()], FINAL)
        answered = {**_answered(r, "d"), **_answered(r, "a")}

    _check_delivered(mdrs, alive, answered)
    for token, mid in dead.items():
        mdr = mdrs[mid]
        assert (mdr["status"], mdr["dlr_stat"], mdr["error_code"]) == ("UNDELIVERABLE", "UNDELIV", 1), mdr
        assert mdr["carrier_ids"] == answered[token] and mdr["done_at"] is not None, mdr


@pytest.mark.parametrize("style", ["kannel", "uppercase", "minimal", "tlv", "payload"])
async def test_every_receipt_style_settles(tmp_path: Path, style: str) -> None:
    sim = SimOptions(receipt_style=style, undeliverable_numbers=(DEAD_PREFIX,), id_format="hex", first_id=0xABC)
    async with _router(tmp_path, sim) as r:
        alive = await _submit(r, 8, prefix="a")
        dead = await _submit(r, 2, to=DEAD_TO, prefix="d")
        mdrs = await _settled(r, [*alive.values(), *dead.values()], FINAL)
        answered = _answered(r, "a")

    _check_delivered(mdrs, alive, answered)
    assert {(mdrs[m]["status"], mdrs[m]["dlr_stat"]) for m in dead.values()} == {("UNDELIVERABLE", "UNDELIV")}


async def test_receipt_timeout_then_a_late_receipt_settles(tmp_path: Path) -> None:
    # The receipt comes 3 s after the submit; the router stops waiting after 1 s.
    async with _router(tmp_path, SimOptions(dlr_delay_ms=3000), receipt_timeout_s=1) as r:
        ids = await _submit(r, 3)
        timed_out = await _settled(r, ids.values(), {"UNKNOWN"}, timeout=5)
        late = await _settled(r, ids.values(), {"DELIVERED"}, timeout=8)
        answered = _answered(r)

    for mdr in timed_out.values():
        assert (mdr["error"], mdr["dlr_stat"]) == ("no_receipt", None), mdr
        assert mdr["done_at"] is not None, mdr
    _check_delivered(late, ids, answered)


async def test_without_dlr_submitted_is_final(tmp_path: Path) -> None:
    async with _router(tmp_path, SimOptions(), receipt_timeout_s=1) as r:
        ids = await _submit(r, 5, dlr=False)
        mdrs = await _settled(r, ids.values(), {"SUBMITTED"})
        # Past the receipt timeout and two housekeeping rounds: no receipt was asked for,
        # so none is waited for and the record does not turn UNKNOWN.
        await asyncio.sleep(2.5)
        later = await _settled(r, ids.values(), {"SUBMITTED"}, timeout=1)
        answered = _answered(r)
        records = list(r.sims["acme"].received)

    assert all(rec.registered_delivery & 0x03 == 0 for rec in records)
    for token, mid in ids.items():
        assert later[mid] == mdrs[mid], "nothing changes a SUBMITTED record that asked for no receipt"
        assert mdrs[mid]["carrier_ids"] == answered[token] and mdrs[mid]["done_at"] is not None


async def _stream_until_final(events: Any, ids: Iterable[str], timeout: float = 15.0) -> dict[str, list[dict[str, Any]]]:
    """Read `mdr` events until every id has had a final one; id → its MDRs in order."""
    seen: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}

    async def read() -> None:
        async for event in events:
            assert event["event"] == "mdr", event
            mdr = event["mdr"]
            if mdr["id"] in seen:
                seen[mdr["id"]].append(mdr)
            if all(s and s[-1]["status"] in FINAL for s in seen.values()):
                return

    await asyncio.wait_for(read(), timeout)
    return seen


async def test_subscribe_streams_every_change_up_to_the_final_one(tmp_path: Path) -> None:
    async with _router(tmp_path, SimOptions(dlr_delay_ms=50)) as r:
        async with await AsyncClient.connect(r.socket_url, timeout=10) as watcher:
            events = await watcher.subscribe(["mdr"])
            ids = (await _submit(r, 5, text="multi " * 40)).values()  # 2 parts each
            seen = await _stream_until_final(events, ids)
        final = await _settled(r, ids, FINAL)

    for mid, stream in seen.items():
        statuses = [m["status"] for m in stream]
        assert statuses[-1] == "DELIVERED", statuses
        assert "SUBMITTED" in statuses, statuses  # the intermediate change went out too
        assert [s for s in statuses if s in FINAL] == ["DELIVERED"], statuses
        assert stream[-1] == final[mid], "the last event is the stored final MDR"


async def test_status_right_after_the_final_event_is_final(tmp_path: Path) -> None:
    async with _router(tmp_path, SimOptions(dlr_delay_ms=300)) as r, \
            await AsyncClient.connect(r.socket_url, timeout=10) as watcher:
        events = await watcher.subscribe(["mdr"])
        (mid,) = (await _submit(r, 1)).values()
        await _settled(r, [mid], {"SUBMITTED"})
        # A slow disk: another connection holds the write lock, so the commit of the
        # receipt waits (the store's busy_timeout is 5 s; the lock is held < 1 s).
        blocker = sqlite3.connect(tmp_path / "state" / "router.db", isolation_level=None)
        try:
            blocker.execute("BEGIN IMMEDIATE")
            seen = await _stream_until_final(events, [mid], timeout=5)
            reply = await r.client.status(mid)
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        await _settled(r, [mid], {"DELIVERED"})

    assert seen[mid][-1]["status"] == "DELIVERED"
    assert reply["mdr"]["status"] == "DELIVERED", "status answers what subscribers were already told"


async def test_mdr_export_as_csv_by_status(tmp_path: Path) -> None:
    async with _router(tmp_path, SimOptions(undeliverable_numbers=(DEAD_PREFIX,))) as r:
        alive = await _submit(r, 6, prefix="a")
        dead = await _submit(r, 2, to=DEAD_TO, prefix="d")
        await _settled(r, [*alive.values(), *dead.values()], FINAL)
        # The export runs while the daemon holds the store open.
        proc = await asyncio.create_subprocess_exec(
            *_cli(r, "mdr", "--format", "csv", "--status", "delivered"),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=tmp_path,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 30)

    assert proc.returncode == 0, err.decode()
    rows = list(csv.DictReader(io.StringIO(out.decode("utf-8"))))
    assert sorted(row["id"] for row in rows) == sorted(alive.values())
    assert {row["status"] for row in rows} == {"DELIVERED"}
    assert {row["client_ref"] for row in rows} == set(alive)
    assert all(row["done_at"] and row["carrier_ids"] for row in rows)


def _cli(r: Router, verb: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "router", verb, "-c", str(r.config_path), *args]
