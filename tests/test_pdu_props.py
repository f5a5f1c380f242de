"""Properties: round trips of every PDU, fast paths agreeing with the reference codec, fuzzing."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings, strategies as st

from adapters.smpp import codec, fastpath
from adapters.smpp.errors import RemoteProtocolError
from adapters.smpp.fields import CSTR, DESTS, SM, TIME, U8, UNSUCC
from adapters.smpp.pdu import (
    PDU_CLASSES, DataSm, DataSmResp, DeliverSm, DeliverSmResp, DistributionListDest, Pdu, SmeDest,
    SubmitSm, SubmitSmResp, UnsuccessSme, decode, encode,
)
from adapters.smpp.tlv import CSTRING, OCTETS, TLV_TYPES
from tests.test_pdu_golden import GOLDEN

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

LATIN1 = st.characters(min_codepoint=1, max_codepoint=255)


def cstring(max_len: int) -> st.SearchStrategy[str]:
    return st.text(LATIN1, max_size=max_len - 1)


u8 = st.integers(0, 255)
times = st.one_of(st.just(""), st.text(st.sampled_from("0123456789R+-"), min_size=16, max_size=16))
sme = st.builds(SmeDest, u8, u8, cstring(21))
dests = st.lists(st.one_of(sme, st.builds(DistributionListDest, cstring(21))), max_size=4)
unsuccess = st.lists(st.builds(UnsuccessSme, u8, u8, cstring(21), st.integers(0, 2**32 - 1)), max_size=4)
FIELD = {
    U8: lambda f: u8,
    CSTR: lambda f: cstring(f.max_len),
    TIME: lambda f: times,
    SM: lambda f: st.binary(max_size=254),
    DESTS: lambda f: dests,
    UNSUCC: lambda f: unsuccess,
}


def tlv_value(tag: int) -> st.SearchStrategy[object]:
    kind, max_len = TLV_TYPES[tag]
    if kind == CSTRING:
        return cstring(max_len)
    if kind == OCTETS:
        return st.binary(max_size=min(max_len, 40))
    return st.integers(0, 2 ** (8 * kind) - 1)


known_tlv = st.sampled_from(sorted(TLV_TYPES)).flatmap(lambda t: st.tuples(st.just(t), tlv_value(t)))
vendor_tlv = st.tuples(
    st.integers(0, 0xFFFF).filter(lambda t: t not in TLV_TYPES), st.binary(max_size=20)
)
tlvs = st.lists(st.one_of(known_tlv, vendor_tlv), max_size=5).map(dict)


@st.composite
def pdus(draw: Any, classes: list[type[Pdu]] | None = None) -> Pdu:
    cls = draw(st.sampled_from(classes or sorted(PDU_CLASSES.values(), key=lambda c: c.__name__)))
    fields = {f.name: draw(FIELD[f.kind](f)) for f in cls._layout}
    status = 0
    if cls.is_response and not cls._omit_body_on_error:
        status = draw(st.sampled_from([0, 0x58, 0x40F, 0xFFFFFFFF]))
    seq = draw(st.integers(0, 0x7FFFFFFF))
    return cls(sequence_number=seq, command_status=status, tlvs=draw(tlvs), **fields)


@FAST
@given(pdus())
def test_every_pdu_round_trips(pdu: Pdu) -> None:
    wire = encode(pdu)
    assert decode(wire) == pdu
    assert codec._encode_reference(pdu) == wire
    assert codec._decode_reference(type(pdu), wire, pdu.sequence_number, pdu.command_status) == pdu


HOT = [SubmitSm, DeliverSm, DataSm, SubmitSmResp, DeliverSmResp, DataSmResp]
FAST_ENCODE = {
    SubmitSm: fastpath.encode_sm, DeliverSm: fastpath.encode_sm, DataSm: fastpath.encode_data_sm,
    SubmitSmResp: fastpath.encode_message_id_resp, DeliverSmResp: fastpath.encode_message_id_resp,
    DataSmResp: fastpath.encode_message_id_resp,
}
odd_text = st.one_of(st.text(max_size=70), st.binary(max_size=3), st.none(), st.integers())
odd_int = st.one_of(st.integers(-2, 300), st.booleans(), st.just("1"), st.just(1.0))


@st.composite
def odd_hot_pdus(draw: Any) -> Pdu:
    """Hot PDUs with a few fields replaced by possibly illegal values."""
    pdu = draw(pdus(HOT))
    for f in pdu._layout:
        if draw(st.integers(0, 5)) == 0:
            strategy = odd_int if f.kind == U8 else st.one_of(odd_text, st.binary(max_size=300))
            setattr(pdu, f.name, draw(strategy))
    if draw(st.integers(0, 5)) == 0:
        pdu.command_status = draw(st.integers(0, 3))
    if draw(st.integers(0, 7)) == 0:
        pdu.sequence_number = draw(st.sampled_from([-1, 0x80000000, True]))
    return pdu


@FAST
@given(odd_hot_pdus())
def test_fast_encoders_never_accept_what_the_reference_refuses(pdu: Pdu) -> None:
    try:
        fast = FAST_ENCODE[type(pdu)](pdu)
    except Exception:  # noqa: BLE001 - the fast path may give up on anything
        return
    assert codec._encode_reference(pdu) == fast


def mutated(wire: bytes, data: Any) -> bytes:
    raw = bytearray(wire)
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.integers(0, 2))
        at = data.draw(st.integers(0, len(raw)))
        if op == 0 and at < len(raw):
            raw[at] = data.draw(st.integers(0, 255))
        elif op == 1:
            raw[at:at] = data.draw(st.binary(min_size=1, max_size=3))
        else:
            del raw[at : at + data.draw(st.integers(1, 3))]
    return bytes(raw)


def with_fixed_length(raw: bytes) -> bytes:
    return len(raw).to_bytes(4, "big") + raw[4:] if len(raw) >= 16 else raw


@FAST
@given(pdus(HOT), st.data())
def test_fast_decoders_agree_with_the_reference_on_mutated_bodies(pdu: Pdu, data: Any) -> None:
    wire = with_fixed_length(mutated(encode(pdu), data))
    if len(wire) < 16 or int.from_bytes(wire[4:8], "big") not in codec._FAST_DECODE:
        return
    _, cid, status, seq = codec._HEADER.unpack_from(wire)
    cls = PDU_CLASSES[cid]
    try:
        fast = codec._FAST_DECODE[cid](cls, wire, seq, status)
    except (ValueError, IndexError):
        return
    assert codec._decode_reference(cls, wire, seq, status) == fast


GOLDEN_WIRES = [wire for _, wire in GOLDEN]


@FAST
@given(st.one_of(st.binary(max_size=120), st.sampled_from(GOLDEN_WIRES)), st.data())
def test_decode_fuzz_yields_a_pdu_or_a_remote_protocol_error(seed: bytes, data: Any) -> None:
    wire = mutated(seed, data) if data.draw(st.booleans()) else seed
    if data.draw(st.booleans()):
        wire = with_fixed_length(wire)
    try:
        got = decode(wire)
    except RemoteProtocolError as exc:
        assert isinstance(exc.command_status, int)
        return
    assert isinstance(got, Pdu)
    # whatever decoded can be re-read from its own encoding when it is legal to encode
    assert got.command_id == int.from_bytes(wire[4:8], "big")
