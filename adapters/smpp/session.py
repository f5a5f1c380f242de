"""Sans-IO SMPP 3.4 session: bind, sequence numbers, window, keepalive, timeouts.

Theory of operation
-------------------
A ``Session`` is one end of one bind, shaped like aioquic's ``QuicConnection``:
bytes come in through ``receive_data(data, now)`` and come back out as events;
what we send is queued and collected with ``data_to_send()``; deadlines are
exposed through ``get_timer()`` and fired by ``handle_timer(now)``.  It never
reads a clock, sleeps or touches a socket, so the ESME client and the SMSC
simulator are the same class told their ``Role``.

Mandatory replies are made here *and* reported (h2 ``_receive_ping_frame``):
enquire_link_resp, unbind_resp, and the error answer to a request that is
malformed or illegal in the current state.  Requests the application must
judge (submit_sm on the SMSC side, deliver_sm on the ESME side, a bind on the
SMSC side) come out as ``RequestReceived`` and are answered with
``send_response``.  Responses are matched to our requests by sequence number
(see ``inflight.py``); a carrier's error status is data, not an exception.

One bad PDU costs one PDU.  Only lost framing (garbage, an impossible
command_length) ends the session: it answers generic_nack ESME_RINVCMDLEN,
moves to CLOSED and reports ``ProtocolViolation``; the adapter then flushes
``data_to_send()`` and closes the socket.  In CLOSED nothing is read or sent;
``in_flight()`` still lists the requests that never got an answer.
"""

from __future__ import annotations

from typing import Any

