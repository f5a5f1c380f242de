"""CarrierPool against a raw-socket SMSC (tests/test_esme_peer.py) on 127.0.0.1."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from structlog.testing import capture_logs

from adapters.smpp import pdu as P
from adapters.smpp.esme import CarrierPool, ResultKind, SubmitResult
from router.config import CarrierConfig
from tests.test_esme_peer import (
    DELIVER_SM,
    GENERIC_NACK,
    RALYBND,
    RESP,
    RINVBNDSTS,
    RTHROTTLED,
    SUBMIT_SM,
    RawConn,
    RawSmsc,
    cstring,
    deliver_sm,
    frame,
)

PASSWORD = "s3cr3tpw"


def carrier(port: int, **overrides: Any) -> CarrierConfig:
    options: dict[str, Any] = {
        "name": "acme", "host": "127.0.0.1", "port": port, "system_id": "acme", "password": PASSWORD,
        "binds": {"transceiver": 1}, "tps": 10000.0, "window": 8, "enquire_link_s": 30.0,
        "response_timeout_s": 5.0, "bind_timeout_s": 1.0, "reconnect_max_s": 0.05,
        "stale_session_s": 0.3, "throttle_failover_s": 30.0,
    }
    options.update(overrides)
    return CarrierConfig(**options)


async def wait_until(predicate: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


class Recorder:
    """The pool's callbacks, recorded."""

    def __init__(self) -> None:
        self.results: list[tuple[object, int, SubmitResult]] = []
        self.changes: list[tuple[str, str, bool, str]] = []
        self.change_times: list[float] = []

    def on_result(self, token: object, index: int, result: SubmitResult) -> None:
        self.results.append((token, index, result))

    def on_bind_change(self, carrier: str, bind: str, up: bool, reason: str) -> None:
        self.changes.append((carrier, bind, up, reason))
        self.change_times.append(time.monotonic())

    def final(self, kind: ResultKind) -> list[object]:
        return [t for t, _, r in self.results if r.kind is kind]

    def of(self, token: object) -> list[SubmitResult]:
        return [r for t, _, r in self.results if t == token]


@pytest.fixture
async def smsc() -> AsyncIterator[RawSmsc]:
    peer = RawSmsc()
    await peer.start()
    yield peer
    await peer.close()


@pytest.fixture
async def make_pool() -> AsyncIterator[Callable[..., Any]]:
    pools: list[CarrierPool] = []

    async def make(cfg: CarrierConfig, rec: Recorder, **kwargs: Any) -> CarrierPool:
        pool = CarrierPool(cfg, on_result=rec.on_result, on_bind_change=rec.on_bind_change, **kwargs)
        pools.append(pool)
        await pool.start()
        return pool

    yield make
    for pool in pools:
        await pool.stop(0.1)


def sm(text: str) -> P.SubmitSm:
    return P.SubmitSm(source_addr="ACME", destination_addr="447700900123", short_message=text.encode())


async def bound(pool: CarrierPool, n: int = 1) -> None:
    await wait_until(lambda: sum(b.state == "bound" for b in pool.binds) >= n)


async def send(pool: CarrierPool, tokens: list[str], ready: Any = None) -> None:
    """Submit one-part messages the way the scheduler does: ask available_at first."""
    for token in tokens:
        while True:
            now = time.time()
            at = pool.available_at(1, now)
            if at <= now:
                break
            await asyncio.sleep(0.01 if at == math.inf else min(0.05, at - now))
        pool.submit(token, [sm(token)], now, ready)


# --------------------------------------------------------------------- binds


async def test_every_bind_type_binds_and_only_senders_submit(smsc: RawSmsc, make_pool: Any) -> None:
    rec = Recorder()
    cfg = carrier(smsc.port, binds={"transmitter": 1, "receiver": 1, "transceiver": 1})
    pool = await make_pool(cfg, rec)
    await bound(pool, 3)
    assert sorted(kind for kind, _, _ in smsc.binds) == ["receiver", "transceiver", "transmitter"]
    assert {(s, p) for _, s, p in smsc.binds} == {("acme", PASSWORD)}
    assert {b.id for b in pool.binds} == {"transmitter-0", "receiver-0", "transceiver-0"}
    assert all(b.local_port for b in pool.binds)
    assert sorted(c[1] for c in rec.changes if c[2]) == ["receiver-0", "transceiver-0", "transmitter-0"]
    await send(pool, [f"m{i}" for i in range(12)])
    await wait_until(lambda: len(rec.final(ResultKind.ACCEPTED)) == 12)
    assert {r.bind for _, _, r in rec.results} <= {"transmitter-0", "transceiver-0"}
    senders = {conn.bind_kind for conn in smsc.conns if any(p[0] == SUBMIT_SM for p in conn.inbound)}
    assert senders <= {"transmitter", "transceiver"} and senders
    assert all(r.message_id and r.latency_s is not None and r.latency_s >= 0 for _, _, r in rec.results)
    assert pool.stats["submits"] == 12 and pool.stats["resps"] == {"ESME_ROK": 12}


