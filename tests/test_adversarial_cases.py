"""Every input in ``tests/cases/`` once broke a layer; each is replayed under that layer's invariants.

A case is a small JSON file: ``layer`` (session, framer or text), ``why`` (what
broke), the input, and optionally the events and state it must end with. The
session cases run through the same checking driver as the session fuzz.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

from adapters.smpp import pdu as P
from adapters.smpp.errors import FramingError, RemoteProtocolError
from adapters.smpp.outbound import build_submit_pdus
from adapters.smpp.session import Role, State
from router.numbers import Address
from router.text import TextError, render
from tests.test_adversarial_session import Driver, bound, make

CASES = sorted(pathlib.Path(__file__).with_name("cases").glob("*.json"))


def load(path: pathlib.Path) -> dict[str, Any]:
    case: dict[str, Any] = json.loads(path.read_text())
    assert case["layer"] in ("session", "framer", "text") and case["why"], path.name
    return case


def run_session(case: dict[str, Any]) -> None:
    role = Role(case["role"])
    now = 1000.0
    driver = Driver(bound(role, now) if case["bound"] else make(role), now)
    for op, arg in case["steps"]:
        if op == "send":
            driver.send(getattr(P, arg))
        elif op == "receive":
            driver.receive(bytes.fromhex(arg))
        else:
            driver.tick(float(arg))
            driver.fire()
        driver.check()
    driver.finish()
    if "expect_events" in case:
        assert [type(ev).__name__ for ev in driver.seen] == case["expect_events"]
    if "expect_state" in case:
        assert driver.s.state is State(case["expect_state"])


def run_framer(case: dict[str, Any]) -> None:
    chunks = [bytes.fromhex(c) for c in case["chunks"]]
    framer, got = P.Framer(), []
    for chunk in chunks:
        try:
            got += framer.feed(chunk)
        except FramingError as exc:
            got += exc.pdus
    whole: list[Any] = []
    try:
        whole = P.Framer().feed(b"".join(chunks))
    except FramingError as exc:
        whole = exc.pdus
    assert all(isinstance(x, (P.Pdu, RemoteProtocolError)) for x in got)
    assert got == whole, "chunking changed what the framer handed out"


def run_text(case: dict[str, Any]) -> None:
    text = case["text"] * case.get("repeat", 1)
    try:
        parts = render(text, case["encoding"], concat=case["concat"], dc0_charset=case["dc0_charset"])
    except TextError as exc:
        assert str(exc).startswith("text:")
        return
    msg = type("Msg", (), {"dest": "447700900123"})()
    for pdu in build_submit_pdus(msg, None, parts, Address("ACME", "alpha", 5, 0), True):
        P.decode(P.encode(pdu))  # whatever render accepts must go on the wire


RUN = {"session": run_session, "framer": run_framer, "text": run_text}


def test_there_are_cases() -> None:
    assert CASES


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_case(path: pathlib.Path) -> None:
    case = load(path)
    RUN[case["layer"]](case)
