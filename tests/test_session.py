"""Session pair joined in memory with a manual clock (aioquic ``test_connection.py`` style)."""

from __future__ import annotations

import ast
import pathlib
import struct

import pytest

from adapters.smpp import pdu as P
from adapters.smpp.constants import CommandId, CommandStatus
from adapters.smpp.errors import LocalProtocolError
from adapters.smpp.events import (
    BindComplete,
    BindFailed,
    EnquireLinkDue,
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
    UnexpectedResponse,
)
from adapters.smpp.session import BindKind, Role, Session, State, WindowFull

TICK = 0.001
RESPONSE_TIMEOUT = 30.0
ENQUIRE_LINK = 60.0
BIND_TIMEOUT = 10.0
BOUND = {"transmitter": State.BOUND_TX, "receiver": State.BOUND_RX, "transceiver": State.BOUND_TRX}


class Clock:
    """Manual time: tests move it, sessions only ever see it as an argument."""

    def __init__(self) -> None:
        self.now = 1000.0

    def tick(self, seconds: float = TICK) -> float:
        self.now += seconds
        return self.now


def make(role: Role, **overrides: object) -> Session:
    options: dict[str, object] = {
        "window": 8,
        "response_timeout_s": RESPONSE_TIMEOUT,
        "enquire_link_s": ENQUIRE_LINK,
        "bind_timeout_s": BIND_TIMEOUT,
    }
    options.update(overrides)
    return Session(role, **options)  # type: ignore[arg-type]


def transfer(sender: Session, receiver: Session, clock: Clock) -> list[object]:
    """Move everything ``sender`` queued into ``receiver``; returns its events."""
    data = sender.data_to_send()
    return receiver.receive_data(data, clock.tick()) if data else []


def sent_pdus(session: Session) -> list[object]:
    """Decode what ``session`` queued (and drain it)."""
    framer = P.Framer()
    return framer.feed(session.data_to_send())


def bound_pair(kind: str = "transceiver", **overrides: object) -> tuple[Session, Session, Clock]:
    clock = Clock()
    esme, smsc = make(Role.ESME, **overrides), make(Role.SMSC, **overrides)
    esme.bind(kind, "acme", "secret", now=clock.now)
    (request,) = transfer(esme, smsc, clock)
    assert isinstance(request, RequestReceived)
    smsc.send_response(request.pdu.response(system_id="SMSC"), clock.now)
    (done,) = transfer(smsc, esme, clock)
    assert isinstance(done, BindComplete)
    return esme, smsc, clock


def submit(esme: Session, clock: Clock, text: bytes = b"hi") -> int:
    return esme.send(P.SubmitSm(source_addr="ACME", destination_addr="447700900123", short_message=text), clock.now)


# ------------------------------------------------------------------- binding


@pytest.mark.parametrize("kind", ["transmitter", "receiver", "transceiver"])
def test_bind_every_kind_binds_both_sides(kind: str) -> None:
    clock = Clock()
    esme, smsc = make(Role.ESME), make(Role.SMSC)
    seq = esme.bind(BindKind(kind), "acme", "secret", system_type="VMA", now=clock.now)
    assert esme.state is State.BINDING and esme.in_flight()[0][0] == seq
    (request,) = transfer(esme, smsc, clock)
    assert isinstance(request, RequestReceived)
    assert (request.pdu.system_id, request.pdu.password, request.pdu.system_type) == ("acme", "secret", "VMA")
    assert smsc.state is State.BINDING
    smsc.send_response(request.pdu.response(system_id="SMSC"), clock.now)
    assert smsc.state is BOUND[kind]
    (done,) = transfer(smsc, esme, clock)
    assert done == BindComplete(BOUND[kind], done.pdu)
    assert done.pdu.system_id == "SMSC"
    assert esme.state is BOUND[kind] and esme.in_flight() == []


def test_bind_refused_returns_both_sides_to_open() -> None:
    clock = Clock()
    esme, smsc = make(Role.ESME), make(Role.SMSC)
    esme.bind("transmitter", "acme", "wrong", now=clock.now)
    (request,) = transfer(esme, smsc, clock)
    smsc.send_response(request.pdu.response(CommandStatus.ESME_RINVPASWD), clock.now)
    (failed,) = transfer(smsc, esme, clock)
    assert isinstance(failed, BindFailed) and failed.status == CommandStatus.ESME_RINVPASWD
    assert esme.state is State.OPEN and smsc.state is State.OPEN


