"""GSM 03.38 default alphabet: the character tables, septet encoding and 7-bit packing.

Theory of operation
-------------------
Text is first turned into *unpacked septets*: one septet value per octet, an extension
character as the escape 0x1B followed by its code. That stream is what SMPP carries for a
``gsm7`` carrier, what segment cutting counts (an escape pair is two septets), and what the
packer squeezes into 7-bit form for a ``gsm7_packed`` carrier.

Encoding is one ``str.translate`` call: every default-alphabet character maps to the
Latin-1 character whose code is its septet, every extension character to a two-character
escape string, and every other character either stays as it is (it is not ASCII) or maps
to ``\\x80`` (an ASCII character the alphabet lacks, e.g. the backtick). So the result is
ASCII exactly when the text is representable, and ``.encode("latin-1")`` gives the septets.

Packing treats the septets as one little-endian integer and squeezes out the spare top bit
of every octet by doubling lanes (2 octets -> 14 bits, 4 -> 28, 8 -> 56): a handful of
big-int operations instead of a Python loop per septet; unpacking runs the doubling back.

Nothing here reads a clock or does I/O; decoding is tolerant (bytes above 0x7F read as '?').
"""

from __future__ import annotations

import codecs
import re

__all__ = [
    "CR",
    "ESC",
    "GSM_BASIC",
    "GSM_EXTENSION",
    "TextError",
    "decode_septets",
    "encode_septets",
    "fill_bits",
    "is_gsm",
    "pack_septets",
    "unpack_septets",
]


class TextError(ValueError):
    """Text cannot be encoded, decoded or segmented as asked; the message names the field."""


#: GSM 03.38 §6.2.1 default alphabet, indexed by septet value. 0x1B is the escape to the
#: extension table, not a character: the placeholder U+FFFF keeps it out of every map.
GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\uffffÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)

#: GSM 03.38 §6.2.1.1 extension table: septet after the escape -> character. Each costs
#: two septets on air.
GSM_EXTENSION = {
    0x0A: "\f",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
}

ESC = 0x1B  #: GSM 03.38 §6.2.1: escape to the extension table.
CR = 0x0D  #: GSM 03.38 §6.1.2.3.1: the pad septet when 7 bits of the last octet are spare.

assert len(GSM_BASIC) == 128

# str.translate table: see the module docstring. ASCII characters the alphabet lacks map to
# "\x80" so that "result is ASCII" is the whole representability test.
_ENCODE: dict[int, str] = {code: "\x80" for code in range(128)}
_ENCODE.update({ord(char): chr(septet) for septet, char in enumerate(GSM_BASIC) if septet != ESC})
_ENCODE.update({ord(char): "\x1b" + chr(code) for code, char in GSM_EXTENSION.items()})

# Fast path for ASCII text: octet -> septet for the characters that are one septet,
# 0x80 (not ASCII, so "result is ASCII" is again the test) for the rest.
_ASCII_SEPTETS = bytes(
    ord(_ENCODE[code]) if code < 128 and len(_ENCODE[code]) == 1 else 0x80 for code in range(256)
)

_NOT_GSM = re.compile(
    "[^"
    + re.escape("".join(GSM_BASIC[:ESC] + GSM_BASIC[ESC + 1 :]) + "".join(GSM_EXTENSION.values()))
    + "]"
)

# Decoding: septets 0x00-0x7F through the default alphabet (escape kept as "\x1b" for the
# second pass), octets above 0x7F cannot be septets and read as "?".
_DECODE = GSM_BASIC.replace("\uffff", "\x1b") + "?" * 128
_DECODE_EXT = {GSM_BASIC[code]: char for code, char in GSM_EXTENSION.items()}
# GSM 03.38 §6.2.1.1: an escape followed by a code the table lacks shows the default
# character; escape-escape is reserved for a further table and shows a space.
_DECODE_EXT["\x1b"] = " "
_ESCAPED = re.compile("\x1b(.)", re.DOTALL)


def _unescape(match: re.Match[str]) -> str:
    char = match.group(1)
    return _DECODE_EXT.get(char, char)


def is_gsm(text: str) -> bool:
    """Whether every character of ``text`` is in the default alphabet or its extension."""
    return _NOT_GSM.search(text) is None


def encode_septets(text: str) -> bytes:
    """Encode ``text`` as unpacked septets, extension characters as escape pairs.

    Raises :class:`TextError` naming the first character the alphabet lacks.
    """
    if text.isascii():
        septets = text.encode("ascii").translate(_ASCII_SEPTETS)
        if septets.isascii():
            return septets
    out = text.translate(_ENCODE)
    if not out.isascii():
        match = _NOT_GSM.search(text)
        pos = match.start() if match else 0
        raise TextError(f"text: {text[pos]!r} at index {pos} is not in the GSM 03.38 alphabet")
    return out.encode("latin-1")


