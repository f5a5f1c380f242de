"""Optional parameters (TLVs), §5.3: typed where the spec types them, raw otherwise.

Decoding is tolerant (§5.3.1 and what carriers really send): an unknown tag is
kept as its raw value bytes and re-encoded byte-exact, a known integer tag of
the wrong size is kept as raw bytes rather than failing, and a TLV that runs
past the PDU end is dropped. Encoding is strict and names the offending tag.
"""

from __future__ import annotations

import struct

from .constants import TlvTag
from .errors import LocalProtocolError

__all__ = ["TLV_TYPES", "CSTRING", "OCTETS", "decode_tlvs", "encode_tlvs", "tlv_name"]

#: Value kinds: 1, 2, 4 = unsigned big-endian integer of that many octets; the others are
#: negative so that no value length ever equals them.
CSTRING = -1
OCTETS = -2

_TAG_LEN = struct.Struct(">HH")

#: §5.3.2.x: tag -> (kind, largest value length we encode). Integer kinds have a fixed size.
TLV_TYPES: dict[int, tuple[int, int]] = {
    TlvTag.DEST_ADDR_SUBUNIT: (1, 1),
    TlvTag.DEST_NETWORK_TYPE: (1, 1),
    TlvTag.DEST_BEARER_TYPE: (1, 1),
    TlvTag.DEST_TELEMATICS_ID: (2, 2),
    TlvTag.SOURCE_ADDR_SUBUNIT: (1, 1),
    TlvTag.SOURCE_NETWORK_TYPE: (1, 1),
    TlvTag.SOURCE_BEARER_TYPE: (1, 1),
    TlvTag.SOURCE_TELEMATICS_ID: (1, 1),
    TlvTag.QOS_TIME_TO_LIVE: (4, 4),
    TlvTag.PAYLOAD_TYPE: (1, 1),
    TlvTag.ADDITIONAL_STATUS_INFO_TEXT: (CSTRING, 256),
    TlvTag.RECEIPTED_MESSAGE_ID: (CSTRING, 65),
    TlvTag.MS_MSG_WAIT_FACILITIES: (1, 1),
    TlvTag.PRIVACY_INDICATOR: (1, 1),
    TlvTag.SOURCE_SUBADDRESS: (OCTETS, 23),
    TlvTag.DEST_SUBADDRESS: (OCTETS, 23),
    TlvTag.USER_MESSAGE_REFERENCE: (2, 2),
    TlvTag.USER_RESPONSE_CODE: (1, 1),
    TlvTag.SOURCE_PORT: (2, 2),
    TlvTag.DESTINATION_PORT: (2, 2),
    TlvTag.SAR_MSG_REF_NUM: (2, 2),
    TlvTag.LANGUAGE_INDICATOR: (1, 1),
    TlvTag.SAR_TOTAL_SEGMENTS: (1, 1),
    TlvTag.SAR_SEGMENT_SEQNUM: (1, 1),
    TlvTag.SC_INTERFACE_VERSION: (1, 1),
    TlvTag.CALLBACK_NUM_PRES_IND: (1, 1),
    TlvTag.CALLBACK_NUM_ATAG: (OCTETS, 65),
    TlvTag.NUMBER_OF_MESSAGES: (1, 1),
    TlvTag.CALLBACK_NUM: (OCTETS, 19),
    TlvTag.DPF_RESULT: (1, 1),
    TlvTag.SET_DPF: (1, 1),
    TlvTag.MS_AVAILABILITY_STATUS: (1, 1),
    #: §5.3.2.31: network type (1 octet) + error code (2 octets), kept as the 3 raw octets.
    TlvTag.NETWORK_ERROR_CODE: (OCTETS, 3),
    TlvTag.MESSAGE_PAYLOAD: (OCTETS, 0xFFFF),
    TlvTag.DELIVERY_FAILURE_REASON: (1, 1),
    TlvTag.MORE_MESSAGES_TO_SEND: (1, 1),
    TlvTag.MESSAGE_STATE: (1, 1),
    #: §5.3.2.44 calls it a 1-octet octet string; its values are an enumeration.
    TlvTag.USSD_SERVICE_OP: (1, 1),
    TlvTag.DISPLAY_TIME: (1, 1),
    TlvTag.SMS_SIGNAL: (2, 2),
    TlvTag.MS_VALIDITY: (1, 1),
    #: §5.3.2.41: presence is the value; length 0.
    TlvTag.ALERT_ON_MESSAGE_DELIVERY: (OCTETS, 0),
    TlvTag.ITS_REPLY_TYPE: (1, 1),
    TlvTag.ITS_SESSION_INFO: (OCTETS, 2),
}

_KIND = {tag: kind for tag, (kind, _) in TLV_TYPES.items()}
_LIMIT = {1: 1 << 8, 2: 1 << 16, 4: 1 << 32}
#: C-octet-string tags -> their maximum length including the NUL.
_CSTRING_MAX = {tag: max_len for tag, (kind, max_len) in TLV_TYPES.items() if kind == CSTRING}
_TAG_NAMES = {t.value: t.name.lower() for t in TlvTag}


