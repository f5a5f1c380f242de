"""Text choice, segment counting and rendering into submit_sm parts.

Theory of operation
-------------------
``measure`` is the router's default choice (GSM 7-bit when every character fits, else
UCS-2) and the on-air part count with an 8-bit-reference UDH. It runs on every accepted
message, so an ASCII text without extension characters is answered from its length alone.

``render`` turns a text into the carrier's wire form. Parts are always cut on the *on-air*
stream — unpacked septets for GSM text whatever the carrier's data_coding 0 charset, UTF-16
code units for UCS-2 — so the count agrees with ``measure`` and only a 16-bit reference
(152 septets / 66 units per part) can change it. A cut never separates an escape from its
extension character nor a high surrogate from its low one: both streams make that a look
at the last unit of the part, because our septet stream holds 0x1B only as an escape.

Inbound decoding lives in :mod:`router.textdecode`; the names are re-exported here.
"""

from __future__ import annotations

from router.gsm import ESC, TextError, encode_septets, is_gsm, pack_septets
from router.textdecode import InboundPart, decode_short_message, decode_text
from router.udh import concat_info, split_udh, udh_concat

__all__ = [
    "CONCAT_MODES",
    "DC0_CHARSETS",
    "InboundPart",
    "Rendered",
    "TextError",
    "WirePart",
    "concat_info",
    "decode_short_message",
    "decode_text",
    "measure",
    "measure_binary",
    "render",
    "render_binary",
    "split_udh",
]

GSM7 = "gsm7"
UCS2 = "ucs2"
BINARY = "binary"

#: What data_coding 0 means on a carrier (its ``dc0_charset`` setting).
DC0_CHARSETS = ("gsm7", "gsm7_packed", "latin1", "ascii")
#: How a carrier wants long messages: UDH with an 8- or 16-bit reference, SAR TLVs
#: (SMPP 3.4 §5.3.2.22-24) or the whole text in message_payload (§5.3.2.32).
CONCAT_MODES = ("udh8", "udh16", "sar", "payload")

DC_DEFAULT = 0x00  #: SMPP 3.4 §5.2.19: SMSC default alphabet (the carrier's dc0 charset).
DC_UCS2 = 0x08  #: SMPP 3.4 §5.2.19: UCS2 (ISO/IEC-10646), sent big-endian without BOM.

GSM_SINGLE = 160  #: GSM 03.40 §9.2.3.16: septets in one 140-octet user data.
UCS2_SINGLE = 140  #: octets (70 UTF-16 units) in one user data.
OCTET_SINGLE = 140  #: octets of 8-bit data in one user data.

# Per part after a concatenation header: (septets, UCS-2 octets, data octets, ref mask,
# ref bits). SAR and message_payload leave the header to the SMSC, which writes an 8-bit
# one, so their parts are as large as udh8's; SAR's reference TLV is 16 bits wide.
_MODES: dict[str, tuple[int, int, int, int, int]] = {
    "udh8": (153, 134, 134, 0xFF, 8),
    "udh16": (152, 132, 133, 0xFFFF, 16),
    "sar": (153, 134, 134, 0xFFFF, 0),
    "payload": (153, 134, 134, 0xFFFF, 0),
}
_MAX_PARTS = 255  #: GSM 03.40 §9.2.3.24.1: total and seq are one octet.
_PAYLOAD_MAX = 0xFFFF  #: SMPP 3.4 §5.3.2.32: message_payload's TLV length is 16 bits.

# ASCII characters that are one default-alphabet septet each (LF, CR, space to Z, _, a-z):
# a text made of these alone needs no table lookup to be counted.
_PLAIN_ASCII = bytes([0x0A, 0x0D, *range(0x20, 0x5B), 0x5F, *range(0x61, 0x7B)])


class WirePart:
    """One submit_sm's worth of a rendered message.

    ``esm_class_udhi``: the caller ORs 0x40 (SMPP 3.4 §5.2.12) into esm_class.
    ``short_message``: UDH + payload, or b"" when ``message_payload`` carries the text.
    ``sar``: (sar_msg_ref_num, sar_total_segments, sar_segment_seqnum) TLV values or None.
    """

    __slots__ = (
        "data_coding",
        "esm_class_udhi",
        "message_payload",
        "part",
        "sar",
        "short_message",
        "total",
    )

    def __init__(
        self,
        data_coding: int,
        esm_class_udhi: bool,
        short_message: bytes,
        sar: tuple[int, int, int] | None,
        message_payload: bytes | None,
        part: int,
        total: int,
    ) -> None:
        self.data_coding = data_coding
        self.esm_class_udhi = esm_class_udhi
        self.short_message = short_message
        self.sar = sar
        self.message_payload = message_payload
        self.part = part
        self.total = total

    def _key(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in _WIRE_FIELDS)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WirePart) and self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in _WIRE_FIELDS)
        return f"WirePart({fields})"


