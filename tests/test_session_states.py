"""Hypothesis over states × inputs for a session pair (h2 ``test_state_machines.py`` style).

Whatever the order of binds, traffic, answers, timeouts, lost and split
writes, garbage and stray PDUs: ``receive_data`` and ``handle_timer`` never
raise, ``send`` raises only our typed LocalProtocolError, the window is never
exceeded and the bookkeeping stays consistent.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from adapters.smpp import pdu as P
from adapters.smpp.constants import CommandStatus
from adapters.smpp.errors import LocalProtocolError
from adapters.smpp.events import Event, RequestReceived
from adapters.smpp.inflight import MAX_SEQUENCE
from adapters.smpp.session import Role, Session, State, WindowFull
from adapters.smpp.states import BIND_RESULT, BOUND_STATES, NO_RESPONSE, UNWINDOWED

WINDOW = 3
STATUSES = st.sampled_from([0, 0, CommandStatus.ESME_RTHROTTLED, CommandStatus.ESME_RINVPASWD, 0x401])
PDU_TYPES = st.sampled_from(sorted(P.PDU_CLASSES.values(), key=lambda cls: cls.command_id))


class SessionPair(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.sides = {
            role: Session(
                role, window=WINDOW, response_timeout_s=5.0, enquire_link_s=7.0, bind_timeout_s=3.0,
                first_sequence=MAX_SEQUENCE - 4, tombstones=4,
            )
            for role in Role
        }
        self.unanswered: dict[Role, list[Any]] = {role: [] for role in Role}

    # ----------------------------------------------------------- helpers

    def absorb(self, role: Role, events: list[Event]) -> None:
        for event in events:
            assert isinstance(event, Event)
            if isinstance(event, RequestReceived) and event.pdu.command_id not in NO_RESPONSE:
                self.unanswered[role].append(event.pdu)

    def try_send(self, role: Role, pdu: Any) -> None:
        session = self.sides[role]
        was_full = session.outstanding >= session.window
        before = session.in_flight()
        try:
            seq = session.send(pdu, self.now)
        except WindowFull:
            assert was_full and pdu.command_id not in UNWINDOWED
            assert session.in_flight() == before
        except LocalProtocolError as exc:
            assert exc.command_status == CommandStatus.ESME_RINVBNDSTS
            assert session.in_flight() == before
        else:
            assert 1 <= seq <= MAX_SEQUENCE and seq not in {s for s, _ in before}

    # ------------------------------------------------------------- rules

    @initialize(kind=st.sampled_from(["transmitter", "receiver", "transceiver", None]))
    def start(self, kind: str | None) -> None:
        """Most runs start bound, so that traffic rules have something to do."""
        if kind is None:
            return
        esme, smsc = self.sides[Role.ESME], self.sides[Role.SMSC]
        esme.bind(kind, "acme", "secret", now=self.now)
        (request,) = smsc.receive_data(esme.data_to_send(), self.now)
        smsc.send_response(request.pdu.response(system_id="SMSC"), self.now)
        esme.receive_data(smsc.data_to_send(), self.now)
        assert esme.state is smsc.state is BIND_RESULT[request.pdu.command_id]

    @rule(kind=st.sampled_from(["transmitter", "receiver", "transceiver"]))
    def bind(self, kind: str) -> None:
        esme = self.sides[Role.ESME]
        state = esme.state
        try:
            esme.bind(kind, "acme", "secret", now=self.now)
        except LocalProtocolError:
            assert state is not State.OPEN
        else:
            assert state is State.OPEN and esme.state is State.BINDING

    @rule(role=st.sampled_from(Role), text=st.binary(max_size=20))
    def traffic(self, role: Role, text: bytes) -> None:
        cls = P.SubmitSm if role is Role.ESME else P.DeliverSm
        self.try_send(role, cls(source_addr="1", destination_addr="2", short_message=text))

    @rule(role=st.sampled_from(Role), which=st.sampled_from(["unbind", "enquire_link", "data_sm"]))
    def link(self, role: Role, which: str) -> None:
        pdu = {"unbind": P.Unbind, "enquire_link": P.EnquireLink}.get(which)
        self.try_send(role, pdu() if pdu else P.DataSm(source_addr="1", destination_addr="2"))

    @precondition(lambda self: any(self.unanswered.values()))
    @rule(data=st.data(), status=STATUSES, nack=st.booleans())
    def answer(self, data: st.DataObject, status: int, nack: bool) -> None:
        role = data.draw(st.sampled_from([r for r in Role if self.unanswered[r]]))
        request = self.unanswered[role].pop(data.draw(st.integers(0, len(self.unanswered[role]) - 1)))
        if nack:
            response = P.GenericNack(command_status=status or 8, sequence_number=request.sequence_number)
        else:
            response = request.response(status)
        try:
            self.sides[role].send_response(response, self.now)
        except LocalProtocolError:
            # Only a bind answer can be refused (the bind it answers is over), or any after CLOSED.
            assert self.sides[role].state is State.CLOSED or request.command_id in BIND_RESULT

    @rule(role=st.sampled_from(Role), how=st.sampled_from(["whole", "split", "lost", "twice"]), cut=st.integers(0, 200))
    def deliver(self, role: Role, how: str, cut: int) -> None:
        data = self.sides[role].data_to_send()
        peer = self.sides[role.peer]
        self.now += 0.01
        if how == "lost" or not data:
            return
        if how == "split":
            cut %= len(data)
            self.absorb(role.peer, peer.receive_data(data[:cut], self.now))
            self.absorb(role.peer, peer.receive_data(data[cut:], self.now))
        else:
            for _ in range(2 if how == "twice" else 1):
                self.absorb(role.peer, peer.receive_data(data, self.now))

    @rule(role=st.sampled_from(Role), cls=PDU_TYPES, seq=st.integers(0, 0xFFFFFFFF), status=STATUSES)
    def stray_pdu(self, role: Role, cls: type, seq: int, status: int) -> None:
        pdu = cls(sequence_number=seq & MAX_SEQUENCE, command_status=status if cls.is_response else 0)
        data = P.encode(pdu)
        data = data[:12] + seq.to_bytes(4, "big") + data[16:]  # any 32-bit sequence on the wire
        self.absorb(role, self.sides[role].receive_data(data, self.now))

    @rule(role=st.sampled_from(Role), garbage=st.binary(min_size=1, max_size=40))
    def garbage(self, role: Role, garbage: bytes) -> None:
        self.absorb(role, self.sides[role].receive_data(garbage, self.now))

    @rule(seconds=st.floats(0.0, 12.0))
    def time_passes(self, seconds: float) -> None:
        self.now += seconds
        for role, session in self.sides.items():
            timer = session.get_timer()
            events = session.handle_timer(self.now)
            if timer is None or timer > self.now:
                assert events == []
            self.absorb(role, events)

    # -------------------------------------------------------- invariants

    @invariant()
    def consistent(self) -> None:
        for session in self.sides.values():
            assert 0 <= session.outstanding <= session.window
            flying = session.in_flight()
            seqs = [seq for seq, _ in flying]
            assert len(seqs) == len(set(seqs)) and all(1 <= s <= MAX_SEQUENCE for s in seqs)
            assert session.outstanding == sum(1 for _, r in flying if r.command_id not in UNWINDOWED)
            if session.state is State.CLOSED:
                assert session.get_timer() is None and not session.can_send()
            if session.can_send():
                assert session.state in BOUND_STATES
            timer = session.get_timer()
            assert timer is None or isinstance(timer, float)


TestSessionPair = SessionPair.TestCase
TestSessionPair.settings = settings(
    max_examples=100, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
