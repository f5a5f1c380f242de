"""A carrier SMSC written from raw bytes that misbehaves at the session level, against the
whole daemon. Each attack checks the same invariant: the daemon stays up, the other carrier
is unaffected, every acknowledged message ends in a correct status, and the bind comes
back once the peer behaves again."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.breaker_rig import BOTH_TO, EVIL_TO, SENDER, Rig
from tests.e2e.harness import until
from tests.test_esme_peer import (
    GENERIC_NACK,
    RESP,
    ROK,
    RTHROTTLED,
    SUBMIT_SM,
    UNBIND,
    RawConn,
    cstring,
    frame,
)


async def submit(rig: Rig, to: str, text: str = "hostile", **kw: Any) -> str:
    reply = await rig.client.submit(SENDER, to, text=text, **kw)
    assert reply["ok"], reply
    return str(reply["id"])


async def reconnected(rig: Rig, old: RawConn) -> RawConn:
    """The raw carrier's new bound connection after `old` was dropped."""
    await until(lambda: [c for c in rig.evil.conns if c.bind_kind and c is not old], what="evil rebound")
    return [c for c in rig.evil.conns if c.bind_kind and c is not old][-1]


@pytest.mark.parametrize(
    "junk",
    [
        pytest.param(struct.pack(">IIII", 0x80000000, SUBMIT_SM | RESP, 0, 1), id="2GB-command-length"),
        pytest.param(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64), id="tls-hello"),
        pytest.param(b"GET / HTTP/1.1\r\n\r\n", id="http"),
    ],
)
async def test_garbage_after_bind_drops_only_that_bind(tmp_path: Path, junk: bytes) -> None:
    async with Rig(tmp_path) as rig:
        await rig.bound()
        before = await submit(rig, EVIL_TO)
        await until(lambda: _carrier_id(rig, before), what="submitted before the junk")
        conn = await rig.evil_conn()
        conn.write(junk)
        await until(lambda: conn.transport is None or conn.transport.is_closing(), what="junk bind dropped")
        await rig.good_still_delivers()
        await reconnected(rig, conn)
        await rig.bound("evil")
        after = await submit(rig, EVIL_TO)
        await until(lambda: _carrier_id(rig, after), what="submitted after the rebind")


async def _carrier_id(rig: Rig, router_id: str) -> bool:
    mdr = (await rig.client.status(router_id))["mdr"]
    return mdr["status"] == "SUBMITTED" and bool(mdr["carrier_ids"])


async def test_responses_with_unknown_sequence_numbers_leave_the_message_in_doubt(tmp_path: Path) -> None:
    """Every submit_sm answered on a sequence number we never used: the real request times
    out and the message is UNKNOWN / in_doubt (not resent, not stuck); the bind stays."""
    async with Rig(tmp_path) as rig:
        await rig.bound()
        rig.evil.on_submit = lambda conn, seq, f: frame(SUBMIT_SM | RESP, ROK, seq + 7777, cstring("ghost"))
        conn = await rig.evil_conn()
        router_id = await submit(rig, EVIL_TO)
        mdr = await rig.final(router_id)
        assert (mdr["status"], mdr["error"]) == ("UNKNOWN", "in_doubt"), mdr
        assert len(rig.evil.submits) == 1  # not resent
        assert conn in rig.evil.conns and conn.transport is not None and not conn.transport.is_closing()
        rig.evil.on_submit = None
        fine = await submit(rig, EVIL_TO)
        await until(lambda: _carrier_id(rig, fine), what="the next message submitted")


async def test_generic_nack_throttled_forever_fails_over(tmp_path: Path) -> None:
    """A carrier that answers every submit_sm with generic_nack ESME_RTHROTTLED: a message
    with a fallback moves there after `throttle_failover_s`; one without ends final (the
    router gives up, FAILED, or its validity runs out, EXPIRED) and is not resent in a
    tight loop; the daemon and the other carrier carry on."""
    async with Rig(tmp_path, evil={"throttle_failover_s": 1}) as rig:
        await rig.bound()
        rig.evil.on_submit = lambda conn, seq, f: frame(GENERIC_NACK, RTHROTTLED, seq)
        moved = await submit(rig, BOTH_TO)
        stuck = await submit(rig, EVIL_TO, validity_s=3)
        mdr = await rig.final(moved)
        assert (mdr["status"], mdr["carrier"]) == ("DELIVERED", "good"), mdr
        mdr = await rig.final(stuck)
        assert mdr["status"] in ("FAILED", "EXPIRED"), mdr
        await rig.good_still_delivers()
        rig.evil.on_submit = None
        fine = await submit(rig, EVIL_TO)
        await until(lambda: _carrier_id(rig, fine), 20, "the carrier used again once it stops throttling")


async def test_unbind_mid_traffic_puts_written_requests_in_doubt_and_rebinds(tmp_path: Path) -> None:
    async with Rig(tmp_path) as rig:
        await rig.bound()
        rig.evil.hold = True  # written, never answered
        conn = await rig.evil_conn()
        ids = [await submit(rig, EVIL_TO, text=f"m{i}") for i in range(5)]
        await until(lambda: len(rig.evil.submits) == 5, what="five submits on the wire")
        conn.send_request(UNBIND)
        await until(lambda: (UNBIND | RESP, 0) in [(c, s) for c, s, _, _ in conn.inbound], what="unbind_resp")
        rig.evil.hold = False
        for router_id in ids:
            mdr = await rig.final(router_id)
            assert (mdr["status"], mdr["error"]) == ("UNKNOWN", "in_doubt"), mdr
        await reconnected(rig, conn)
        fine = await submit(rig, EVIL_TO)
        await until(lambda: _carrier_id(rig, fine), what="submitted after the rebind")
        await rig.good_still_delivers()


async def test_half_open_carrier_is_found_by_keepalive_and_rebound(tmp_path: Path) -> None:
    """The carrier stops reading (TCP stays up, nothing answered): enquire_link finds it,
    the bind is replaced, what was written is in doubt, a message with a fallback moves."""
    async with Rig(tmp_path) as rig:
        await rig.bound()
        conn = await rig.evil_conn()
        assert conn.transport is not None
        conn.transport.pause_reading()
        rig.evil.silent = True
        moved = await submit(rig, BOTH_TO)
        mdr = await rig.final(moved)
        # Written before the silence was noticed → in doubt; after → failed over.
        assert (mdr["status"], mdr["error"], mdr["carrier"]) in (
            ("UNKNOWN", "in_doubt", "evil"), ("DELIVERED", None, "good")), mdr
        rig.evil.silent = False
        new = await reconnected(rig, conn)
        assert new is not conn
        await rig.bound("evil")
        fine = await submit(rig, EVIL_TO)
        await until(lambda: _carrier_id(rig, fine), what="submitted after the rebind")
        await rig.good_still_delivers()


async def test_bind_never_answered_times_out_and_retries(tmp_path: Path) -> None:
    """TCP accepted, bind never answered: the bind attempt times out and is retried, traffic
    with a fallback goes there meanwhile, and the bind comes up when the carrier answers."""
    async with Rig(tmp_path) as rig:
        rig.evil.silent = True
        await rig.bound("good")
        await until(lambda: rig.evil.closed >= 1, 10, "a timed-out bind attempt closed")
        moved = await submit(rig, BOTH_TO)
        assert (await rig.final(moved))["status"] == "DELIVERED"
        rig.evil.silent = False
        await rig.bound("evil")
        fine = await submit(rig, EVIL_TO)
        await until(lambda: _carrier_id(rig, fine), what="submitted once the bind is answered")
