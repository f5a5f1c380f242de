"""The codec against what hostile peers and broken carriers send.

The invariant everywhere: ``decode`` and ``Framer.feed`` give PDUs or our typed
errors (``RemoteProtocolError`` and its subclasses), never IndexError,
struct.error, UnicodeDecodeError, ValueError or MemoryError; the framer never
buffers a claimed length it will refuse; one bad PDU costs one PDU.

``SMPP_FUZZ_EXAMPLES=20000 pytest -m slow tests/test_adversarial_codec.py``
runs the long fuzz by hand.
"""

from __future__ import annotations

import os
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.smpp import pdu as P
from adapters.smpp.constants import DEFAULT_MAX_PDU_BYTES, CommandId, TlvTag
from adapters.smpp.constants import CommandStatus as S
from adapters.smpp.errors import FramingError, RemoteProtocolError
from adapters.smpp.fields import CSTR, TIME

DEFAULT = settings(
    max_examples=int(os.environ.get("SMPP_FUZZ_DEFAULT_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
SLOW = settings(
    max_examples=int(os.environ.get("SMPP_FUZZ_EXAMPLES", "5000")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
HEADER = struct.Struct(">IIII")
TLV = struct.Struct(">HH")


def filled(cls: type[Any], seq: int = 7) -> Any:
    """A PDU of ``cls`` with every C-string non-empty, so that every field has octets."""
    pdu = cls(sequence_number=seq)
    for f in cls._layout:
        if f.kind == CSTR:
            setattr(pdu, f.name, "12345"[: f.max_len - 1])
        elif f.kind == TIME:
            setattr(pdu, f.name, "250101120000000+")
    if hasattr(pdu, "short_message"):
        pdu.short_message = b"\x00hello\x00"  # NULs inside are '@', never a terminator
    if hasattr(pdu, "dest_addresses"):
        pdu.dest_addresses = [P.SmeDest(1, 1, "447700900123"), P.DistributionListDest("team")]
    if hasattr(pdu, "unsuccess_sme"):
        pdu.unsuccess_sme = [P.UnsuccessSme(1, 1, "447700900123", 0x0B)]
    return pdu


ALL = sorted(P.PDU_CLASSES.values(), key=lambda c: c.__name__)
SAMPLES = [filled(cls) for cls in ALL] + [
    P.SubmitSm(sequence_number=3, source_addr="ACME", destination_addr="447700900123", short_message=b"hi",
               tlvs={TlvTag.SAR_MSG_REF_NUM: 7, 0x1401: b"vendor", TlvTag.MESSAGE_PAYLOAD: b"x" * 20}),
    P.DeliverSm(sequence_number=4, esm_class=0x04, short_message=b"id:1 stat:DELIVRD",
                tlvs={TlvTag.RECEIPTED_MESSAGE_ID: "1", TlvTag.MESSAGE_STATE: 2}),
]
IDS = [type(p).__name__ for p in SAMPLES[: len(ALL)]] + ["SubmitSmTlvs", "DeliverSmReceipt"]


def decodes_or_typed_error(data: bytes) -> Any:
    """The PDU ``data`` decodes to, or the RemoteProtocolError it raises; anything else fails."""
    try:
        return P.decode(data)
    except RemoteProtocolError as exc:
        return exc


def with_length(header_rest: bytes, body: bytes) -> bytes:
    return struct.pack(">I", 16 + len(body)) + header_rest + body


# ---------------------------------------------------------------- truncation


@pytest.mark.parametrize("pdu", SAMPLES, ids=IDS)
def test_every_pdu_truncated_at_every_octet(pdu: Any) -> None:
    raw = P.encode(pdu)
    for n in range(len(raw)):
        # As a whole PDU whose command_length was fixed up to the cut...
        fixed = with_length(raw[4:16], raw[16:n]) if n >= 16 else raw[:n]
        out = decodes_or_typed_error(fixed)
        if isinstance(out, RemoteProtocolError):
            assert out.field, f"error names no field: {out!r}"
            if n >= 16:
                assert (out.sequence_number, out.command_id) == (pdu.sequence_number, pdu.command_id)
        else:
            assert type(out) is type(pdu)
        # ...and as a stream cut short: nothing yet, the claim not refused.
        framer = P.Framer()
        assert framer.feed(raw[:n]) == []
        assert framer.buffered == n


@pytest.mark.parametrize("pdu", [p for p in SAMPLES if not p.is_response], ids=lambda p: type(p).__name__)
def test_a_truncated_request_gets_an_error_naming_its_field(pdu: Any) -> None:
    raw = P.encode(pdu)
    for n in range(16, len(raw)):
        out = decodes_or_typed_error(with_length(raw[4:16], raw[16:n]))
        if isinstance(out, RemoteProtocolError):
            names = {f.name for f in type(pdu)._layout} | {
                "sm_length", "number_of_dests", "dest_flag", "dest_addr_ton", "dest_addr_npi", "destination_addr",
                "dl_name",
            }
            assert out.field in names, out
            assert out.command_status != S.ESME_ROK


@pytest.mark.parametrize("pdu", SAMPLES, ids=IDS)
def test_every_c_string_without_its_nul(pdu: Any) -> None:
    raw = P.encode(pdu)
    for i in range(16, len(raw)):
        if raw[i] == 0:
            out = decodes_or_typed_error(raw[:i] + b"\x31" + raw[i + 1 :])
            assert isinstance(out, (RemoteProtocolError, P.Pdu)), out
            if isinstance(out, RemoteProtocolError):
                assert out.field and out.field in str(out)


# ------------------------------------------------------------ command_length


@pytest.mark.parametrize("claim", [0, 1, 15, DEFAULT_MAX_PDU_BYTES + 1, 2**31, 2**32 - 1])
def test_an_impossible_command_length_is_refused_from_its_four_octets(claim: int) -> None:
    framer = P.Framer()
    with pytest.raises(FramingError) as info:
        framer.feed(struct.pack(">I", claim))
    assert info.value.command_status == S.ESME_RINVCMDLEN
    assert info.value.field == "command_length"
    assert framer.buffered == 4  # the claim is never allocated


@pytest.mark.parametrize("pdu", SAMPLES, ids=IDS)
def test_command_length_that_lies_about_the_octets_present(pdu: Any) -> None:
    raw = P.encode(pdu)
    for claim in (16, len(raw) - 1, len(raw) + 1, len(raw) + 1000):
        out = decodes_or_typed_error(struct.pack(">I", claim) + raw[4:])
        if claim != len(raw):
            assert isinstance(out, RemoteProtocolError) and out.command_status == S.ESME_RINVCMDLEN
    # In a stream a short claim cuts the PDU: the first part is an error or a PDU,
    # and framing then reads the rest as the next header.
    framer = P.Framer()
    try:
        items = framer.feed(struct.pack(">I", 16) + raw[4:])
    except FramingError as exc:
        items = exc.pdus
    assert items and all(isinstance(x, (RemoteProtocolError, P.Pdu)) for x in items)


def test_a_length_too_big_waits_for_its_body_without_allocating_it() -> None:
    framer = P.Framer()
    assert framer.feed(HEADER.pack(DEFAULT_MAX_PDU_BYTES, CommandId.ENQUIRE_LINK, 0, 1)) == []
    assert framer.buffered == 16


# ---------------------------------------------------------------- sm_length


def test_sm_length_past_the_end_names_short_message() -> None:
    raw = P.encode(P.SubmitSm(sequence_number=5, destination_addr="1", short_message=b"abc"))
    sm_length_at = len(raw) - 4
    assert raw[sm_length_at] == 3
    out = decodes_or_typed_error(raw[:sm_length_at] + b"\xff" + raw[sm_length_at + 1 :])
    assert isinstance(out, RemoteProtocolError)
    assert (out.field, out.command_status, out.sequence_number) == ("short_message", S.ESME_RINVMSGLEN, 5)


def test_sm_length_zero_with_the_text_in_message_payload() -> None:
    pdu = P.DeliverSm(sequence_number=2, tlvs={TlvTag.MESSAGE_PAYLOAD: b"x" * 300})
    assert P.decode(P.encode(pdu)) == pdu


# --------------------------------------------------------------------- TLVs


def submit_with_tail(tail: bytes, seq: int = 9) -> bytes:
    raw = P.encode(P.SubmitSm(sequence_number=seq, destination_addr="1", short_message=b"x"))
    return with_length(raw[4:16], raw[16:] + tail)


@pytest.mark.parametrize("overrun", [1, 2, 100, 0xFFFF - 3])
def test_a_tlv_running_past_the_end_is_dropped_not_fatal(overrun: int) -> None:
    good = TLV.pack(0x1401, 2) + b"ok"
    bad = TLV.pack(TlvTag.RECEIPTED_MESSAGE_ID, 3 + overrun) + b"abc"
    pdu = P.decode(submit_with_tail(good + bad))
    assert pdu.tlvs == {0x1401: b"ok"}


@pytest.mark.parametrize("tail", [b"\x14", b"\x14\x01", b"\x14\x01\x00"])
def test_a_stray_tail_shorter_than_a_tlv_header_is_dropped(tail: bytes) -> None:
    assert P.decode(submit_with_tail(tail)).tlvs == {}


def test_zero_length_tlvs_are_kept_raw_whatever_their_tag() -> None:
    tail = b"".join(TLV.pack(tag, 0) for tag in (TlvTag.MESSAGE_STATE, TlvTag.RECEIPTED_MESSAGE_ID, 0x1402))
    tlvs = P.decode(submit_with_tail(tail)).tlvs
    assert tlvs == {TlvTag.MESSAGE_STATE: b"", TlvTag.RECEIPTED_MESSAGE_ID: "", 0x1402: b""}


def test_a_repeated_tlv_keeps_its_first_value() -> None:
    tail = TLV.pack(TlvTag.MESSAGE_STATE, 1) + b"\x02" + TLV.pack(TlvTag.MESSAGE_STATE, 1) + b"\x05"
    assert P.decode(submit_with_tail(tail)).tlvs == {TlvTag.MESSAGE_STATE: 2}


@pytest.mark.parametrize("cls", [P.SubmitSmResp, P.DeliverSmResp, P.DataSmResp, P.EnquireLinkResp,
                                 P.GenericNack, P.BindTransceiverResp, P.UnbindResp])
def test_vendor_tlvs_on_responses_are_kept(cls: type[Any]) -> None:
    pdu = cls(sequence_number=3, tlvs={0x1401: b"\x00\x01", 0x3FFF: b"", TlvTag.ADDITIONAL_STATUS_INFO_TEXT: "ok"})
    assert P.decode(P.encode(pdu)) == pdu


def test_huge_tlvs_up_to_max_pdu_bytes() -> None:
    raw = submit_with_tail(TLV.pack(0x1401, 0xFFFF) + b"v" * 0xFFFF)
    raw = with_length(raw[4:16], raw[16:] + TLV.pack(0x1402, 0))
    pad = DEFAULT_MAX_PDU_BYTES - len(raw) - 4
    raw = with_length(raw[4:16], raw[16:] + TLV.pack(0x1403, pad) + b"p" * pad)
    assert len(raw) == DEFAULT_MAX_PDU_BYTES
    framer = P.Framer()
    (pdu,) = framer.feed(raw)
    assert len(pdu.tlvs[0x1401]) == 0xFFFF and len(pdu.tlvs[0x1403]) == pad
    with pytest.raises(FramingError):
        framer.feed(struct.pack(">I", DEFAULT_MAX_PDU_BYTES + 1))


def test_a_64_kib_message_payload_round_trips_through_the_framer_in_pieces() -> None:
    payload = bytes(range(256)) * 256
    pdu = P.SubmitSm(sequence_number=1, destination_addr="1", tlvs={TlvTag.MESSAGE_PAYLOAD: payload[:0xFFFF]})
    raw = P.encode(pdu)
    framer = P.Framer()
    out: list[Any] = []
    for i in range(0, len(raw), 1500):
        out += framer.feed(raw[i : i + 1500])
    assert out == [pdu] and framer.buffered == 0


# ---------------------------------------------------------------- responses


@pytest.mark.parametrize("cls", [P.SubmitSmResp, P.BindTransmitterResp, P.DataSmResp])
def test_a_body_on_an_error_response_is_read(cls: type[Any]) -> None:
    field = cls._layout[0].name
    raw = with_length(struct.pack(">III", cls.command_id, S.ESME_RSUBMITFAIL, 8), b"123\x00")
    pdu = P.decode(raw)
    assert (pdu.command_status, getattr(pdu, field)) == (S.ESME_RSUBMITFAIL, "123")


@pytest.mark.parametrize("cls", [cls for cls in ALL if cls.is_response])
def test_a_response_without_its_body_is_read_with_defaults(cls: type[Any]) -> None:
    pdu = P.decode(HEADER.pack(16, cls.command_id, 0, 8))
    assert type(pdu) is cls and pdu.sequence_number == 8


def test_generic_nack_with_a_body_is_read() -> None:
    body = TLV.pack(0x1401, 1) + b"z" + b"\x00\x00"  # a TLV and a stray tail
    pdu = P.decode(with_length(struct.pack(">III", CommandId.GENERIC_NACK, S.ESME_RTHROTTLED, 4), body))
    assert (type(pdu), pdu.command_status, pdu.tlvs) == (P.GenericNack, S.ESME_RTHROTTLED, {0x1401: b"z"})


@pytest.mark.parametrize("seq", [0, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF])
def test_any_sequence_number_decodes(seq: int) -> None:
    # Decoding keeps whatever the peer wrote; the session decides what to answer.
    raw = P.encode(P.EnquireLink(sequence_number=1))
    assert P.decode(raw[:12] + struct.pack(">I", seq)).sequence_number == seq


@pytest.mark.parametrize("cid", [0x00000000, 0x00000010, 0x80000099, 0x000000FF, 0xFFFFFFFF])
def test_an_unknown_command_id_costs_one_pdu(cid: int) -> None:
    unknown = HEADER.pack(20, cid, 0, 6) + b"body"
    good = P.encode(P.EnquireLink(sequence_number=7))
    error, pdu = P.Framer().feed(good[:0] + unknown + good)
    assert isinstance(error, RemoteProtocolError)
    assert (error.command_status, error.sequence_number, error.command_id) == (S.ESME_RINVCMDID, 6, cid)
    assert pdu == P.EnquireLink(sequence_number=7)


def test_after_lost_framing_later_feeds_do_not_hand_back_the_earlier_pdus() -> None:
    # The PDUs before the bad length belong to the feed that lost framing; a
    # caller that handles ``pdus`` on every FramingError must not see them twice.
    framer = P.Framer()
    good = P.encode(P.EnquireLink(sequence_number=1))
    with pytest.raises(FramingError) as first:
        framer.feed(good + b"\xff\xff\xff\xff")
    assert first.value.pdus == [P.EnquireLink(sequence_number=1)]
    with pytest.raises(FramingError) as again:
        framer.feed(good)
    assert again.value.pdus == []


# ------------------------------------------------------------------ fuzzing


def pdu_stream(pdus: list[Any]) -> bytes:
    return b"".join(P.encode(p) for p in pdus)


@st.composite
def mangled(draw: Any) -> bytes:
    """A few real PDUs, then octets overwritten, inserted or deleted."""
    raw = bytearray(pdu_stream(draw(st.lists(st.sampled_from(SAMPLES), min_size=1, max_size=3))))
    for _ in range(draw(st.integers(0, 4))):
        i = draw(st.integers(0, len(raw)))
        how = draw(st.integers(0, 2))
        if how == 0 and i < len(raw):
            raw[i] = draw(st.integers(0, 255))
        elif how == 1:
            raw[i:i] = draw(st.binary(min_size=1, max_size=4))
        elif i < len(raw):
            del raw[i]
    return bytes(raw)


def check_stream(data: bytes, cuts: list[int]) -> None:
    framer = P.Framer()
    bounds = sorted({c % (len(data) + 1) for c in cuts})
    for a, b in zip([0, *bounds], [*bounds, len(data)]):
        try:
            items = framer.feed(data[a:b])
        except FramingError as exc:
            items = exc.pdus
            assert framer.buffered <= len(data)
        for item in items:
            assert isinstance(item, (P.Pdu, RemoteProtocolError)), item
        assert framer.buffered < max(framer.max_pdu_bytes, 4)
    for item in [decodes_or_typed_error(data)]:
        assert isinstance(item, (P.Pdu, RemoteProtocolError))


@DEFAULT
@given(mangled(), st.lists(st.integers(0, 10**6), max_size=4))
def test_mangled_streams_give_pdus_or_typed_errors(data: bytes, cuts: list[int]) -> None:
    check_stream(data, cuts)


@pytest.mark.slow
@SLOW
@given(st.one_of(mangled(), st.binary(max_size=300)), st.lists(st.integers(0, 10**6), max_size=4))
def test_mangled_streams_give_pdus_or_typed_errors_long_run(data: bytes, cuts: list[int]) -> None:
    check_stream(data, cuts)