def test_bind_times_out_and_closes() -> None:
    clock = Clock()
    esme = make(Role.ESME)
    esme.bind("transceiver", "acme", "secret", now=clock.now)
    assert esme.get_timer() == clock.now + BIND_TIMEOUT
    assert esme.handle_timer(clock.now + BIND_TIMEOUT - TICK) == []
    assert esme.handle_timer(clock.now + BIND_TIMEOUT) == [BindFailed(None)]
    assert esme.state is State.CLOSED and esme.get_timer() is None and esme.stats.timeouts == 1


def test_enquire_link_while_binding_is_answered() -> None:
    clock = Clock()
    esme, smsc = make(Role.ESME), make(Role.SMSC)
    esme.bind("transceiver", "acme", "secret", now=clock.now)
    transfer(esme, smsc, clock)
    probe = smsc.enquire_link(clock.now)
    assert transfer(smsc, esme, clock) == [EnquireLinkReceived(probe)]
    assert esme.state is State.BINDING
    assert transfer(esme, smsc, clock) == []  # the resp settles the probe quietly
    assert smsc.in_flight() == []


def test_bind_kind_must_be_named() -> None:
    with pytest.raises(ValueError, match="kind"):
        make(Role.ESME).bind("sideways", "acme", "secret", now=0.0)


def test_smsc_answer_to_no_pending_bind_is_refused() -> None:
    smsc = make(Role.SMSC)
    with pytest.raises(LocalProtocolError) as info:
        smsc.send_response(P.BindTransmitterResp(sequence_number=1, system_id="SMSC"), 0.0)
    assert info.value.command_status == CommandStatus.ESME_RINVBNDSTS


# ---------------------------------------------------------------- submitting


def test_submit_and_response() -> None:
    esme, smsc, clock = bound_pair()
    seq = submit(esme, clock)
    assert esme.outstanding == 1 and esme.window_free == 7
    (request,) = transfer(esme, smsc, clock)
    assert isinstance(request, RequestReceived) and request.pdu.sequence_number == seq
    assert request.pdu.short_message == b"hi"
    smsc.send_response(request.pdu.response(message_id="abc123"), clock.now)
    (answer,) = transfer(smsc, esme, clock)
    assert isinstance(answer, ResponseReceived)
    assert (answer.request_seq, answer.status, answer.late) == (seq, 0, False)
    assert answer.pdu.message_id == "abc123" and answer.request.destination_addr == "447700900123"
    assert esme.outstanding == 0


def test_window_full_raises_until_a_response_arrives() -> None:
    esme, smsc, clock = bound_pair(window=2)
    submit(esme, clock)
    submit(esme, clock)
    assert not esme.can_send() and esme.window_free == 0
    with pytest.raises(WindowFull) as info:
        submit(esme, clock)
    assert isinstance(info.value, LocalProtocolError)
    assert len(esme.in_flight()) == 2
    esme.enquire_link(clock.now)  # keepalive is not windowed
    assert len(esme.in_flight()) == 3 and esme.outstanding == 2
    first = transfer(esme, smsc, clock)[0]
    smsc.send_response(first.pdu.response(message_id="1"), clock.now)
    transfer(smsc, esme, clock)
    assert esme.can_send() and esme.window_free == 1


def test_sequence_numbers_wrap_to_one_never_zero() -> None:
    clock = Clock()
    esme, smsc = make(Role.ESME, first_sequence=0x7FFFFFFE), make(Role.SMSC)
    assert esme.bind("transceiver", "acme", "secret", now=clock.now) == 0x7FFFFFFE
    (request,) = transfer(esme, smsc, clock)
    smsc.send_response(request.pdu.response(system_id="SMSC"), clock.now)
    transfer(smsc, esme, clock)
    assert [submit(esme, clock) for _ in range(3)] == [0x7FFFFFFF, 1, 2]


