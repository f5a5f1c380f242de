"""What a session answers to a PDU it will not pass on (pure functions, no state).

SMPP 3.4 §2.3 and §3.3: a request that is illegal in the current state is
answered with its own ``*_resp`` carrying ESME_RINVBNDSTS (ESME_RALYBND for a
bind while bound); one whose body cannot be read is answered with its
``*_resp`` carrying the codec's status, or generic_nack when even the
command_id is unknown.  Requests without a response PDU get generic_nack.
Every answer here encodes: sequence numbers the codec cannot write are
replaced by 0 (the spec's "unreadable").
"""

from __future__ import annotations

from typing import Any

from adapters.smpp import pdu as _pdu
from adapters.smpp.constants import RESPONSE_BIT, CommandStatus
from adapters.smpp.errors import RemoteProtocolError
from adapters.smpp.inflight import MAX_SEQUENCE
from adapters.smpp.states import BIND_RESULT, BOUND_STATES, NO_RESPONSE, State


def answerable(seq: int | None) -> int:
    """The sequence number to answer with: ``seq`` if it can go on the wire, else 0."""
    return seq if seq is not None and 0 <= seq <= MAX_SEQUENCE else 0


def rejection(pdu: Any, state: State) -> tuple[Any, int]:
    """The answer to request ``pdu``, illegal in ``state``, and the status it carries."""
    cid = pdu.command_id
    if cid in BIND_RESULT and state in BOUND_STATES:
        status: int = CommandStatus.ESME_RALYBND
    else:
        status = CommandStatus.ESME_RINVBNDSTS
    if cid in NO_RESPONSE:
        return _pdu.GenericNack(command_status=status, sequence_number=pdu.sequence_number), status
    return pdu.response(status), status


def bad_sequence(pdu: Any) -> tuple[RemoteProtocolError, Any]:
    """The error and answer for a request whose sequence_number is above 0x7FFFFFFF.

    §3.2: those are not sequence numbers, so the answer cannot echo it; a
    generic_nack with sequence 0 says "unreadable".
    """
    error = RemoteProtocolError(
        f"sequence_number: 0x{pdu.sequence_number:08X} is above 0x7FFFFFFF",
        CommandStatus.ESME_RUNKNOWNERR,
        pdu.sequence_number,
        pdu.command_id,
        "sequence_number",
    )
    return error, _pdu.GenericNack(command_status=error.command_status)


def malformed(error: RemoteProtocolError) -> Any:
    """The answer to a PDU that did not decode, or None when it gets none.

    A response gets none (its request stays outstanding and times out: in
    doubt), nor does outbind or alert_notification.
    """
    cid = error.command_id
    if cid is not None and (cid & RESPONSE_BIT or cid in NO_RESPONSE):
        return None
    seq = answerable(error.sequence_number)
    cls = _pdu.PDU_CLASSES.get(cid | RESPONSE_BIT) if cid is not None else None
    if cls is None:
        return _pdu.GenericNack(command_status=error.command_status, sequence_number=seq)
    return cls(command_status=error.command_status, sequence_number=seq)