async def test_receivers_answer_deliver_sm_when_the_app_is_ready(smsc: RawSmsc, make_pool: Any) -> None:
    rec = Recorder()
    seen: list[tuple[str, bytes]] = []
    pending: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def on_deliver(bind_id: str, pdu: Any) -> Any:
        seen.append((bind_id, pdu.short_message))
        return pending if pdu.short_message == b"later" else 0

    cfg = carrier(smsc.port, binds={"transmitter": 1, "receiver": 1, "transceiver": 1})
    pool = await make_pool(cfg, rec, on_deliver=on_deliver)
    await bound(pool, 3)
    by_kind = {conn.bind_kind: conn for conn in smsc.conns}
    by_kind["receiver"].write(deliver_sm(11, b"now"))
    by_kind["transceiver"].write(deliver_sm(12, b"later"))
    by_kind["transmitter"].write(deliver_sm(13, b"refused"))

    def resp(conn: RawConn, seq: int) -> list[tuple[int, int, int, bytes]]:
        return [p for p in conn.inbound if p[2] == seq and p[0] & RESP]

    await wait_until(lambda: resp(by_kind["receiver"], 11) and resp(by_kind["transmitter"], 13))
    assert resp(by_kind["receiver"], 11)[0][:2] == (DELIVER_SM | RESP, 0)
    # A transmitter may not receive (§2.3): refused by the session, never shown to the app.
    assert resp(by_kind["transmitter"], 13)[0][1] == RINVBNDSTS
    assert sorted(seen) == [("receiver-0", b"now"), ("transceiver-0", b"later")]
    await asyncio.sleep(0.05)
    assert resp(by_kind["transceiver"], 12) == []  # held until the receipt is durable
    pending.set_result(0x64)
    await wait_until(lambda: bool(resp(by_kind["transceiver"], 12)))
    assert resp(by_kind["transceiver"], 12)[0][:2] == (DELIVER_SM | RESP, 0x64)


async def test_no_bound_transmitter_means_inf_and_not_sent(make_pool: Any) -> None:
    rec = Recorder()
    pool = await make_pool(carrier(1, binds={"transmitter": 1}), rec)  # nothing listens on port 1
    assert pool.available_at(1, time.time()) == math.inf
    pool.submit("lost", [sm("x")], time.time())
    await wait_until(lambda: len(rec.results) == 1)
    assert rec.results[0][2].kind is ResultKind.NOT_SENT and rec.results[0][2].reason == "no_bind"
    await wait_until(lambda: any(c[3] == "connect_failed" for c in rec.changes))


async def test_smsc_killed_and_restarted_binds_come_back(smsc: RawSmsc, make_pool: Any) -> None:
    rec = Recorder()
    pool = await make_pool(carrier(smsc.port, binds={"transceiver": 2}), rec)
    await bound(pool, 2)
    port = smsc.port
    await smsc.close()
    await wait_until(lambda: all(b.state != "bound" for b in pool.binds))
    assert {c[3] for c in rec.changes if not c[2]} >= {"connection_lost"}
    await smsc.start(port)
    await bound(pool, 2)
    assert pool.stats["reconnects"] == 2
    await send(pool, ["after"])
    await wait_until(lambda: rec.final(ResultKind.ACCEPTED) == ["after"])


async def test_stalled_smsc_is_found_by_keepalive(smsc: RawSmsc, make_pool: Any) -> None:
    rec = Recorder()
    pool = await make_pool(carrier(smsc.port, enquire_link_s=0.2, response_timeout_s=0.3), rec)
    await bound(pool)
    smsc.silent = True
    started = time.monotonic()
    await wait_until(lambda: any(c[3] == "keepalive" for c in rec.changes), timeout=2.0)
    # idle 0.2 s, then 0.3 s for the enquire_link_resp that never comes
    assert 0.4 <= time.monotonic() - started <= 1.0
    smsc.silent = False
    await bound(pool)