def test_generic_nack_completes_its_request_with_its_status() -> None:
    esme, smsc, clock = bound_pair()
    seq = submit(esme, clock)
    transfer(esme, smsc, clock)
    nack = P.GenericNack(command_status=CommandStatus.ESME_RTHROTTLED, sequence_number=seq)
    smsc.send_response(nack, clock.now)
    (answer,) = transfer(smsc, esme, clock)
    assert isinstance(answer, ResponseReceived) and answer.pdu.command_id == CommandId.GENERIC_NACK
    assert (answer.request_seq, answer.status) == (seq, CommandStatus.ESME_RTHROTTLED)
    assert esme.outstanding == 0


def test_late_response_after_timeout_settles_through_tombstone() -> None:
    esme, smsc, clock = bound_pair()
    seq = submit(esme, clock)
    (request,) = transfer(esme, smsc, clock)
    deadline = esme.get_timer()
    assert deadline == pytest.approx(clock.now - TICK + RESPONSE_TIMEOUT)
    (timed_out,) = esme.handle_timer(deadline)
    assert timed_out == ResponseTimedOut(seq, request_sent := timed_out.request)
    assert request_sent.short_message == b"hi" and request_sent.sequence_number == seq
    assert esme.outstanding == 0 and esme.stats.timeouts == 1
    clock.now = deadline
    smsc.send_response(request.pdu.response(message_id="late-1"), clock.now)
    smsc.send_response(request.pdu.response(message_id="late-1"), clock.now)  # carriers repeat
    late, again = transfer(smsc, esme, clock)
    assert isinstance(late, ResponseReceived) and late.late and late.request_seq == seq
    assert late.pdu.message_id == "late-1"
    assert isinstance(again, UnexpectedResponse)
    assert (esme.stats.late_responses, esme.stats.unexpected_responses) == (1, 1)


def test_unknown_sequence_is_counted_and_dropped() -> None:
    esme, smsc, clock = bound_pair()
    smsc.send_response(P.SubmitSmResp(sequence_number=4242, message_id="x"), clock.now)
    smsc.send_response(P.GenericNack(command_status=CommandStatus.ESME_RINVCMDID, sequence_number=0), clock.now)
    events = transfer(smsc, esme, clock)
    assert [type(e) for e in events] == [UnexpectedResponse, UnexpectedResponse]
    assert esme.stats.unexpected_responses == 2 and esme.state is State.BOUND_TRX


def test_response_of_the_wrong_type_does_not_settle() -> None:
    esme, smsc, clock = bound_pair()
    seq = submit(esme, clock)
    transfer(esme, smsc, clock)
    smsc.send_response(P.QuerySmResp(sequence_number=seq, message_id="x"), clock.now)
    assert [type(e) for e in transfer(smsc, esme, clock)] == [UnexpectedResponse]
    assert esme.outstanding == 1


def test_many_responses_in_one_chunk() -> None:
    esme, smsc, clock = bound_pair(window=64)
    seqs = [submit(esme, clock) for _ in range(64)]
    for request in transfer(esme, smsc, clock):
        smsc.send_response(request.pdu.response(message_id=str(request.pdu.sequence_number)), clock.now)
    events = transfer(smsc, esme, clock)
    assert [e.request_seq for e in events] == seqs
    assert all(e.pdu.message_id == str(e.request_seq) for e in events)
    assert esme.outstanding == 0 and esme.get_timer() == pytest.approx(clock.now + ENQUIRE_LINK)


# ----------------------------------------------------------------- keepalive


def test_keepalive_only_when_idle_and_one_at_a_time() -> None:
    esme, smsc, clock = bound_pair()
    bound_at = clock.now
    assert esme.get_timer() == bound_at + ENQUIRE_LINK
    assert esme.handle_timer(bound_at + ENQUIRE_LINK / 2) == []
    # Traffic from the peer resets the idle time.
    smsc.send(P.DeliverSm(source_addr="447700900123", destination_addr="ACME", short_message=b"mo"), clock.now)
    clock.now = bound_at + ENQUIRE_LINK / 2
    (mo,) = transfer(smsc, esme, clock)
    assert esme.get_timer() == clock.now + ENQUIRE_LINK
    esme.send_response(mo.pdu.response(), clock.now)
    transfer(esme, smsc, clock)
    due = esme.get_timer()
    (event,) = esme.handle_timer(due)
    assert isinstance(event, EnquireLinkDue) and esme.stats.keepalives == 1
    assert esme.get_timer() == due + RESPONSE_TIMEOUT  # the probe's deadline, no second probe
    assert esme.handle_timer(due + 1) == []
    with pytest.raises(LocalProtocolError):
        esme.enquire_link(due + 1)
    clock.now = due + 1
    assert transfer(esme, smsc, clock) == [EnquireLinkReceived(event.sequence_number)]
    assert transfer(smsc, esme, clock) == []
    assert esme.in_flight() == [] and esme.get_timer() == clock.now + ENQUIRE_LINK


