"""Bind states and the SMPP 3.4 legality tables, written once for both ends.

Theory of operation
-------------------
Both ends of a bind share one state: ``BOUND_TX`` means "the ESME is bound as a
transmitter" whether we are that ESME or the SMSC it bound to.  What differs by
side is *who may send what* in that state, so the tables below are keyed by the
role of the sender.  A session checks what it sends against its own role and
what it receives against its peer's role, with the same table (h11 ``_state.py``
does the same for client and server).

State changes are driven by a handful of PDUs and do not depend on direction
either: a bind request opens ``BINDING`` whoever sent it, an accepted bind
response moves to the bound state matching the bind request, an unbind moves
to ``UNBINDING``.  Those are in ``BIND_RESULT`` and the ``Session`` methods that
handle them; everything else leaves the state alone.
"""

from __future__ import annotations

import enum

from adapters.smpp.constants import CommandId


class Role(enum.Enum):
    """Which end of the bind a session plays (h11 ``Connection(our_role)``)."""

    ESME = "esme"
    SMSC = "smsc"

    @property
    def peer(self) -> Role:
        """The role at the other end of the bind."""
        return Role.SMSC if self is Role.ESME else Role.ESME


class State(enum.Enum):
    """Session states of SMPP 3.4 §2.2, plus BINDING/UNBINDING in between."""

    #: §2.2.1 connected, not bound; only bind (or outbind) and enquire_link.
    OPEN = "open"
    #: A bind request is on the wire and not yet answered.
    BINDING = "binding"
    #: §2.2.2 the ESME is bound as a transmitter.
    BOUND_TX = "bound_tx"
    #: §2.2.3 the ESME is bound as a receiver.
    BOUND_RX = "bound_rx"
    #: §2.2.4 the ESME is bound as a transceiver.
    BOUND_TRX = "bound_trx"
    #: An unbind is on the wire and not yet answered.
    UNBINDING = "unbinding"
    #: §2.2.5 finished: the socket is to be closed; nothing is read or sent.
    CLOSED = "closed"


class BindKind(enum.Enum):
    """The three bind types, named as in the carrier config (``binds = {...}``)."""

    TRANSMITTER = "transmitter"
    RECEIVER = "receiver"
    TRANSCEIVER = "transceiver"


BOUND_STATES = frozenset({State.BOUND_TX, State.BOUND_RX, State.BOUND_TRX})

#: §4.1 the bind request for each kind.
BIND_REQUEST: dict[BindKind, CommandId] = {
    BindKind.TRANSMITTER: CommandId.BIND_TRANSMITTER,
    BindKind.RECEIVER: CommandId.BIND_RECEIVER,
    BindKind.TRANSCEIVER: CommandId.BIND_TRANSCEIVER,
}

#: The state an accepted bind request leads to (§2.2.2-§2.2.4).
BIND_RESULT: dict[int, State] = {
    CommandId.BIND_TRANSMITTER: State.BOUND_TX,
    CommandId.BIND_RECEIVER: State.BOUND_RX,
    CommandId.BIND_TRANSCEIVER: State.BOUND_TRX,
}

_TX = frozenset({State.BOUND_TX, State.BOUND_TRX})  # the ESME may submit
_RX = frozenset({State.BOUND_RX, State.BOUND_TRX})  # the ESME may receive
_ANY_LIVE = frozenset({State.OPEN, State.BINDING, *BOUND_STATES, State.UNBINDING})

#: Who may send each request, and in which states (SMPP 3.4 §2.3, table 2-1).
#: A request absent for a role is never legal from that role.
REQUEST_STATES: dict[Role, dict[int, frozenset[State]]] = {
    Role.ESME: {
        CommandId.BIND_TRANSMITTER: frozenset({State.OPEN}),
        CommandId.BIND_RECEIVER: frozenset({State.OPEN}),
        CommandId.BIND_TRANSCEIVER: frozenset({State.OPEN}),
        CommandId.SUBMIT_SM: _TX,
        CommandId.SUBMIT_MULTI: _TX,
        CommandId.DATA_SM: _TX,
        CommandId.QUERY_SM: _TX,
        CommandId.CANCEL_SM: _TX,
        CommandId.REPLACE_SM: _TX,
        CommandId.UNBIND: BOUND_STATES,
        # §4.11: either end may probe the link; we answer it in every live
        # state, even mid-bind (carriers do send it then).
        CommandId.ENQUIRE_LINK: _ANY_LIVE,
    },
    Role.SMSC: {
        CommandId.OUTBIND: frozenset({State.OPEN}),
        CommandId.DELIVER_SM: _RX,
        CommandId.DATA_SM: _RX,
        CommandId.ALERT_NOTIFICATION: _RX,
        CommandId.UNBIND: BOUND_STATES,
        CommandId.ENQUIRE_LINK: _ANY_LIVE,
    },
}

#: Requests that have no response PDU in SMPP 3.4 (§4.1.7 outbind, §4.12
#: alert_notification); everything else is answered by its ``*_resp``.
NO_RESPONSE = frozenset({CommandId.OUTBIND, CommandId.ALERT_NOTIFICATION})

#: Requests that do not count against the submit window: keepalive, unbind and
#: bind are link management, not traffic (still tracked and timed out); the
#: NO_RESPONSE ones are not tracked at all.
UNWINDOWED = frozenset(
    {
        CommandId.ENQUIRE_LINK,
        CommandId.UNBIND,
        CommandId.BIND_TRANSMITTER,
        CommandId.BIND_RECEIVER,
        CommandId.BIND_TRANSCEIVER,
        *NO_RESPONSE,
    }
)

def legal_requests(role: Role, state: State) -> frozenset[int]:
    """The request command_ids ``role`` may send in ``state``."""
    return frozenset(cid for cid, states in REQUEST_STATES[role].items() if state in states)


def windowed_send_states(role: Role) -> frozenset[State]:
    """States in which ``role`` may send at least one windowed request."""
    return frozenset(
        state
        for cid, states in REQUEST_STATES[role].items()
        if cid not in UNWINDOWED
        for state in states
    )


#: Precomputed once: (role, state) -> legal request ids, read on every PDU.
LEGAL: dict[tuple[Role, State], frozenset[int]] = {
    (role, state): legal_requests(role, state) for role in Role for state in State
}
