"""Cursor reader and writer for SMPP bodies, every length checked before use.

The reader is the reference decoder's tool: it knows which field it is reading,
so a malformed PDU is reported naming that field and the status to answer it
with. The hot PDUs have hand-written fast paths in ``fastpath.py``; they fall
back to this reader when anything looks wrong, so errors always come from here.
"""

from __future__ import annotations

import struct

from .constants import CommandStatus
from .errors import LocalProtocolError, RemoteProtocolError

__all__ = ["Reader", "Writer"]

_U32 = struct.Struct(">I")
_RINVCMDLEN = CommandStatus.ESME_RINVCMDLEN
_RINVPARLEN = CommandStatus.ESME_RINVPARLEN
_RINVMSGLEN = CommandStatus.ESME_RINVMSGLEN


class Reader:
    """Reads typed fields from ``data[pos:end]``; raises RemoteProtocolError naming the field."""

    __slots__ = ("data", "pos", "end")

    def __init__(self, data: bytes, pos: int, end: int) -> None:
        self.data = data
        self.pos = pos
        self.end = end

    def at_end(self) -> bool:
        """True when no byte is left."""
        return self.pos >= self.end

    def _short(self, field: str, size: int) -> RemoteProtocolError:
        return RemoteProtocolError(
            "%s: needs %d octet(s), %d left in the PDU" % (field, size, self.end - self.pos),
            _RINVCMDLEN,
            field=field,
        )

    def pull_u8(self, field: str) -> int:
        """One octet as an int. Raises RemoteProtocolError (ESME_RINVCMDLEN) past the end."""
        pos = self.pos
        if pos >= self.end:
            raise self._short(field, 1)
        self.pos = pos + 1
        return self.data[pos]

    def pull_u32(self, field: str) -> int:
        """Four octets big-endian. Raises RemoteProtocolError (ESME_RINVCMDLEN) past the end."""
        pos = self.pos
        if pos + 4 > self.end:
            raise self._short(field, 4)
        self.pos = pos + 4
        return _U32.unpack_from(self.data, pos)[0]

    def pull_cstring(
        self, field: str, status: int = _RINVPARLEN, unterminated_ok: bool = False
    ) -> str:
        """A C-octet string as latin-1 text, any length up to the PDU end.

        Lengths beyond the spec's maximum are accepted (carriers send them).
        Raises RemoteProtocolError with ``status`` when no NUL comes before the
        end, unless ``unterminated_ok`` (then the rest of the PDU is the value),
        and ESME_RINVCMDLEN when the PDU ends before the field starts.
        """
        data, pos, end = self.data, self.pos, self.end
        nul = data.find(0, pos, end)
        if nul < 0:
            if pos >= end and not unterminated_ok:
                raise self._short(field, 1)  # the body stops before the field: too short a PDU
            if not unterminated_ok:
                raise RemoteProtocolError(
                    "%s: C-octet string has no terminating NUL before the PDU end" % field,
                    status,
                    field=field,
                )
            nul = end
            self.pos = end
        else:
            self.pos = nul + 1
        return data[pos:nul].decode("latin-1")

    def pull_bytes(self, size: int, field: str, status: int = _RINVMSGLEN) -> bytes:
        """Exactly ``size`` octets. Raises RemoteProtocolError with ``status`` past the end."""
        pos = self.pos
        if pos + size > self.end:
            raise RemoteProtocolError(
                "%s: length %d runs past the PDU end (%d octets left)"
                % (field, size, self.end - pos),
                status,
                field=field,
            )
        self.pos = pos + size
        return self.data[pos : pos + size]


class Writer:
    """Collects encoded fields; raises LocalProtocolError naming the field on bad values."""

    __slots__ = ("parts",)

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def getvalue(self) -> bytes:
        """Everything pushed so far, concatenated."""
        return b"".join(self.parts)

    def push_u8(self, value: object, field: str) -> None:
        """One octet. Raises LocalProtocolError unless ``value`` is an int in 0..255."""
        if not isinstance(value, int) or not 0 <= value <= 0xFF:
            raise LocalProtocolError("%s: %r is not an integer in 0..255" % (field, value), field=field)
        self.parts.append(bytes((value,)))

    def push_u32(self, value: object, field: str) -> None:
        """Four octets big-endian. Raises LocalProtocolError unless 0 <= value <= 2**32-1."""
        if not isinstance(value, int) or not 0 <= value <= 0xFFFFFFFF:
            raise LocalProtocolError(
                "%s: %r is not an integer in 0..0xFFFFFFFF" % (field, value), field=field
            )
        self.parts.append(_U32.pack(value))

    def push_cstring(self, value: object, max_len: int, field: str, exact: int = -1) -> None:
        """A C-octet string of at most ``max_len`` octets including its NUL.

        ``exact`` (when >= 0) is the only non-empty length allowed, for the
        absolute/relative time fields (§7.1). Raises LocalProtocolError for a
        non-str value, a non-latin-1 character, an embedded NUL or a bad length.
        """
        if not isinstance(value, str):
            raise LocalProtocolError("%s: expected str, got %r" % (field, value), field=field)
        if "\0" in value:
            raise LocalProtocolError("%s: contains a NUL character" % field, field=field)
        try:
            raw = value.encode("latin-1")
        except UnicodeEncodeError:
            raise LocalProtocolError(
                "%s: %r has characters outside latin-1" % (field, value), field=field
            ) from None
        if len(raw) + 1 > max_len:
            raise LocalProtocolError(
                "%s: %d octets, the spec allows at most %d before the NUL"
                % (field, len(raw), max_len - 1),
                field=field,
            )
        if exact >= 0 and raw and len(raw) != exact:
            raise LocalProtocolError(
                "%s: must be empty or exactly %d characters, got %d" % (field, exact, len(raw)),
                field=field,
            )
        self.parts.append(raw + b"\0")

    def push_octets(self, value: object, max_len: int, field: str) -> None:
        """Raw octets (no length prefix). Raises LocalProtocolError for non-bytes or too long."""
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise LocalProtocolError("%s: expected bytes, got %r" % (field, value), field=field)
        raw = bytes(value)
        if len(raw) > max_len:
            raise LocalProtocolError(
                "%s: %d octets, the spec allows at most %d" % (field, len(raw), max_len),
                field=field,
            )
        self.parts.append(raw)
