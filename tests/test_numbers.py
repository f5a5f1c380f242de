"""Address classification: the table of DESIGN.md "Numbers" and SMPP-NOTES "Addresses"."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.numbers import (
    ALPHANUMERIC,
    E164,
    SHORT_CODE,
    Address,
    NumberError,
    address_for_carrier,
    classify_source,
    normalize_destination,
)

SOURCES = [
    # (from, addr, kind, ton, npi)
    ("+4915112345678", "4915112345678", E164, 1, 1),
    ("4915112345678", "4915112345678", E164, 1, 1),
    ("+12025550100", "12025550100", E164, 1, 1),
    ("123", "123", SHORT_CODE, 3, 0),
    ("12345", "12345", SHORT_CODE, 3, 0),
    ("12345678", "12345678", SHORT_CODE, 3, 0),
    ("123456789", "123456789", E164, 1, 1),  # 9 digits: no short code any more
    ("+12345", "12345", E164, 1, 1),  # a + says E.164 even when short
    ("123456789012345", "123456789012345", E164, 1, 1),  # 15 digits: the E.164 maximum
    ("ACME", "ACME", ALPHANUMERIC, 5, 0),
    ("ACME Bank", "ACME Bank", ALPHANUMERIC, 5, 0),
    ("Acme-Alerts", "Acme-Alerts", ALPHANUMERIC, 5, 0),  # 11 characters
    ("Café Ørsted", "Café Ørsted", ALPHANUMERIC, 5, 0),  # GSM has é and Ø
    ("ΔΣΩ", "ΔΣΩ", ALPHANUMERIC, 5, 0),  # Greek capitals of the GSM alphabet
    ("a[b]c", "a[b]c", ALPHANUMERIC, 5, 0),  # extension characters: 7 septets
    ("1800FLOWERS", "1800FLOWERS", ALPHANUMERIC, 5, 0),
]


@pytest.mark.parametrize(("source", "addr", "kind", "ton", "npi"), SOURCES)
def test_sources_are_classified(source: str, addr: str, kind: str, ton: int, npi: int) -> None:
    assert classify_source(source) == Address(addr, kind, ton, npi)


BAD_SOURCES = [
    ("", "from is empty"),
    ("1234567890123456", 'from "1234567890123456" has 16 digits, E.164 allows at most 15'),
    ("+1234567890123456", "has 16 digits"),
    ("ACME-MARKETS", 'from "ACME-MARKETS" is 12 characters, an alphanumeric sender allows 11'),
    ("Cafê", 'from "Cafê" has characters outside the GSM 03.38 alphabet'),  # ê is not GSM
    ("ACME`", "outside the GSM 03.38 alphabet"),  # the backtick is not GSM either
    ("Shop 😀", "outside the GSM 03.38 alphabet"),
    ("{}{}{}[]", "is 16 GSM septets (extension characters count two)"),
    ("+1555abc", 'from "+1555abc" starts with + but has non-digits'),
    ("+", 'from "+" starts with + but has no digits'),
    (" ACME", "leading or trailing whitespace"),
    ("١٢٣٤", "outside the GSM"),  # Arabic-Indic digits are no digits on the wire
]


@pytest.mark.parametrize(("source", "message"), BAD_SOURCES)
def test_bad_sources_are_refused_naming_the_field(source: str, message: str) -> None:
    with pytest.raises(NumberError) as info:
        classify_source(source)
    assert message in str(info.value)


def test_non_string_source_is_refused() -> None:
    with pytest.raises(NumberError, match="from must be a string, got list"):
        classify_source(["ACME"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("dest", "digits"),
    [
        ("+4915112345678", "4915112345678"),
        ("4915112345678", "4915112345678"),
        ("12345", "12345"),
        ("123456789012345", "123456789012345"),
    ],
)
def test_destinations_are_e164_digits(dest: str, digits: str) -> None:
    assert normalize_destination(dest) == digits


@pytest.mark.parametrize(
    ("dest", "message"),
    [
        ("+1555abc", 'to "+1555abc" has non-digits'),
        ("+1 555 0100", "has non-digits"),
        ("", 'to "" is empty'),
        ("+", 'to "+" is empty'),
        ("1234", "has 4 digits, E.164 needs 5 to 15"),
        ("1234567890123456", "has 16 digits, E.164 needs 5 to 15"),
        ("07700900123", "starts with 0: give the country code first"),
        ("00491511234567", "starts with 0"),
        ("²³⁴⁵⁶⁷", "has non-digits"),
    ],
)
def test_bad_destinations_are_refused(dest: str, message: str) -> None:
    with pytest.raises(NumberError) as info:
        normalize_destination(dest)
    assert message in str(info.value)


def test_error_messages_stay_short_for_huge_input() -> None:
    with pytest.raises(NumberError) as info:
        normalize_destination("9" * 100_000)
    assert len(str(info.value)) < 120


def test_carrier_overrides_apply_per_kind() -> None:
    short = classify_source("1234")
    e164 = classify_source("+4915112345678")
    overrides = {"short_code": (0, 1)}
    assert address_for_carrier(short, overrides) == Address("1234", SHORT_CODE, 0, 1)
    assert address_for_carrier(e164, overrides) is e164  # no override for its kind
    assert address_for_carrier(short, {"short_code": (3, 0)}) is short  # same as default
    assert short == Address("1234", SHORT_CODE, 3, 0)  # the cached original is untouched


@pytest.mark.parametrize("pair", [(1,), (1, 256), ("1", 1), 5, (True, 0)])
def test_bad_carrier_overrides_are_refused(pair: object) -> None:
    with pytest.raises(NumberError, match="ton_npi.alphanumeric"):
        address_for_carrier(classify_source("ACME"), {"alphanumeric": pair})  # type: ignore[dict-item]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=20))
def test_any_string_is_classified_or_refused(s: str) -> None:
    try:
        addr = classify_source(s)
    except NumberError:
        return
    assert addr.kind in (E164, SHORT_CODE, ALPHANUMERIC)
    if addr.kind == ALPHANUMERIC:
        assert 0 < len(addr.addr) <= 11
    else:
        assert addr.addr.isascii() and addr.addr.isdigit() and len(addr.addr) <= 15


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="+0123456789a ", max_size=18))
def test_any_destination_is_digits_or_refused(s: str) -> None:
    try:
        digits = normalize_destination(s)
    except NumberError as exc:
        assert str(exc).startswith("to ")
        return
    assert digits.isdigit() and 5 <= len(digits) <= 15 and digits[0] != "0"
    assert s.lstrip("+") == digits and s.count("+") <= 1
