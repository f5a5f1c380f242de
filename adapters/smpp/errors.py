"""Typed SMPP errors that carry the wire status to answer them with.

Convert at one boundary: the codec raises these, the session turns a
``RemoteProtocolError`` about a request into that request's resp (or a
generic_nack) carrying ``command_status``, and a ``FramingError`` into closing
the connection.
"""

from __future__ import annotations

from .constants import CommandStatus, status_name

__all__ = ["SmppError", "LocalProtocolError", "RemoteProtocolError", "FramingError"]


class SmppError(Exception):
    """Base class of every SMPP protocol error.

    Attributes:
        command_status: the SMPP status that describes the fault (what to answer with).
        sequence_number: the offending PDU's sequence number, ``None`` when unknown.
        command_id: the offending PDU's command_id, ``None`` when unknown.
        field: name of the offending field or TLV, ``None`` when not field-specific.
    """

    def __init__(
        self,
        message: str,
        command_status: int = CommandStatus.ESME_RSYSERR,
        sequence_number: int | None = None,
        command_id: int | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.command_status = int(command_status)
        self.sequence_number = sequence_number
        self.command_id = command_id
        self.field = field

    def __repr__(self) -> str:
        return "%s(%r, command_status=%s, sequence_number=%r, command_id=%s)" % (
            type(self).__name__,
            str(self),
            status_name(self.command_status),
            self.sequence_number,
            None if self.command_id is None else "0x%08X" % self.command_id,
        )


class LocalProtocolError(SmppError):
    """We asked for something the spec forbids (raised by ``encode``)."""


class RemoteProtocolError(SmppError):
    """The peer sent something the spec forbids; one PDU is lost, the bind may stay."""


class FramingError(RemoteProtocolError):
    """Framing is lost (command_length out of range): fatal for the connection.

    The peer may still be answered with a generic_nack carrying ``command_status``
    (ESME_RINVCMDLEN) before the connection is closed. ``pdus`` holds what the
    framer decoded in the same feed before framing was lost (handle it first).
    """

    pdus: list[object]

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.pdus = []
