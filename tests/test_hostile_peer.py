"""A hostile carrier: every abuse leaves the bind up, or reconnects it cleanly, and the pool working."""

from __future__ import annotations

import struct
import time
from typing import Any

import pytest

from adapters.smpp.esme import CarrierPool, ResultKind
from tests.test_esme import Recorder, bound, carrier, make_pool, send, smsc, wait_until  # noqa: F401
from tests.test_esme_peer import (
    GENERIC_NACK,
    RESP,
    RINVDSTADR,
    ROK,
    RTHROTTLED,
    SUBMIT_SM,
    UNBIND,
    RawConn,
    RawSmsc,
    cstring,
    frame,
)

RINVCMDLEN = 0x02


async def still_works(pool: CarrierPool, rec: Recorder, token: str) -> None:
    await bound(pool)
    await send(pool, [token])
    await wait_until(lambda: token in rec.final(ResultKind.ACCEPTED))


@pytest.mark.parametrize(
    "junk",
    [
        pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", id="http-request"),
        pytest.param(struct.pack(">IIII", 0x80000000, SUBMIT_SM | RESP, 0, 1), id="length-2^31"),
        pytest.param(struct.pack(">I", 7) + b"\x00" * 12, id="length-7"),
    ],
)
async def test_lost_framing_reconnects_cleanly(smsc: RawSmsc, make_pool: Any, junk: bytes) -> None:
    rec = Recorder()
    pool = await make_pool(carrier(smsc.port), rec)
    await bound(pool)
    victim = smsc.conns[0]
    victim.write(junk)
    await wait_until(lambda: any(c[3] == "protocol_error" for c in rec.changes))
    # We said why before closing: generic_nack ESME_RINVCMDLEN (§5.1.3).
    assert (GENERIC_NACK, RINVCMDLEN) in [(cid, status) for cid, status, _, _ in victim.inbound]
    await wait_until(lambda: victim.transport is None or victim.transport.is_closing())
    await still_works(pool, rec, "after-junk")
    assert pool.stats["reconnects"] == 1


async def test_response_with_unknown_sequence_is_counted_not_fatal(smsc: RawSmsc, make_pool: Any) -> None:
    rec = Recorder()
    pool = await make_pool(carrier(smsc.port), rec)
    await bound(pool)
    port = pool.binds[0].local_port
    smsc.conns[0].write(frame(SUBMIT_SM | RESP, ROK, 999_999, cstring("ghost")))
    smsc.conns[0].write(frame(GENERIC_NACK, RTHROTTLED, 0))
    await wait_until(lambda: pool.stats["unexpected_resps"] == 2)
    await still_works(pool, rec, "after-ghost")
    assert pool.binds[0].local_port == port and pool.stats["reconnects"] == 0
    assert rec.final(ResultKind.THROTTLED) == []


async def test_generic_nack_throttled_is_back_pressure(smsc: RawSmsc, make_pool: Any) -> None:
    rec = Recorder()
    nacked: list[int] = []

    def nack_first(conn: RawConn, seq: int, fields: dict[str, Any]) -> bytes | None:
        if not nacked:
            nacked.append(seq)
            return frame(GENERIC_NACK, RTHROTTLED, seq)
        return None

    smsc.on_submit = nack_first
    pool = await make_pool(carrier(smsc.port, tps=100.0), rec)
    await bound(pool)
    await send(pool, ["otp"])
    await wait_until(lambda: "otp" in rec.final(ResultKind.ACCEPTED))
    kinds = [(r.kind, r.status) for r in rec.of("otp")]
    assert kinds == [(ResultKind.THROTTLED, RTHROTTLED), (ResultKind.ACCEPTED, 0)]
    assert smsc.texts() == [b"otp", b"otp"]
    assert pool.stats["tps_now"] < 100.0


