"""Carrier message id normalisation and response ↔ receipt matching."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from router.msgid import (
    MAX_ID_LEN,
    IdMatcher,
    MessageIdError,
    matching_rules,
    normalize,
)

UUID = "550e8400-e29b-41d4-a716-446655440000"
HASH64 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def correlate(matcher: IdMatcher, resp_ids: list[str], receipt_id: str) -> str | None:
    """What the correlator does: index by key, look up in order, first hit wins."""
    index: dict[str, str] = {}
    for resp_id in resp_ids:
        for key in matcher.keys_for_response(resp_id):
            index.setdefault(key, resp_id)
    for key in matcher.keys_for_receipt(receipt_id):
        if key in index:
            return index[key]
    return None


@pytest.mark.parametrize(
    ("id", "rule", "expected"),
    [
        ("12345", "same", "12345"),
        ("0012345", "same", "12345"),
        ("000", "same", "0"),
        ("00FFab", "same", "ffab"),
        ("  abc ", "same", "abc"),
        (UUID.upper(), "same", UUID),
        ("00" + UUID[2:], "same", "00" + UUID[2:]),  # opaque: only case-folded
        ("0" * 40, "same", "0" * 40),  # 32+ characters: opaque
        ("Msg_0042", "same", "msg_0042"),
        ("255", "dec", "255"),
        ("000255", "dec", "255"),
        ("FF", "hex", "255"),
        ("00ff", "hex", "255"),
        ("255", "hex", "597"),  # all digits read as hex
        ("7fffffffffffffffffffffffffffff", "hex", str(int("7f" + "f" * 28, 16))),
    ],
)
def test_normalize(id: str, rule: str, expected: str) -> None:
    assert normalize(id, rule) == expected


@pytest.mark.parametrize(
    ("id", "rule", "fragment"),
    [
        ("", "same", "empty"),
        ("   ", "same", "empty"),
        ("1" * (MAX_ID_LEN + 1), "same", "more than 65"),
        ("FF", "dec", "not a dec number"),
        (UUID, "hex", "not a hex number"),
        ("0x1F", "hex", "not a hex number"),  # int() would take it: we must not
        ("1_000", "dec", "not a dec number"),  # ... nor this
        ("١٢٣", "dec", "not a dec number"),  # Arabic-Indic digits are not an SMPP id
    ],
)
def test_normalize_refuses(id: str, rule: str, fragment: str) -> None:
    with pytest.raises(MessageIdError, match=fragment) as info:
        normalize(id, rule)
    assert "message_id" in str(info.value)


def test_normalize_refuses_unknown_rule() -> None:
    with pytest.raises(ValueError, match="rule"):
        normalize("1", "auto")


# (response id, receipt id, the rules under which they are one message)
PAIRS = [
    ("12345", "12345", ("same",)),
    ("0012345", "12345", ("same",)),
    ("12345", "0012345", ("same",)),
    ("ABCDEF12", "abcdef12", ("same",)),
    ("00abcdef12", "ABCDEF12", ("same",)),
    ("255", "FF", ("hex",)),
    ("255", "ff", ("hex",)),
    ("255", "000000FF", ("hex",)),
    ("FF", "255", ("dec",)),
    ("0000ff", "255", ("dec",)),
    ("16", "10", ("hex",)),  # all digits on both sides: hex reading only
    ("10", "16", ("dec",)),
    ("1234567890", "499602D2", ("hex",)),
    ("499602D2", "1234567890", ("dec",)),
    (UUID, UUID.upper(), ("same",)),
    (HASH64, HASH64.upper(), ("same",)),
    ("9" * 64, "9" * 64, ("same",)),
    ("0" + "1" * 64, "1" * 64, ()),  # opaque at this length: zeros are not stripped
    ("12345", "123456", ()),  # a prefix never matches
    ("123456", "12345", ()),
    ("12345", "2345", ()),
    ("ff", "fff", ()),
    ("255", "F", ()),
    (UUID, UUID[:-1], ()),
    ("0", "00", ("same", "hex", "dec")),  # 0–9 read alike in both bases
    ("7", "7", ("same", "hex", "dec")),
]


@pytest.mark.parametrize(("resp", "receipt", "rules"), PAIRS)
def test_matching_rules(resp: str, receipt: str, rules: tuple[str, ...]) -> None:
    assert matching_rules(resp, receipt) == rules


@pytest.mark.parametrize(("resp", "receipt", "rules"), PAIRS)
@pytest.mark.parametrize("fmt", ["same", "hex", "dec", "auto"])
def test_matcher_finds_a_pair_exactly_when_its_format_allows(
    fmt: str, resp: str, receipt: str, rules: tuple[str, ...]
) -> None:
    found = correlate(IdMatcher(fmt), [resp], receipt) == resp
    if fmt == "auto":
        assert found == bool(rules)
    elif fmt in rules:
        assert found
    elif fmt != "same" and not rules:
        assert not found


def test_explicit_rule_does_not_fall_back_to_same_for_readable_ids() -> None:
    # A hex carrier: receipt "10" is response 16, never the unrelated response "10".
    assert correlate(IdMatcher("hex"), ["10", "16"], "10") == "16"
    assert correlate(IdMatcher("dec"), ["10", "a"], "10") == "a"
    assert correlate(IdMatcher("same"), ["10", "16"], "10") == "10"


def test_explicit_rule_falls_back_to_same_for_ids_it_cannot_read() -> None:
    # A "hex" carrier that answered with letters after all: matched as the same id.
    assert IdMatcher("hex").keys_for_response("abc") == ("same:abc",)
    assert correlate(IdMatcher("hex"), ["abc"], "ABC") == "abc"
    assert correlate(IdMatcher("dec"), [UUID], UUID.upper()) == UUID


def test_keys_are_tagged_by_rule_so_rules_never_collide() -> None:
    m = IdMatcher("auto")
    # response "255" read decimal (hex rule) and response "FF" read hex (dec rule) are
    # both the value 255, but under different rules: a receipt finds only its own.
    assert correlate(m, ["255", "FF"], "ff") == "FF"  # same first
    assert correlate(m, ["255", "FE"], "ff") == "255"  # hex
    assert correlate(m, ["597", "FE"], "255") == "597"  # hex reading of an all-digit id


def test_auto_tries_same_first() -> None:
    m = IdMatcher("auto")
    assert m.keys_for_receipt("10") == ("same:10", "hex:16", "dec:10")
    assert m.keys_for_receipt("ff") == ("same:ff", "hex:255")
    assert m.keys_for_receipt(UUID) == ("same:" + UUID,)
    assert correlate(m, ["16", "10"], "10") == "10"


def test_auto_response_keys_cover_every_readable_rule() -> None:
    m = IdMatcher("auto")
    assert m.keys_for_response("255") == ("same:255", "hex:255", "dec:597")
    assert m.keys_for_response("00FF") == ("same:ff", "dec:255")
    assert m.keys_for_response(HASH64) == ("same:" + HASH64,)


def test_auto_learns_hex_from_hex_letter_receipts() -> None:
    learned: list[str] = []
    m = IdMatcher("auto", on_learned=learned.append)
    assert m.observe_match("255", "FF") is None  # one vote is not enough by default
    assert m.learned is None
    assert m.observe_match("1234567890", "499602d2") == "hex"
    assert m.learned == "hex"
    assert learned == ["hex"]
    # From now on only the hex reading (and the same fallback for unreadable ids).
    assert m.keys_for_receipt("10") == ("hex:16", "same:10")
    assert m.keys_for_response("16") == ("hex:16",)
    assert correlate(m, ["10", "16"], "10") == "16"
    m.observe_match("abc", "ABC")
    assert learned == ["hex"]  # called once


def test_auto_learns_dec_and_same() -> None:
    m = IdMatcher("auto", confirmations=1)
    assert m.observe_match("FF", "255") == "dec"
    m = IdMatcher("auto", confirmations=1)
    assert m.observe_match("00ABc1", "abc1") == "same"
    m = IdMatcher("auto", confirmations=1)
    assert m.observe_match(UUID, UUID.upper()) == "same"


@pytest.mark.parametrize(
    ("resp", "receipt"),
    [
        ("10", "10"),  # same? or hex of response 16 that had not arrived yet?
        ("16", "10"),  # hex? or receipt "10" of a response "10" we have not seen?
        ("0012", "12"),
        ("12345", "54321"),  # no match at all
    ],
)
def test_auto_does_not_learn_from_ambiguous_pairs(resp: str, receipt: str) -> None:
    m = IdMatcher("auto", confirmations=1)
    for _ in range(5):
        assert m.observe_match(resp, receipt) is None
    assert m.learned is None
    assert m.votes == {"same": 0, "hex": 0, "dec": 0}


def test_auto_needs_a_lead_not_just_a_count() -> None:
    m = IdMatcher("auto")
    m.observe_match("255", "FF")  # hex
    m.observe_match("abc", "ABC")  # same: conflicting evidence
    assert m.observe_match("256", "100") is None  # all digits: no vote
    assert m.observe_match("254", "FE") is None  # hex leads by 1
    assert m.observe_match("253", "FD") == "hex"  # hex leads by 2
    assert m.votes == {"same": 1, "hex": 3, "dec": 0}


def test_explicit_formats_report_their_rule_and_do_not_learn() -> None:
    m = IdMatcher("dec", confirmations=1)
    assert m.learned == "dec"
    assert m.observe_match("255", "FF") is None
    assert m.learned == "dec"


@pytest.mark.parametrize(("kwargs", "fragment"), [
    ({"fmt": "hexadecimal"}, "message_id_format"),
    ({"fmt": "auto", "confirmations": 0}, "confirmations"),
])
def test_matcher_refuses_bad_config(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        IdMatcher(**kwargs)


def test_matcher_refuses_bad_ids() -> None:
    m = IdMatcher("auto")
    with pytest.raises(MessageIdError, match="message_id: empty"):
        m.keys_for_receipt("")
    with pytest.raises(MessageIdError, match="more than 65"):
        m.keys_for_response("a" * 66)
    with pytest.raises(MessageIdError, match="expected str"):
        m.keys_for_receipt(b"123")  # type: ignore[arg-type]


ids = hs.one_of(
    hs.integers(min_value=0, max_value=2**64).map(str),
    hs.integers(min_value=0, max_value=2**64).map(lambda n: format(n, "x")),
    hs.uuids().map(str),
    hs.text(alphabet="0123456789abcdefABCDEF-_xyz", min_size=1, max_size=MAX_ID_LEN),
)


@settings(max_examples=200, deadline=None)
@given(resp=ids, receipt=ids, fmt=hs.sampled_from(["same", "hex", "dec", "auto"]))
def test_lookup_agrees_with_matching_rules(resp: str, receipt: str, fmt: str) -> None:
    """A key lookup hits exactly when the pair matches under a rule the format applies."""
    m = IdMatcher(fmt)
    hit = bool(set(m.keys_for_response(resp)) & set(m.keys_for_receipt(receipt)))
    rules = set(matching_rules(resp, receipt))
    if fmt == "auto":
        assert hit == bool(rules)
    elif fmt == "same":
        assert hit == ("same" in rules)
    else:
        assert hit >= (fmt in rules)  # plus the same fallback for unreadable ids


@settings(max_examples=100, deadline=None)
@given(n=hs.integers(min_value=0, max_value=2**100), zeros=hs.integers(0, 5), upper=hs.booleans())
def test_any_number_matches_its_hex_spelling(n: int, zeros: int, upper: bool) -> None:
    spelled = "0" * zeros + (format(n, "X") if upper else format(n, "x"))
    assert correlate(IdMatcher("hex"), [str(n)], spelled) == str(n)
    assert correlate(IdMatcher("dec"), [spelled], str(n)) == spelled
