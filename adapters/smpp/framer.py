"""Streaming framer: a byte stream in, whole PDUs (or their decode errors) out."""

from __future__ import annotations

from typing import Any

from .codec import decode
from .constants import DEFAULT_MAX_PDU_BYTES, HEADER_SIZE, CommandStatus as S
from .errors import FramingError, RemoteProtocolError

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
    """

    __slots__ = ("max_pdu_bytes", "_buf", "_error")

    def __init__(self, max_pdu_bytes: int = DEFAULT_MAX_PDU_BYTES) -> None:
        if max_pdu_bytes < HEADER_SIZE:
            raise ValueError("max_pdu_bytes: must be at least %d" % HEADER_SIZE)
        self.max_pdu_bytes = max_pdu_bytes
        self._buf = bytearray()
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
        buf += data
        out: list[Any] = []
        pos, avail, max_len = 0, len(buf), self.max_pdu_bytes
        while avail - pos >= 4:
            length = int.from_bytes(buf[pos : pos + 4], "big")
            if not HEADER_SIZE <= length <= max_len:
                del buf[:pos]
                self._error = self._framing_error(length)
                self._error.pdus = out
                raise self._error
            if avail - pos < length:
                break
            try:
                out.append(decode(bytes(buf[pos : pos + length])))
            except RemoteProtocolError as exc:
                out.append(exc)
            pos += length
        if pos:
            del buf[:pos]
        return out

    def _framing_error(self, length: int) -> FramingError:
        buf = self._buf
        command_id = int.from_bytes(buf[4:8], "big") if len(buf) >= 8 else None
        seq = int.from_bytes(buf[12:16], "big") if len(buf) >= 16 else None
        return FramingError(
            "command_length: %d is outside %d..%d; framing lost" % (length, HEADER_SIZE, self.max_pdu_bytes),
            S.ESME_RINVCMDLEN, seq, command_id, "command_length",
        )
