"""Inbound messages: decoding and reassembly (router/mo.py)."""

from __future__ import annotations

from typing import Any

import pytest

from router.mo import InboundMessage, Reassembler
from router.text import Rendered, WirePart, render, render_binary

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z
LONG_GSM = "".join(f"line {i:03d} of a long GSM text. " for i in range(12))  # 3 parts
LONG_UCS2 = "Привет, мир! " * 12  # 156 units: 3 parts of at most 67


def add(r: Reassembler, **kw: Any) -> list[InboundMessage]:
    args: dict[str, Any] = {
        "carrier": "acme",
        "source": "447700900001",
        "dest": "12025550100",
        "esm_class": 0,
        "data_coding": 0,
        "now": T0,
    }
    args.update(kw)
    return r.add(**args)


def add_part(r: Reassembler, part: WirePart, **kw: Any) -> list[InboundMessage]:
    return add(
        r,
        esm_class=0x40 if part.esm_class_udhi else 0,
        data_coding=part.data_coding,
        short_message=part.short_message,
        sar=part.sar,
        message_payload=part.message_payload,
        **kw,
    )


def feed(r: Reassembler, parts: Rendered, order: list[int], **kw: Any) -> list[InboundMessage]:
    """Add parts (indices into ``parts``) in ``order``; only the last may let a message out."""
    out: list[InboundMessage] = []
    for n, i in enumerate(order):
        got = add_part(r, parts[i], **kw)
        if n < len(order) - 1:
            assert got == [], f"part index {i} let a message out early"
        out += got
    return out


# -- single-part messages ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("data_coding", "body", "dc0_charset", "text"),
    [
        (0, b"Hi \x00 \x1b\x65 5", "gsm7", "Hi @ € 5"),
        (0, bytes.fromhex("E8329BFD4697D9EC37"), "gsm7_packed", "hellohello"),
        (0, b"caf\xe9", "latin1", "café"),
        (3, b"caf\xe9", "gsm7", "café"),
        (8, "Привет 😀".encode("utf-16-be"), "gsm7", "Привет 😀"),
    ],
    ids=["gsm7", "gsm7-packed", "dc0-latin1", "latin1", "ucs2"],
)
def test_single_text_message_comes_out_at_once(
    data_coding: int, body: bytes, dc0_charset: str, text: str
) -> None:
    r = Reassembler()
    [mo] = add(r, data_coding=data_coding, short_message=body, dc0_charset=dc0_charset)
    assert (mo.text, mo.data, mo.data_coding) == (text, None, data_coding)
    assert (mo.parts, mo.partial, mo.received_at) == (1, False, T0)
    assert (mo.source, mo.dest, mo.carrier) == ("447700900001", "12025550100", "acme")
    assert (mo.id, mo.keyword, mo.action) == (None, None, None)
    assert r.stats == {
        "singles": 1,
        "assembled": 0,
        "duplicates": 0,
        "partial": 0,
        "evicted": 0,
        "open_sets": 0,
    }


def test_single_binary_message_keeps_its_octets() -> None:
    body = bytes(range(0x80, 0x90))
    [mo] = add(Reassembler(), data_coding=0xF6, short_message=body)  # class 2, 8-bit data
    assert (mo.text, mo.data, mo.data_coding) == (None, body, 0xF6)


def test_text_in_message_payload_with_empty_short_message() -> None:
    text = "x" * 300  # longer than any short_message
    [mo] = add(Reassembler(), short_message=b"", message_payload=text.encode())
    assert mo.text == text and mo.parts == 1


def test_message_payload_parts_with_a_udh_and_codec_buffers() -> None:
    parts = render(LONG_GSM, "gsm7", concat="udh8", ref=77)
    r = Reassembler()
    out: list[InboundMessage] = []
    for part in reversed(parts):  # data_sm: no short_message, the UDH inside message_payload
        out += add(
            r, esm_class=0x40, short_message=b"", message_payload=memoryview(part.short_message)
        )
    assert [m.text for m in out] == [LONG_GSM]


def test_header_looking_bytes_without_udhi_are_text() -> None:
    body = b"\x05\x00\x03\x2a\x02\x01Hello"
    [mo] = add(Reassembler(), esm_class=0x00, data_coding=3, short_message=body)
    assert mo.text == body.decode("latin-1")


