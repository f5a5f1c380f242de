"""Hostile peers against the sans-IO session: byte soup and random PDU sequences.

Each run drives one ``Session`` (ESME or SMSC side) through a random script of
inbound chunks (valid PDUs, answers to what we have outstanding, garbage, cut
at random points), clock moves, timer firings and our own sends, and checks the
invariants a carrier-facing bind must keep whatever the peer does:

- ``receive_data`` and ``handle_timer`` never raise; ``send`` raises only
  ``LocalProtocolError`` and then queues nothing;
- what we write always decodes with our own framer (we never emit garbage);
- at most ``window`` windowed requests are outstanding, at most one enquire_link;
- sequence numbers we assign are 1..0x7FFFFFFF and never one still outstanding;
- every inbound request is answered exactly once (by the session, or by the
  test acting as the application for ``RequestReceived``), unless the session
  closed during that chunk;
- after ``handle_timer(now)`` the next timer is later than ``now``.

``SMPP_FUZZ_EXAMPLES=5000 pytest -m slow tests/test_adversarial_session.py``
runs the long variant by hand.
"""

from __future__ import annotations

import os
import struct
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.smpp import pdu as P
from adapters.smpp.constants import RESPONSE_BIT, CommandId, CommandStatus
from adapters.smpp.errors import FramingError, LocalProtocolError, RemoteProtocolError
from adapters.smpp.events import (
    BindComplete,
    BindFailed,
    EnquireLinkReceived,
    MalformedPdu,
    PeerDead,
    ProtocolViolation,
    RequestReceived,
    RequestRejected,
    ResponseReceived,
    ResponseTimedOut,
    UnbindComplete,
    UnbindReceived,
)
from adapters.smpp.session import Role, Session, State
from adapters.smpp.states import UNWINDOWED

