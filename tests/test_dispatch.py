"""The send path with fake pools and an in-memory store: routing, failover, outcomes."""

from __future__ import annotations

import asyncio
import enum
import math
from pathlib import Path
from typing import Any

import pytest

from adapters.smpp.constants import CommandStatus, status_name
from adapters.smpp.outbound import build_submit_pdus
from router.config import parse_config
from router.dispatch import Dispatcher, route_result
from router.model import (
    EXPIRED, FAILED, QUEUED, REJECTED, SENDING, SUBMITTED, UNKNOWN, Message,
)
from router.numbers import classify_source
from router.requests import RequestError, SubmitRequest

T0 = 1_800_000_000.0

CONFIG = """
[router]
socket = "unix:///tmp/x.sock"
state_dir = "var"
queue_high_water = {high_water}

[[carriers]]
name = "cheap"
host = "127.0.0.1"
port = 1
system_id = "a"
password = "p"
retry_in_doubt = {retry}

[[carriers]]
name = "dear"
host = "127.0.0.1"
port = 2
system_id = "b"
password = "p"
concat = "sar"

[[routes]]
prefix = "44"
carriers = [{{ name = "dear", cost = 0.02 }}, {{ name = "cheap", cost = 0.01 }}]

[[routes]]
prefix = "1"
carriers = [{{ name = "cheap", cost = 0.01 }}]

[limits]
default_mps = {mps}
burst = 1
"""


class Kind(enum.Enum):
    ACCEPTED = 1
    REJECTED = 2
    THROTTLED = 3
    IN_DOUBT = 4
    NOT_SENT = 5


class Result:
    def __init__(self, kind: Kind, status: int | None = None, message_id: str | None = None,
                 late: bool = False, reason: str | None = None) -> None:
        self.kind, self.status, self.message_id = kind, status, message_id
        self.bind, self.latency_s, self.late, self.reason = "transceiver-0", 0.01, late, reason


def ok(mid: str = "abc", late: bool = False) -> Result:
    return Result(Kind.ACCEPTED, 0, mid, late=late)


def err(status: int) -> Result:
    return Result(Kind.REJECTED, status)


class FakePool:
    def __init__(self, name: str) -> None:
        self.name = name
        self.at = -math.inf
        self.sent: list[tuple[Any, list[Any], Any]] = []

    def available_at(self, n: int, now: float) -> float:
        return max(now, self.at)

    def submit(self, token: Any, pdus: list[Any], now: float, ready: Any = None) -> None:
        self.sent.append((token, pdus, ready))


class MemStore:
    def __init__(self) -> None:
        self.n = 0
        self.saved: list[tuple[str, str]] = []
        self.rows: dict[str, Message] = {}

    def next_id(self) -> str:
        self.n += 1
        return str(self.n)

    def save(self, msg: Message) -> None:
        self.saved.append((msg.id, msg.status))
        self.rows[msg.id] = msg

    def durable(self) -> Any:
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut


class Rig:
    def __init__(self, *, mps: float = 100.0, retry: bool = False, high_water: int = 1000) -> None:
        self.config = parse_config(
            CONFIG.format(mps=mps, retry=str(retry).lower(), high_water=high_water),
            base_dir=Path("/tmp"), env={},
        )
        self.store = MemStore()
        self.pools = {"cheap": FakePool("cheap"), "dear": FakePool("dear")}
        self.timer: float | None = None
        self.failovers: list[tuple[str, str]] = []
        self.counts: dict[str, int] = {}
        self.d = Dispatcher(
            self.config, self.store, self.pools, build_pdus=build_submit_pdus,
            status_name=status_name, arm_timer=self._arm, now=T0,
            observer=self,
        )
        for name, h in self.d.health.items():
            h.bind_up("transceiver-0", True, T0)

    def _arm(self, due: float | None) -> None:
        self.timer = due

    # The observer protocol: count what the metrics adapter would.
    def submitted(self, carrier: str, n: int = 1) -> None:
        self.counts[f"submitted:{carrier}"] = self.counts.get(f"submitted:{carrier}", 0) + n

    def submit_resp(self, carrier: str, command_status: int) -> None:
        key = f"resp:{carrier}:{command_status}"
        self.counts[key] = self.counts.get(key, 0) + 1

    def submit_latency(self, seconds: float) -> None:
        pass

    def mdr(self, status: str) -> None:
        self.counts[f"mdr:{status}"] = self.counts.get(f"mdr:{status}", 0) + 1

    def failover(self, from_carrier: str, to_carrier: str) -> None:
        self.failovers.append((from_carrier, to_carrier))

    def throttled(self, scope: str) -> None:
        self.counts[f"throttled:{scope}"] = self.counts.get(f"throttled:{scope}", 0) + 1

    def submit(self, text: str = "hello", to: str = "447700900123", src: str = "12025550100",
               now: float = T0, **kw: Any) -> Message:
        req = SubmitRequest(
            classify_source(src), to, text, None, None, kw.get("dlr", True), kw.get("priority", 0),
            kw.get("validity_s", 3600), None, {}, "gsm7", kw.get("segments", 1),
        )
        return self.d.accept(req, now)

    def result(self, pool: str, i: int, part: int, res: Result, now: float = T0) -> None:
        token = self.pools[pool].sent[i][0]
        route_result(self.d, token, part, res, now)