def test_peer_dead_when_keepalive_unanswered_and_silent() -> None:
    esme, _smsc, _clock = bound_pair()
    (probe,) = esme.handle_timer(esme.get_timer())
    esme.data_to_send()  # lost on a dead network
    deadline = esme.get_timer()
    assert esme.handle_timer(deadline) == [PeerDead(probe.sequence_number)]
    assert esme.state is State.CLOSED and esme.get_timer() is None


def test_not_dead_when_other_pdus_arrive() -> None:
    esme, smsc, clock = bound_pair()
    clock.now = esme.get_timer()
    (probe,) = esme.handle_timer(clock.now)
    probe_deadline = esme.get_timer()
    assert probe_deadline == clock.now + RESPONSE_TIMEOUT
    esme.data_to_send()  # the peer never answers our probe ...
    smsc.send(P.DeliverSm(source_addr="1", destination_addr="2", short_message=b"x"), clock.now)
    transfer(smsc, esme, clock)  # ... but it is alive
    (timed_out,) = esme.handle_timer(probe_deadline)
    assert isinstance(timed_out, ResponseTimedOut) and timed_out.seq == probe.sequence_number
    assert esme.state is State.BOUND_TRX
    # The next probe is due an idle interval after the deliver_sm.
    assert esme.get_timer() == clock.now + ENQUIRE_LINK


def test_keepalive_can_be_turned_off() -> None:
    esme, _smsc, _clock = bound_pair(enquire_link_s=0)
    assert esme.get_timer() is None


# -------------------------------------------------------- illegal and broken


def test_illegal_request_gets_invbndsts_and_session_stays() -> None:
    esme, _smsc, clock = bound_pair("transmitter")
    deliver = P.DeliverSm(sequence_number=77, source_addr="1", destination_addr="2", short_message=b"x")
    (rejected,) = esme.receive_data(P.encode(deliver), clock.tick())
    assert isinstance(rejected, RequestRejected) and rejected.status == CommandStatus.ESME_RINVBNDSTS
    (answer,) = sent_pdus(esme)
    assert answer.command_id == CommandId.DELIVER_SM_RESP and answer.sequence_number == 77
    assert answer.command_status == CommandStatus.ESME_RINVBNDSTS
    assert esme.state is State.BOUND_TX and esme.stats.rejected_requests == 1


def test_submit_before_bind_is_refused_by_smsc() -> None:
    smsc = make(Role.SMSC)
    request = P.SubmitSm(sequence_number=5, source_addr="1", destination_addr="2", short_message=b"x")
    (rejected,) = smsc.receive_data(P.encode(request), 0.0)
    assert rejected.status == CommandStatus.ESME_RINVBNDSTS
    (answer,) = sent_pdus(smsc)
    assert (answer.command_id, answer.command_status) == (CommandId.SUBMIT_SM_RESP, CommandStatus.ESME_RINVBNDSTS)
    assert smsc.state is State.OPEN


def test_bind_while_bound_gets_alybnd() -> None:
    _esme, smsc, clock = bound_pair()
    again = P.BindTransmitter(sequence_number=9, system_id="acme", password="secret")
    (rejected,) = smsc.receive_data(P.encode(again), clock.tick())
    assert rejected.status == CommandStatus.ESME_RALYBND
    (answer,) = sent_pdus(smsc)
    assert (answer.command_id, answer.command_status) == (CommandId.BIND_TRANSMITTER_RESP, CommandStatus.ESME_RALYBND)
    assert smsc.state is State.BOUND_TRX


