"""Request validation: typed requests out, or one RequestError naming the field."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.numbers import Address
from router.requests import (
    MAX_BATCH,
    RequestError,
    SubmitRequest,
    parse_consent,
    parse_consent_status,
    parse_op,
    parse_status,
    parse_submit,
    parse_submit_many,
    parse_subscribe,
)

BASE = {"op": "submit", "ref": 1, "from": "ACME", "to": "+4915112345678", "text": "Code 1234"}


def submit(m: dict[str, Any], max_segments: int = 10) -> SubmitRequest:
    return parse_submit(m, max_segments=max_segments, default_validity_s=86400)


def test_minimal_submit_takes_the_defaults() -> None:
    req = submit(BASE)
    assert req.source == Address("ACME", "alphanumeric", 5, 0)
    assert req.dest == "4915112345678"
    assert (req.text, req.data, req.data_coding) == ("Code 1234", None, None)
    assert (req.dlr, req.priority, req.validity_s) == (True, 0, 86400)
    assert (req.client_ref, req.tags) == (None, {})
    assert (req.encoding, req.segments) == ("gsm7", 1)


def test_full_submit() -> None:
    req = submit({**BASE, "text": "Привет " * 20, "dlr": False, "priority": 1,
                  "validity_s": 600, "client_ref": "order-77", "tags": {"campaign": "otp"}})  # fmt: skip
    assert (req.encoding, req.segments) == ("ucs2", 3)  # 140 UTF-16 units, 67 per part
    assert (req.dlr, req.priority, req.validity_s) == (False, 1, 600)
    assert (req.client_ref, req.tags) == ("order-77", {"campaign": "otp"})


def test_binary_submit() -> None:
    req = submit({"from": "12345", "to": "4915112345678", "data": b"\x01" * 200, "data_coding": 4})
    assert (req.data, req.data_coding, req.text) == (b"\x01" * 200, 4, None)
    assert (req.encoding, req.segments) == ("binary", 2)
    assert req.source.kind == "short_code"


def test_segments_bound_is_judged_on_air() -> None:
    assert submit({**BASE, "text": "x" * 153 * 10}).segments == 10
    with pytest.raises(RequestError) as info:
        submit({**BASE, "text": "x" * (153 * 10 + 1)})
    assert (info.value.code, info.value.message) == ("too_long", "text is 11 segments, at most 10 allowed")
    with pytest.raises(RequestError, match="too_long: data is 2 segments, at most 1"):
        submit({**BASE, "text": None, "data": b"x" * 141, "data_coding": 4}, max_segments=1)


BAD: list[tuple[dict[str, Any], str, str]] = [
    ({k: v for k, v in BASE.items() if k != "from"}, "invalid_request", "from is missing"),
    ({k: v for k, v in BASE.items() if k != "to"}, "invalid_request", "to is missing"),
    ({**BASE, "text": None}, "invalid_request", "text or data is missing"),
    ({**BASE, "from": 12345}, "invalid_request", "from must be a string, got int"),
    ({**BASE, "to": b"4915112345678"}, "invalid_request", "to must be a string, got bytes"),
    ({**BASE, "text": 5}, "invalid_request", "text must be a string, got int"),
    ({**BASE, "data": b"x"}, "invalid_request", "give either text or data, not both"),
    ({**BASE, "data_coding": 8}, "invalid_request", "data_coding goes with data"),
    ({**BASE, "text": None, "data": "x", "data_coding": 4}, "invalid_request", "data must be bytes, got str"),
    ({**BASE, "text": None, "data": b"x"}, "invalid_request", "data_coding must be an integer 0-255 with data, is missing"),
    ({**BASE, "text": None, "data": b"x", "data_coding": 256}, "invalid_request", "data_coding must be an integer 0-255 with data, got 256"),
    ({**BASE, "text": None, "data": b"x", "data_coding": True}, "invalid_request", "data_coding must be an integer"),
    ({**BASE, "dlr": 1}, "invalid_request", "dlr must be true or false, got 1"),
    ({**BASE, "dlr": "yes"}, "invalid_request", "dlr must be true or false, got 'yes'"),
    ({**BASE, "priority": 5}, "invalid_request", "priority must be 0 or 1, got 5"),
    ({**BASE, "priority": True}, "invalid_request", "priority must be 0 or 1, got True"),
    ({**BASE, "priority": 1.0}, "invalid_request", "priority must be 0 or 1, got 1.0"),
    ({**BASE, "validity_s": 0}, "invalid_request", "validity_s must be a positive integer"),
    ({**BASE, "validity_s": -5}, "invalid_request", "validity_s must be a positive integer"),
    ({**BASE, "validity_s": 10**12}, "invalid_request", "validity_s must be a positive integer up to"),
    ({**BASE, "validity_s": "60"}, "invalid_request", "validity_s must be a positive integer"),
    ({**BASE, "client_ref": 7}, "invalid_request", "client_ref must be a string"),
    ({**BASE, "client_ref": "r" * 257}, "invalid_request", "client_ref must be a string of at most 256"),
    ({**BASE, "tags": ["a"]}, "invalid_request", "tags must be a map of string to string, got list"),
    ({**BASE, "tags": {"a": 1}}, "invalid_request", "tags.a must be a string"),
    ({**BASE, "tags": {"": "x"}}, "invalid_request", "tags: key '' must be a string of 1-64"),
    ({**BASE, "tags": {"k" * 65: "x"}}, "invalid_request", "must be a string of 1-64"),
    ({**BASE, "tags": {"a": "v" * 257}}, "invalid_request", "tags.a must be a string of at most 256"),
    ({**BASE, "tags": {f"t{i}": "x" for i in range(17)}}, "invalid_request", "tags has 17 entries, at most 16"),
    ({**BASE, "colour": "red"}, "invalid_request", 'unknown key "colour"'),
    ({**BASE, "to": "+1555abc"}, "invalid_number", 'to "+1555abc" has non-digits'),
    ({**BASE, "to": "07700900123"}, "invalid_number", "starts with 0"),
    ({**BASE, "from": "ACME-MARKETS"}, "invalid_number", "is 12 characters"),
    ({**BASE, "from": "1234567890123456"}, "invalid_number", "has 16 digits"),
    ({**BASE, "text": "\ud800"}, "invalid_request", "text"),  # a lone surrogate
]  # fmt: skip


@pytest.mark.parametrize(("m", "code", "message"), BAD)
def test_bad_submits_name_the_field(m: dict[str, Any], code: str, message: str) -> None:
    with pytest.raises(RequestError) as info:
        submit(m)
    assert info.value.code == code
    assert message in info.value.message
    assert info.value.reply() == {"ok": False, "error": code, "message": info.value.message}
    assert str(info.value) == f"{code}: {info.value.message}"


def test_submit_many_reports_per_item() -> None:
    item = {k: v for k, v in BASE.items() if k not in ("op", "ref")}
    results = parse_submit_many(
        {"op": "submit_many", "ref": 3, "messages": [item, {**item, "priority": 7}, "text", {**item, "ref": 1}]},
        max_segments=10,
        default_validity_s=60,
    )
    assert isinstance(results[0], SubmitRequest) and results[0].validity_s == 60
    assert isinstance(results[1], RequestError)
    assert results[1].message == "messages[1]: priority must be 0 or 1, got 7"
    assert isinstance(results[2], RequestError)
    assert results[2].message == "messages[2]: must be a map, got str"
    assert isinstance(results[3], RequestError)  # no envelope keys inside a batch
    assert results[3].message == 'messages[3]: unknown key "ref"'


@pytest.mark.parametrize(
    ("m", "message"),
    [
        ({"op": "submit_many"}, "messages is missing"),
        ({"messages": {"a": 1}}, "messages must be a list, got dict"),
        ({"messages": [{}] * (MAX_BATCH + 1)}, f"messages has {MAX_BATCH + 1} items, at most {MAX_BATCH}"),
        ({"messages": [], "extra": 1}, 'unknown key "extra"'),
    ],
)
def test_bad_batches_are_refused_whole(m: dict[str, Any], message: str) -> None:
    with pytest.raises(RequestError, match="invalid_request") as info:
        parse_submit_many(m, max_segments=10, default_validity_s=60)
    assert message in info.value.message


def test_op() -> None:
    assert parse_op({"op": "submit_many"}) == "submit_many"
    for m, message in [({}, "op is missing"), ({"op": b"ping"}, "op must be a string, got bytes"),
                       ({"op": "Submit"}, 'op "Submit" is unknown')]:  # fmt: skip
        with pytest.raises(RequestError) as info:
            parse_op(m)
        assert (info.value.code, info.value.message) == ("invalid_request", message)


def test_status_subscribe_and_consent() -> None:
    assert parse_status({"op": "status", "ref": 1, "id": "m17"}) == "m17"
    assert parse_subscribe({"events": ["mo", "mdr", "mo"]}) == {"mdr", "mo"}
    opt = parse_consent({"op": "opt_out", "from": "+18005550100", "to": "+15551234567", "source": "web-form"})
    assert (opt.scope, opt.recipient, opt.source) == ("18005550100", "15551234567", "web-form")
    program = parse_consent_status({"from": "acme-alerts-program", "to": "15551234567"})
    assert (program.scope, program.recipient, program.source) == ("acme-alerts-program", "15551234567", None)


@pytest.mark.parametrize(
    ("parse", "m", "message"),
    [
        (parse_status, {"id": 5}, "id must be a non-empty string, got 5"),
        (parse_status, {"id": ""}, "id must be a non-empty string"),
        (parse_status, {"id": "m1", "x": 1}, 'unknown key "x"'),
        (parse_subscribe, {"events": []}, "events must be a non-empty list"),
        (parse_subscribe, {"events": "mdr"}, "events must be a non-empty list"),
        (parse_subscribe, {"events": ["mdr", "dlr"]}, "events: 'dlr' is not one of mdr, mo"),
        (parse_subscribe, {"events": [["mdr"]]}, "is not one of mdr, mo"),
        (parse_consent, {"to": "15551234567"}, "from is missing"),
        (parse_consent, {"from": "ACME", "to": "15551234567", "source": 1}, "source must be a string"),
        (parse_consent, {"from": "", "to": "15551234567"}, "from must be a sender or program name"),
        (parse_consent_status, {"from": "ACME", "to": "15551234567", "source": "x"}, 'unknown key "source"'),
    ],
)
def test_bad_other_requests(parse: Any, m: dict[str, Any], message: str) -> None:
    with pytest.raises(RequestError) as info:
        parse(m)
    assert info.value.code == "invalid_request" and message in info.value.message


def test_consent_recipient_must_be_e164() -> None:
    with pytest.raises(RequestError) as info:
        parse_consent({"from": "ACME", "to": "555-0100"})
    assert info.value.code == "invalid_number" and 'to "555-0100"' in info.value.message


VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(allow_nan=False),
    st.text(max_size=30), st.binary(max_size=300),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
)  # fmt: skip
KEYS = st.sampled_from(["from", "to", "text", "data", "data_coding", "dlr", "priority",
                        "validity_s", "client_ref", "tags", "op", "ref", "other"])  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(KEYS, VALUES, max_size=8))
def test_any_map_parses_or_raises_request_error(m: dict[str, Any]) -> None:
    try:
        req = submit(m)
    except RequestError as exc:
        assert exc.code in ("invalid_request", "invalid_number", "too_long") and exc.message
        return
    assert (req.text is None) != (req.data is None)
    assert req.encoding in ("gsm7", "ucs2", "binary") and 1 <= req.segments <= 10