async def test_accept_sends_at_once_with_one_write_carrying_sending() -> None:
    rig = Rig()
    msg = rig.submit(to="15551234567")
    assert msg.status == SENDING and msg.carrier == "cheap"
    assert [s for s in rig.store.saved if s[0] == msg.id] == [(msg.id, SENDING)] * 2
    token, pdus, ready = rig.pools["cheap"].sent[0]
    assert token is msg and ready is not None
    (pdu,) = pdus
    assert (pdu.source_addr, pdu.source_addr_ton, pdu.source_addr_npi) == ("12025550100", 1, 1)
    assert (pdu.destination_addr, pdu.dest_addr_ton, pdu.dest_addr_npi) == ("15551234567", 1, 1)
    assert pdu.short_message == b"hello" and pdu.registered_delivery == 1


@pytest.mark.parametrize("src,ton,npi", [("ACME", 5, 0), ("12345", 3, 0), ("+447700900999", 1, 1)])
async def test_sender_kinds_get_their_ton_npi(src: str, ton: int, npi: int) -> None:
    rig = Rig()
    rig.submit(src=src, to="15551234567")
    pdu = rig.pools["cheap"].sent[0][1][0]
    assert (pdu.source_addr_ton, pdu.source_addr_npi) == (ton, npi)


async def test_least_cost_carrier_first_and_cost_per_segment() -> None:
    rig = Rig()
    text = "x" * 200  # two GSM parts
    msg = rig.submit(text=text, segments=2)
    assert msg.carrier == "cheap" and msg.route == "44"
    assert msg.cost == pytest.approx(0.02)
    assert len(rig.pools["cheap"].sent[0][1]) == 2


async def test_all_parts_accepted_is_submitted_and_dlr_false_is_final() -> None:
    rig = Rig()
    a = rig.submit()
    b = rig.submit(dlr=False, src="12025550101")
    rig.result("cheap", 0, 0, ok("id-a"))
    rig.result("cheap", 1, 0, ok("id-b"))
    assert a.status == SUBMITTED and a.done_at is None and a.carrier_ids == ["id-a"]
    assert b.status == SUBMITTED and b.done_at == T0 and b.submitted_at == T0


async def test_transient_error_fails_over_to_the_next_carrier() -> None:
    rig = Rig()
    msg = rig.submit()
    rig.result("cheap", 0, 0, err(CommandStatus.ESME_RSYSERR))
    assert msg.status == SENDING and msg.carrier == "dear"
    assert rig.failovers == [("cheap", "dear")]
    rig.result("dear", 0, 0, ok("d1"))
    assert msg.status == SUBMITTED
    assert rig.counts["submitted:cheap"] == 1 and rig.counts["submitted:dear"] == 1
    assert rig.counts[f"resp:cheap:{int(CommandStatus.ESME_RSYSERR)}"] == 1
    assert [a.carrier for a in msg.attempts] == ["cheap", "dear"]
    assert msg.attempts[0].status == "ESME_RSYSERR"
    # SAR carrier: a single part carries no SAR TLVs.
    assert not rig.pools["dear"].sent[0][1][0].tlvs


async def test_permanent_error_rejects_without_failover() -> None:
    rig = Rig()
    msg = rig.submit()
    rig.result("cheap", 0, 0, err(CommandStatus.ESME_RINVDSTADR))
    assert msg.status == REJECTED and msg.error == "ESME_RINVDSTADR" and msg.error_code == 0x0B
    assert rig.pools["dear"].sent == []


async def test_not_sent_fails_over_without_touching_health() -> None:
    rig = Rig()
    msg = rig.submit()
    rig.result("cheap", 0, 0, Result(Kind.NOT_SENT, reason="connection_lost"))
    assert msg.carrier == "dear" and msg.status == SENDING


async def test_no_response_is_in_doubt_and_a_late_response_settles_it() -> None:
    rig = Rig()
    msg = rig.submit()
    rig.result("cheap", 0, 0, Result(Kind.IN_DOUBT, reason="timeout"))
    assert msg.status == UNKNOWN and msg.error == "in_doubt"
    assert rig.pools["dear"].sent == [], "an in-doubt message is not resent"
    assert rig.d.in_doubt == 1
    rig.result("cheap", 0, 0, ok("late-1", late=True))
    assert msg.status == SUBMITTED and msg.carrier_ids == ["late-1"] and msg.error is None
    assert rig.d.in_doubt == 0