# -------------------------------------------------------------------- window


async def test_window_is_never_exceeded_and_pushes_back(smsc: RawSmsc, make_pool: Any) -> None:
    rec = Recorder()
    smsc.hold = True
    pool = await make_pool(carrier(smsc.port, window=4), rec)
    await bound(pool)
    now = time.time()
    for i in range(20):
        pool.submit(i, [sm(f"m{i}")], now)
    await wait_until(lambda: len(smsc.submits) == 4)
    await asyncio.sleep(0.05)
    assert len(smsc.submits) == 4 and smsc.max_outstanding == 4
    assert pool.available_at(1, time.time()) > time.time()  # 16 unwritten >= one window
    assert pool.binds[0].window_used == 4
    while len(rec.results) < 20:
        for conn in smsc.conns:
            conn.release()
        await asyncio.sleep(0.005)
    assert smsc.max_outstanding == 4
    assert rec.final(ResultKind.ACCEPTED) == list(range(20))
    assert [f["short_message"] for _, f, _ in smsc.submits] == [f"m{i}".encode() for i in range(20)]


async def test_ready_future_holds_the_bytes(smsc: RawSmsc, make_pool: Any) -> None:
    rec = Recorder()
    pool = await make_pool(carrier(smsc.port), rec)
    await bound(pool)
    loop = asyncio.get_running_loop()
    durable, failed = loop.create_future(), loop.create_future()
    now = time.time()
    pool.submit("a", [sm("a1"), sm("a2")], now, durable)
    pool.submit("b", [sm("b1")], now, failed)
    await asyncio.sleep(0.05)
    assert smsc.submits == []
    durable.set_result(None)
    failed.set_exception(RuntimeError("disk full"))
    await wait_until(lambda: len(rec.results) == 3)
    assert smsc.texts() == [b"a1", b"a2"]
    assert [(i, r.kind) for t, i, r in rec.results if t == "a"] == [(0, ResultKind.ACCEPTED), (1, ResultKind.ACCEPTED)]
    assert rec.of("b")[0].kind is ResultKind.NOT_SENT and rec.of("b")[0].reason == "stopped"


# ---------------------------------------------------------------- throttling


async def test_throttling_slows_down_and_sends_each_once_in_order(smsc: RawSmsc, make_pool: Any) -> None:
    rec = Recorder()
    throttled: set[bytes] = set()

    def every_third_once(conn: RawConn, seq: int, fields: dict[str, Any]) -> bytes | None:
        text = fields["short_message"]
        if int(text[1:]) % 3 == 0 and text not in throttled:
            throttled.add(text)
            return frame(SUBMIT_SM | RESP, RTHROTTLED, seq)
        return None

    smsc.on_submit = every_third_once
    pool = await make_pool(carrier(smsc.port, window=1, tps=200.0), rec)
    await bound(pool)
    tokens = [f"m{i}" for i in range(15)]
    await send(pool, tokens)
    await wait_until(lambda: len(rec.final(ResultKind.ACCEPTED)) == 15)
    assert rec.final(ResultKind.ACCEPTED) == tokens  # each once, in order
    assert len(rec.final(ResultKind.THROTTLED)) == 5
    accepted_at_smsc = [f["short_message"] for _, f, _ in smsc.submits]
    for text in throttled:
        i = accepted_at_smsc.index(text)
        assert accepted_at_smsc[i + 1] == text  # the retry went first
    assert pool.stats["tps_now"] < 200.0 and pool.stats["throttled"] == 5


async def test_throttled_past_failover_hands_parts_back(smsc: RawSmsc, make_pool: Any) -> None:
    rec = Recorder()
    smsc.on_submit = lambda conn, seq, fields: frame(GENERIC_NACK, RTHROTTLED, seq)
    pool = await make_pool(carrier(smsc.port, window=2, tps=100.0, throttle_failover_s=0.3), rec)
    await bound(pool)
    now = time.time()
    for i in range(6):
        pool.submit(i, [sm(f"m{i}")], now)
    await wait_until(lambda: len(rec.final(ResultKind.NOT_SENT)) == 6)
    for i in range(6):
        outcomes = rec.of(i)
        assert outcomes[-1].kind is ResultKind.NOT_SENT and outcomes[-1].reason == "throttled"
        assert all(r.kind is ResultKind.THROTTLED for r in outcomes[:-1])
    assert pool.throttled_for(time.time()) >= 0.3
    assert pool.binds[0].state == "bound"


