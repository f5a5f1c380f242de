"""The text layer against hostile input: random unicode, part edges, packed septets, UDH soup.

Invariants: ``measure``/``render``/``decode_*`` raise nothing but ``TextError``;
``measure`` equals the number of parts ``render`` makes with an 8-bit UDH
whenever the carrier's charset can carry the text; rendered parts decode back
to the text, each part on its own (no escape or surrogate pair cut in two).

``SMPP_FUZZ_EXAMPLES=5000 pytest -m slow tests/test_adversarial_text.py`` runs
the long variant by hand.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router.gsm import (
    CR,
    ESC,
    GSM_BASIC,
    GSM_EXTENSION,
    decode_septets,
    encode_septets,
    fill_bits,
    pack_septets,
    unpack_septets,
)
from router.text import (
    CONCAT_MODES,
    DC0_CHARSETS,
    Rendered,
    TextError,
    decode_short_message,
    decode_text,
    measure,
    render,
    render_binary,
)
from router.udh import concat_info, split_udh

DEFAULT = settings(
    max_examples=int(os.environ.get("SMPP_FUZZ_DEFAULT_EXAMPLES", "100")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
SLOW = settings(
    max_examples=int(os.environ.get("SMPP_FUZZ_EXAMPLES", "3000")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)

BASIC = [c for c in GSM_BASIC if c != "\uffff"]
EXTENSION = list(GSM_EXTENSION.values())
ODD = ["😀", "é", "中", "\u0394", "\x00", "\x1b", "\ufeff", "\r", "\ud800", "\udfff", "€"]
texts = st.one_of(
    st.text(max_size=500),
    st.text(st.sampled_from(BASIC + EXTENSION), max_size=700),
    st.text(st.sampled_from(BASIC + EXTENSION + ODD), max_size=400),
    st.text(st.sampled_from(["a", "😀", "中"]), max_size=300),
)


def part_texts(parts: Rendered, dc0: str) -> list[str]:
    """Each part decoded on its own, as a handset or our inbound path would."""
    out = []
    for part in parts:
        if part.message_payload is not None:
            out.append(decode_text(part.message_payload, part.data_coding, dc0_charset=dc0))
            continue
        inbound = decode_short_message(part.short_message, part.data_coding, part.esm_class_udhi, dc0_charset=dc0)
        assert inbound.text is not None
        if part.total > 1 and part.sar is None:
            assert inbound.concat is not None and inbound.concat[1:3] == (part.total, part.part)
        out.append(inbound.text)
    return out


def strip_cr_doubling(text: str) -> str:
    # GSM 03.38 §6.1.2.3.1: a packed part ending in CR on an octet boundary gets a
    # second CR, which the spec defines to mean the same as one.
    return text[:-1] if text.endswith("\r\r") else text


BOM_LIKE = ("\ufeff", "\ufffe")


def _ucs2_part_starts(text: str, parts: Rendered) -> list[str]:
    units = text.encode("utf-16-be")
    starts, pos = [], 0
    for part in parts:
        body = part.message_payload if part.message_payload is not None else part.short_message
        if part.esm_class_udhi:
            body = split_udh(body)[1]
        starts.append(units[pos : pos + 2].decode("utf-16-be", "replace"))
        pos += len(body)
    return starts


def check_text(text: str, dc0: str, concat: str, ref: int) -> None:
    try:
        encoding, count = measure(text)
    except TextError:
        assert any(0xD800 <= ord(c) <= 0xDFFF for c in text)
        return
    try:
        parts = render(text, encoding, dc0_charset=dc0, concat=concat, ref=ref)
    except TextError as exc:
        assert count > 255 and "255" in str(exc), exc
        return
    assert count <= 255 and 1 <= parts.segments <= 255
    if concat == "udh8" and parts.encoding == encoding:
        assert len(parts) == count
    if concat != "udh16" and parts.encoding == encoding:
        assert parts.segments == count
    pieces = part_texts(parts, dc0)
    if parts.encoding == "ucs2" and any(p[:1] in BOM_LIKE for p in _ucs2_part_starts(text, parts)):
        return  # a part that starts with U+FEFF / U+FFFE reads as a BOM on receipt (left alone)
    if dc0 == "gsm7_packed":
        pieces = [strip_cr_doubling(p) if p.endswith("\r\r") else p for p in pieces]
        assert "".join(pieces).replace("\r\r", "\r") == text.replace("\r\r", "\r")
    else:
        assert "".join(pieces) == text
    for part in parts:
        if part.message_payload is None:
            assert len(part.short_message) <= (160 if dc0 == "gsm7" and part.data_coding == 0 else 140)


@DEFAULT
@given(texts, st.sampled_from(DC0_CHARSETS), st.sampled_from(CONCAT_MODES), st.integers(-5, 2**20))
def test_random_unicode_renders_and_reads_back_or_raises_text_error(text: str, dc0: str, concat: str, ref: int) -> None:
    check_text(text, dc0, concat, ref)


@pytest.mark.slow
@SLOW
@given(texts, st.sampled_from(DC0_CHARSETS), st.sampled_from(CONCAT_MODES), st.integers(-5, 2**20))
def test_random_unicode_renders_and_reads_back_long_run(text: str, dc0: str, concat: str, ref: int) -> None:
    check_text(text, dc0, concat, ref)


@DEFAULT
@given(st.binary(max_size=400), st.integers(-3, 300), st.booleans(), st.sampled_from(DC0_CHARSETS + ("utf8",)),
       st.booleans())
def test_random_octets_decode_or_raise_text_error(data: bytes, dc: int, udhi: bool, dc0: str, lenient: bool) -> None:
    try:
        inbound = decode_short_message(data, dc, udhi, dc0_charset=dc0, lenient=lenient)
    except TextError:
        return
    assert isinstance(inbound.data, bytes) and (inbound.text is None or isinstance(inbound.text, str))
    if inbound.concat is not None:
        ref, total, seq, bits = inbound.concat
        assert 1 <= seq <= total <= 255 and bits in (8, 16) and 0 <= ref < 1 << bits


# -------------------------------------------------------------- part edges


@pytest.mark.parametrize("concat", ["udh8", "udh16", "sar"])
@pytest.mark.parametrize("dc0", DC0_CHARSETS)
def test_an_escape_at_every_part_edge_stays_with_its_character(concat: str, dc0: str) -> None:
    for pad in range(145, 162):
        for ext in ("€", "[", "\f"):
            text = "a" * pad + ext + "b" * 160
            parts = render(text, "gsm7", dc0_charset=dc0, concat=concat)
            pieces = part_texts(parts, dc0)
            assert "".join(pieces).replace("\r\r", "\r") == text
            assert all(" " not in p for p in pieces), "a dangling escape showed as a space"
            if concat != "udh16" and parts.encoding == "gsm7":  # € has no latin1/ascii octet: UCS-2
                assert len(parts) == measure(text)[1]


@pytest.mark.parametrize("concat", ["udh8", "udh16", "sar", "payload"])
def test_a_surrogate_pair_at_every_part_edge_stays_whole(concat: str) -> None:
    for pad in range(60, 72):
        text = "中" * pad + "😀" + "文" * 80
        parts = render(text, "ucs2", concat=concat)
        pieces = part_texts(parts, "gsm7")
        assert "".join(pieces) == text
        assert all("\ufffd" not in p for p in pieces)
        for part in parts:
            units = part.message_payload if part.message_payload is not None else split_udh(part.short_message)[1] if part.esm_class_udhi else part.short_message
            assert not 0xD8 <= units[-2] <= 0xDB, "a part ends on a high surrogate"
        if concat != "udh16":
            assert parts.segments == measure(text)[1]


# ----------------------------------------------------------- packed septets


@pytest.mark.parametrize("udh_len", [0, 6, 7, 8, 12])
@pytest.mark.parametrize("count", [1, 6, 7, 8, 9, 15, 16, 23, 24, 152, 153, 159, 160])
@pytest.mark.parametrize("last", ["a", "@", "\r", "€"])
def test_packed_septets_round_trip_at_every_octet_boundary(udh_len: int, count: int, last: str) -> None:
    text = ("x" * count)[: count - len(encode_septets(last))] + last
    septets = encode_septets(text)
    packed = pack_septets(septets, udh_len, None)
    assert (udh_len * 8 + fill_bits(udh_len) + 7 * len(septets) + 7) // 8 - udh_len <= len(packed)
    back = decode_septets(unpack_septets(packed, udh_len))
    assert back == text or (text.endswith("\r") and back == text + "\r")


@DEFAULT
@given(st.binary(max_size=200).map(lambda b: bytes(x & 0x7F for x in b)), st.integers(0, 20))
def test_packing_any_septets_unpacks_to_them(septets: bytes, udh_len: int) -> None:
    back = unpack_septets(pack_septets(septets, udh_len, None), udh_len)
    assert back == septets or (septets.endswith(b"\r") and back == septets + b"\r")


# ------------------------------------------------------------- inbound UDH


ie = st.one_of(
    st.tuples(st.just(0x00), st.binary(min_size=0, max_size=5)),
    st.tuples(st.just(0x08), st.binary(min_size=0, max_size=5)),
    st.tuples(st.sampled_from([0x04, 0x05, 0x24, 0x70, 0xFF]), st.binary(max_size=6)),
)


@DEFAULT
@given(st.lists(ie, max_size=6), st.binary(max_size=40), st.integers(-3, 3))
def test_inbound_udh_with_random_information_elements(ies: list[tuple[int, bytes]], body: bytes, skew: int) -> None:
    header = b"".join(bytes([iei, len(value)]) + value for iei, value in ies)
    udhl = max(0, min(255, len(header) + skew))
    sm = bytes([udhl]) + header + body
    try:
        got, rest = split_udh(sm)
    except TextError as exc:
        assert "short_message" in str(exc)
        return
    if skew == 0:
        assert got == ies and rest == body
    info = concat_info(got)
    if info is not None:
        assert 1 <= info[2] <= info[1]
    for dc in (0x00, 0x08, 0x04, 0xF0):
        decode_short_message(sm, dc, True, dc0_charset="gsm7_packed")


# ------------------------------------------------------------------ limits


@pytest.mark.parametrize(("text", "encoding"), [("a" * 0x10000, "gsm7"), ("中" * 0x8000, "ucs2")])
def test_message_payload_refuses_what_its_tlv_cannot_carry(text: str, encoding: str) -> None:
    # SMPP 3.4 §5.3.2.32: the TLV length is 16 bits. Rendering more used to succeed
    # and the submit_sm then failed to encode, far from the cause.
    with pytest.raises(TextError, match="65535"):
        render(text, encoding, concat="payload")
    fits = render(text[: len(text) - 1], encoding, concat="payload")
    assert len(fits[0].message_payload) <= 0xFFFF


def test_binary_payload_refuses_what_its_tlv_cannot_carry() -> None:
    with pytest.raises(TextError, match="65535"):
        render_binary(bytes(0x10000), 4, concat="payload")
    assert len(render_binary(bytes(0xFFFF), 4, concat="payload")[0].message_payload) == 0xFFFF


def test_escape_and_pad_septets_never_appear_alone_in_rendered_septets() -> None:
    text = "€" * 100 + "\r"
    for part in render(text, "gsm7", concat="udh8"):
        body = split_udh(part.short_message)[1]
        assert body[-1:] != bytes([ESC])
        assert body.count(ESC) == decode_septets(body).count("€")
    assert CR == 0x0D
