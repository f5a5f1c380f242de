"""Reading text that carriers send us (deliver_sm, data_sm): tolerant by design.

What data_coding 0 means is the carrier's ``dc0_charset``; values 0x10 and up are read as
GSM 03.38 data coding schemes, as SMSCs pass them through. A coding that is not text
raises :class:`TextError` so the caller keeps the bytes; undecodable octets inside a text
become '?' (or U+FFFD in UCS-2) rather than failing the PDU.
"""

from __future__ import annotations

from router.gsm import TextError, decode_septets, unpack_septets
from router.udh import concat_info, split_udh

__all__ = ["InboundPart", "decode_short_message", "decode_text"]

_DC0, _IA5, _LATIN1, _UCS2 = "dc0", "ia5", "latin1", "ucs2"

#: SMPP 3.4 §5.2.19 data_coding values that are text (2 and 4 are binary).
_SMPP_TEXT = {0x00: _DC0, 0x01: _IA5, 0x03: _LATIN1, 0x08: _UCS2}

#: GSM 03.38 §4 alphabet bits of a data coding scheme: 0 default alphabet, 2 UCS-2
#: (1 is 8-bit data, 3 reserved).
_DCS_ALPHABET = {0: _DC0, 2: _UCS2}

# Bytes that are ASCII but not printable text: what tells a real UCS-2 payload (a zero high
# octet for Latin text) from an ASCII receipt a carrier labelled data_coding 8.
_PRINTABLE = bytes([0x09, 0x0A, 0x0D, *range(0x20, 0x7F)])
_ASCII_OR_QUESTION = bytes(range(128)) + b"?" * 128


class InboundPart:
    """One inbound short_message split into header and text.

    ``text`` is None when the data_coding is not text (``data`` then holds the payload);
    ``data`` is the octets after the UDH; ``concat`` is ``(ref, total, seq, ref_bits)`` or
    None; ``ies`` is every UDH information element as ``(iei, value)``.
    """

    __slots__ = ("concat", "data", "ies", "text")

    def __init__(
        self,
        text: str | None,
        data: bytes,
        concat: tuple[int, int, int, int] | None,
        ies: list[tuple[int, bytes]],
    ) -> None:
        self.text = text
        self.data = data
        self.concat = concat
        self.ies = ies

    def __repr__(self) -> str:
        return (
            f"InboundPart(text={self.text!r}, data={self.data!r},"
            f" concat={self.concat!r}, ies={self.ies!r})"
        )


def _alphabet(data_coding: int) -> str | None:
    """The text alphabet behind ``data_coding``, or None for binary and unknown codings."""
    if data_coding < 0x10:
        return _SMPP_TEXT.get(data_coding)
    group = data_coding >> 4
    if group < 0x8:  # 00xx / 01xx general coding; bit 5 set means compressed
        return None if data_coding & 0x20 else _DCS_ALPHABET.get((data_coding >> 2) & 3)
    if group in (0xC, 0xD):  # message waiting, default alphabet
        return _DC0
    if group == 0xE:  # message waiting, UCS-2
        return _UCS2
    if group == 0xF:  # data coding / message class: bit 2 set means 8-bit data
        return None if data_coding & 0x04 else _DC0
    return None


def decode_text(
    data: bytes,
    data_coding: int,
    *,
    dc0_charset: str = "gsm7",
    lenient: bool = False,
    udh_len: int = 0,
) -> str:
    """Decode inbound text.

    ``udh_len`` is the UDH size (octets, its length octet included) that preceded ``data``
    in the short_message: packed septets start at the septet boundary after it. UCS-2
    honours and strips a BOM (FFFE means little-endian). ``lenient`` (for receipts, which
    carriers write in ASCII) reads a "UCS-2" payload made only of printable ASCII as ASCII —
    do not use it for user messages, where CJK text can look like that.

    Raises :class:`TextError` for a binary or unknown data_coding or an unknown
    ``dc0_charset``; never for the octets themselves.
    """
    alphabet = _alphabet(data_coding)
    if alphabet is None:
        raise TextError(f"data_coding: 0x{data_coding:02X} is not a text coding")
    if alphabet == _DC0:
        return _decode_dc0(data, dc0_charset, udh_len)
    if alphabet == _UCS2:
        return _decode_ucs2(data, lenient)
    if alphabet == _LATIN1:
        return data.decode("latin-1")
    return _decode_ascii(data)


def _decode_dc0(data: bytes, dc0_charset: str, udh_len: int) -> str:
    if dc0_charset == "gsm7":
        return decode_septets(data)
    if dc0_charset == "gsm7_packed":
        return decode_septets(unpack_septets(data, udh_len))
    if dc0_charset == "latin1":
        return data.decode("latin-1")
    if dc0_charset == "ascii":
        return _decode_ascii(data)
    raise TextError(f"dc0_charset: {dc0_charset!r} is not one of gsm7, gsm7_packed, latin1, ascii")


def _decode_ascii(data: bytes) -> str:
    if data.isascii():
        return data.decode("ascii")
    return data.translate(_ASCII_OR_QUESTION).decode("ascii")


def _decode_ucs2(data: bytes, lenient: bool) -> str:
    if lenient and data and not data.translate(None, _PRINTABLE):
        return data.decode("ascii")
    codec = "utf-16-be"
    if data[:2] == b"\xfe\xff":
        data = data[2:]
    elif data[:2] == b"\xff\xfe":
        data, codec = data[2:], "utf-16-le"
    return data.decode(codec, "replace")


def decode_short_message(
    short_message: bytes,
    data_coding: int,
    udhi: bool,
    *,
    dc0_charset: str = "gsm7",
    lenient: bool = False,
) -> InboundPart:
    """Split the UDH (only when ``udhi``: a header-looking text without it is text) and decode.

    A binary or unknown data_coding gives ``text=None``. Raises :class:`TextError` for a
    malformed UDH (the caller keeps the raw bytes) or an unknown ``dc0_charset``.
    """
    if udhi:
        ies, data = split_udh(short_message)
        udh_len = len(short_message) - len(data)
        concat = concat_info(ies)
    else:
        ies, data, udh_len, concat = [], bytes(short_message), 0, None
    text = None
    if _alphabet(data_coding) is not None:
        text = decode_text(
            data, data_coding, dc0_charset=dc0_charset, lenient=lenient, udh_len=udh_len
        )
    elif dc0_charset not in ("gsm7", "gsm7_packed", "latin1", "ascii"):
        raise TextError(
            f"dc0_charset: {dc0_charset!r} is not one of gsm7, gsm7_packed, latin1, ascii"
        )
    return InboundPart(text, data, concat, ies)