def test_malformed_udh_is_kept_as_data() -> None:
    body = b"\x09\x00\x03\x2a\x02\x01Hi"  # UDH length 9 runs past the message
    r = Reassembler()
    [mo] = add(r, esm_class=0x40, short_message=body)
    assert (mo.text, mo.data, mo.data_coding, mo.parts) == (None, body, 0, 1)
    [empty] = add(r, esm_class=0x40, short_message=b"")  # UDHI on nothing at all
    assert (empty.text, empty.data) == (None, b"")
    assert r.stats["singles"] == 2


@pytest.mark.parametrize(
    "concat_ie",
    [
        b"\x00\x03\x2a\x00\x01",
        b"\x00\x03\x2a\x02\x00",
        b"\x00\x03\x2a\x02\x03",
        b"\x00\x02\x2a\x02",
    ],
    ids=["total-0", "seq-0", "seq-past-total", "wrong-length"],
)
def test_invalid_concat_ie_means_not_concatenated(concat_ie: bytes) -> None:
    r = Reassembler()
    [mo] = add(r, esm_class=0x40, short_message=bytes([len(concat_ie)]) + concat_ie + b"Hello")
    assert (mo.text, mo.parts, mo.partial) == ("Hello", 1, False)
    assert r.stats["open_sets"] == 0


@pytest.mark.parametrize(
    "sar", [(7, 0, 1), (7, 2, 0), (7, 2, 3)], ids=["total-0", "seq-0", "seq>total"]
)
def test_invalid_sar_means_not_concatenated(sar: tuple[int, int, int]) -> None:
    [mo] = add(Reassembler(), short_message=b"Hello", sar=sar)
    assert (mo.text, mo.parts) == ("Hello", 1)


def test_a_one_part_set_is_a_single_message() -> None:
    r = Reassembler()
    [mo] = add(r, esm_class=0x40, short_message=b"\x05\x00\x03\x2a\x01\x01Hi")
    assert (mo.text, mo.parts) == ("Hi", 1)
    assert r.stats["singles"] == 1