MAX_SEQ = 0x7FFFFFFF
NO_RESPONSE = {CommandId.OUTBIND, CommandId.ALERT_NOTIFICATION}
BIND_RESPONSES = {
    CommandId.BIND_TRANSMITTER_RESP, CommandId.BIND_RECEIVER_RESP, CommandId.BIND_TRANSCEIVER_RESP
}
WINDOW = 3
DEFAULT = settings(
    max_examples=int(os.environ.get("SMPP_FUZZ_DEFAULT_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
SLOW = settings(
    max_examples=int(os.environ.get("SMPP_FUZZ_EXAMPLES", "2000")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)

REQUESTS = sorted(
    (cls for cls in P.PDU_CLASSES.values() if not cls.is_response), key=lambda c: c.__name__
)
RESPONSES = sorted((cls for cls in P.PDU_CLASSES.values() if cls.is_response), key=lambda c: c.__name__)


def make(role: Role) -> Session:
    return Session(
        role, window=WINDOW, response_timeout_s=5.0, enquire_link_s=7.0, bind_timeout_s=3.0, tombstones=8
    )


def bound(role: Role, now: float) -> Session:
    """A session of ``role`` bound as a transceiver through a real peer session."""
    esme, smsc = make(Role.ESME), make(Role.SMSC)
    esme.bind("transceiver", "acme", "pw", now=now)
    (request,) = smsc.receive_data(esme.data_to_send(), now)
    smsc.send_response(request.pdu.response(system_id="sim"), now)
    (done,) = esme.receive_data(smsc.data_to_send(), now)
    assert isinstance(done, BindComplete)
    return esme if role is Role.ESME else smsc


def sample(cls: type[Any], seq: int) -> Any:
    """A well-formed PDU of ``cls`` with plausible mandatory fields."""
    pdu = cls(sequence_number=seq)
    for name in ("source_addr", "destination_addr"):
        if hasattr(pdu, name):
            setattr(pdu, name, "447700900123")
    if hasattr(pdu, "short_message"):
        pdu.short_message = b"hello"
    if hasattr(pdu, "message_id"):
        pdu.message_id = "abc123"
    return pdu


# ---------------------------------------------------------------- the script


@st.composite
def inbound_pdu(draw: Any, session: Session) -> bytes:
    """One encoded PDU the peer might send: a request, or an answer to something of ours."""
    kind = draw(st.sampled_from(["request", "answer", "answer", "stray_response"]))
    outstanding = session.in_flight()
    if kind == "answer" and outstanding:
        seq, request = outstanding[draw(st.integers(0, len(outstanding) - 1))]
        if draw(st.booleans()) or request.command_id in NO_RESPONSE:
            pdu = P.GenericNack(sequence_number=seq, command_status=draw(st.sampled_from([0, 0x58, 0x14, 0x08])))
        else:
            status = draw(st.sampled_from([0, 0, 0x0D, 0x58, 0x45, 0x40F]))
            pdu = request.response(status)
        return P.encode(pdu)
    seq = draw(st.one_of(st.integers(1, 12), st.sampled_from([0, MAX_SEQ])))
    if kind == "stray_response":
        return P.encode(sample(draw(st.sampled_from(RESPONSES)), seq))
    raw = P.encode(sample(draw(st.sampled_from(REQUESTS)), seq))
    if draw(st.integers(0, 9)) == 0:  # a sequence number the spec does not allow
        raw = raw[:12] + struct.pack(">I", draw(st.sampled_from([0x80000000, 0xFFFFFFFF]))) + raw[16:]
    return raw


@st.composite
def mutated(draw: Any, raw: bytes) -> bytes:
    """``raw`` with its body cut, a NUL removed or an octet flipped (framing kept)."""
    how = draw(st.sampled_from(["keep", "keep", "cut", "flip", "unknown_id"]))
    if how == "cut" and len(raw) > 16:
        body = raw[16 : draw(st.integers(16, len(raw) - 1))]
        return struct.pack(">I", 16 + len(body)) + raw[4:16] + body
    if how == "flip" and len(raw) > 16:
        i = draw(st.integers(16, len(raw) - 1))
        return raw[:i] + bytes([draw(st.integers(0, 255))]) + raw[i + 1 :]
    if how == "unknown_id":
        return raw[:4] + struct.pack(">I", draw(st.sampled_from([0x99, 0x80000099, 0x10203]))) + raw[8:]
    return raw


garbage = st.one_of(
    st.binary(min_size=1, max_size=24),
    st.sampled_from([b"GET / HTTP/1.1\r\n\r\n", b"\x16\x03\x01\x02\x00\x01", b"SSH-2.0-x\r\n", b"\x00\x00\x00\x05"]),
)


class Driver:
    """Plays the application around one session and checks the invariants after every step."""

    def __init__(self, session: Session, now: float) -> None:
        self.s = session
        self.now = now
        self.reader = P.Framer()  # reads what we write: it must always decode
        self.shadow = P.Framer()  # reads what the peer writes, chunk for chunk like the session
        self.expected: Counter[int] = Counter()  # answers we owe, by sequence number
        self.answered: Counter[int] = Counter()  # answers we wrote, by sequence number
        self.waiting: set[int] = set()  # windowed requests sent and not yet resolved by an event
        self.seen: list[Any] = []  # every event, in order

    # -- outbound --
    def drain(self) -> None:
        for pdu in self.reader.feed(self.s.data_to_send()):
            assert not isinstance(pdu, RemoteProtocolError), f"we wrote an undecodable PDU: {pdu!r}"
            if pdu.is_response:
                self.answered[pdu.sequence_number] += 1
            else:
                assert 1 <= pdu.sequence_number <= MAX_SEQ, pdu

    def send(self, cls: type[Any]) -> None:
        s = self.s
        before = [seq for seq, _ in s.in_flight()]
        try:
            seq = s.send(sample(cls, 0), self.now)
        except LocalProtocolError:
            assert [q for q, _ in s.in_flight()] == before, "a refused send changed the in-flight set"
            assert s.data_to_send() == b"", "a refused send queued bytes"
            return
        assert 1 <= seq <= MAX_SEQ
        assert seq not in before, f"sequence {seq} reused while outstanding"
        if cls.command_id not in UNWINDOWED:
            self.waiting.add(seq)

    # -- inbound --
    def receive(self, chunk: bytes) -> None:
        try:
            items = self.shadow.feed(chunk)
        except FramingError as exc:  # framing lost: the PDUs before it still count
            items = exc.pdus
        was_closed = self.s.state is State.CLOSED
        events = self.s.receive_data(chunk, self.now)  # must never raise
        if was_closed:
            assert events == []
            return
        self.seen += events
        owed = 0
        for ev in events:
            owed += self.on_event(ev)
        inbound_requests = sum(1 for item in items if self.is_request(item))
        unbound = any(isinstance(ev, (UnbindReceived, UnbindComplete)) for ev in events)
        if self.s.state is not State.CLOSED or not unbound:
            # Lost framing closes the session too, but only after the PDUs
            # that came whole before the garbage were handled.
            assert owed == inbound_requests, (items, events)
        else:
            assert owed <= inbound_requests, (items, events)

    @staticmethod
    def is_request(item: Any) -> bool:
        if isinstance(item, RemoteProtocolError):
            cid = item.command_id
            return cid is None or not cid & RESPONSE_BIT
        return not item.is_response

    def owe(self, seq: int | None) -> None:
        self.expected[seq if seq is not None and 0 <= seq <= MAX_SEQ else 0] += 1

    def on_event(self, ev: Any) -> int:
        """Book the answer ``ev`` obliges; returns 1 when ``ev`` reports an inbound request."""
        if isinstance(ev, ResponseReceived) and not ev.late:
            assert ev.request_seq in self.waiting, ev
            self.waiting.discard(ev.request_seq)
        if isinstance(ev, ResponseTimedOut) and ev.request.command_id not in UNWINDOWED:
            assert ev.seq in self.waiting, ev
            self.waiting.discard(ev.seq)
        if isinstance(ev, (EnquireLinkReceived, UnbindReceived)):
            self.owe(ev.sequence_number)
            return 1
        if isinstance(ev, RequestRejected):
            self.owe(ev.pdu.sequence_number)
            return 1
        if isinstance(ev, MalformedPdu):
            cid = ev.error.command_id
            if cid is not None and cid & RESPONSE_BIT:
                return 0
            # A malformed outbind/alert_notification gets no answer; an unwritable
            # sequence number gets generic_nack 0 whatever the command.
            if cid not in NO_RESPONSE or ev.error.field == "sequence_number":
                self.owe(ev.error.sequence_number)
            return 1
        if isinstance(ev, ProtocolViolation):
            self.owe(ev.error.sequence_number)
            return 0
        if isinstance(ev, RequestReceived):
            pdu = ev.pdu
            # A request followed by unbind in the same chunk finds the session
            # closed: it can no longer be answered (the carrier redelivers).
            if pdu.command_id not in NO_RESPONSE and self.s.state is not State.CLOSED:
                self.owe(pdu.sequence_number)
                status = 0 if pdu.command_id != CommandId.SUBMIT_SM else CommandStatus.ESME_RTHROTTLED
                self.s.send_response(pdu.response(status), self.now)
            return 1
        if isinstance(ev, BindComplete):
            # Only a bind_*_resp can accept a bind; generic_nack means "not understood".
            assert ev.pdu.command_id in BIND_RESPONSES, ev
        if isinstance(ev, (ResponseReceived, BindFailed)):
            assert ev.pdu is None or ev.pdu.is_response
        return 0

    # -- time --
    def tick(self, seconds: float) -> None:
        self.now += seconds

    def fire(self) -> None:
        timer = self.s.get_timer()
        if timer is not None and timer <= self.now:
            for ev in self.s.handle_timer(self.now):
                self.seen.append(ev)
                self.on_event(ev)
            after = self.s.get_timer()
            assert after is None or after > self.now, f"timer {after} not after {self.now}"

    def check(self) -> None:
        s = self.s
        self.drain()
        assert 0 <= s.outstanding <= s.window
        flying = s.in_flight()
        assert len({seq for seq, _ in flying}) == len(flying)
        assert all(1 <= seq <= MAX_SEQ for seq, _ in flying)
        assert sum(1 for _, req in flying if req.command_id == CommandId.ENQUIRE_LINK) <= 1
        # Every request of ours is answered, timed out, or still listed as in flight.
        assert self.waiting == {seq for seq, req in flying if req.command_id not in UNWINDOWED}, (
            self.waiting, flying,
        )

    def finish(self) -> None:
        self.drain()
        assert self.answered == self.expected, (self.answered, self.expected)


@st.composite
def scripts(draw: Any) -> tuple[Role, bool, list[tuple[str, Any]]]:
    role = draw(st.sampled_from(list(Role)))
    start_bound = draw(st.booleans())
    steps = draw(
        st.lists(
            st.one_of(
                st.tuples(st.just("pdus"), st.integers(1, 4)),
                st.tuples(st.just("garbage"), garbage),
                st.tuples(st.just("send"), st.sampled_from(REQUESTS)),
                st.tuples(st.just("tick"), st.sampled_from([0.0, 0.5, 2.0, 3.5, 6.0, 8.0])),
            ),
            min_size=1,
            max_size=25,
        )
    )
    return role, start_bound, steps


def run(script: tuple[Role, bool, list[tuple[str, Any]]], data: Any) -> None:
    role, start_bound, steps = script
    now = 1000.0
    driver = Driver(bound(role, now) if start_bound else make(role), now)
    for op, arg in steps:
        if op == "pdus":
            stream = b"".join(data.draw(mutated(data.draw(inbound_pdu(driver.s)))) for _ in range(arg))
            if data.draw(st.integers(0, 5)) == 0:  # garbage right behind good PDUs
                stream += data.draw(garbage)
            cuts = sorted(set(data.draw(st.lists(st.integers(0, len(stream)), max_size=3))))
            for a, b in zip([0, *cuts], [*cuts, len(stream)]):
                driver.receive(stream[a:b])
        elif op == "garbage":
            driver.receive(arg)
        elif op == "send":
            driver.send(arg)
        else:
            driver.tick(arg)
            driver.fire()
        driver.check()
    driver.finish()


@DEFAULT
@given(scripts(), st.data())
def test_session_survives_a_hostile_peer(script: Any, data: Any) -> None:
    run(script, data)


@pytest.mark.slow
@SLOW
@given(scripts(), st.data())
def test_session_survives_a_hostile_peer_long_run(script: Any, data: Any) -> None:
    run(script, data)


# ------------------------------------------------------- found by the fuzzer


def test_pdus_before_lost_framing_in_the_same_chunk_are_still_handled() -> None:
    # A submit_sm_resp and a deliver_sm arrive in one read with garbage behind them:
    # the response must settle its request (not leave it in doubt) and the receipt
    # must be reported, before the session closes over the garbage.
    now = 1000.0
    esme = bound(Role.ESME, now)
    seq = esme.send(sample(P.SubmitSm, 0), now)
    esme.data_to_send()
    chunk = (
        P.encode(P.SubmitSmResp(sequence_number=seq, message_id="42"))
        + P.encode(sample(P.DeliverSm, 9))
        + P.encode(P.EnquireLink(sequence_number=10))
        + b"GET / HTTP/1.1\r\n\r\n"
    )
    events = esme.receive_data(chunk, now + 1)
    assert [type(ev) for ev in events] == [ResponseReceived, RequestReceived, EnquireLinkReceived, ProtocolViolation]
    assert events[0].pdu.message_id == "42" and events[0].request_seq == seq
    assert esme.in_flight() == []
    assert esme.state is State.CLOSED
    answers = P.Framer().feed(esme.data_to_send())
    nack_seq = events[-1].error.sequence_number  # octets 12-15 of the garbage, as read
    assert [(type(a), a.sequence_number) for a in answers] == [(P.EnquireLinkResp, 10), (P.GenericNack, nack_seq)]
    assert answers[1].command_status == CommandStatus.ESME_RINVCMDLEN


def test_generic_nack_with_status_zero_does_not_complete_a_bind() -> None:
    # generic_nack says the bind was not understood, whatever status it carries:
    # reporting BindComplete would submit on a bind the carrier never accepted.
    now = 1000.0
    esme = make(Role.ESME)
    seq = esme.bind("transmitter", "acme", "pw", now=now)
    esme.data_to_send()
    events = esme.receive_data(P.encode(P.GenericNack(sequence_number=seq)), now + 1)
    assert len(events) == 1 and isinstance(events[0], BindFailed), events
    assert events[0].status == CommandStatus.ESME_RBINDFAIL
    assert isinstance(events[0].pdu, P.GenericNack)
    assert esme.state is State.OPEN


def test_requests_expiring_with_an_unanswered_keepalive_are_still_reported() -> None:
    # The keepalive and a submit_sm time out in the same handle_timer call: the
    # session declares the peer dead, and the submit_sm must still come out as
    # ResponseTimedOut (or stay in flight), not vanish from both.
    now = 1000.0
    esme = bound(Role.ESME, now)
    due = esme.get_timer()
    assert due == now + 7.0
    (ping,) = esme.handle_timer(due)
    seq = esme.send(sample(P.SubmitSm, 0), due)
    events = esme.handle_timer(due + 10.0)
    assert esme.state is State.CLOSED
    assert [type(ev) for ev in events] == [PeerDead, ResponseTimedOut]
    assert events[0].sequence_number == ping.sequence_number and events[1].seq == seq
    assert esme.in_flight() == []


def test_requests_expiring_with_our_unanswered_unbind_are_still_reported() -> None:
    now = 1000.0
    esme = bound(Role.ESME, now)
    seq = esme.send(sample(P.SubmitSm, 0), now)
    unbind = esme.unbind(now)
    events = esme.handle_timer(now + 6.0)
    assert esme.state is State.CLOSED
    assert sorted(ev.seq for ev in events if isinstance(ev, ResponseTimedOut)) == [seq, unbind]