def test_we_may_not_send_what_our_state_forbids() -> None:
    esme, smsc, clock = bound_pair("receiver")
    with pytest.raises(LocalProtocolError) as info:
        submit(esme, clock)
    assert info.value.command_status == CommandStatus.ESME_RINVBNDSTS and "BOUND_RX" in str(info.value)
    with pytest.raises(LocalProtocolError, match="send_response"):
        esme.send(P.DeliverSmResp(sequence_number=1), clock.now)
    with pytest.raises(LocalProtocolError, match="use send"):
        esme.send_response(P.EnquireLink(), clock.now)
    with pytest.raises(LocalProtocolError):
        smsc.send(P.BindTransmitter(system_id="x"), clock.now)
    assert esme.data_to_send() == b"" and esme.in_flight() == []


def _header(length: int, command_id: int, status: int, seq: int) -> bytes:
    return struct.pack(">IIII", length, command_id, status, seq)


def test_malformed_request_gets_its_error_response() -> None:
    _esme, smsc, clock = bound_pair()
    body = b"\x00" * 3  # a submit_sm cut short: the mandatory fields run out
    events = smsc.receive_data(_header(16 + len(body), CommandId.SUBMIT_SM, 0, 31) + body, clock.tick())
    (malformed,) = events
    assert isinstance(malformed, MalformedPdu) and malformed.error.sequence_number == 31
    (answer,) = sent_pdus(smsc)
    assert (answer.command_id, answer.sequence_number) == (CommandId.SUBMIT_SM_RESP, 31)
    assert answer.command_status == malformed.error.command_status != 0
    assert smsc.state is State.BOUND_TRX and smsc.stats.malformed == 1


def test_unknown_command_gets_generic_nack() -> None:
    _esme, smsc, clock = bound_pair()
    (malformed,) = smsc.receive_data(_header(16, 0x00000099, 0, 12), clock.tick())
    assert isinstance(malformed, MalformedPdu)
    (answer,) = sent_pdus(smsc)
    assert (answer.command_id, answer.sequence_number) == (CommandId.GENERIC_NACK, 12)
    assert answer.command_status == CommandStatus.ESME_RINVCMDID
    assert smsc.state is State.BOUND_TRX


def test_malformed_response_is_reported_and_its_request_stays() -> None:
    esme, _smsc, clock = bound_pair()
    seq = esme.send(P.SubmitMulti(source_addr="ACME", short_message=b"hi"), clock.now)
    esme.data_to_send()
    body = b"id\x00\x05\x01"  # five unsuccess_sme announced, a third of one present
    events = esme.receive_data(_header(16 + len(body), CommandId.SUBMIT_MULTI_RESP, 0, seq) + body, clock.tick())
    assert [type(e) for e in events] == [MalformedPdu]
    assert esme.data_to_send() == b"" and esme.outstanding == 1 and esme.state is State.BOUND_TRX


@pytest.mark.parametrize(
    "garbage",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        struct.pack(">I", 0x7FFFFFFF) + b"\x00" * 12,
        struct.pack(">I", 8) + b"\x00" * 12,
    ],
    ids=["http", "2GB", "short"],
)
def test_lost_framing_closes_with_protocol_violation(garbage: bytes) -> None:
    esme, _smsc, clock = bound_pair()
    (violation,) = esme.receive_data(garbage, clock.tick())
    assert isinstance(violation, ProtocolViolation)
    assert esme.state is State.CLOSED and esme.get_timer() is None
    (nack,) = sent_pdus(esme)
    assert (nack.command_id, nack.command_status) == (CommandId.GENERIC_NACK, CommandStatus.ESME_RINVCMDLEN)
    assert esme.receive_data(b"\x00" * 16, clock.tick()) == []
    with pytest.raises(LocalProtocolError):
        submit(esme, clock)


def test_byte_by_byte_delivery() -> None:
    esme, smsc, clock = bound_pair()
    seq = submit(esme, clock)
    data = esme.data_to_send()
    events = [e for i in range(len(data)) for e in smsc.receive_data(data[i : i + 1], clock.tick())]
    assert [type(e) for e in events] == [RequestReceived] and events[0].pdu.sequence_number == seq


# -------------------------------------------------------------------- unbind


def test_unbind_from_esme() -> None:
    esme, smsc, clock = bound_pair()
    seq = esme.unbind(clock.now)
    assert esme.state is State.UNBINDING and not esme.can_send()
    assert transfer(esme, smsc, clock) == [UnbindReceived(seq)]
    assert smsc.state is State.CLOSED
    assert transfer(smsc, esme, clock) == [UnbindComplete(0)]
    assert esme.state is State.CLOSED and esme.in_flight() == []


