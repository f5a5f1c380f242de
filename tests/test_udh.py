"""User data header building and walking (router/udh.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.gsm import TextError
from router.udh import concat_info, split_udh, udh_concat


def test_concat_headers_are_exact() -> None:
    assert udh_concat(0xAB, 3, 2) == bytes.fromhex("050003AB0302")
    assert udh_concat(0x1234, 3, 2, 16) == bytes.fromhex("0608041234" "0302")


def test_split_a_single_concat_ie() -> None:
    ies, rest = split_udh(bytes.fromhex("050003AB0302") + b"text")
    assert ies == [(0x00, bytes.fromhex("AB0302"))]
    assert rest == b"text"
    assert concat_info(ies) == (0xAB, 3, 2, 8)


def test_port_ie_before_a_16_bit_concat_ie() -> None:
    # UDHL 12: IEI 05 (16-bit ports, 4 octets), then IEI 08 (16-bit reference).
    sm = bytes.fromhex("0C" "0504" "0B840000" "0804" "BEEF" "0201") + b"\x01\x02"
    ies, rest = split_udh(sm)
    assert ies == [(0x05, bytes.fromhex("0B840000")), (0x08, bytes.fromhex("BEEF0201"))]
    assert rest == b"\x01\x02"
    assert concat_info(ies) == (0xBEEF, 2, 1, 16)


def test_several_ies_and_unknown_ones_are_kept() -> None:
    sm = bytes.fromhex("0C" "0402" "0B84" "7001" "AA" "0003" "070201") + b"x"
    ies, rest = split_udh(sm)
    assert [iei for iei, _ in ies] == [0x04, 0x70, 0x00]
    assert concat_info(ies) == (7, 2, 1, 8)
    assert rest == b"x"


def test_empty_udh_and_empty_body() -> None:
    assert split_udh(b"\x00abc") == ([], b"abc")
    assert split_udh(bytes.fromhex("050003010101")) == ([(0, b"\x01\x01\x01")], b"")


def test_repeated_concat_ie_counts_by_its_last_occurrence() -> None:
    ies = [(0x00, b"\x01\x02\x01"), (0x08, b"\x00\x05\x03\x03")]
    assert concat_info(ies) == (5, 3, 3, 16)


@pytest.mark.parametrize(
    "value",
    [
        b"\x01\x00\x00",  # total 0
        b"\x01\x02\x00",  # seq 0
        b"\x01\x02\x03",  # seq > total
        b"\x01\x02",  # IE too short
        b"\x01\x02\x01\x00",  # IE too long for an 8-bit reference
    ],
)
def test_invalid_concat_ies_mean_not_concatenated(value: bytes) -> None:
    assert concat_info([(0x00, value)]) is None


def test_invalid_16_bit_concat_ie_means_not_concatenated() -> None:
    assert concat_info([(0x08, b"\x00\x01\x00\x00")]) is None
    assert concat_info([(0x08, b"\x00\x01\x02")]) is None


def test_no_concat_ie_is_not_concatenated() -> None:
    assert concat_info([]) is None
    assert concat_info([(0x05, b"\x0b\x84\x00\x00")]) is None


@pytest.mark.parametrize(
    ("sm", "match"),
    [
        (b"", "short_message: UDHI set but the message is empty"),
        (bytes.fromhex("0500030102"), "short_message: UDH length 5 runs past the 5-octet message"),
        (bytes.fromhex("03000301") + b"xx", "element 0x00 length 3 runs past the header"),
        (bytes.fromhex("06" "0003010101" "04") + b"x", "element at octet 6 is truncated"),
    ],
)
def test_malformed_udh_raises_text_error(sm: bytes, match: str) -> None:
    with pytest.raises(TextError, match=match):
        split_udh(sm)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=40))
def test_split_udh_either_splits_or_raises_text_error(sm: bytes) -> None:
    try:
        ies, rest = split_udh(sm)
    except TextError:
        return
    header = 1 + sum(2 + len(value) for _, value in ies)
    assert header == 1 + sm[0]
    assert rest == sm[header:]
    info = concat_info(ies)
    assert info is None or 1 <= info[2] <= info[1]
