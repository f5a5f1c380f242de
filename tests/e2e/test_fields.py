"""What the carrier receives: addresses, data_coding, concatenation, receipts asked, the carrier chosen.

Each test submits through the router's socket and reads the simulator's own record of
the submit_sm, so the check is on the wire, not on the router's idea of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.e2e.harness import Router, SimOptions, route, text_of, until

#: High enough that one message never makes the next wait for the carrier limiter
#: (the carrier limiter has burst 1: a 3-part message holds the carrier for 3 / tps).
FAST = {"tps": 100000}


def _two_carriers(tmp_path: Path, **entries: Any) -> Router:
    (tmp_path / "rates").mkdir()
    (tmp_path / "rates" / "cheap.csv").write_text("prefix,cost\n33,0.05\n")
    (tmp_path / "rates" / "dear.csv").write_text("prefix,cost\n33,0.01\n")
    return Router(
        tmp_path,
        {"cheap": SimOptions(), "dear": SimOptions()},
        [
            route("", ("cheap", 0.001), ("dear", 0.002)),
            route("44", ("dear", 0.003), ("cheap", 0.004)),
            {"prefix": "33", "carriers": ["cheap", "dear"]},
        ],
        entries={
            "cheap": {**FAST, "rate_deck": "rates/cheap.csv"},
            "dear": {**FAST, "rate_deck": "rates/dear.csv", "concat": "sar",
                     "ton_npi": {"short_code": [3, 1]}},
            **entries,
        },
    )


async def _send(r: Router, sim: str, n_parts: int, **kw: Any) -> tuple[dict[str, Any], list[Any]]:
    """Submit one message and wait until `sim` has received all `n_parts` of it."""
    before = len(r.sims[sim].received)
    reply = await r.client.submit(**kw)
    assert reply["ok"], reply
    await until(lambda: len(r.sims[sim].received) >= before + n_parts, what=f"{n_parts} parts at {sim}")
    return reply, r.sims[sim].received[before:]


async def test_sender_kinds_get_their_ton_npi(tmp_path: Path) -> None:
    async with _two_carriers(tmp_path) as r:
        _, (e164,) = await _send(r, "cheap", 1, from_="+12025550100", to="+4915112345678", text="e164")
        _, (short,) = await _send(r, "cheap", 1, from_="12345", to="4915112345678", text="short")
        _, (alpha,) = await _send(r, "cheap", 1, from_="ACME", to="4915112345678", text="alpha")
        # The carrier whose config overrides short codes gets [3, 1].
        _, (override,) = await _send(r, "dear", 1, from_="12345", to="447700900123", text="override")

    assert (e164.source_addr, e164.source_addr_ton, e164.source_addr_npi) == ("12025550100", 1, 1)
    assert (short.source_addr, short.source_addr_ton, short.source_addr_npi) == ("12345", 3, 0)
    assert (alpha.source_addr, alpha.source_addr_ton, alpha.source_addr_npi) == ("ACME", 5, 0)
    assert (override.source_addr_ton, override.source_addr_npi) == (3, 1)
    for rec in (e164, short, alpha, override):
        assert (rec.dest_addr_ton, rec.dest_addr_npi) == (1, 1)
        assert not rec.destination_addr.startswith("+")
    assert e164.destination_addr == "4915112345678"


async def test_data_coding_and_receipt_request(tmp_path: Path) -> None:
    async with _two_carriers(tmp_path) as r:
        gsm_reply, (gsm,) = await _send(r, "cheap", 1, from_="ACME", to="4915112345678", text="Hi @ home")
        ucs_reply, (ucs,) = await _send(r, "cheap", 1, from_="ACME", to="4915112345678", text="Привет")
        bin_reply, (binary,) = await _send(
            r, "cheap", 1, from_="ACME", to="4915112345678", data=b"\x00\x01\xfe\xff", data_coding=4, dlr=False,
        )

    assert (gsm_reply["encoding"], gsm.data_coding) == ("gsm7", 0)
    assert gsm.short_message == b"Hi \x00 home"  # '@' is GSM 0x00 (unpacked), not a terminator
    assert gsm.registered_delivery & 0x03 == 1
    assert (ucs_reply["encoding"], ucs.data_coding) == ("ucs2", 8)
    assert ucs.short_message == "Привет".encode("utf-16-be")
    assert (bin_reply["encoding"], binary.data_coding) == ("binary", 4)
    assert binary.short_message == b"\x00\x01\xfe\xff"
    assert binary.registered_delivery & 0x03 == 0


async def test_long_messages_go_as_udh_parts_or_sar(tmp_path: Path) -> None:
    text = "".join(f"{i:04d} " for i in range(80))  # 400 GSM characters: 3 parts of 153
    async with _two_carriers(tmp_path) as r:
        reply, parts = await _send(r, "cheap", 3, from_="ACME", to="4915112345678", text=text)
        ucs_reply, ucs_parts = await _send(r, "cheap", 2, from_="ACME", to="4915112345678", text="ж" * 100)
        sar_reply, sar_parts = await _send(r, "dear", 3, from_="ACME", to="447700900123", text=text)

    assert reply["segments"] == 3 and ucs_reply["segments"] == 2 and sar_reply["segments"] == 3
    refs = set()
    for i, rec in enumerate(parts, 1):
        udh = rec.short_message[:6]
        assert rec.esm_class & 0x40, "UDHI must be set on every part"
        assert udh[:3] == b"\x05\x00\x03" and udh[4:] == bytes([3, i])
        refs.add(udh[3])
        assert len(rec.short_message) <= 6 + 153
    assert len(refs) == 1, "every part carries the same reference"
    assert "".join(text_of(p) for p in parts) == text
    assert "".join(text_of(p) for p in ucs_parts) == "ж" * 100
    assert all(p.data_coding == 8 and len(p.short_message) <= 6 + 134 for p in ucs_parts)
    # SAR: no UDH in the text, the TLVs say reference / total / sequence (§5.3.2.22-24).
    assert all(not p.esm_class & 0x40 for p in sar_parts)
    assert [(p.tlvs[0x020E], p.tlvs[0x020F]) for p in sar_parts] == [(3, 1), (3, 2), (3, 3)]
    assert len({p.tlvs[0x020C] for p in sar_parts}) == 1
    assert "".join(text_of(p) for p in sar_parts) == text


async def test_least_cost_carrier_is_chosen(tmp_path: Path) -> None:
    async with _two_carriers(tmp_path) as r:
        one, _ = await _send(r, "cheap", 1, from_="ACME", to="4915112345678", text="route cost")
        two, _ = await _send(r, "dear", 1, from_="ACME", to="447700900123", text="longer prefix")
        three, _ = await _send(r, "dear", 3, from_="ACME", to="33612345678", text="x" * 400)
        ids = [m["id"] for m in (one, two, three)]
        await until(lambda: set(r.mdr_status(ids).values()) <= {"SUBMITTED", "DELIVERED"}, what="accepted")
        mdrs = [(await r.client.status(i))["mdr"] for i in ids]

    assert [(m["carrier"], m["cost"]) for m in mdrs] == [
        ("cheap", 0.001),  # default route, cheapest by the route's cost
        ("dear", 0.003),  # the longer prefix "44" wins, and there dear is cheaper
        ("dear", 0.03),  # no cost on the route: rate decks (dear 0.01 for "33") x 3 parts
    ]
    assert all(m["carrier_ids"] and None not in m["carrier_ids"] for m in mdrs)