def decode_septets(septets: bytes) -> str:
    """Decode unpacked septets; never raises (octets above 0x7F read as '?')."""
    text = codecs.charmap_decode(septets, "strict", _DECODE)[0]
    if "\x1b" in text:
        text = _ESCAPED.sub(_unescape, text)
        if text.endswith("\x1b"):  # a dangling escape: show it as a space, as §6.2.1 says
            text = text[:-1] + " "
    return text


def fill_bits(udh_len: int) -> int:
    """Fill bits between a ``udh_len``-octet header and the first septet (GSM 03.40 §9.2.3.24)."""
    return -(udh_len * 8) % 7


# Lane masks for pack/unpack, cached per size class (a power of two of octets). Step k
# works on lanes of 2 * half bits, half = 8 * 2**k, each half holding 7 * 2**k data bits:
# ``wide`` selects the low half of every lane, ``data`` the low 7 * 2**k bits of it.
_MASKS: dict[int, list[tuple[int, int, int, int]]] = {}
_MASKS_CACHED_UP_TO = 4096


def _masks(size: int) -> list[tuple[int, int, int, int]]:
    """(half, bits, wide, data) for every lane-doubling step over ``size`` octets."""
    steps = _MASKS.get(size)
    if steps is None:
        steps = []
        width = 1  # lane half width in octets
        while width < size:
            half, bits = 8 * width, 7 * width
            wide = int.from_bytes(
                (b"\xff" * width + b"\x00" * width) * (size // (2 * width)), "little"
            )
            data = wide // ((1 << half) - 1) * ((1 << bits) - 1)
            steps.append((half, bits, wide, data))
            width *= 2
        if size <= _MASKS_CACHED_UP_TO:  # a rare 64 KiB message_payload is not kept
            _MASKS[size] = steps
    return steps


def _size_class(count: int) -> int:
    return 1 << max(count - 1, 0).bit_length()


def pack_septets(septets: bytes, udh_len: int = 0, max_octets: int | None = 140) -> bytes:
    """Pack septets LSB-first (GSM 03.38 §6.1.2.1.1) as they follow a ``udh_len``-octet UDH.

    The result starts with the fill bits that align the first septet after the header. When
    the last octet would have 7 spare bits a CR pad septet is added (§6.1.2.3.1), and a text
    that itself ends in CR on an octet boundary gets a second CR when ``max_octets`` (the
    whole user data, header included) leaves room: the reader then shows CR CR, which the
    spec defines as one CR, instead of taking the real CR for the pad and dropping it.
    """
    header_septets = -(-udh_len * 8 // 7)
    total = header_septets + len(septets)
    ends_in_cr = total % 8 == 0 and septets[-1:] == b"\r"
    if total % 8 == 7 or (ends_in_cr and (max_octets is None or total * 7 // 8 + 1 <= max_octets)):
        septets += b"\r"
    # The header is packed as zero septets and cut off afterwards: what remains starts
    # with exactly the fill bits. Three lane doublings leave 56 bits in every 64-bit lane;
    # deleting each lane's empty top octet finishes the packing.
    septets = bytes(header_septets) + septets
    count = len(septets)
    size = (count + 7) & ~7
    value = int.from_bytes(septets, "little")
    for half, bits, wide, _ in _masks(_size_class(size))[:3]:
        value = (value & wide) | (((value >> half) & wide) << bits)
    octets = bytearray(value.to_bytes(size, "little"))
    del octets[7::8]
    return bytes(octets[udh_len : (7 * count + 7) // 8])


def unpack_septets(data: bytes, udh_len: int = 0) -> bytes:
    """Unpack the septets in ``data`` (the octets after a ``udh_len``-octet UDH).

    A final CR that ends exactly on an octet boundary is the sender's pad and is dropped
    (GSM 03.38 §6.1.2.3.1). Never raises.
    """
    fill = fill_bits(udh_len)
    avail = len(data) * 8 - fill
    count = avail // 7 if avail > 0 else 0
    if count == 0:
        return b""
    value = (int.from_bytes(data, "little") >> fill) & ((1 << 7 * count) - 1)
    for half, bits, _, low in reversed(_masks(_size_class(count))):
        value = (value & low) | (((value >> bits) & low) << half)
    septets = value.to_bytes(count, "little")
    if avail % 7 == 0 and septets[-1] == CR:
        septets = septets[:-1]
    return septets
