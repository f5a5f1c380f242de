"""User data headers (GSM 03.40 §9.2.3.24): building concatenation headers, walking inbound ones.

Outbound we only ever write one concatenation IE. Inbound a header can hold several
information elements in any order (an application port IE often comes first), so the walk
checks every IE length against the header before reading it and the concatenation IE is
looked up by identifier, never by position.
"""

from __future__ import annotations

import struct

from router.gsm import TextError

__all__ = [
    "IEI_CONCAT_8",
    "IEI_CONCAT_16",
    "IEI_PORT_8",
    "IEI_PORT_16",
    "concat_info",
    "split_udh",
    "udh_concat",
]

IEI_CONCAT_8 = 0x00  #: GSM 03.40 §9.2.3.24.1: concatenated SM, 8-bit reference (IEDL 3).
IEI_PORT_8 = 0x04  #: GSM 03.40 §9.2.3.24.3: application port, 8-bit addresses.
IEI_PORT_16 = 0x05  #: GSM 03.40 §9.2.3.24.4: application port, 16-bit addresses.
IEI_CONCAT_16 = 0x08  #: GSM 03.40 §9.2.3.24.8: concatenated SM, 16-bit reference (IEDL 4).

#: UDHL 5, IEI 0x00, IEDL 3, ref, total, seq: the 6-octet header of an 8-bit reference.
_UDH8 = struct.Struct(">BBBBBB")
#: UDHL 6, IEI 0x08, IEDL 4, ref (16 bits), total, seq: the 7-octet header.
_UDH16 = struct.Struct(">BBBHBB")
_REF16 = struct.Struct(">H")

UDH8_LEN = _UDH8.size
UDH16_LEN = _UDH16.size


def udh_concat(ref: int, total: int, seq: int, ref_bits: int = 8) -> bytes:
    """The concatenation UDH (with its length octet) for part ``seq`` of ``total``.

    The caller checks ranges (ref fits ``ref_bits``, 1 <= seq <= total <= 255); a value out
    of range raises ``struct.error``.
    """
    if ref_bits == 8:
        return _UDH8.pack(5, IEI_CONCAT_8, 3, ref, total, seq)
    return _UDH16.pack(6, IEI_CONCAT_16, 4, ref, total, seq)


def split_udh(short_message: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """Split a short_message whose UDHI bit is set into ``([(iei, value), ...], rest)``.

    Raises :class:`TextError` when the header is empty, runs past the message, or an IE's
    length runs past the header.
    """
    if not short_message:
        raise TextError("short_message: UDHI set but the message is empty")
    end = 1 + short_message[0]
    if end > len(short_message):
        raise TextError(
            f"short_message: UDH length {end - 1} runs past the {len(short_message)}-octet message"
        )
    ies: list[tuple[int, bytes]] = []
    pos = 1
    while pos < end:
        if pos + 2 > end:
            raise TextError(f"short_message: UDH information element at octet {pos} is truncated")
        iei, length = short_message[pos], short_message[pos + 1]
        pos += 2
        if pos + length > end:
            raise TextError(
                f"short_message: UDH information element 0x{iei:02X} length {length}"
                " runs past the header"
            )
        ies.append((iei, bytes(short_message[pos : pos + length])))
        pos += length
    return ies, bytes(short_message[end:])


def concat_info(ies: list[tuple[int, bytes]]) -> tuple[int, int, int, int] | None:
    """``(ref, total, seq, ref_bits)`` from the concatenation IE, or None if not concatenated.

    A repeated IE counts by its last occurrence (GSM 03.40 §9.2.3.24). A concatenation IE
    of the wrong length, total 0, seq 0 or seq > total means "not concatenated". Never raises.
    """
    found: tuple[int, int, int, int] | None = None
    for iei, value in ies:
        if iei == IEI_CONCAT_8 and len(value) == 3:
            found = (value[0], value[1], value[2], 8)
        elif iei == IEI_CONCAT_16 and len(value) == 4:
            found = (_REF16.unpack_from(value)[0], value[2], value[3], 16)
        elif iei in (IEI_CONCAT_8, IEI_CONCAT_16):
            found = None
    if found is None or not 1 <= found[2] <= found[1]:
        return None
    return found
