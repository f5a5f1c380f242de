"""Frames and endpoint URLs: the sans-IO part of the socket."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.framing import (
    HEADER,
    Endpoint,
    FrameDecoder,
    FrameTooLarge,
    decode_body,
    encode_frame,
    parse_url,
)

MAPS = [
    {"op": "ping", "ref": 1},
    {"op": "submit", "ref": "x", "from": "ACME", "to": "4915112345678", "text": "€ and ü"},
    {"op": "submit", "ref": None, "data": b"\x00\xff" * 100, "data_coding": 4, "tags": {}},
]


def test_frames_round_trip_whole_and_byte_by_byte() -> None:
    stream = b"".join(encode_frame(m) for m in MAPS)
    whole = FrameDecoder()
    whole.feed(stream + b"\x00\x00")  # and a partial header after them
    got = [decode_body(b) for b in iter(whole.next_frame, None)]
    assert got == MAPS and whole.buffered == 2
    trickle, got = FrameDecoder(), []
    for i in range(len(stream)):
        trickle.feed(stream[i : i + 1])
        got += [decode_body(b) for b in iter(trickle.next_frame, None)]
    assert got == MAPS and trickle.buffered == 0


def test_an_oversized_header_is_refused_before_its_body() -> None:
    decoder = FrameDecoder(max_frame=100)
    decoder.feed(encode_frame({"a": 1}) + HEADER.pack(101))
    assert decode_body(decoder.next_frame() or b"") == {"a": 1}
    with pytest.raises(FrameTooLarge) as info:
        decoder.next_frame()
    assert (info.value.length, info.value.limit) == (101, 100)
    exact = FrameDecoder(max_frame=100)
    exact.feed(HEADER.pack(100) + b"\0" * 99)
    assert exact.next_frame() is None  # a frame of exactly the limit is awaited
    exact.feed(b"\0")
    assert exact.next_frame() == b"\0" * 100


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"\xc1", "body is not msgpack"),
        (b"\x92\x01\x02", "body is a msgpack list, not a map"),
        (b"", "body is not msgpack"),
        (b"\x81\x01\x02", "body is not msgpack"),  # an int key
        (b"\x80\x80", "body is not msgpack"),  # two maps in one frame
    ],
)
def test_bad_bodies(body: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode_body(body)


VALUES = st.integers(-(2**63), 2**64 - 1) | st.text(max_size=20) | st.binary(max_size=20)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.dictionaries(st.text(max_size=8), VALUES, max_size=4), max_size=8), st.data())
def test_any_chunking_gives_the_same_frames(
    maps: list[dict[str, object]], data: st.DataObject
) -> None:
    stream = b"".join(encode_frame(m) for m in maps)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    decoder, got = FrameDecoder(), []
    for start, end in zip([0, *cuts], [*cuts, len(stream)]):
        decoder.feed(stream[start:end])
        got += [decode_body(b) for b in iter(decoder.next_frame, None)]
    assert got == maps


@pytest.mark.parametrize(
    ("url", "endpoint"),
    [
        ("unix:///run/smpp-router.sock", Endpoint("unix", path="/run/smpp-router.sock")),
        ("tcp://127.0.0.1:7600", Endpoint("tcp", host="127.0.0.1", port=7600)),
        ("tcp://[::1]:0", Endpoint("tcp", host="::1", port=0)),
        ("tcp://localhost:7600/", Endpoint("tcp", host="localhost", port=7600)),
    ],
)
def test_urls(url: str, endpoint: Endpoint) -> None:
    assert parse_url(url) == endpoint
    assert parse_url(str(endpoint)) == endpoint


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("unix://relative.sock", "must be unix:///absolute/path"),
        ("tcp://127.0.0.1", "must be tcp://host:port"),
        ("tcp://127.0.0.1:99999", "invalid port"),
        ("tcp://:7600", "must be tcp://host:port"),
        ("http://127.0.0.1:80", "must start with unix:// or tcp://"),
        ("/tmp/router.sock", "must start with unix:// or tcp://"),
    ],
)
def test_bad_urls(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_url(url)