async def test_unbind_mid_traffic_answers_and_rebinds(smsc: RawSmsc, make_pool: Any) -> None:
    rec = Recorder()
    smsc.hold = True
    pool = await make_pool(carrier(smsc.port, window=3), rec)
    await bound(pool)
    now = time.time()
    for i in range(5):
        pool.submit(i, [sm_text(i)], now)
    await wait_until(lambda: len(smsc.submits) == 3)
    victim = smsc.conns[0]
    seq = victim.send_request(UNBIND)
    await wait_until(lambda: len(rec.results) == 5)
    assert (UNBIND | RESP, 0, seq) in [(cid, status, s) for cid, status, s, _ in victim.inbound]
    assert [(t, r.kind, r.reason) for t, _, r in rec.results] == [
        (0, ResultKind.IN_DOUBT, "connection_lost"),
        (1, ResultKind.IN_DOUBT, "connection_lost"),
        (2, ResultKind.IN_DOUBT, "connection_lost"),
        (3, ResultKind.NOT_SENT, "connection_lost"),
        (4, ResultKind.NOT_SENT, "connection_lost"),
    ]
    assert ("acme", "transceiver-0", False, "unbound") in rec.changes
    smsc.hold = False
    await still_works(pool, rec, "after-unbind")


async def test_error_resp_with_a_body_and_ok_resp_without_one(smsc: RawSmsc, make_pool: Any) -> None:
    rec = Recorder()

    def odd_answers(conn: RawConn, seq: int, fields: dict[str, Any]) -> bytes | None:
        if fields["short_message"] == b"bad":
            # §4.4.2 says no body with an error status; carriers send one anyway.
            return frame(SUBMIT_SM | RESP, RINVDSTADR, seq, cstring("12345"))
        if fields["short_message"] == b"bare":
            return frame(SUBMIT_SM | RESP, ROK, seq)  # status 0 and no message_id at all
        return None

    smsc.on_submit = odd_answers
    pool = await make_pool(carrier(smsc.port), rec)
    await bound(pool)
    port = pool.binds[0].local_port
    await send(pool, ["bad", "bare"])
    await wait_until(lambda: len(rec.results) == 2)
    bad, bare = rec.of("bad")[0], rec.of("bare")[0]
    assert (bad.kind, bad.status, bad.message_id) == (ResultKind.REJECTED, RINVDSTADR, None)
    assert (bare.kind, bare.status, bare.message_id) == (ResultKind.ACCEPTED, 0, "")
    assert pool.stats["resps"] == {"ESME_ROK": 1, "ESME_RINVDSTADR": 1}
    await still_works(pool, rec, "after-odd")
    assert pool.binds[0].local_port == port


async def test_message_id_without_its_nul_is_read_tolerantly(smsc: RawSmsc, make_pool: Any) -> None:
    rec = Recorder()

    def truncated(conn: RawConn, seq: int, fields: dict[str, Any]) -> bytes | None:
        if fields["short_message"] == b"cut":
            return frame(SUBMIT_SM | RESP, ROK, seq, b"123")  # message_id without its NUL
        return None

    smsc.on_submit = truncated
    pool = await make_pool(carrier(smsc.port, response_timeout_s=0.2), rec)
    await bound(pool)
    await send(pool, ["cut"])
    await wait_until(lambda: len(rec.of("cut")) == 1)
    outcome = rec.of("cut")[0]
    assert (outcome.kind, outcome.message_id) == (ResultKind.ACCEPTED, "123")
    await still_works(pool, rec, "after-cut")
    assert pool.stats["reconnects"] == 0


def sm_text(i: int) -> Any:
    from adapters.smpp import pdu as P

    return P.SubmitSm(source_addr="ACME", destination_addr="447700900123", short_message=f"m{i}".encode())


async def test_unknown_command_id_costs_one_pdu(smsc: RawSmsc, make_pool: Any) -> None:
    rec = Recorder()
    pool = await make_pool(carrier(smsc.port), rec)
    await bound(pool)
    victim = smsc.conns[0]
    victim.write(frame(0x00000099, 0, 77, b"\x01\x02\x03"))  # not an SMPP 3.4 command
    await wait_until(lambda: pool.stats["malformed"] == 1)
    # §3.3 an unknown command is answered with generic_nack ESME_RINVCMDID; the bind stays.
    await wait_until(lambda: (GENERIC_NACK, 0x03, 77) in [(c, st, s) for c, st, s, _ in victim.inbound])
    await still_works(pool, rec, "after-unknown")
    assert pool.stats["reconnects"] == 0