# Constructor order, for repr and comparison (the slots are kept sorted).
_WIRE_FIELDS = (
    "data_coding",
    "esm_class_udhi",
    "short_message",
    "sar",
    "message_payload",
    "part",
    "total",
)


class Rendered(list[WirePart]):
    """The submit_sm parts of one message, in order.

    ``encoding`` is what went on the wire (``gsm7``, ``ucs2`` — also when a ``latin1`` or
    ``ascii`` carrier could not carry a GSM text — or ``binary``). ``segments`` is what
    the message costs on air: ``len(self)``, except with ``payload`` where the one PDU is
    split by the SMSC into as many parts as ``measure`` counts.
    """

    __slots__ = ("encoding", "segments")

    def __init__(self, parts: list[WirePart], encoding: str, segments: int) -> None:
        super().__init__(parts)
        self.encoding = encoding
        self.segments = segments


def measure(text: str) -> tuple[str, int]:
    """The default encoding for ``text`` and its on-air part count with an 8-bit UDH.

    ``("gsm7", n)`` when every character is in the GSM 03.38 alphabet or its extension
    (which count two septets), else ``("ucs2", n)``; empty text is one part. Raises
    :class:`TextError` for a lone surrogate, which no encoding can carry.
    """
    if text.isascii():
        raw = text.encode("ascii")
        if not raw.translate(None, _PLAIN_ASCII):
            size = len(raw)
            return GSM7, 1 if size <= GSM_SINGLE else -(-size // 153)
    if is_gsm(text):
        return GSM7, len(_cut_septets(encode_septets(text), 153))
    units = _utf16(text)
    if len(units) == 2 * len(text):  # no surrogate pair to keep whole: plain division
        return UCS2, 1 if len(units) <= UCS2_SINGLE else -(-len(units) // 134)
    return UCS2, len(_cut_ucs2(units, 134))


def measure_binary(data: bytes) -> int:
    """Parts for 8-bit data: 140 octets single, 134 per part with an 8-bit UDH."""
    return 1 if len(data) <= OCTET_SINGLE else -(-len(data) // 134)


def render(
    text: str,
    encoding: str,
    *,
    dc0_charset: str = "gsm7",
    concat: str = "udh8",
    ref: int = 0,
) -> Rendered:
    """Render ``text`` as the submit_sm parts of a carrier.

    ``encoding`` is ``gsm7`` (the text goes as data_coding 0 in ``dc0_charset``, or as
    UCS-2 when that charset cannot carry it) or ``ucs2`` (data_coding 8). Every part
    carries the same reference and data_coding; ``ref`` is taken modulo the reference's
    width (the low 8 bits for udh8, 16 for udh16 and sar), so one wrapping counter serves
    every carrier. A single part carries no UDH or SAR. Raises :class:`TextError` naming
    the field for an unknown encoding, charset or concat mode, a ``gsm7`` text outside
    the alphabet, a lone surrogate, more than 255 parts, or (``payload``) more than the
    65535 octets a message_payload TLV holds.
    """
    mode = _mode(concat)
    if dc0_charset not in DC0_CHARSETS:
        raise TextError(f"dc0_charset: {dc0_charset!r} is not one of {', '.join(DC0_CHARSETS)}")
    if encoding == GSM7:
        septets = encode_septets(text)
        if dc0_charset == "gsm7" or dc0_charset == "gsm7_packed":
            packed = dc0_charset == "gsm7_packed"
            if concat == "payload":
                body = pack_septets(septets, 0, None) if packed else septets
                return _payload(body, DC_DEFAULT, GSM7, len(_cut_septets(septets, 153)))
            chunks = [septets[i:j] for i, j in _cut_septets(septets, mode[0])]
            return _assemble(chunks, DC_DEFAULT, GSM7, concat, ref, mode, packed)
        try:
            body = text.encode("latin-1" if dc0_charset == "latin1" else "ascii")
        except UnicodeEncodeError:
            pass  # the charset lacks a character (€, Greek, accents in ascii): UCS-2
        else:
            return _render_charset(septets, body, concat, ref, mode)
    elif encoding != UCS2:
        raise TextError(f"encoding: {encoding!r} is neither 'gsm7' nor 'ucs2'")
    units = _utf16(text)
    if concat == "payload":
        return _payload(units, DC_UCS2, UCS2, len(_cut_ucs2(units, 134)))
    chunks = [units[i:j] for i, j in _cut_ucs2(units, mode[1])]
    return _assemble(chunks, DC_UCS2, UCS2, concat, ref, mode, False)


def render_binary(data: bytes, data_coding: int, *, concat: str = "udh8", ref: int = 0) -> Rendered:
    """Render 8-bit data as submit_sm parts carrying ``data_coding`` unchanged.

    140 octets single; 134 per part (133 with udh16); ``ref`` as in :func:`render`.
    Raises :class:`TextError` naming the field for a data_coding outside 0-255, an
    unknown concat mode, more than 255 parts or (``payload``) more than 65535 octets.
    """
    mode = _mode(concat)
    if not 0 <= data_coding <= 0xFF:
        raise TextError(f"data_coding: {data_coding} is outside 0-255")
    data = bytes(data)
    if concat == "payload":
        return _payload(data, data_coding, BINARY, measure_binary(data))
    size, per = len(data), mode[2]
    if size <= OCTET_SINGLE:
        chunks = [data]
    else:
        chunks = [data[i : i + per] for i in range(0, size, per)]
    return _assemble(chunks, data_coding, BINARY, concat, ref, mode, False)


def _mode(concat: str) -> tuple[int, int, int, int, int]:
    mode = _MODES.get(concat)
    if mode is None:
        raise TextError(f"concat: {concat!r} is not one of {', '.join(CONCAT_MODES)}")
    return mode


def _utf16(text: str) -> bytes:
    try:
        return text.encode("utf-16-be")
    except UnicodeEncodeError as exc:
        raise TextError(f"text: lone surrogate at index {exc.start} cannot be encoded") from None


def _cut_septets(septets: bytes, per: int) -> list[tuple[int, int]]:
    """(start, end) of each part of an unpacked septet stream; an escape pair stays whole."""
    size = len(septets)
    if size <= GSM_SINGLE:
        return [(0, size)]
    bounds = []
    start = 0
    while start < size:
        end = start + per
        if end >= size:
            end = size
        elif septets[end - 1] == ESC:
            end -= 1
        bounds.append((start, end))
        start = end
    return bounds


def _cut_ucs2(units: bytes, per: int) -> list[tuple[int, int]]:
    """(start, end) octets of each part of UTF-16-BE text; a surrogate pair stays whole."""
    size = len(units)
    if size <= UCS2_SINGLE:
        return [(0, size)]
    bounds = []
    start = 0
    while start < size:
        end = start + per
        if end >= size:
            end = size
        elif 0xD8 <= units[end - 2] <= 0xDB:  # a high surrogate would end the part
            end -= 2
        bounds.append((start, end))
        start = end
    return bounds


def _render_charset(
    septets: bytes, body: bytes, concat: str, ref: int, mode: tuple[int, int, int, int, int]
) -> Rendered:
    """A GSM text in a one-octet-per-character charset, cut where its septets are cut."""
    if concat == "payload":
        return _payload(body, DC_DEFAULT, GSM7, len(_cut_septets(septets, 153)))
    chunks = []
    pos = 0
    for start, end in _cut_septets(septets, mode[0]):
        chars = end - start - septets.count(ESC, start, end)
        chunks.append(body[pos : pos + chars])
        pos += chars
    return _assemble(chunks, DC_DEFAULT, GSM7, concat, ref, mode, False)


def _payload(body: bytes, data_coding: int, encoding: str, segments: int) -> Rendered:
    if len(body) > _PAYLOAD_MAX:  # the PDU could not even be encoded
        raise TextError(
            f"text: {len(body)} octets exceed the {_PAYLOAD_MAX} message_payload can carry"
        )
    return Rendered([WirePart(data_coding, False, b"", None, body, 1, 1)], encoding, segments)


def _assemble(
    chunks: list[bytes],
    data_coding: int,
    encoding: str,
    concat: str,
    ref: int,
    mode: tuple[int, int, int, int, int],
    packed: bool,
) -> Rendered:
    total = len(chunks)
    if total == 1:
        body = pack_septets(chunks[0]) if packed else chunks[0]
        return Rendered([WirePart(data_coding, False, body, None, None, 1, 1)], encoding, 1)
    if total > _MAX_PARTS:
        raise TextError(
            f"text: {total} parts exceed the {_MAX_PARTS} a concatenated message can have"
        )
    parts = []
    ref &= mode[3]
    ref_bits = mode[4]
    for seq, chunk in enumerate(chunks, 1):
        if ref_bits:
            udh = udh_concat(ref, total, seq, ref_bits)
            body = udh + (pack_septets(chunk, len(udh)) if packed else chunk)
            parts.append(WirePart(data_coding, True, body, None, None, seq, total))
        else:
            body = pack_septets(chunk) if packed else chunk
            parts.append(WirePart(data_coding, False, body, (ref, total, seq), None, seq, total))
    return Rendered(parts, encoding, total)
