"""Property tests for inbound reassembly (router/mo.py) against our own renderer."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from router.gsm import GSM_BASIC, GSM_EXTENSION
from router.mo import InboundMessage, Reassembler
from router.text import render

T0 = 1_700_000_000.0

# GSM text (default alphabet and extension) and text that needs UCS-2 (Cyrillic, CJK, emoji).
_GSM_CHARS = st.sampled_from([c for c in GSM_BASIC if c != "\uffff"] + list(GSM_EXTENSION.values()))
_WIDE_CHARS = st.sampled_from("ЖжΩ漢字ñ😀👍🏽🇫🇷€ ")
_GSM_TEXT = st.text(_GSM_CHARS, min_size=161, max_size=700)
_UCS2_TEXT = st.text(st.one_of(_GSM_CHARS, _WIDE_CHARS), min_size=71, max_size=400)


@st.composite
def _delivery(
    draw: st.DrawFn, text: st.SearchStrategy[str], encoding: str
) -> tuple[str, str, str, list[int]]:
    """(text, dc0 charset, concat mode, order of part indices with duplicates mixed in)."""
    body = draw(text)
    charset = draw(st.sampled_from(["gsm7", "gsm7_packed"])) if encoding == "gsm7" else "gsm7"
    if charset == "gsm7_packed":
        # Packed septets ending one short of an octet boundary are padded with CR, so a
        # real CR in that place reads as padding when a full part leaves no room for the
        # second CR GSM 03.38 §6.1.2.3.1 asks for; tests/test_text.py covers CR by hand.
        body = body.replace("\r", " ")
    concat = draw(st.sampled_from(["udh8", "udh16", "sar"]))
    count = len(render(body, encoding, dc0_charset=charset, concat=concat))
    order = draw(st.permutations(range(count)))
    extra = draw(st.lists(st.integers(0, count - 1), max_size=4))
    for i in extra:  # each duplicate goes somewhere after its original
        order.insert(draw(st.integers(order.index(i) + 1, len(order))), i)
    return body, charset, concat, order


def _reassemble(
    body: str, encoding: str, charset: str, concat: str, order: list[int], ref: int
) -> tuple[list[InboundMessage], Reassembler]:
    parts = render(body, encoding, dc0_charset=charset, concat=concat, ref=ref)
    r = Reassembler()
    out: list[InboundMessage] = []
    for step, i in enumerate(order):
        part = parts[i]
        out += r.add(
            carrier="acme",
            source="447700900001",
            dest="12025550100",
            esm_class=0x40 if part.esm_class_udhi else 0,
            data_coding=part.data_coding,
            short_message=part.short_message,
            sar=part.sar,
            message_payload=part.message_payload,
            dc0_charset=charset,
            now=T0 + step,
        )
    return out, r


@settings(max_examples=60, deadline=None)
@given(_delivery(_GSM_TEXT, "gsm7"), st.integers(0, 0xFFFF))
def test_gsm_parts_in_any_order_with_duplicates_give_the_text(
    delivery: tuple[str, str, str, list[int]], ref: int
) -> None:
    body, charset, concat, order = delivery
    out, r = _reassemble(body, "gsm7", charset, concat, order, ref)
    assert [m.text for m in out] == [body]
    assert out[0].parts == len(set(order)) and not out[0].partial
    assert r.stats["duplicates"] == len(order) - len(set(order))
    assert r.stats["open_sets"] == 0


@settings(max_examples=60, deadline=None)
@given(_delivery(_UCS2_TEXT, "ucs2"), st.integers(0, 0xFFFF))
def test_ucs2_parts_in_any_order_with_duplicates_give_the_text(
    delivery: tuple[str, str, str, list[int]], ref: int
) -> None:
    body, charset, concat, order = delivery
    out, r = _reassemble(body, "ucs2", charset, concat, order, ref)
    assert [m.text for m in out] == [body]
    assert r.stats["duplicates"] == len(order) - len(set(order))


@settings(max_examples=60, deadline=None)
@given(
    st.text(st.sampled_from("ab😀Ж"), min_size=2, max_size=60),
    st.data(),
)
def test_ucs2_cut_anywhere_even_inside_a_pair_gives_the_text(
    body: str, data: st.DataObject
) -> None:
    """Senders that cut between a surrogate pair's halves still reach us whole."""
    units = body.encode("utf-16-be")
    count = len(units) // 2
    cuts = sorted(data.draw(st.sets(st.integers(1, count - 1), max_size=5))) if count > 1 else []
    bounds = [0, *(2 * c for c in cuts), len(units)]
    total = len(bounds) - 1
    order = data.draw(st.permutations(range(total)))
    r = Reassembler()
    out: list[InboundMessage] = []
    for i in order:
        header = bytes([6, 8, 4, 0x12, 0x34, total, i + 1]) if total > 1 else b""
        out += r.add(
            carrier="acme",
            source="1",
            dest="2",
            esm_class=0x40 if total > 1 else 0,
            data_coding=8,
            short_message=header + units[bounds[i] : bounds[i + 1]],
            now=T0,
        )
    assert [m.text for m in out] == [body]


@settings(max_examples=100, deadline=None)
@given(
    esm_class=st.integers(0, 255),
    data_coding=st.integers(0, 255),
    short_message=st.binary(max_size=160),
    sar=st.none() | st.tuples(st.integers(0, 0xFFFF), st.integers(0, 255), st.integers(0, 255)),
)
def test_any_pdu_body_is_either_delivered_or_held(
    esm_class: int, data_coding: int, short_message: bytes, sar: tuple[int, int, int] | None
) -> None:
    """Nothing is dropped and nothing raises: a part is held, then expires as partial."""
    r = Reassembler(hold_s=1)
    out = r.add(
        carrier="acme",
        source="1",
        dest="2",
        esm_class=esm_class,
        data_coding=data_coding,
        short_message=short_message,
        sar=sar,
        now=T0,
    )
    out += r.expire(T0 + 1)
    assert len(out) == 1
    [mo] = out
    assert (mo.text is None) != (mo.data is None)
    assert mo.data_coding == data_coding