async def test_retry_in_doubt_requeues() -> None:
    rig = Rig(retry=True)
    msg = rig.submit()
    rig.result("cheap", 0, 0, Result(Kind.IN_DOUBT, reason="connection_lost"))
    assert msg.status == SENDING and msg.carrier == "dear"


async def test_throttled_is_informational() -> None:
    rig = Rig()
    msg = rig.submit()
    rig.result("cheap", 0, 0, Result(Kind.THROTTLED, CommandStatus.ESME_RTHROTTLED))
    assert msg.status == SENDING and msg.attempts[0].status == "ESME_RTHROTTLED"
    assert rig.counts["throttled:carrier"] == 1
    rig.result("cheap", 0, 0, ok())
    assert msg.status == SUBMITTED


async def test_part_failing_after_another_was_accepted_retries_on_the_same_carrier() -> None:
    rig = Rig()
    msg = rig.submit(text="y" * 300, segments=2)
    # Another long message goes out on the same carrier before the retry.
    rig.submit(text="z" * 300, segments=2, src="12025550101")
    rig.result("cheap", 0, 0, ok("p1"))
    rig.result("cheap", 0, 1, err(CommandStatus.ESME_RSYSERR))
    assert rig.pools["dear"].sent == [], "accepted parts pin the message to its carrier"
    token, pdus, _ = rig.pools["cheap"].sent[2]
    assert len(pdus) == 1
    first_ref = rig.pools["cheap"].sent[0][1][1].short_message[:6]
    other_ref = rig.pools["cheap"].sent[1][1][1].short_message[:6]
    assert first_ref != other_ref
    assert pdus[0].short_message[:6] == first_ref, "the retried part keeps its own UDH reference"
    rig.result("cheap", 2, 0, ok("p2"))
    assert msg.status == SUBMITTED and msg.carrier_ids == ["p1", "p2"]


async def test_part_that_keeps_failing_ends_failed() -> None:
    rig = Rig()
    msg = rig.submit(text="y" * 300, segments=2)
    rig.result("cheap", 0, 0, ok("p1"))
    rig.result("cheap", 0, 1, err(CommandStatus.ESME_RSYSERR))
    for i in range(1, 10):
        if msg.status == FAILED:
            break
        rig.result("cheap", i, 0, err(CommandStatus.ESME_RSYSERR))
    assert msg.status == FAILED and msg.error == "ESME_RSYSERR"


async def test_no_route_and_overloaded_are_refused() -> None:
    rig = Rig(high_water=1)
    with pytest.raises(RequestError) as e:
        rig.submit(to="33612345678")
    assert e.value.code == "no_route"
    rig.pools["cheap"].at = math.inf
    rig.pools["dear"].at = math.inf
    rig.submit()
    with pytest.raises(RequestError) as e:
        rig.submit(src="12025550101")
    assert e.value.code == "overloaded"


async def test_waits_while_no_carrier_can_take_it_then_goes_or_expires() -> None:
    rig = Rig()
    for p in rig.pools.values():
        p.at = math.inf
    waiting = rig.submit(to="15551234567", validity_s=60)
    doomed = rig.submit(to="15551234568", validity_s=5, src="12025550101")
    assert waiting.status == QUEUED and rig.timer is not None
    rig.d.pump(T0 + 10)
    assert doomed.status == EXPIRED and doomed.error == "expired"
    rig.pools["cheap"].at = -math.inf
    rig.d.pump(T0 + 11)
    assert waiting.status == SENDING


async def test_per_number_limit_holds_the_second_message() -> None:
    rig = Rig(mps=1.0)
    a = rig.submit(to="15551234567")
    b = rig.submit(to="15551234567")
    assert a.status == SENDING and b.status == QUEUED
    assert rig.timer == pytest.approx(T0 + 1.0)
    rig.d.pump(T0 + 1.0)
    assert b.status == SENDING


async def test_resume_sends_queued_and_marks_sending_in_doubt() -> None:
    rig = Rig()
    queued = Message("100", "12025550100", "15551234567", text="q", accepted_at=T0, expires_at=T0 + 60)
    sending = Message("101", "12025550100", "15551234567", text="s", accepted_at=T0, expires_at=T0 + 60,
                      status=SENDING)
    sending.carrier = "cheap"
    rig.d.resume([queued, sending], T0)
    assert queued.status == SENDING
    assert sending.status == UNKNOWN and sending.error == "in_doubt"


async def test_open_circuit_skips_the_carrier() -> None:
    rig = Rig()
    rig.d.health["cheap"].bind_down("transceiver-0", T0)
    msg = rig.submit()
    assert msg.carrier == "dear"
