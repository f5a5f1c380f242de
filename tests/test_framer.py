"""The streaming framer: chunking, framing loss at the first 4 octets, one bad PDU costs one PDU."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from adapters.smpp.constants import CommandId, CommandStatus, TlvTag
from adapters.smpp.errors import FramingError, RemoteProtocolError
from adapters.smpp.pdu import DeliverSm, EnquireLink, Framer, Pdu, SubmitSm, encode
from tests.test_pdu_golden import GOLDEN
from tests.test_pdu_props import mutated, pdus

FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in pairwise(edges)]


@FAST
@given(st.lists(pdus(), min_size=1, max_size=6), st.lists(st.integers(0, 10**6), max_size=30))
def test_any_chunking_yields_the_same_pdus(items: list[Pdu], cuts: list[int]) -> None:
    stream = b"".join(encode(p) for p in items)
    framer = Framer()
    got: list[object] = []
    for piece in chunks(stream, cuts):
        got += framer.feed(piece)
    assert got == items
    assert framer.buffered == 0


@pytest.mark.parametrize("length", [0, 1, 15, 73729, 0xFFFFFFFF])
def test_bad_command_length_is_fatal_as_soon_as_its_four_octets_arrive(length: int) -> None:
    framer = Framer()
    head = length.to_bytes(4, "big")
    assert framer.feed(head[:3]) == []
    with pytest.raises(FramingError) as info:
        framer.feed(head[3:])
    err = info.value
    assert (err.command_status, err.sequence_number, err.command_id) == (CommandStatus.ESME_RINVCMDLEN, None, None)
    assert isinstance(err, RemoteProtocolError)
    with pytest.raises(FramingError):
        framer.feed(encode(EnquireLink(sequence_number=1)))  # lost for good


def test_a_non_smpp_client_is_refused_without_buffering_its_claim() -> None:
    framer = Framer()
    with pytest.raises(FramingError) as info:
        framer.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert "1195725856" in str(info.value)  # b"GET " read as a length
    assert info.value.command_id == int.from_bytes(b"/ HT", "big")
    assert framer.buffered < 64


def test_pdus_before_the_framing_loss_are_on_the_error() -> None:
    good = encode(EnquireLink(sequence_number=4))
    with pytest.raises(FramingError) as info:
        Framer().feed(good + b"\x16\x03\x01\x02\x00")  # a TLS ClientHello
    assert info.value.pdus == [EnquireLink(sequence_number=4)]


def test_max_pdu_bytes_bounds_what_is_accepted() -> None:
    pdu = DeliverSm(sequence_number=3, tlvs={TlvTag.MESSAGE_PAYLOAD: b"x" * 200})
    wire = encode(pdu)
    assert Framer(max_pdu_bytes=len(wire)).feed(wire) == [pdu]
    with pytest.raises(FramingError):
        Framer(max_pdu_bytes=len(wire) - 1).feed(wire[:4])
    with pytest.raises(ValueError, match="max_pdu_bytes"):
        Framer(max_pdu_bytes=15)


def test_unknown_command_id_costs_one_pdu_and_the_framer_goes_on() -> None:
    unknown = bytes.fromhex("00000014 00000099 00000000 0000000c 61626364")
    after = SubmitSm(sequence_number=13, short_message=b"ok")
    got = Framer().feed(unknown + encode(after))
    assert isinstance(got[0], RemoteProtocolError) and not isinstance(got[0], FramingError)
    assert (got[0].command_status, got[0].sequence_number, got[0].command_id) == (
        CommandStatus.ESME_RINVCMDID, 12, 0x99,
    )
    assert got[1:] == [after]


def test_malformed_body_is_reported_in_place_with_its_sequence_number() -> None:
    bad = bytearray(encode(SubmitSm(sequence_number=21, short_message=b"hello")))
    bad[-6] = 99  # sm_length past the end
    before, after = EnquireLink(sequence_number=20), EnquireLink(sequence_number=22)
    got = Framer().feed(encode(before) + bytes(bad) + encode(after))
    assert got[0] == before and got[2] == after
    err = got[1]
    assert isinstance(err, RemoteProtocolError)
    assert (err.command_status, err.sequence_number, err.command_id) == (
        CommandStatus.ESME_RINVMSGLEN, 21, CommandId.SUBMIT_SM,
    )


def test_large_pdu_byte_by_byte_buffers_linearly() -> None:
    pdu = DeliverSm(sequence_number=5, tlvs={TlvTag.MESSAGE_PAYLOAD: bytes(range(256)) * 200})
    wire = encode(pdu)
    framer = Framer()
    got: list[object] = []
    for i in range(len(wire)):
        got += framer.feed(wire[i : i + 1])
    assert got == [pdu] and framer.buffered == 0


def test_empty_feed() -> None:
    framer = Framer()
    assert framer.feed(b"") == [] and framer.buffered == 0


GOLDEN_STREAM = b"".join(wire for _, wire in GOLDEN)


@FAST
@given(st.one_of(st.binary(max_size=200), st.just(GOLDEN_STREAM)), st.data())
def test_framer_fuzz_yields_pdus_or_typed_errors_only(seed: bytes, data: Any) -> None:
    stream = mutated(seed, data) if seed and data.draw(st.booleans()) else seed
    framer = Framer(max_pdu_bytes=data.draw(st.sampled_from([16, 300, 73728])))
    try:
        for piece in chunks(stream, data.draw(st.lists(st.integers(0, 10**4), max_size=8))):
            for item in framer.feed(piece):
                assert isinstance(item, (Pdu, RemoteProtocolError))
                assert not isinstance(item, FramingError)
    except FramingError as exc:
        assert exc.command_status == CommandStatus.ESME_RINVCMDLEN
        assert all(isinstance(i, (Pdu, RemoteProtocolError)) for i in exc.pdus)
    assert framer.buffered <= len(stream)


def test_decode_run_agrees_with_decode_pdu_by_pdu() -> None:
    """The framer's in-place run decoder gives what decode gives for each whole PDU."""
    from adapters.smpp.codec import decode_run
    from adapters.smpp.pdu import DeliverSm, EnquireLink, SubmitSm, SubmitSmResp, decode, encode

    pdus = [
        SubmitSm(sequence_number=1, source_addr="ACME", destination_addr="447700900123", short_message=b"hi"),
        SubmitSmResp(sequence_number=1, message_id="ab12"),
        DeliverSm(sequence_number=7, esm_class=4, short_message=b"id:1 stat:DELIVRD"),
        EnquireLink(sequence_number=9),
    ]
    blobs = [encode(p) for p in pdus]
    data = b"".join(blobs) + blobs[0][:10]  # and an incomplete tail
    out: list[object] = []
    stop = decode_run(data, 73728, out)
    assert stop == sum(len(b) for b in blobs)
    assert out == [decode(b) for b in blobs]
