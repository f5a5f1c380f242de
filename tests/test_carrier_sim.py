"""The simulated carrier seen from a client: binds, ids, receipts and their forms.

The client here is deliberately small: a socket, our codec's ``encode`` and
``Framer``, and nothing of the session or the ESME pool, so what the
simulator puts on the wire is what is asserted.  Fault injection is in
``test_carrier_sim_faults.py``; smpplib and the command line in
``test_smpplib_sim.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from adapters.carrier_sim import CarrierSim, SimOptions
from adapters.carrier_sim_receipts import DueQueue, ReceiptMaker, preview
from adapters.smpp.constants import CommandId, TlvTag
from adapters.smpp.constants import CommandStatus as S
from adapters.smpp.events import RequestReceived
from adapters.smpp.pdu import (
    BindReceiver,
    BindTransceiver,
    BindTransceiverResp,
    BindTransmitter,
    DeliverSm,
    EnquireLink,
    Framer,
    SubmitSm,
    encode,
)
from adapters.smpp.receipt import parse_receipt
from adapters.smpp.smsc import SmscConnection, SmscServer

BINDS = {"transmitter": BindTransmitter, "receiver": BindReceiver, "transceiver": BindTransceiver}
READ_TIMEOUT = 2.0


class Esme:
    """A bare SMPP client for tests: sends what it is told, reads PDUs in order.

    deliver_sm arriving while waiting for something else are answered at once
    (``answer_receipts``) and kept in ``receipts`` with the loop time they came;
    ``receipt()`` hands them out one by one.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.framer = Framer()
        self.inbox: list[Any] = []
        self.receipts: list[tuple[float, DeliverSm]] = []
        self.answer_receipts = True
        self.taken = 0
        self.seq = 0

    @classmethod
    async def connect(cls, sim: CarrierSim) -> Esme:
        return cls(*await asyncio.open_connection("127.0.0.1", sim.port))

    def write(self, *pdus: Any) -> list[int]:
        """Send ``pdus`` in one write; requests get fresh sequence numbers."""
        seqs = []
        for pdu in pdus:
            if not pdu.is_response:
                self.seq += 1
                pdu.sequence_number = self.seq
            seqs.append(pdu.sequence_number)
        self.writer.write(b"".join(encode(p) for p in pdus))
        return seqs

    async def read(self, timeout: float = READ_TIMEOUT) -> Any:
        """The next PDU; raises TimeoutError, or EOFError when the peer closed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.inbox:
            data = await asyncio.wait_for(self.reader.read(65536), max(0.0, deadline - loop.time()))
            if not data:
                raise EOFError("the simulator closed the connection")
            self.inbox.extend(self.framer.feed(data))
        return self.inbox.pop(0)

    async def response(self, seq: int, timeout: float = READ_TIMEOUT) -> Any:
        """The response to ``seq``; receipts met on the way are answered and kept."""
        while True:
            pdu = await self.read(timeout)
            if pdu.command_id == CommandId.DELIVER_SM:
                self._receipt(pdu)
            elif pdu.is_response and pdu.sequence_number == seq:
                return pdu

    async def receipt(self, timeout: float = READ_TIMEOUT) -> DeliverSm:
        """The next receipt not yet taken (reading until one comes)."""
        while len(self.receipts) <= self.taken:
            pdu = await self.read(timeout)
            if pdu.command_id == CommandId.DELIVER_SM:
                self._receipt(pdu)
        self.taken += 1
        return self.receipts[self.taken - 1][1]

    def _receipt(self, pdu: DeliverSm) -> None:
        self.receipts.append((asyncio.get_running_loop().time(), pdu))
        if self.answer_receipts:
            self.write(pdu.response())

    async def bind(self, kind: str = "transceiver", system_id: str = "acme", password: str = "secret") -> Any:
        (seq,) = self.write(BINDS[kind](system_id=system_id, password=password, interface_version=0x34))
        return await self.response(seq)

    async def submit(self, to: str = "447700900123", dlr: bool = True, **fields: Any) -> Any:
        pdu = submit_pdu(to, dlr, **fields)
        (seq,) = self.write(pdu)
        return await self.response(seq)

    async def closed(self, timeout: float = READ_TIMEOUT) -> bool:
        """True when the peer closes within ``timeout`` (PDUs before the close are kept)."""
        try:
            while True:
                await self.read(timeout)
        except EOFError:
            return True
        except TimeoutError:
            return False

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except ConnectionError:
            pass


def submit_pdu(to: str = "447700900123", dlr: bool = True, **fields: Any) -> SubmitSm:
    fields.setdefault("source_addr", "ACME")
    fields.setdefault("source_addr_ton", 5)
    fields.setdefault("short_message", b"Your code is 123456")
    fields.setdefault("registered_delivery", 1 if dlr else 0)
    return SubmitSm(dest_addr_ton=1, dest_addr_npi=1, destination_addr=to, **fields)


@contextlib.asynccontextmanager
async def running_sims() -> AsyncIterator[Callable[..., Awaitable[CarrierSim]]]:
    """A maker of started simulators, every one stopped on the way out."""
    sims: list[CarrierSim] = []

    async def make(**options: Any) -> CarrierSim:
        sim = CarrierSim(SimOptions(**options))
        await sim.start()
        sims.append(sim)
        return sim

    try:
        yield make
    finally:
        for sim in sims:
            await sim.stop()


@pytest.fixture
async def sim_factory() -> AsyncIterator[Callable[..., Awaitable[CarrierSim]]]:
    async with running_sims() as make:
        yield make


# ------------------------------------------------------------------- binds


async def test_bind_answers_with_our_system_id_and_counts_it(sim_factory) -> None:
    sim = await sim_factory(system_id="acme", password="secret")
    esme = await Esme.connect(sim)
    resp = await esme.bind("transmitter")
    assert (resp.command_id, resp.command_status, resp.system_id) == (CommandId.BIND_TRANSMITTER_RESP, 0, "carrier-sim")
    assert resp.tlvs[TlvTag.SC_INTERFACE_VERSION] == 0x34
    assert sim.stats["binds"] == 1
    await esme.close()


@pytest.mark.parametrize(
    ("system_id", "password", "status"),
    [("nobody", "secret", S.ESME_RINVSYSID), ("acme", "wrong", S.ESME_RINVPASWD)],
)
async def test_bad_credentials_are_refused_and_the_connection_may_retry(sim_factory, system_id, password, status):
    sim = await sim_factory(system_id="acme", password="secret")
    esme = await Esme.connect(sim)
    refused = await esme.bind("transceiver", system_id, password)
    assert refused.command_status == status
    # §4.1: a refused bind leaves the connection open, unbound; a good bind then works.
    (seq,) = esme.write(submit_pdu())
    assert (await esme.response(seq)).command_status == S.ESME_RINVBNDSTS
    assert (await esme.bind("transceiver")).command_status == 0
    assert sim.stats["binds_refused"] == 1 and sim.stats["binds"] == 1
    await esme.close()


async def test_any_credentials_are_accepted_when_none_are_configured(sim_factory) -> None:
    sim = await sim_factory()
    esme = await Esme.connect(sim)
    assert (await esme.bind("receiver", "whoever", "whatever")).command_status == 0
    await esme.close()


# --------------------------------------------------------------------- ids


@pytest.mark.parametrize(
    ("id_format", "first_id", "expected"),
    [("dec", 1, ["1", "2", "3"]), ("hex", 254, ["fe", "ff", "100"])],
)
async def test_message_ids_count_up_in_the_chosen_base(sim_factory, id_format, first_id, expected) -> None:
    sim = await sim_factory(id_format=id_format, first_id=first_id)
    esme = await Esme.connect(sim)
    await esme.bind()
    ids = [(await esme.submit(dlr=False)).message_id for _ in expected]
    assert ids == expected
    assert [r.message_id for r in sim.received] == expected
    await esme.close()


async def test_uuid_ids_are_distinct_uuid4_and_reproducible_with_a_seed(sim_factory) -> None:
    runs = []
    for _ in range(2):
        sim = await sim_factory(id_format="uuid", seed=7)
        esme = await Esme.connect(sim)
        await esme.bind()
        runs.append([(await esme.submit(dlr=False)).message_id for _ in range(3)])
        await esme.close()
    pattern = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
    assert all(pattern.match(i) for i in runs[0]) and len(set(runs[0])) == 3
    assert runs[0] == runs[1]


@pytest.mark.parametrize(("id_format", "receipt_format", "resp_id", "receipt_id"), [
    ("dec", "hex", "255", "ff"),
    ("hex", "dec", "ff", "255"),
    ("dec", "same", "255", "255"),
])
async def test_receipt_ids_can_be_spelled_in_another_base(sim_factory, id_format, receipt_format, resp_id, receipt_id):
    sim = await sim_factory(id_format=id_format, receipt_id_format=receipt_format, first_id=255)
    esme = await Esme.connect(sim)
    await esme.bind()
    assert (await esme.submit()).message_id == resp_id
    receipt = await esme.receipt()
    assert receipt.tlvs[TlvTag.RECEIPTED_MESSAGE_ID] == receipt_id
    assert receipt.short_message.startswith(b"id:%s " % receipt_id.encode())
    await esme.close()


# ---------------------------------------------------------------- receipts


async def test_a_receipt_swaps_the_addresses_and_says_delivered(sim_factory) -> None:
    sim = await sim_factory()
    esme = await Esme.connect(sim)
    await esme.bind()
    resp = await esme.submit("447700900123", source_addr="12025550100", source_addr_ton=1, source_addr_npi=1)
    receipt = await esme.receipt()
    assert (receipt.esm_class, receipt.data_coding) == (0x04, 0)
    assert (receipt.source_addr, receipt.source_addr_ton, receipt.source_addr_npi) == ("447700900123", 1, 1)
    assert (receipt.destination_addr, receipt.dest_addr_ton, receipt.dest_addr_npi) == ("12025550100", 1, 1)
    text = receipt.short_message.decode()
    assert re.fullmatch(
        r"id:1 sub:001 dlvrd:001 submit date:\d{10} done date:\d{10} stat:DELIVRD err:000 text:Your code is 123456",
        text,
    ), text
    assert receipt.tlvs == {TlvTag.RECEIPTED_MESSAGE_ID: resp.message_id, TlvTag.MESSAGE_STATE: 2}
    await asyncio.sleep(0.05)  # our deliver_sm_resp reaches the simulator
    assert sim.stats["receipts_sent"] == sim.stats["receipts_acked"] == 1
    await esme.close()


async def test_no_receipt_unless_asked_and_registered_delivery_2_means_on_failure_only(sim_factory) -> None:
    sim = await sim_factory(undeliverable_numbers="4479")
    esme = await Esme.connect(sim)
    await esme.bind()
    await esme.submit("447700900001", dlr=False)
    await esme.submit("447700900002", registered_delivery=2)  # delivered: no receipt wanted
    await esme.submit("447900900003", registered_delivery=2)  # undeliverable: receipt
    receipt = await esme.receipt()
    assert receipt.source_addr == "447900900003"
    assert b"stat:UNDELIV err:001" in receipt.short_message and b"dlvrd:000" in receipt.short_message
    assert receipt.tlvs[TlvTag.MESSAGE_STATE] == 5
    with pytest.raises(TimeoutError):
        await esme.receipt(timeout=0.2)
    assert sim.stats["receipts_sent"] == 1
    await esme.close()


async def test_receipts_wait_for_their_delay_and_come_in_order(sim_factory) -> None:
    sim = await sim_factory(dlr_delay_ms=150)
    esme = await Esme.connect(sim)
    await esme.bind()
    sent_at = asyncio.get_running_loop().time()
    seqs = esme.write(*(submit_pdu(f"4477009{i:05d}") for i in range(20)))
    for seq in seqs:
        assert (await esme.response(seq)).command_status == 0
    assert esme.receipts == []  # every response came before any receipt
    assert [(await esme.receipt()).source_addr for _ in range(20)] == [f"4477009{i:05d}" for i in range(20)]
    delays = [at - sent_at for at, _ in esme.receipts]
    assert 0.15 <= min(delays) and max(delays) < 0.6, delays
    assert sim.stats["receipts_sent"] == 20
    await esme.close()


STYLE_CHECKS = {
    "spec": (rb"id:1 sub:001 dlvrd:001 submit date:\d{10} done date:\d{10} stat:DELIVRD err:000 text:Your code is 123456",
             {TlvTag.RECEIPTED_MESSAGE_ID, TlvTag.MESSAGE_STATE}),
    "kannel": (rb"id:1 sub:001 dlvrd:001 submit date:\d{12} done date:\d{12} stat:DELIVRD err:000 Text:Your code is 123456",
               set()),
    "uppercase": (rb"ID:1 SUB:001 DLVRD:001 SUBMIT DATE:\d{10} DONE DATE:\d{10} STAT:DELIVRD ERR:000 TEXT:Your code is 123456",
                  set()),
    "minimal": (rb"id:1 stat:DELIVRD", set()),
    "tlv": (rb"", {TlvTag.RECEIPTED_MESSAGE_ID, TlvTag.MESSAGE_STATE}),
    "payload": (rb"", {TlvTag.MESSAGE_PAYLOAD}),
}


@pytest.mark.parametrize("style", sorted(STYLE_CHECKS))
async def test_each_receipt_style_arrives_as_specified_and_reads_back(sim_factory, style) -> None:
    sim = await sim_factory(receipt_style=style)
    esme = await Esme.connect(sim)
    await esme.bind()
    await esme.submit()
    receipt = await esme.receipt()
    pattern, tags = STYLE_CHECKS[style]
    assert re.fullmatch(pattern, receipt.short_message), receipt.short_message
    assert set(receipt.tlvs) == tags
    if style == "payload":
        assert re.fullmatch(STYLE_CHECKS["spec"][0], receipt.tlvs[TlvTag.MESSAGE_PAYLOAD])
    # The router's own tolerant reader finds the id and the outcome in every form.
    parsed = parse_receipt(receipt)
    assert parsed.message_id == "1"
    assert parsed.stat == "DELIVRD" or parsed.message_state == 2
    await esme.close()


async def test_receipts_first_sends_the_deliver_sm_before_the_response(sim_factory) -> None:
    for delay in (0, 60):
        sim = await sim_factory(receipts_first=True, dlr_delay_ms=delay)
        esme = await Esme.connect(sim)
        await esme.bind()
        (seq,) = esme.write(submit_pdu())
        first, second = await esme.read(), await esme.read()
        assert first.command_id == CommandId.DELIVER_SM, delay
        assert (second.command_id, second.sequence_number) == (CommandId.SUBMIT_SM_RESP, seq)
        assert first.tlvs[TlvTag.RECEIPTED_MESSAGE_ID] == second.message_id
        await esme.close()


async def test_receipts_arrive_round_robin_on_the_system_ids_receiving_binds(sim_factory) -> None:
    sim = await sim_factory()
    tx, rx1, rx2, other = [await Esme.connect(sim) for _ in range(4)]
    await tx.bind("transmitter")
    await rx1.bind("receiver")
    await rx2.bind("transceiver")
    await other.bind("receiver", system_id="globex")
    ids = [(await tx.submit(f"44770090000{i}")).message_id for i in range(4)]
    got1 = [(await rx1.receipt()).tlvs[TlvTag.RECEIPTED_MESSAGE_ID] for _ in range(2)]
    got2 = [(await rx2.receipt()).tlvs[TlvTag.RECEIPTED_MESSAGE_ID] for _ in range(2)]
    assert sorted(got1 + got2) == sorted(ids)
    assert got1 == ids[0::2] and got2 == ids[1::2]
    with pytest.raises(TimeoutError):
        await other.receipt(timeout=0.15)
    with pytest.raises(TimeoutError):
        await tx.receipt(timeout=0.05)
    for esme in (tx, rx1, rx2, other):
        await esme.close()


async def test_a_receipt_waits_for_a_receiving_bind(sim_factory) -> None:
    sim = await sim_factory()
    tx = await Esme.connect(sim)
    await tx.bind("transmitter")
    mid = (await tx.submit()).message_id
    await asyncio.sleep(0.05)
    assert sim.pending_receipts == 1 and sim.stats["receipts_sent"] == 0
    rx = await Esme.connect(sim)
    await rx.bind("receiver")
    assert (await rx.receipt()).tlvs[TlvTag.RECEIPTED_MESSAGE_ID] == mid
    assert sim.pending_receipts == 0
    await tx.close()
    await rx.close()


async def test_an_unanswered_receipt_is_redelivered_on_another_bind(sim_factory) -> None:
    sim = await sim_factory()
    rx1 = await Esme.connect(sim)
    rx1.answer_receipts = False
    await rx1.bind("transceiver")
    mid = (await rx1.submit()).message_id
    await rx1.receipt()  # read, never answered
    await rx1.close()
    rx2 = await Esme.connect(sim)
    await rx2.bind("receiver")
    assert (await rx2.receipt()).tlvs[TlvTag.RECEIPTED_MESSAGE_ID] == mid
    assert sim.stats["receipts_requeued"] == 1
    await rx2.close()


async def test_every_submit_is_recorded_with_what_was_answered(sim_factory, tmp_path) -> None:
    path = tmp_path / "sim.jsonl"
    sim = await sim_factory(log=str(path), reject_numbers="4479")
    esme = await Esme.connect(sim)
    await esme.bind("transmitter")
    await esme.submit("447700900123", short_message=b"\x00\x01hi", data_coding=8, esm_class=0,
                      tlvs={TlvTag.USER_MESSAGE_REFERENCE: 42})
    await esme.submit("447900900000", dlr=False)
    first, second = sim.received
    assert (first.system_id, first.destination_addr, first.dest_addr_ton, first.source_addr) == (
        "acme", "447700900123", 1, "ACME")
    assert (first.short_message, first.data_coding, first.registered_delivery) == (b"\x00\x01hi", 8, 1)
    assert first.tlvs == {TlvTag.USER_MESSAGE_REFERENCE: 42}
    assert (first.status, first.message_id, second.status, second.message_id) == (0, "1", S.ESME_RINVDSTADR, "")
    assert first.bind_id == second.bind_id and first.sequence_number == 2
    await esme.close()
    await sim.stop()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["destination_addr"] for line in lines] == ["447700900123", "447900900000"]
    assert lines[0]["short_message"] == "00016869"
    assert lines[0]["tlvs"] == {"0x0204": 42}
    assert "password" not in path.read_text()


async def test_enquire_link_is_answered_before_and_after_the_bind(sim_factory) -> None:
    sim = await sim_factory()
    esme = await Esme.connect(sim)
    (seq,) = esme.write(EnquireLink())
    assert (await esme.response(seq)).command_id == CommandId.ENQUIRE_LINK_RESP
    await esme.bind()
    (seq,) = esme.write(EnquireLink())
    assert (await esme.response(seq)).command_id == CommandId.ENQUIRE_LINK_RESP
    assert sim.stats["enquire_links_received"] == 2
    await esme.close()


async def test_garbage_costs_one_connection_and_nothing_else(sim_factory) -> None:
    sim = await sim_factory()
    good = await Esme.connect(sim)
    await good.bind()
    bad = await Esme.connect(sim)
    bad.writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    nack = await bad.read()
    assert (nack.command_id, nack.command_status) == (CommandId.GENERIC_NACK, S.ESME_RINVCMDLEN)
    assert await bad.closed()
    assert (await good.submit()).command_status == 0
    await good.close()


# ----------------------------------------------------------------- pure parts


def test_preview_skips_the_udh_and_masks_what_is_not_printable() -> None:
    udh = bytes([5, 0, 3, 7, 2, 1])
    assert preview(udh + b"Hello: world", 0x40) == "Hello. world"
    assert preview(b"\x00\x1bab" + b"x" * 30, 0) == "..ab" + "x" * 16


def test_receipt_maker_refuses_an_unknown_style_by_name() -> None:
    with pytest.raises(ValueError, match="receipt_style"):
        ReceiptMaker("fancy")


def test_due_queue_pops_what_is_due_in_order_and_ties_in_push_order() -> None:
    q = DueQueue()
    for due, item in [(3.0, "c"), (1.0, "a1"), (2.0, "b"), (1.0, "a2")]:
        q.push(due, item)
    assert q.next_due() == 1.0
    assert q.pop_due(0.5) == []
    assert q.pop_due(2.0) == ["a1", "a2", "b"]
    assert (len(q), q.next_due()) == (1, 3.0)
    assert q.clear() == ["c"] and q.next_due() is None


# ------------------------------------------------------------- the SMSC edge


class _Echo:
    """A minimal handler: binds everyone, answers submits with ok."""

    def __init__(self, conns: list[SmscConnection]) -> None:
        self.conns = conns
        self.lost: list[Exception | None] = []

    def __call__(self, conn: SmscConnection) -> _Echo:
        self.conns.append(conn)
        return self

    def handle_events(self, conn: SmscConnection, events: list[Any], now: float) -> None:
        for event in events:
            if isinstance(event, RequestReceived):
                kind = BindTransceiverResp if event.pdu.command_id == CommandId.BIND_TRANSCEIVER else None
                conn.send_response(event.pdu.response(0, **({"system_id": "x"} if kind else {})))

    def connection_lost(self, conn: SmscConnection, exc: Exception | None) -> None:
        self.lost.append(exc)


async def test_smsc_server_writes_once_per_read_and_once_per_loop_pass() -> None:
    conns: list[SmscConnection] = []
    handler = _Echo(conns)
    server = SmscServer("127.0.0.1", 0, on_connection=handler)
    await server.start()
    try:
        esme = await Esme.connect(server)  # type: ignore[arg-type]
        await esme.bind()
        (conn,) = conns
        before = conn.writes
        seqs = esme.write(*(submit_pdu(dlr=False) for _ in range(100)))  # ~5 KB: one read on loopback
        for seq in seqs:
            await esme.response(seq)
        assert conn.writes - before <= 2
        before = conn.writes
        for i in range(50):  # sends outside data_received: one flush at the end of the loop pass
            conn.send(DeliverSm(source_addr=f"{i}", esm_class=0x04))
        assert conn.writes == before
        got = [await esme.receipt() for _ in range(50)]
        assert [r.source_addr for r in got] == [str(i) for i in range(50)]
        assert conn.writes == before + 1
        await esme.close()
        await asyncio.sleep(0.05)
        assert handler.lost == [None] and server.connections == set()
    finally:
        await server.stop()