# ------------------------------------------------------------------ lifecycle


async def test_graceful_stop_waits_for_responses_then_unbinds(smsc: RawSmsc) -> None:
    rec = Recorder()
    smsc.hold = True
    pool = CarrierPool(carrier(smsc.port, window=3), on_result=rec.on_result, on_bind_change=rec.on_bind_change)
    await pool.start()
    await bound(pool)
    now = time.time()
    for i in range(5):
        pool.submit(i, [sm(f"m{i}")], now)
    await wait_until(lambda: len(smsc.submits) == 3)
    asyncio.get_running_loop().call_later(0.1, lambda: [c.release() for c in smsc.conns])
    await pool.stop(2.0)
    assert rec.final(ResultKind.ACCEPTED) == [0, 1, 2]
    assert [(t, r.reason) for t, _, r in rec.results if r.kind is ResultKind.NOT_SENT] == [(3, "stopped"), (4, "stopped")]
    assert smsc.unbinds == 1 and pool.binds[0].state == "stopped"
    assert rec.changes[-1] == ("acme", "transceiver-0", False, "stopped")
    pool.submit("late", [sm("x")], time.time())
    await wait_until(lambda: bool(rec.of("late")))
    assert rec.of("late")[0].reason == "stopped"


async def test_peer_closing_instead_of_unbind_resp_is_clean(smsc: RawSmsc) -> None:
    rec = Recorder()
    smsc.answer_unbind = False
    pool = CarrierPool(carrier(smsc.port), on_result=rec.on_result, on_bind_change=rec.on_bind_change)
    await pool.start()
    await bound(pool)
    original = smsc.on_pdu

    def close_on_unbind(conn: RawConn, cid: int, status: int, seq: int, body: bytes) -> None:
        original(conn, cid, status, seq, body)
        if cid == 0x06 and conn.transport is not None:
            conn.transport.close()

    smsc.on_pdu = close_on_unbind  # type: ignore[method-assign]
    started = time.monotonic()
    await pool.stop(5.0)
    assert time.monotonic() - started < 1.0
    assert smsc.unbinds == 1 and pool.binds[0].state == "stopped"


async def test_sequence_numbers_wrap_to_one(smsc: RawSmsc, make_pool: Any) -> None:
    rec = Recorder()
    pool = await make_pool(carrier(smsc.port, window=2), rec, first_sequence=0x7FFFFFFF - 3)
    await bound(pool)
    await send(pool, [f"m{i}" for i in range(10)])
    await wait_until(lambda: len(rec.final(ResultKind.ACCEPTED)) == 10)
    seqs = [seq for seq, _, _ in smsc.submits]
    assert 0x7FFFFFFF in seqs and 1 in seqs and 0 not in seqs
    assert all(1 <= s <= 0x7FFFFFFF for s in seqs) and len(set(seqs)) == 10


async def test_late_response_settles_an_in_doubt_part(smsc: RawSmsc, make_pool: Any) -> None:
    rec = Recorder()
    smsc.hold = True
    pool = await make_pool(carrier(smsc.port, response_timeout_s=0.2), rec)
    await bound(pool)
    pool.submit("otp", [sm("123456")], time.time())
    await wait_until(lambda: len(rec.results) == 1)
    first = rec.results[0][2]
    assert first.kind is ResultKind.IN_DOUBT and first.reason == "timeout"
    for conn in smsc.conns:
        conn.release()
    await wait_until(lambda: len(rec.results) == 2)
    late = rec.results[1][2]
    assert late.kind is ResultKind.ACCEPTED and late.late and late.message_id
    assert pool.stats["late"] == 1 and pool.binds[0].state == "bound"


async def test_already_bound_backs_off_past_stale_session(smsc: RawSmsc, make_pool: Any) -> None:
    rec = Recorder()
    smsc.bind_statuses = [RALYBND]
    started = time.monotonic()
    with capture_logs() as logs:
        pool = await make_pool(carrier(smsc.port, stale_session_s=0.3), rec)
        await bound(pool)
        await pool.stop(0.5)
    assert rec.changes[0] == ("acme", "transceiver-0", False, "already_bound")
    assert rec.changes[1] == ("acme", "transceiver-0", True, "bound")
    assert rec.change_times[1] - started >= 0.3
    assert smsc.closed >= 1 and len(smsc.binds) == 2
    assert PASSWORD not in repr(logs) and any(e.get("reason") == "already_bound" for e in logs)


