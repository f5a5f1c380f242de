"""GSM 03.38 tables, septet encoding and 7-bit packing (router/gsm.py)."""

from __future__ import annotations

import codecs

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec: the oracle for the table)
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.gsm import (
    GSM_BASIC,
    GSM_EXTENSION,
    TextError,
    decode_septets,
    encode_septets,
    fill_bits,
    is_gsm,
    pack_septets,
    unpack_septets,
)

ORACLE = codecs.lookup("gsm03.38")


def naive_pack(septets: bytes, udh_len: int = 0) -> bytes:
    """Reference packer: one septet at a time, LSB first, after the fill bits."""
    acc, nbits = 0, fill_bits(udh_len)
    for septet in septets:
        acc |= septet << nbits
        nbits += 7
    return acc.to_bytes((nbits + 7) // 8, "little")


# -- the character table -----------------------------------------------------------------


def oracle_characters() -> list[tuple[str, bytes]]:
    """Every character the oracle decodes, with the septets it encodes to (ESC excluded)."""
    chars = []
    for septet in range(128):
        if septet != 0x1B:
            chars.append((ORACLE.decode(bytes([septet]))[0], bytes([septet])))
    for code in range(128):
        try:
            char = ORACLE.decode(bytes([0x1B, code]))[0]
        except UnicodeDecodeError:
            continue
        chars.append((char, bytes([0x1B, code])))
    return chars


def test_table_matches_the_gsm0338_codec_both_ways() -> None:
    chars = oracle_characters()
    assert len(chars) == 127 + 10  # 128 minus the escape, plus the extension table
    for char, septets in chars:
        assert encode_septets(char) == septets, char
        assert ORACLE.encode(char)[0] == septets, char
        assert decode_septets(septets) == char, septets.hex()
        assert is_gsm(char)


def test_extension_characters_are_escape_pairs() -> None:
    assert set(GSM_EXTENSION.values()) == set("€[]{}\\~^|\f")
    assert encode_septets("€") == b"\x1b\x65"
    assert encode_septets("{}") == b"\x1b\x28\x1b\x29"


def test_characters_smpplib_gets_wrong() -> None:
    # § is septet 0x5F and the backtick is not in the alphabet at all.
    assert encode_septets("§") == b"\x5f"
    assert not is_gsm("`")
    with pytest.raises(TextError, match=r"text: '`' at index 2"):
        encode_septets("ab`c")


def test_ascii_specials_map_to_their_septets() -> None:
    assert encode_septets("@$_") == b"\x00\x02\x11"
    assert encode_septets("Hello") == b"Hello"


@pytest.mark.parametrize("char", ["\x1b", "\x00", "\t", "П", "\u00e7", "\uffff", "😀"])
def test_characters_outside_the_alphabet_are_refused(char: str) -> None:
    assert not is_gsm("a" + char)
    with pytest.raises(TextError, match="text: .* at index 1 is not in the GSM 03.38 alphabet"):
        encode_septets("a" + char)


def test_basic_table_has_128_entries_and_escape_placeholder() -> None:
    assert len(GSM_BASIC) == 128
    assert GSM_BASIC[0x00] == "@" and GSM_BASIC[0x1B] == "\uffff"


# -- tolerant decoding -------------------------------------------------------------------


def test_octets_above_0x7f_decode_as_question_mark() -> None:
    assert decode_septets(b"a\x80b\xff") == "a?b?"


def test_escape_followed_by_an_unknown_code_shows_the_default_character() -> None:
    assert decode_septets(b"\x1bA") == "A"


def test_escape_escape_and_dangling_escape_show_a_space() -> None:
    assert decode_septets(b"\x1b\x1bA") == " A"
    assert decode_septets(b"ab\x1b") == "ab "


def test_at_sign_is_septet_zero_not_a_terminator() -> None:
    assert decode_septets(b"a\x00b") == "a@b"


# -- packing -----------------------------------------------------------------------------


def test_known_packed_vectors() -> None:
    # GSM 03.38 examples: "hellohello" and the classic "How are you?".
    assert pack_septets(b"hellohello") == bytes.fromhex("E8329BFD4697D9EC37")
    assert pack_septets(encode_septets("How are you?")) == bytes.fromhex("C8F71D14969741F977FD07")


def test_seven_septets_get_a_cr_pad_and_the_reader_strips_it() -> None:
    packed = pack_septets(b"1234567")
    # Without the pad the last 7 bits would be zero, read as '@'.
    assert packed == bytes.fromhex("31D98C56B3DD1A")
    assert unpack_septets(packed) == b"1234567"


def test_eight_septets_need_no_pad() -> None:
    packed = pack_septets(b"12345678")
    assert len(packed) == 7
    assert unpack_septets(packed) == b"12345678"


def test_text_ending_in_cr_on_an_octet_boundary_gets_a_second_cr() -> None:
    # 8 septets ending in CR end on an octet boundary: the reader would strip the real CR,
    # so a second one is added (GSM 03.38 §6.1.2.3.1), which leaves one spare bit.
    packed = pack_septets(b"1234567\r")
    assert packed == naive_pack(b"1234567\r\r")
    assert unpack_septets(packed) == b"1234567\r\r"
    # ... unless the user data is full: then the reader drops the CR.
    full = pack_septets(b"a" * 159 + b"\r")
    assert len(full) == 140
    assert unpack_septets(full) == b"a" * 159


def test_fill_bits_after_udh() -> None:
    assert fill_bits(6) == 1  # 48 bits -> next septet boundary at 49
    assert fill_bits(7) == 0  # 56 bits are 8 septets
    assert fill_bits(0) == 0
    udh8 = bytes.fromhex("050003010201")
    # 'A' sits in bits 1-7 of the octet after the UDH, bit 0 is the fill bit.
    assert pack_septets(b"A", 6) == bytes([0x82])
    assert pack_septets(b"AB", 6) == bytes([0x82, 0x42])
    assert unpack_septets(bytes([0x82, 0x42]), len(udh8)) == b"AB"
    # A 16-bit reference UDH ends on a septet boundary: no fill.
    assert pack_septets(b"AB", 7) == bytes([0x41, 0x21])


def test_cr_pad_counts_the_header_septets() -> None:
    # udh8 takes 7 septets: 8 text septets make 15, so the last octet has 7 spare bits.
    packed = pack_septets(b"ABCDEFGH", 6)
    assert packed == naive_pack(b"ABCDEFGH\r", 6)
    assert unpack_septets(packed, 6) == b"ABCDEFGH"
    assert pack_septets(b"A", 6) == naive_pack(b"A", 6)  # 8 septets in all: no pad


def test_full_parts_fill_140_octets_exactly() -> None:
    assert len(pack_septets(b"x" * 160)) == 140
    assert 6 + len(pack_septets(b"x" * 153, 6)) == 140
    assert 7 + len(pack_septets(b"x" * 152, 7)) == 140


def test_unpack_of_too_little_data_is_empty() -> None:
    assert unpack_septets(b"") == b""
    assert unpack_septets(b"\x01", 6) == b"\x00"  # 7 bits after the fill bit
    assert pack_septets(b"") == b""


septets = st.binary(max_size=400).map(lambda raw: bytes(b & 0x7F for b in raw))


@settings(max_examples=150, deadline=None)
@given(septets, st.sampled_from([0, 6, 7, 12]))
def test_pack_matches_the_naive_packer_and_unpacks(data: bytes, udh_len: int) -> None:
    packed = pack_septets(data, udh_len, None)
    header = -(-udh_len * 8 // 7)
    pad = (header + len(data)) % 8 == 7
    doubled_cr = (header + len(data)) % 8 == 0 and data.endswith(b"\r")
    expected = data + b"\r" if pad or doubled_cr else data
    assert packed == naive_pack(expected, udh_len)
    # The reader drops one final CR when the septets end on an octet boundary: the pad, or
    # the second CR added after a real one.
    on_boundary = (header + len(expected)) % 8 == 0
    read_back = expected[:-1] if on_boundary and expected.endswith(b"\r") else expected
    assert unpack_septets(packed, udh_len) == read_back
    if not data.endswith(b"\r"):
        assert read_back == data


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200), st.sampled_from([0, 6, 7]))
def test_unpack_never_raises_on_garbage(data: bytes, udh_len: int) -> None:
    unpacked = unpack_septets(data, udh_len)
    assert all(s < 0x80 for s in unpacked)
    assert len(unpacked) <= (len(data) * 8) // 7
