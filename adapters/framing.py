"""The internal socket's wire: endpoint URLs and length-prefixed msgpack frames.

Shared by the server (`adapters/upstream.py`) and the client library (`adapters/client.py`).
A frame is a 4-byte big-endian unsigned length followed by that many bytes of one msgpack
map with string keys (DESIGN.md, "Internal socket protocol"). The decoder is sans-IO: bytes
in, frame bodies out. It judges a frame's length the moment the 4 header bytes are there,
so an oversized (or garbage) header is refused without buffering the body it announces.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import msgpack

#: Frame header: body length, unsigned 32-bit big-endian.
HEADER = struct.Struct(">I")
#: Frames over 1 MiB are refused (DESIGN.md).
MAX_FRAME = 1 << 20


class FrameTooLarge(Exception):
    """A frame header announced more than the allowed body size."""

    def __init__(self, length: int, limit: int) -> None:
        super().__init__(f"frame of {length} bytes exceeds the limit of {limit}")
        self.length = length
        self.limit = limit


class FrameDecoder:
    """Split a byte stream into frame bodies.

    `feed()` appends bytes; `next_frame()` returns the next complete body or None. Buffering
    is O(n): consumed bytes are dropped once per `feed()`, not once per frame.
    """

    __slots__ = ("_buf", "_pos", "max_frame")

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self._buf = bytearray()
        self._pos = 0
        self.max_frame = max_frame

    def feed(self, data: bytes) -> None:
        """Append received bytes."""
        if self._pos:
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    def next_frame(self) -> bytes | None:
        """The next complete frame body, or None until more bytes arrive.

        Raises FrameTooLarge as soon as a header announcing more than `max_frame` is seen.
        """
        buf, pos = self._buf, self._pos
        if len(buf) - pos < 4:
            return None
        (length,) = HEADER.unpack_from(buf, pos)
        if length > self.max_frame:
            raise FrameTooLarge(length, self.max_frame)
        end = pos + 4 + length
        if end > len(buf):
            return None
        self._pos = end
        return bytes(buf[pos + 4 : end])

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as a frame."""
        return len(self._buf) - self._pos


def decode_body(body: bytes) -> dict[str, Any]:
    """Unpack one frame body into its map.

    Raises ValueError when the body is not exactly one msgpack map with string keys.
    """
    try:
        obj = msgpack.unpackb(body, raw=False)
    except Exception as exc:  # msgpack raises several unrelated types for bad input
        raise ValueError(f"body is not msgpack ({type(exc).__name__}: {exc})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"body is a msgpack {type(obj).__name__}, not a map")
    return obj


_packer = msgpack.Packer(use_bin_type=True)


def encode_frame(obj: dict[str, Any]) -> bytes:
    """Header and msgpack body of one map.

    Raises TypeError for values msgpack can't carry, OverflowError for ints past 64 bits.
    """
    body: bytes = _packer.pack(obj)
    return HEADER.pack(len(body)) + body


@dataclass(frozen=True)
class Endpoint:
    """Where the socket listens: `unix` with a path, or `tcp` with host and port."""

    kind: str
    path: str = ""
    host: str = ""
    port: int = 0

    def __str__(self) -> str:
        if self.kind == "unix":
            return f"unix://{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"tcp://{host}:{self.port}"


def parse_url(url: str) -> Endpoint:
    """Read `unix:///abs/path` or `tcp://host:port` (port 0 = any free port).

    Raises ValueError naming what is wrong with the URL.
    """
    if not isinstance(url, str):
        raise ValueError(f"socket URL must be a string, got {type(url).__name__}")
    parts = urlsplit(url)
    if parts.scheme == "unix":
        if parts.netloc or not parts.path.startswith("/"):
            raise ValueError(f'socket URL "{url}" must be unix:///absolute/path')
        return Endpoint("unix", path=parts.path)
    if parts.scheme == "tcp":
        try:
            port = parts.port
        except ValueError:
            raise ValueError(f'socket URL "{url}" has an invalid port') from None
        if not parts.hostname or port is None or parts.path not in ("", "/"):
            raise ValueError(f'socket URL "{url}" must be tcp://host:port')
        return Endpoint("tcp", host=parts.hostname, port=port)
    raise ValueError(f'socket URL "{url}" must start with unix:// or tcp://')
