"""Streaming framer: a byte stream in, whole PDUs (or their decode errors) out."""

from __future__ import annotations

from typing import Any

from .codec import decode_run
from .constants import DEFAULT_MAX_PDU_BYTES, HEADER_SIZE, CommandStatus as S
from .errors import FramingError

__all__ = ["Framer"]


class Framer:
    """Splits a byte stream into PDUs; O(n) buffering, no I/O.

    ``feed`` returns whole PDUs in order; a PDU whose body does not decode is
    returned as its RemoteProtocolError in the same list (the framer has
    already moved past it, so the caller answers it and goes on). Raises
    FramingError when command_length is below 16 or above ``max_pdu_bytes``,
    checked as soon as its 4 octets arrive; framing is then lost for good and
    every later ``feed`` raises the same error. The PDUs that were complete
    before the bad length in the same ``feed`` are on the error's ``pdus``.

    PDUs are decoded where they lie in the received chunk (``codec.decode_run``); only an incomplete
    tail is kept, in a bytearray that grows until the PDU it starts is whole
    (``_need`` octets), so every octet is copied at most twice however the
    stream is cut, and not at all when chunks end on PDU boundaries.
    """

    __slots__ = ("max_pdu_bytes", "_buf", "_need", "_error")

    def __init__(self, max_pdu_bytes: int = DEFAULT_MAX_PDU_BYTES) -> None:
        if max_pdu_bytes < HEADER_SIZE:
            raise ValueError("max_pdu_bytes: must be at least %d" % HEADER_SIZE)
        self.max_pdu_bytes = max_pdu_bytes
        self._buf = bytearray()
        #: octets the buffered tail must reach before anything can come of it.
        self._need = 4
        self._error: FramingError | None = None

    @property
    def buffered(self) -> int:
        """Octets received but not yet part of a whole PDU."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Any]:
        """Add received octets; return the PDUs (or their decode errors) now complete.

        Raises FramingError when framing is lost.
        """
        if self._error is not None:
            self._error.pdus = []  # those belonged to the feed that lost framing
            raise self._error
        buf = self._buf
        if buf:
            buf += data
            if len(buf) < self._need:
                return []  # still inside one PDU (or its length): nothing to parse yet
            data = bytes(buf)
            buf.clear()
        elif type(data) is not bytes:
            data = bytes(data)
        out: list[Any] = []
        pos = decode_run(data, self.max_pdu_bytes, out)
        rest = len(data) - pos
        if rest >= 4:
            length = int.from_bytes(data[pos : pos + 4], "big")
            if not HEADER_SIZE <= length <= self.max_pdu_bytes:
                self._buf = bytearray(data[pos:])
                self._error = self._framing_error(length)
                self._error.pdus = out
                raise self._error
            self._need = length  # valid, so the PDU it starts is incomplete
        else:
            self._need = 4
        if rest:
            buf += data[pos:] if pos else data
        return out

    def _framing_error(self, length: int) -> FramingError:
        buf = self._buf
        command_id = int.from_bytes(buf[4:8], "big") if len(buf) >= 8 else None
        seq = int.from_bytes(buf[12:16], "big") if len(buf) >= 16 else None
        return FramingError(
            "command_length: %d is outside %d..%d; framing lost" % (length, HEADER_SIZE, self.max_pdu_bytes),
            S.ESME_RINVCMDLEN, seq, command_id, "command_length",
        )
