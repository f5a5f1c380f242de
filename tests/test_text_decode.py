"""Reading inbound text and short messages (router/textdecode.py, re-exported by router.text)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.text import TextError, decode_short_message, decode_text, render

# -- decode_text by data_coding ----------------------------------------------------------


def test_dc0_follows_the_carrier_charset() -> None:
    assert decode_text(b"\x00a\x1b\x65", 0) == "@a€"
    assert decode_text(b"\x00a\x1b\x65", 0, dc0_charset="gsm7") == "@a€"
    packed = bytes.fromhex("E8329BFD4697D9EC37")
    assert decode_text(packed, 0, dc0_charset="gsm7_packed") == "hellohello"
    assert decode_text(b"caf\xe9", 0, dc0_charset="latin1") == "café"
    assert decode_text(b"caf\xe9", 0, dc0_charset="ascii") == "caf?"


def test_gsm_octets_above_0x7f_read_as_question_marks() -> None:
    assert decode_text(b"ok\x80\xff", 0) == "ok??"


def test_packed_reader_strips_the_cr_pad() -> None:
    assert decode_text(bytes.fromhex("31D98C56B3DD1A"), 0, dc0_charset="gsm7_packed") == "1234567"


def test_ia5_and_latin1() -> None:
    assert decode_text(b"id:1", 1) == "id:1"
    assert decode_text(b"a\xe9", 1) == "a?"
    assert decode_text(b"caf\xe9", 3) == "café"


def test_ucs2_big_endian_with_surrogates() -> None:
    assert decode_text("Привет 😀".encode("utf-16-be"), 8) == "Привет 😀"


@pytest.mark.parametrize(
    "data",
    [b"\xfe\xff" + "Пр😀".encode("utf-16-be"), b"\xff\xfe" + "Пр😀".encode("utf-16-le")],
    ids=["bom-big-endian", "bom-little-endian"],
)
def test_ucs2_bom_is_honoured_and_stripped(data: bytes) -> None:
    assert decode_text(data, 8) == "Пр😀"


def test_ucs2_damage_reads_as_replacement_characters() -> None:
    assert decode_text(b"\x04\x1f\x04", 8) == "П\ufffd"  # odd length
    assert decode_text(b"\xd8\x00\x00a", 8) == "\ufffda"  # lone high surrogate


def test_lenient_reads_an_ascii_receipt_labelled_ucs2() -> None:
    receipt = b"id:12345 sub:001 dlvrd:001 stat:DELIVRD err:000"
    assert len(receipt) % 2 == 1
    assert decode_text(receipt, 8, lenient=True) == receipt.decode()
    assert decode_text(receipt + b" ", 8, lenient=True) == receipt.decode() + " "  # even length
    assert decode_text(receipt, 8) != receipt.decode()  # strict reading keeps UCS-2


def test_lenient_leaves_real_ucs2_alone() -> None:
    for text in ("hello", "Привет", "id:1\r\n"):
        assert decode_text(text.encode("utf-16-be"), 8, lenient=True) == text
    assert decode_text(b"", 8, lenient=True) == ""


@pytest.mark.parametrize(
    ("data_coding", "expected"),
    [
        (0x10, "gsm"),  # general group, default alphabet, class 0
        (0x11, "gsm"),
        (0x18, "ucs2"),  # flash UCS-2, as carriers send it
        (0x48, "ucs2"),  # automatic deletion group, UCS-2
        (0xC0, "gsm"),  # message waiting, discard
        (0xD1, "gsm"),  # message waiting, store
        (0xE0, "ucs2"),  # message waiting, UCS-2
        (0xF0, "gsm"),  # data coding / message class, default alphabet
        (0xF3, "gsm"),
    ],
)
def test_gsm_data_coding_schemes(data_coding: int, expected: str) -> None:
    if expected == "gsm":
        assert decode_text(b"\x00hi", data_coding) == "@hi"
    else:
        assert decode_text("Пр".encode("utf-16-be"), data_coding) == "Пр"


@pytest.mark.parametrize(
    "data_coding", [0x02, 0x04, 0x05, 0x09, 0x14, 0x15, 0x24, 0x30, 0x90, 0xF4, 0xF6]
)
def test_binary_and_unknown_codings_raise(data_coding: int) -> None:
    with pytest.raises(TextError, match=f"data_coding: 0x{data_coding:02X} is not a text coding"):
        decode_text(b"\x01\x02", data_coding)


def test_unknown_charset_names_the_field() -> None:
    with pytest.raises(TextError, match="dc0_charset: 'ebcdic'"):
        decode_text(b"x", 0, dc0_charset="ebcdic")
    with pytest.raises(TextError, match="dc0_charset: 'ebcdic'"):
        decode_short_message(b"x", 4, False, dc0_charset="ebcdic")


# -- decode_short_message ----------------------------------------------------------------


def test_udhi_clear_means_header_looking_bytes_are_text() -> None:
    sm = bytes.fromhex("050003010201") + b"hi"
    part = decode_short_message(sm, 0, False)
    assert part.concat is None and part.ies == []
    assert part.data == sm
    assert part.text == "é@¥£$£hi"  # septets 05 00 03 01 02 01 read as GSM text


def test_udhi_set_splits_concat_and_text() -> None:
    part = decode_short_message(bytes.fromhex("050003AB0302") + b"\x00hi", 0, True)
    assert part.concat == (0xAB, 3, 2, 8)
    assert part.text == "@hi" and part.data == b"\x00hi"
    assert part.ies == [(0x00, bytes.fromhex("AB0302"))]


def test_port_ie_first_then_16_bit_concat() -> None:
    sm = bytes.fromhex("0C" "0504" "0B840000" "0804" "BEEF" "0201") + "Пр".encode("utf-16-be")
    part = decode_short_message(sm, 8, True)
    assert part.concat == (0xBEEF, 2, 1, 16)
    assert part.text == "Пр"
    assert part.ies[0] == (0x05, bytes.fromhex("0B840000"))


def test_invalid_concat_ie_is_not_concatenated_but_still_text() -> None:
    part = decode_short_message(bytes.fromhex("050003AB0203") + b"hi", 0, True)
    assert part.concat is None and part.text == "hi"


def test_packed_text_after_a_udh_starts_at_the_septet_boundary() -> None:
    # One fill bit after the 6-octet header: 'A', 'B' in octets 0x82 0x42.
    sm = bytes.fromhex("050003010303" "8242")
    part = decode_short_message(sm, 0, True, dc0_charset="gsm7_packed")
    assert part.text == "AB" and part.concat == (1, 3, 3, 8)


def test_binary_payload_keeps_its_bytes() -> None:
    part = decode_short_message(bytes.fromhex("050003070201") + b"\xde\xad", 4, True)
    assert part.text is None and part.data == b"\xde\xad" and part.concat == (7, 2, 1, 8)


def test_malformed_udh_raises_text_error() -> None:
    with pytest.raises(TextError, match="UDH length 5 runs past"):
        decode_short_message(bytes.fromhex("05000301"), 0, True)


def test_lenient_applies_to_short_messages() -> None:
    part = decode_short_message(b"id:1 stat:DELIVRD", 8, False, lenient=True)
    assert part.text == "id:1 stat:DELIVRD"


@settings(max_examples=150, deadline=None)
@given(
    st.binary(max_size=160),
    st.integers(0, 255),
    st.booleans(),
    st.sampled_from(["gsm7", "gsm7_packed", "latin1", "ascii"]),
    st.booleans(),
)
def test_any_bytes_decode_or_raise_text_error(
    sm: bytes, data_coding: int, udhi: bool, charset: str, lenient: bool
) -> None:
    try:
        part = decode_short_message(sm, data_coding, udhi, dc0_charset=charset, lenient=lenient)
    except TextError:
        assert udhi  # only a malformed header may fail
        return
    assert part.text is None or isinstance(part.text, str)
    assert sm.endswith(part.data)


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="ab€П\r", max_size=400), st.sampled_from(["udh8", "udh16"]))
def test_rendered_parts_read_back_part_by_part(text: str, concat: str) -> None:
    encoding = "ucs2" if "П" in text else "gsm7"
    parts = render(text, encoding, concat=concat, ref=0x42)
    read = [decode_short_message(p.short_message, p.data_coding, p.esm_class_udhi) for p in parts]
    assert "".join(r.text or "" for r in read) == text
    if len(parts) > 1:
        assert {r.concat[0] for r in read if r.concat} == {0x42}
        assert [r.concat[2] for r in read if r.concat] == list(range(1, len(parts) + 1))
