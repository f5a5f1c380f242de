"""Events a ``Session`` reports from ``receive_data`` and ``handle_timer``.

Small ``__slots__`` classes (aioquic ``quic/events.py``): one is built per
inbound PDU on the hot path, so they stay plain.  Every event compares equal to
another of the same type with the same fields, which keeps tests readable.
"""

from __future__ import annotations

from typing import Any

from adapters.smpp.states import State


class Event:
    """Base class of session events."""

    __slots__: tuple[str, ...] = ()

    def _fields(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]  # mutable PDUs inside

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({inner})"


class BindComplete(Event):
    """Our bind was accepted (ESME side); ``pdu`` is the bind_*_resp."""

    __slots__ = ("state", "pdu")

    def __init__(self, state: State, pdu: Any) -> None:
        self.state = state
        self.pdu = pdu


class BindFailed(Event):
    """Our bind was refused with ``status``, or timed out (``status is None``).

    After a refusal the session is OPEN again; after a timeout it is CLOSED.
    """

    __slots__ = ("status", "pdu")

    def __init__(self, status: int | None, pdu: Any = None) -> None:
        self.status = status
        self.pdu = pdu


class RequestReceived(Event):
    """The peer sent a request legal in this state; answer it with ``send_response``.

    Exceptions: outbind and alert_notification take no answer (§4.1.7, §4.12).
    On the SMSC side a bind request arrives this way too: answer it with its
    ``*_resp`` (status 0 binds, anything else refuses).
    """

    __slots__ = ("pdu",)

    def __init__(self, pdu: Any) -> None:
        self.pdu = pdu


class RequestRejected(Event):
    """The peer sent a request illegal in this state; we answered it with ``status``.

    ``status`` is ESME_RINVBNDSTS, or ESME_RALYBND for a bind while bound.
    """

    __slots__ = ("pdu", "status")

    def __init__(self, pdu: Any, status: int) -> None:
        self.pdu = pdu
        self.status = status


class ResponseReceived(Event):
    """A response (or generic_nack) settled our request ``request_seq``.

    ``status`` is the response's command_status (data, never an exception);
    ``late`` is True when the request had already timed out and the response
    was matched through the tombstone list.
    """

    __slots__ = ("request_seq", "pdu", "status", "request", "late")

    def __init__(self, request_seq: int, pdu: Any, status: int, request: Any, late: bool) -> None:
        self.request_seq = request_seq
        self.pdu = pdu
        self.status = status
        self.request = request
        self.late = late


class ResponseTimedOut(Event):
    """No response to ``request`` within the response timeout: it is in doubt."""

    __slots__ = ("seq", "request")

    def __init__(self, seq: int, request: Any) -> None:
        self.seq = seq
        self.request = request


class UnexpectedResponse(Event):
    """A response whose sequence number matches nothing we sent (dropped, counted)."""

    __slots__ = ("pdu",)

    def __init__(self, pdu: Any) -> None:
        self.pdu = pdu


class EnquireLinkReceived(Event):
    """The peer probed the link; the enquire_link_resp is already queued."""

    __slots__ = ("sequence_number",)

    def __init__(self, sequence_number: int) -> None:
        self.sequence_number = sequence_number


class EnquireLinkDue(Event):
    """The link was idle for ``enquire_link_s``: our keepalive is queued."""

    __slots__ = ("sequence_number",)

    def __init__(self, sequence_number: int) -> None:
        self.sequence_number = sequence_number


class PeerDead(Event):
    """Our keepalive went unanswered and nothing else arrived: the session is CLOSED."""

    __slots__ = ("sequence_number",)

    def __init__(self, sequence_number: int) -> None:
        self.sequence_number = sequence_number


class UnbindReceived(Event):
    """The peer unbound; the unbind_resp is queued and the session is CLOSED."""

    __slots__ = ("sequence_number",)

    def __init__(self, sequence_number: int) -> None:
        self.sequence_number = sequence_number


class UnbindComplete(Event):
    """Our unbind was answered (``status``); the session is CLOSED."""

    __slots__ = ("status",)

    def __init__(self, status: int) -> None:
        self.status = status


class MalformedPdu(Event):
    """A PDU whose body did not decode; a request among them is already answered.

    ``error`` is the codec's RemoteProtocolError (command_id, sequence_number and
    command_status set as far as they could be read).  A malformed response
    leaves its request outstanding: it times out and is treated as in doubt.
    """

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


class ProtocolViolation(Event):
    """Framing is lost (garbage or an impossible command_length): the session is CLOSED."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error