def test_unknown_dc0_charset_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="dc0_charset"):
        add(Reassembler(), short_message=b"Hi", dc0_charset="utf8")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"hold_s": 0}, "hold_s"),
        ({"hold_s": float("nan")}, "hold_s"),
        ({"hold_s": float("inf")}, "hold_s"),
        ({"max_sets": 0}, "max_sets"),
        ({"max_sets": 2.5}, "max_sets"),
        ({"max_sets": True}, "max_sets"),
    ],
)
def test_bad_settings_are_refused_by_name(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        Reassembler(**kwargs)


# -- events ------------------------------------------------------------------------------


def test_text_event_matches_the_contract() -> None:
    [mo] = add(Reassembler(), short_message=b"STOP", now=T0 + 0.25)
    mo.id = "mo-1"
    assert mo.to_event() == {
        "id": "mo-1",
        "from": "447700900001",
        "to": "12025550100",
        "carrier": "acme",
        "text": "STOP",
        "received_at": "2023-11-14T22:13:20.250Z",
        "parts": 1,
        "partial": False,
    }
    mo.keyword, mo.action = "STOP", "opt_out"
    event = mo.to_event()
    assert (event["keyword"], event["action"]) == ("STOP", "opt_out")


def test_data_event_carries_bytes_and_data_coding() -> None:
    [mo] = add(Reassembler(), data_coding=4, short_message=b"\x00\xff")
    event = mo.to_event()
    assert (event["data"], event["data_coding"]) == (b"\x00\xff", 4)
    assert "text" not in event and "keyword" not in event


# -- reassembly --------------------------------------------------------------------------


@pytest.mark.parametrize("concat", ["udh8", "udh16", "sar"])
@pytest.mark.parametrize("order", [[0, 1, 2], [2, 0, 1], [1, 2, 0]], ids=str)
def test_long_gsm_message_in_any_order(concat: str, order: list[int]) -> None:
    parts = render(LONG_GSM, "gsm7", concat=concat, ref=0x1234)
    assert len(parts) == 3
    r = Reassembler()
    [mo] = feed(r, parts, order, now=T0)
    assert (mo.text, mo.parts, mo.partial, mo.data) == (LONG_GSM, 3, False, None)
    assert r.stats["assembled"] == 1 and r.stats["open_sets"] == 0


def test_packed_gsm_parts_decode_after_their_own_header() -> None:
    parts = render(LONG_GSM + "{€}", "gsm7", dc0_charset="gsm7_packed", concat="udh16", ref=9)
    [mo] = feed(Reassembler(), parts, [1, 0, 2], dc0_charset="gsm7_packed")
    assert mo.text == LONG_GSM + "{€}"


def test_long_ucs2_message() -> None:
    parts = render(LONG_UCS2, "ucs2", concat="udh8", ref=200)
    [mo] = feed(Reassembler(), parts, [1, 2, 0])
    assert (mo.text, mo.data_coding, mo.parts) == (LONG_UCS2, 8, 3)


def test_long_binary_message_is_joined_as_data() -> None:
    data = bytes(range(256)) * 2
    parts = render_binary(data, 0xF5, concat="udh8", ref=3)
    [mo] = feed(Reassembler(), parts, [3, 1, 0, 2])
    assert (mo.text, mo.data, mo.data_coding, mo.parts) == (None, data, 0xF5, 4)


def test_port_ie_before_the_concat_ie() -> None:
    port = b"\x05\x04\x0b\x84\x23\xf0"  # 16-bit ports: destination 2948, source 9200
    first = bytes([len(port) + 5]) + port + b"\x00\x03\x7f\x02\x01" + b"first "
    second = bytes([len(port) + 5]) + port + b"\x00\x03\x7f\x02\x02" + b"second"
    r = Reassembler()
    assert add(r, esm_class=0x40, data_coding=3, short_message=second) == []
    [mo] = add(r, esm_class=0x40, data_coding=3, short_message=first)
    assert (mo.text, mo.parts) == ("first second", 2)


def test_udhi_is_read_with_a_mask() -> None:
    parts = render(LONG_GSM, "gsm7", concat="udh8", ref=5)
    r = Reassembler()
    for i in (0, 1):
        assert add(r, esm_class=0x48, short_message=parts[i].short_message) == []
    [mo] = add(r, esm_class=0x48, short_message=parts[2].short_message)
    assert mo.text == LONG_GSM


def test_duplicates_are_dropped_and_counted() -> None:
    parts = render(LONG_GSM, "gsm7", concat="udh8", ref=5)
    r = Reassembler()
    [mo] = feed(r, parts, [0, 0, 2, 0, 2, 1])
    assert mo.text == LONG_GSM
    assert r.stats["duplicates"] == 3
    # A carrier redelivering a part after the set completed: still a duplicate, no new set.
    assert add_part(r, parts[1], now=T0 + 10) == []
    assert r.stats["duplicates"] == 4 and r.stats["open_sets"] == 0
    assert r.expire(T0 + 10_000) == []


def test_same_reference_from_different_senders_is_kept_apart() -> None:
    a = render(LONG_GSM, "gsm7", concat="udh8", ref=42)
    b_text = LONG_GSM.upper()
    b = render(b_text, "gsm7", concat="udh8", ref=42)
    r = Reassembler()
    out: list[InboundMessage] = []
    for i in (0, 1, 2):
        out += add_part(r, a[i], source="111")
        out += add_part(r, b[2 - i], source="222")
    assert {(m.source, m.text) for m in out} == {("111", LONG_GSM), ("222", b_text)}
    assert r.stats["assembled"] == 2


def test_same_reference_on_other_carriers_and_widths_is_kept_apart() -> None:
    r = Reassembler()
    udh8 = render(LONG_GSM, "gsm7", concat="udh8", ref=42)
    udh16 = render(LONG_GSM, "gsm7", concat="udh16", ref=42)
    assert add_part(r, udh8[0]) == []
    assert add_part(r, udh8[1], carrier="globex") == []
    assert add_part(r, udh16[2]) == []
    assert r.stats["open_sets"] == 3


def test_a_reused_reference_sends_the_old_set_out_partial() -> None:
    old = render(LONG_GSM, "gsm7", concat="udh8", ref=42)
    new = render(LONG_GSM.lower(), "gsm7", concat="udh8", ref=42)
    r = Reassembler()
    assert add_part(r, old[0]) == []
    [stale] = add_part(r, new[0], now=T0 + 1)
    assert (stale.partial, stale.parts, stale.text) == (True, 1, LONG_GSM[:153])
    [mo] = feed(r, new, [1, 2], now=T0 + 2)
    assert (mo.text, mo.received_at) == (LONG_GSM.lower(), T0 + 1)


def test_missing_part_expires_as_partial() -> None:
    parts = render(LONG_GSM, "gsm7", concat="udh8", ref=1)
    r = Reassembler(hold_s=60)
    assert r.next_due() is None
    assert add_part(r, parts[2], now=T0) == []
    assert add_part(r, parts[0], now=T0 + 30) == []
    assert r.next_due() == T0 + 60  # the lifetime runs from the first part
    assert r.expire(T0 + 59.9) == []
    [mo] = r.expire(T0 + 60)
    assert (mo.partial, mo.parts, mo.received_at) == (True, 2, T0)
    assert mo.text == LONG_GSM[:153] + LONG_GSM[306:]
    assert r.next_due() is None
    assert r.stats["partial"] == 1 and r.stats["open_sets"] == 0


def test_expire_takes_only_the_overdue_sets() -> None:
    parts = render(LONG_GSM, "gsm7", concat="udh8", ref=1)
    r = Reassembler(hold_s=60)
    add_part(r, parts[0], source="1", now=T0)
    add_part(r, parts[0], source="2", now=T0 + 10)
    assert [m.source for m in r.expire(T0 + 65)] == ["1"]
    assert r.next_due() == T0 + 70


def test_oldest_set_is_evicted_at_max_sets() -> None:
    parts = render(LONG_GSM, "gsm7", concat="udh8", ref=1)
    r = Reassembler(max_sets=2)
    assert add_part(r, parts[0], source="1", now=T0) == []
    assert add_part(r, parts[1], source="2", now=T0 + 1) == []
    [evicted] = add_part(r, parts[0], source="3", now=T0 + 2)
    assert (evicted.source, evicted.partial, evicted.parts) == ("1", True, 1)
    assert r.stats["evicted"] == 1 and r.stats["partial"] == 1 and r.stats["open_sets"] == 2
    # A part finishing a set never evicts: it joins the set it belongs to.
    [mo] = feed(r, parts, [0, 2], source="2", now=T0 + 3)
    assert mo.text == LONG_GSM and r.stats["evicted"] == 1


# -- UCS-2 surrogate pairs split across parts --------------------------------------------


def _ucs2_part(ref: int, seq: int, units: bytes) -> bytes:
    return bytes([5, 0, 3, ref, 2, seq]) + units


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_emoji_split_across_ucs2_parts_survives(order: tuple[int, int]) -> None:
    units = "ab😀cd".encode("utf-16-be")
    cut = 6  # "a", "b" and the high surrogate
    bodies = [_ucs2_part(9, 1, units[:cut]), _ucs2_part(9, 2, units[cut:])]
    r = Reassembler()
    assert add(r, esm_class=0x40, data_coding=8, short_message=bodies[order[0]]) == []
    [mo] = add(r, esm_class=0x40, data_coding=8, short_message=bodies[order[1]])
    assert mo.text == "ab😀cd"


def test_lone_surrogates_without_their_other_half_stay_replaced() -> None:
    r = Reassembler(hold_s=5)
    [mo] = [
        *add(r, esm_class=0x40, data_coding=8, short_message=_ucs2_part(8, 1, b"\x00a\xd8\x3d")),
        *add(r, esm_class=0x40, data_coding=8, short_message=_ucs2_part(8, 2, b"\x00b")),
    ]
    assert mo.text == "a\ufffdb"
    # Halves in parts 1 and 3 of 3 are not joined across the missing part 2.
    head = bytes([5, 0, 3, 7, 3, 1]) + b"\x00a\xd8\x3d"
    tail = bytes([5, 0, 3, 7, 3, 3]) + b"\xde\x00\x00c"
    add(r, esm_class=0x40, data_coding=8, short_message=head)
    add(r, esm_class=0x40, data_coding=8, short_message=tail)
    [partial] = r.expire(T0 + 5)
    assert (partial.text, partial.parts) == ("a\ufffd\ufffdc", 2)