from adapters.smpp import pdu as _pdu
from adapters.smpp import replies
from adapters.smpp.constants import RESPONSE_BIT, CommandId, CommandStatus
from adapters.smpp.errors import FramingError, LocalProtocolError, RemoteProtocolError
from adapters.smpp.events import (
    BindComplete,
    BindFailed,
    EnquireLinkDue,
    EnquireLinkReceived,
    Event,
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
from adapters.smpp.inflight import MAX_SEQUENCE, InFlight, Outstanding
from adapters.smpp.states import (
    BIND_REQUEST,
    BIND_RESULT,
    BOUND_STATES,
    LEGAL,
    NO_RESPONSE,
    UNWINDOWED,
    BindKind,
    Role,
    State,
    windowed_send_states,
)

__all__ = ["BindKind", "Role", "Session", "SessionStats", "State", "WindowFull"]

# Plain ints, compared and hashed on every PDU.
_ENQUIRE_LINK = int(CommandId.ENQUIRE_LINK)
_UNBIND = int(CommandId.UNBIND)
_GENERIC_NACK = int(CommandId.GENERIC_NACK)
_ROK = int(CommandStatus.ESME_ROK)
_CLOSED = State.CLOSED
_encode = _pdu.encode
_RINVBNDSTS = CommandStatus.ESME_RINVBNDSTS
#: Requests whose sending changes the session's state (not the hot path);
#: exactly the ones that do not count against the window.
_STATEFUL_REQUESTS = UNWINDOWED
_BIND_RESPONSES = frozenset(cid | RESPONSE_BIT for cid in BIND_RESULT)

#: Responses to the windowed requests (submit_sm, data_sm, ...), by class: a
#: type lookup tells the hot path from everything else without touching the PDU.
_TRAFFIC_RESPONSES = frozenset(
    cls for cid, cls in _pdu.PDU_CLASSES.items()
    if cls.is_response and cid != _GENERIC_NACK and cid & ~RESPONSE_BIT not in UNWINDOWED
)

_BIND_CLASS: dict[BindKind, type] = {kind: _pdu.PDU_CLASSES[cid] for kind, cid in BIND_REQUEST.items()}


class WindowFull(LocalProtocolError):
    """``send`` was called with ``window`` requests outstanding: wait for a response."""


class SessionStats:
    """Counters a session keeps for metrics; plain ints, never reset."""

    __slots__ = ("unexpected_responses", "malformed", "timeouts", "late_responses", "rejected_requests", "keepalives")

    def __init__(self) -> None:
        #: responses matching no request and no tombstone (or sequence 0).
        self.unexpected_responses = 0
        #: PDUs whose body did not decode (requests among them were answered).
        self.malformed = 0
        #: requests that got no response within their deadline (keepalives included).
        self.timeouts = 0
        #: responses matched through a tombstone after their request timed out.
        self.late_responses = 0
        #: peer requests refused as illegal in the state (ESME_RINVBNDSTS / ESME_RALYBND).
        self.rejected_requests = 0
        #: enquire_links this session sent because the link was idle.
        self.keepalives = 0

    def as_dict(self) -> dict[str, int]:
        """The counters by name."""
        return {name: getattr(self, name) for name in self.__slots__}


def _check_positive(name: str, value: float, allow_zero: bool = False) -> None:
    if not isinstance(value, (int, float)) or not value >= 0 or (value == 0 and not allow_zero):  # NaN too
        raise ValueError(f"{name} must be a positive number, got {value!r}")


class Session:
    """One end of one SMPP bind, without I/O (see the module docstring)."""

    __slots__ = (
        "role",
        "stats",
        "_state",
        "_window",
        "_response_timeout",
        "_enquire_link_s",
        "_bind_timeout",
        "_framer",
        "_out",
        "_inflight",
        "_send_ok",
        "_send_traffic",
        "_recv_ok",
        "_windowed_states",
        "_bound_state",
        "_bind_entry",
        "_inbound_bind",
        "_keepalive",
        "_rx_since_keepalive",
        "_last_rx",
    )

    def __init__(
        self,
        role: Role,
        *,
        window: int,
        response_timeout_s: float,
        enquire_link_s: float,
        bind_timeout_s: float,
        max_pdu_bytes: int = 73728,
        first_sequence: int = 1,
        tombstones: int = 4096,
    ) -> None:
        """``enquire_link_s=0`` turns our keepalive off (the peer's is still answered).

        Raises ValueError naming the argument that is out of range (TypeError
        for a role that is not a Role).
        """
        if not isinstance(role, Role):
            raise TypeError(f"role must be a Role, got {role!r}")
        if not isinstance(window, int) or window < 1:
            raise ValueError(f"window must be an int >= 1, got {window!r}")
        _check_positive("response_timeout_s", response_timeout_s)
        _check_positive("enquire_link_s", enquire_link_s, allow_zero=True)
        _check_positive("bind_timeout_s", bind_timeout_s)
        self.role = role
        self.stats = SessionStats()
        self._window = window
        self._response_timeout = float(response_timeout_s)
        self._enquire_link_s = float(enquire_link_s)
        self._bind_timeout = float(bind_timeout_s)
        self._framer = _pdu.Framer(max_pdu_bytes)
        self._out: list[bytes] = []
        self._inflight = InFlight(first_sequence, tombstones)
        self._windowed_states = windowed_send_states(role)
        self._bound_state: State | None = None
        self._bind_entry: Outstanding | None = None
        self._inbound_bind: Any = None
        self._keepalive: Outstanding | None = None
        self._rx_since_keepalive = False
        self._last_rx = 0.0
        self._set_state(State.OPEN)

    # ------------------------------------------------------------------ state

    @property
    def state(self) -> State:
        """The current bind state."""
        return self._state

    @property
    def window(self) -> int:
        """The most windowed requests that may be outstanding at once."""
        return self._window

    @property
    def outstanding(self) -> int:
        """Windowed requests awaiting a response (enquire_link, unbind, bind excluded)."""
        return self._inflight.windowed

    @property
    def window_free(self) -> int:
        """How many more windowed requests ``send`` would accept now."""
        return self._window - self._inflight.windowed

    def can_send(self) -> bool:
        """True when bound for sending traffic and the window has room."""
        return self._state in self._windowed_states and self._inflight.windowed < self._window

    def in_flight(self) -> list[tuple[int, Any]]:
        """Every request still awaiting a response as (seq, request), in send order.

        Includes enquire_link, unbind and bind; the adapter fails these on connection loss.
        """
        return self._inflight.snapshot()

    def close(self) -> None:
        """The connection is gone (or being closed): stop reading and sending."""
        self._set_state(State.CLOSED)

    def _set_state(self, state: State) -> None:
        self._state = state
        if state in BOUND_STATES:
            self._bound_state = state
        self._send_ok = LEGAL[(self.role, state)]
        self._send_traffic = self._send_ok - _STATEFUL_REQUESTS
        if state is State.UNBINDING and self._bound_state is not None:
            # Our unbind may cross traffic the peer sent before seeing it
            # (receipts above all): keep accepting what the bind allowed.
            self._recv_ok = LEGAL[(self.role.peer, self._bound_state)] | {_UNBIND}
        else:
            self._recv_ok = LEGAL[(self.role.peer, state)]

    # ---------------------------------------------------------------- sending

    def send(self, pdu: Any, now: float) -> int:
        """Queue request ``pdu`` with the next free sequence number and return that number.

        Sets ``pdu.sequence_number``.  Raises LocalProtocolError (ESME_RINVBNDSTS)
        when the request is not legal for our role in this state (or is a
        response: use ``send_response``), WindowFull when ``window`` requests are
        outstanding, and the codec's LocalProtocolError naming the field when a
        value breaks the spec.  Nothing is queued or recorded when it raises.
        """
        cid = pdu.command_id
        if cid not in self._send_traffic:  # one set lookup on the hot path
            if cid not in self._send_ok:
                raise self._illegal_send(pdu)
            return self._send_stateful(pdu, now)  # link management: never windowed
        inflight = self._inflight
        if inflight.windowed >= self._window:
            raise WindowFull(
                f"window of {self._window} requests is full", CommandStatus.ESME_RTHROTTLED, command_id=cid
            )
        seq = inflight.peek_sequence()
        pdu.sequence_number = seq
        self._out.append(_encode(pdu))
        inflight.add_windowed(seq, pdu, now + self._response_timeout)
        return seq

    def send_response(self, pdu: Any, now: float) -> None:
        """Queue response ``pdu`` (generic_nack included) with its own sequence number.

        On the SMSC side the answer to a pending bind request binds the session
        (status 0) or returns it to OPEN (any other status).  Raises
        LocalProtocolError (ESME_RINVBNDSTS) for a request PDU, in CLOSED, or
        for a bind response with no matching bind pending; the codec's
        LocalProtocolError naming the field when a value breaks the spec.
        """
        if not pdu.is_response:
            raise LocalProtocolError(
                f"{type(pdu).__name__} is a request: use send()", _RINVBNDSTS, pdu.sequence_number, pdu.command_id
            )
        if self._state is State.CLOSED:
            raise LocalProtocolError("the session is closed", _RINVBNDSTS, pdu.sequence_number, pdu.command_id)
        if pdu.command_id in _BIND_RESPONSES:
            self._answer_bind(pdu, now)
            return
        self._out.append(_pdu.encode(pdu))

    def bind(
        self,
        kind: BindKind | str,
        system_id: str,
        password: str,
        system_type: str = "",
        *,
        now: float,
        interface_version: int = 0x34,
        addr_ton: int = 0,
        addr_npi: int = 0,
        address_range: str = "",
    ) -> int:
        """Send bind_transmitter / bind_receiver / bind_transceiver; returns its sequence number.

        ``kind`` is a BindKind or its name ("transmitter", "receiver",
        "transceiver").  Raises ValueError for an unknown kind, and what
        ``send`` raises (ESME_RINVBNDSTS unless we are an ESME in OPEN).
        """
        try:
            cls = _BIND_CLASS[BindKind(kind)]
        except ValueError:
            raise ValueError(f"kind must be transmitter, receiver or transceiver, got {kind!r}") from None
        request = cls(
            system_id=system_id,
            password=password,
            system_type=system_type,
            interface_version=interface_version,
            addr_ton=addr_ton,
            addr_npi=addr_npi,
            address_range=address_range,
        )
        return self.send(request, now)

    def unbind(self, now: float) -> int:
        """Send unbind (§4.2); returns its sequence number. Raises what ``send`` raises."""
        return self.send(_pdu.Unbind(), now)

    def enquire_link(self, now: float) -> int:
        """Send enquire_link (§4.11) now; returns its sequence number.

        Raises LocalProtocolError when one is already outstanding (one at a
        time) or the session is CLOSED.  The keepalive normally sends these itself.
        """
        return self.send(_pdu.EnquireLink(), now)

    def data_to_send(self) -> bytes:
        """Everything queued since the last call, coalesced; b"" when nothing is."""
        out = self._out
        if not out:
            return b""
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        return data

    def _send_stateful(self, pdu: Any, now: float) -> int:
        cid = pdu.command_id
        if cid == _ENQUIRE_LINK and self._keepalive is not None:
            raise LocalProtocolError("an enquire_link is already outstanding", _RINVBNDSTS, command_id=cid)
        inflight = self._inflight
        seq = inflight.peek_sequence()
        pdu.sequence_number = seq
        data = _pdu.encode(pdu)
        if cid in NO_RESPONSE:
            inflight.skip(seq)  # nothing will answer it: not tracked
        elif cid in BIND_RESULT:
            self._bind_entry = inflight.add(seq, pdu, now + self._bind_timeout, False, timed=False)
            self._set_state(State.BINDING)
        else:
            entry = inflight.add(seq, pdu, now + self._response_timeout, False)
            if cid == _UNBIND:
                self._set_state(State.UNBINDING)
            else:
                self._keepalive = entry
                self._rx_since_keepalive = False
        self._out.append(data)
        return seq

    def _illegal_send(self, pdu: Any) -> LocalProtocolError:
        name = type(pdu).__name__
        if pdu.is_response:
            why = f"{name} is a response: use send_response()"
        else:
            why = f"{name} may not be sent by the {self.role.value.upper()} in state {self._state.name}"
        return LocalProtocolError(why, _RINVBNDSTS, pdu.sequence_number, pdu.command_id)

    def _answer_bind(self, pdu: Any, now: float) -> None:
        pending = self._inbound_bind
        if (
            self._state is not State.BINDING
            or pending is None
            or pending.sequence_number != pdu.sequence_number
            or pending.command_id | RESPONSE_BIT != pdu.command_id
        ):
            raise LocalProtocolError(
                f"{type(pdu).__name__} answers no pending bind", _RINVBNDSTS, pdu.sequence_number, pdu.command_id
            )
        self._out.append(_pdu.encode(pdu))
        self._inbound_bind = None
        if pdu.command_status == _ROK:
            self._last_rx = now
            self._set_state(BIND_RESULT[pending.command_id])
        else:
            self._set_state(State.OPEN)

    # -------------------------------------------------------------- receiving

    def receive_data(self, data: bytes, now: float) -> list[Event]:
        """Feed bytes from the socket; returns what they meant, in order.

        Never raises for anything the peer sends: malformed PDUs are answered
        and reported, lost framing is reported as ProtocolViolation (state
        CLOSED).  In CLOSED the data is ignored.
        """
        if self._state is _CLOSED:
            return []
        lost: FramingError | None = None
        try:
            items = self._framer.feed(data)
        except FramingError as exc:
            # The PDUs that came whole before the garbage are handled first: a
            # response among them settles its request instead of leaving it in doubt.
            items, lost = exc.pdus, exc
        if not items:
            return items if lost is None else self._lost_framing(lost)
        self._last_rx = now
        self._rx_since_keepalive = True
        events: list[Event] = []
        append = events.append
        settle = self._inflight.settle_response
        for item in items:
            # Hot path: the expected response to traffic (windowed requests are
            # exactly those that change no state, so no state check follows).
            if type(item) in _TRAFFIC_RESPONSES:
                entry = settle(item.sequence_number, item.command_id)
                if entry is not None:
                    append(ResponseReceived(entry.seq, item, item.command_status, entry.request, False))
                    continue
                self._on_response(item, events)
            elif isinstance(item, RemoteProtocolError):
                self._on_malformed(item, events)
            elif item.is_response:
                self._on_response(item, events)
            else:
                self._on_request(item, now, events)
            if self._state is _CLOSED:
                break  # the peer unbound: what follows is not ours to act on
        if lost is not None and self._state is not _CLOSED:
            events += self._lost_framing(lost)
        return events

    def _on_response(self, pdu: Any, events: list[Event]) -> None:
        seq = pdu.sequence_number
        inflight = self._inflight
        entry = inflight.entries.get(seq)
        if entry is None:
            self._on_unmatched(pdu, events)
            return
        request = entry.request
        req_cid = request.command_id
        cid = pdu.command_id
        if cid != req_cid | RESPONSE_BIT and cid != _GENERIC_NACK:
            self.stats.unexpected_responses += 1
            events.append(UnexpectedResponse(pdu))
            return
        inflight.settle(entry)
        if req_cid in _STATEFUL_REQUESTS:
            self._on_stateful_response(entry, pdu, events)
        else:
            events.append(ResponseReceived(seq, pdu, pdu.command_status, request, False))

    def _on_unmatched(self, pdu: Any, events: list[Event]) -> None:
        seq = pdu.sequence_number
        request = self._inflight.pop_tombstone(seq) if seq else None
        if request is None:
            self.stats.unexpected_responses += 1
            events.append(UnexpectedResponse(pdu))
            return
        self.stats.late_responses += 1
        if request.command_id not in UNWINDOWED:
            events.append(ResponseReceived(seq, pdu, pdu.command_status, request, True))

    def _on_stateful_response(self, entry: Outstanding, pdu: Any, events: list[Event]) -> None:
        req_cid = entry.request.command_id
        status = pdu.command_status
        if entry is self._keepalive:
            self._keepalive = None
        elif req_cid == _UNBIND:
            self._set_state(State.CLOSED)
            events.append(UnbindComplete(status))
        elif req_cid in BIND_RESULT and entry is self._bind_entry:
            self._bind_entry = None
            if pdu.command_id == _GENERIC_NACK:
                # "Not understood" never accepts a bind, even with status 0.
                status = status or CommandStatus.ESME_RBINDFAIL
            if status == _ROK:
                self._set_state(BIND_RESULT[req_cid])
                events.append(BindComplete(self._state, pdu))
            else:
                self._set_state(State.OPEN)
                events.append(BindFailed(status, pdu))

    def _on_request(self, pdu: Any, now: float, events: list[Event]) -> None:
        cid = pdu.command_id
        if pdu.sequence_number > MAX_SEQUENCE:
            self._bad_sequence(pdu, events)
        elif cid not in self._recv_ok:
            self._reject(pdu, events)
        elif cid == _ENQUIRE_LINK:
            self._out.append(_pdu.encode(pdu.response()))
            events.append(EnquireLinkReceived(pdu.sequence_number))
        elif cid == _UNBIND:
            self._out.append(_pdu.encode(pdu.response()))
            self._set_state(State.CLOSED)
            events.append(UnbindReceived(pdu.sequence_number))
        else:
            if cid in BIND_RESULT:
                self._inbound_bind = pdu
                self._set_state(State.BINDING)
            events.append(RequestReceived(pdu))

    def _bad_sequence(self, pdu: Any, events: list[Event]) -> None:
        error, answer = replies.bad_sequence(pdu)
        self.stats.malformed += 1
        events.append(MalformedPdu(error))
        self._out.append(_pdu.encode(answer))

    def _reject(self, pdu: Any, events: list[Event]) -> None:
        answer, status = replies.rejection(pdu, self._state)
        self._out.append(_pdu.encode(answer))
        self.stats.rejected_requests += 1
        events.append(RequestRejected(pdu, status))

    def _on_malformed(self, error: RemoteProtocolError, events: list[Event]) -> None:
        self.stats.malformed += 1
        events.append(MalformedPdu(error))
        answer = replies.malformed(error)
        if answer is not None:
            self._out.append(_pdu.encode(answer))

    def _lost_framing(self, error: FramingError) -> list[Event]:
        # SMPP-NOTES: answer generic_nack if we can, then the socket is closed.
        seq = replies.answerable(error.sequence_number)
        self._out.append(_pdu.encode(_pdu.GenericNack(command_status=error.command_status, sequence_number=seq)))
        self._set_state(State.CLOSED)
        return [ProtocolViolation(error)]

    # ----------------------------------------------------------------- timers

    def get_timer(self) -> float | None:
        """The earliest time ``handle_timer`` has work to do; None when there is none."""
        # Called after every batch the adapter feeds in: _keepalive_due inlined.
        state = self._state
        if state is _CLOSED:
            return None
        timer = self._inflight.next_deadline()
        bind = self._bind_entry
        if bind is not None and (timer is None or bind.deadline < timer):
            timer = bind.deadline
        if self._enquire_link_s and self._keepalive is None and state in BOUND_STATES:
            due = self._last_rx + self._enquire_link_s
            if timer is None or due < timer:
                timer = due
        return timer

    def handle_timer(self, now: float) -> list[Event]:
        """Fire every deadline that is ``<= now``; returns the resulting events.

        Bind timeout → BindFailed(None) and CLOSED; response timeout →
        ResponseTimedOut (our keepalive unanswered with nothing else received →
        PeerDead and CLOSED; our unbind unanswered → CLOSED); idle link →
        enquire_link queued and EnquireLinkDue.
        """
        events: list[Event] = []
        if self.state is State.CLOSED:  # the property: handlers below change it
            return events
        bind = self._bind_entry
        if bind is not None and bind.deadline <= now:
            self._inflight.settle(bind)
            self._bind_entry = None
            self.stats.timeouts += 1
            self._set_state(State.CLOSED)
            events.append(BindFailed(None))
            return events
        # Every expired request is reported, even after one of them closed the
        # session: expire() already took them all out of in_flight().
        for entry in self._inflight.expire(now):
            self._expired(entry, events)
        if self._state is State.CLOSED:
            return events
        due = self._keepalive_due()
        if due is not None and due <= now:
            seq = self.send(_pdu.EnquireLink(), now)
            self.stats.keepalives += 1
            events.append(EnquireLinkDue(seq))
        return events

    def _expired(self, entry: Outstanding, events: list[Event]) -> None:
        self.stats.timeouts += 1
        if entry is self._keepalive:
            self._keepalive = None
            if not self._rx_since_keepalive:
                self._set_state(State.CLOSED)
                events.append(PeerDead(entry.seq))
                return
        elif entry.request.command_id == _UNBIND:
            self._set_state(State.CLOSED)
        events.append(ResponseTimedOut(entry.seq, entry.request))

    def _keepalive_due(self) -> float | None:
        if self._enquire_link_s and self._keepalive is None and self._state in BOUND_STATES:
            return self._last_rx + self._enquire_link_s
        return None