async def test_connection_loss_splits_written_and_unwritten(smsc: RawSmsc, make_pool: Any) -> None:
    rec = Recorder()
    smsc.hold = True
    pool = await make_pool(carrier(smsc.port, window=2), rec)
    await bound(pool)
    now = time.time()
    for i in range(5):
        pool.submit(i, [sm(f"m{i}")], now)
    await wait_until(lambda: len(smsc.submits) == 2)
    smsc.conns[0].transport.abort()  # type: ignore[union-attr]
    await wait_until(lambda: len(rec.results) == 5)
    kinds = [(t, r.kind, r.reason) for t, _, r in rec.results]
    assert kinds[:2] == [(0, ResultKind.IN_DOUBT, "connection_lost"), (1, ResultKind.IN_DOUBT, "connection_lost")]
    assert kinds[2:] == [(i, ResultKind.NOT_SENT, "connection_lost") for i in (2, 3, 4)]
    smsc.hold = False
    await bound(pool)
    await send(pool, ["again"])
    await wait_until(lambda: "again" in rec.final(ResultKind.ACCEPTED))


async def test_apply_config_changes_tps_and_window_in_place(smsc: RawSmsc, make_pool: Any) -> None:
    rec = Recorder()
    smsc.hold = True
    pool = await make_pool(carrier(smsc.port, window=4), rec)
    await bound(pool)
    port = pool.binds[0].local_port
    pool.apply_config(carrier(smsc.port, window=2, tps=5.0))
    now = time.time()
    for i in range(6):
        pool.submit(i, [sm(f"m{i}")], now)
    await wait_until(lambda: len(smsc.submits) == 2)
    await asyncio.sleep(0.05)
    assert len(smsc.submits) == 2 and pool.stats["tps_now"] == 5.0
    assert pool.binds[0].local_port == port  # no rebind


async def test_bind_pdu_built_with_our_codec_matches_the_raw_peer(smsc: RawSmsc, make_pool: Any) -> None:
    rec = Recorder()
    pool = await make_pool(carrier(smsc.port, binds={"transmitter": 1}, system_type="VMA"), rec)
    await bound(pool)
    cid, _, seq, body = smsc.conns[0].inbound[0]
    assert cid == 0x02 and seq == 1
    assert body == cstring("acme") + cstring(PASSWORD) + cstring("VMA") + b"\x34\x00\x00" + cstring("")


async def test_tls_bind_verifies_the_carrier_certificate(tmp_path: Any, make_pool: Any) -> None:
    import ssl
    import subprocess

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    peer = RawSmsc()
    await peer.start(ssl=server_ctx)
    try:
        rec = Recorder()
        client_ctx = ssl.create_default_context(cafile=str(cert))
        pool = await make_pool(carrier(peer.port, tls=True), rec, ssl_context=client_ctx)
        await bound(pool)
        await send(pool, ["over-tls"])
        await wait_until(lambda: rec.final(ResultKind.ACCEPTED) == ["over-tls"])
        # Without trusting the certificate the handshake fails and the bind never comes up.
        untrusted = Recorder()
        other = await make_pool(carrier(peer.port, tls=True, name="other"), untrusted)
        await wait_until(lambda: any(c[3] == "connect_failed" for c in untrusted.changes))
        assert other.binds[0].state != "bound" and len(peer.binds) == 1
    finally:
        await peer.close()



async def test_a_bind_the_carrier_refuses_logs_at_warning_our_stop_at_info(smsc: RawSmsc) -> None:
    """Ops alert on warnings: a connection refused is one, our own graceful stop is not."""
    rec = Recorder()
    with capture_logs() as logs:
        refused = CarrierPool(carrier(1), on_result=rec.on_result, on_bind_change=rec.on_bind_change)
        await refused.start()  # nothing listens on port 1
        await wait_until(lambda: any(c[3] == "connect_failed" for c in rec.changes))
        await refused.stop(0.5)
        ok = CarrierPool(carrier(smsc.port), on_result=rec.on_result, on_bind_change=rec.on_bind_change)
        await ok.start()
        await bound(ok)
        await ok.stop(1.0)
    downs = [(e["reason"], e["log_level"]) for e in logs if e["event"] == "bind down"]
    assert ("connect_failed", "warning") in downs
    assert ("stopped", "info") in downs
    assert ("stopped", "warning") not in downs