def test_unbind_from_smsc_leaves_in_flight_for_the_adapter() -> None:
    esme, smsc, clock = bound_pair()
    seq = submit(esme, clock)
    transfer(esme, smsc, clock)
    unbind_seq = smsc.unbind(clock.now)
    assert transfer(smsc, esme, clock) == [UnbindReceived(unbind_seq)]
    assert esme.state is State.CLOSED and [s for s, _ in esme.in_flight()] == [seq]
    assert transfer(esme, smsc, clock) == [UnbindComplete(0)]


def test_traffic_crossing_our_unbind_is_still_accepted() -> None:
    esme, smsc, clock = bound_pair()
    smsc.send(P.DeliverSm(source_addr="1", destination_addr="2", short_message=b"receipt"), clock.now)
    esme.unbind(clock.now)
    (receipt,) = transfer(smsc, esme, clock)
    assert isinstance(receipt, RequestReceived) and receipt.pdu.short_message == b"receipt"
    esme.send_response(receipt.pdu.response(), clock.now)
    assert esme.state is State.UNBINDING


def test_unanswered_unbind_closes() -> None:
    esme, _smsc, clock = bound_pair()
    seq = esme.unbind(clock.now)
    (timed_out,) = esme.handle_timer(clock.now + RESPONSE_TIMEOUT)
    assert isinstance(timed_out, ResponseTimedOut) and timed_out.seq == seq
    assert esme.state is State.CLOSED


# ----------------------------------------------------------------- plumbing


@pytest.mark.parametrize(
    ("field", "value"),
    [("window", 0), ("response_timeout_s", 0), ("enquire_link_s", -1), ("bind_timeout_s", -2), ("first_sequence", 0),
     ("first_sequence", 0x80000000), ("tombstones", -1), ("response_timeout_s", float("nan"))],
)
def test_bad_options_name_the_field(field: str, value: int) -> None:
    with pytest.raises(ValueError, match=field):
        make(Role.ESME, **{field: value})


def test_session_modules_do_no_io() -> None:
    root = pathlib.Path(__file__).parent.parent / "adapters" / "smpp"
    forbidden = {"asyncio", "socket", "time", "selectors", "threading", "uvloop"}
    for name in ("session.py", "states.py", "events.py", "inflight.py"):
        tree = ast.parse((root / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            else:
                continue
            for module in modules:
                assert module.split(".")[0] not in forbidden, f"{name} imports {module}"


def test_request_with_impossible_sequence_is_nacked_not_fatal() -> None:
    _esme, smsc, clock = bound_pair()
    (malformed,) = smsc.receive_data(_header(16, CommandId.ENQUIRE_LINK, 0, 0xFFFFFFFF), clock.tick())
    assert isinstance(malformed, MalformedPdu) and malformed.error.field == "sequence_number"
    (nack,) = sent_pdus(smsc)
    assert (nack.command_id, nack.sequence_number) == (CommandId.GENERIC_NACK, 0)
    assert smsc.state is State.BOUND_TRX


def test_close_stops_everything_but_keeps_in_flight() -> None:
    esme, _smsc, clock = bound_pair()
    seq = submit(esme, clock)
    esme.close()
    assert esme.state is State.CLOSED and esme.get_timer() is None and esme.handle_timer(clock.tick(99)) == []
    assert [s for s, _ in esme.in_flight()] == [seq] and not esme.can_send()
    with pytest.raises(LocalProtocolError):
        esme.send_response(P.DeliverSmResp(sequence_number=3), clock.now)


def test_outbind_and_alert_notification_are_not_tracked() -> None:
    clock = Clock()
    esme, smsc = make(Role.ESME), make(Role.SMSC)
    smsc.send(P.Outbind(system_id="SMSC", password="pw"), clock.now)
    assert smsc.in_flight() == [] and smsc.get_timer() is None
    (outbind,) = transfer(smsc, esme, clock)
    assert isinstance(outbind, RequestReceived) and outbind.pdu.system_id == "SMSC"
    assert esme.data_to_send() == b""  # §4.1.7: outbind has no response