def tlv_name(tag: int) -> str:
    """The spec's name of a tag (``receipted_message_id``), or ``tlv 0x1401`` for unknown ones."""
    name = _TAG_NAMES.get(tag)
    return name if name is not None else "tlv 0x%04X" % tag


def decode_tlvs(data: bytes, pos: int, end: int) -> dict[int, object]:
    """Optional parameters in ``data[pos:end]``, in wire order, never raising.

    Integer tags of their spec size become ``int``; C-octet-string tags ``str``
    (up to the first NUL, latin-1); everything else (octet strings, unknown
    tags, wrongly-sized integers) stays ``bytes``. A TLV whose length runs past
    ``end``, and a stray tail shorter than a TLV header, are dropped. When a tag
    repeats, the first occurrence wins.
    """
    tlvs: dict[int, object] = {}
    kind_of = _KIND.get
    unpack = _TAG_LEN.unpack_from
    while pos + 4 <= end:
        tag, length = unpack(data, pos)
        start = pos + 4
        pos = start + length
        if pos > end:
            break
        if tag in tlvs:
            continue
        kind = kind_of(tag)
        if kind == length:
            tlvs[tag] = int.from_bytes(data[start:pos], "big")
        elif kind == CSTRING:
            nul = data.find(0, start, pos)
            tlvs[tag] = data[start : pos if nul < 0 else nul].decode("latin-1")
        else:
            tlvs[tag] = data[start:pos]
    return tlvs


def encode_tlvs(tlvs: dict[int, object]) -> bytes:
    """TLV octets for ``tlvs`` in dict order.

    ``bytes`` values are written as they are (so unknown tags round-trip
    byte-exact, and raw values of known tags are allowed); ``int`` values need a
    known integer tag and must fit its size; ``str`` values need a known
    C-octet-string tag and fit its maximum including the NUL. Raises
    LocalProtocolError naming the tag otherwise.
    """
    parts = []
    pack = _TAG_LEN.pack
    kind_of = _KIND.get
    for tag, value in tlvs.items():
        # Common cases inline; anything else (or anything wrong) goes through _tlv_value.
        vtype = type(value)
        if vtype is bytes and len(value) <= 0xFFFF:  # type: ignore[arg-type]
            raw = value
        elif vtype is int and (kind := kind_of(tag, 0)) > 0 and 0 <= value < _LIMIT[kind]:  # type: ignore[operator]
            raw = value.to_bytes(kind, "big")  # type: ignore[union-attr]
        elif vtype is str and "\0" not in value and len(value) < _CSTRING_MAX.get(tag, 0):  # type: ignore[operator]
            try:
                raw = value.encode("latin-1") + b"\0"  # type: ignore[union-attr]
            except UnicodeEncodeError:
                raw = _tlv_value(tag, value)  # raises LocalProtocolError naming the tag
        else:
            raw = _tlv_value(tag, value)
        try:
            parts.append(pack(tag, len(raw)))  # type: ignore[arg-type]
        except struct.error:
            raise LocalProtocolError(
                "tlvs: tag %r is not an integer in 0..0xFFFF" % (tag,), field="tlvs"
            ) from None
        parts.append(raw)
    return b"".join(parts)  # type: ignore[arg-type]


def _tlv_value(tag: int, value: object) -> bytes:
    """The value octets of one TLV, checked; raises LocalProtocolError naming the tag."""
    if not isinstance(tag, int) or not 0 <= tag <= 0xFFFF:
        raise LocalProtocolError("tlvs: tag %r is not an integer in 0..0xFFFF" % (tag,), field="tlvs")
    name = tlv_name(tag)
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        if len(raw) > 0xFFFF:
            raise LocalProtocolError("%s: %d octets do not fit a TLV" % (name, len(raw)), field=name)
        return raw
    kind = _KIND.get(tag)
    if isinstance(value, int) and type(value) is not bool:
        if kind is None or kind <= 0:
            raise LocalProtocolError("%s: an int value needs an integer tag; pass bytes" % name, field=name)
        if not 0 <= value < 1 << (8 * kind):
            raise LocalProtocolError(
                "%s: %r does not fit %d octet(s)" % (name, value, kind), field=name
            )
        return value.to_bytes(kind, "big")
    if isinstance(value, str):
        if kind != CSTRING:
            raise LocalProtocolError("%s: a str value needs a C-octet-string tag; pass bytes" % name, field=name)
        max_len = TLV_TYPES[tag][1]
        try:
            raw = value.encode("latin-1")
        except UnicodeEncodeError:
            raise LocalProtocolError("%s: characters outside latin-1" % name, field=name) from None
        if b"\0" in raw or len(raw) + 1 > max_len:
            raise LocalProtocolError(
                "%s: must be at most %d octets with no NUL" % (name, max_len - 1), field=name
            )
        return raw + b"\0"
    raise LocalProtocolError("%s: unsupported value %r" % (name, value), field=name)
