"""Compliance end to end: a handset's STOP through a simulated carrier into the router.

The router runs in process against one CarrierSim; the simulator delivers the STOP as a
deliver_sm (`CarrierSim.send_mo`) on the router's transceiver bind, as a carrier would.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from router.cli import main as cli_main
from tests.e2e.harness import Router, SimOptions, route, text_of, until

PHONE = "447700900123"
OURS = "12025550100"
CONFIRMATION = "You are unsubscribed and will get no more messages. Reply START to resubscribe."


def _router(tmp_path: Path) -> Router:
    return Router(tmp_path, {"acme": SimOptions(dlr_delay_ms=10)}, [route("", ("acme", 0.001))])


def _texts_to(r: Router, to: str) -> list[str]:
    return [text_of(rec) for rec in r.sims["acme"].received if rec.destination_addr == to]


async def _mo_events(events: Any, out: list[dict[str, Any]]) -> None:
    async for event in events:
        if event.get("event") == "mo":
            out.append(event["mo"])


async def test_stop_between_two_submits_refuses_the_second(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    async with _router(tmp_path) as r:
        first = await r.client.submit(OURS, PHONE, text="your code is 1234")
        assert first["ok"], first
        await until(lambda: _texts_to(r, PHONE) == ["your code is 1234"], what="the first message at the carrier")

        watcher = await type(r.client).connect(r.socket_url)
        seen: list[dict[str, Any]] = []
        reader = asyncio.get_running_loop().create_task(_mo_events(await watcher.subscribe(["mo"]), seen))
        try:
            r.sims["acme"].send_mo(PHONE, OURS, "Stop")
            # One confirmation, from the number the STOP went to, and the MO still upstream.
            await until(lambda: len(_texts_to(r, PHONE)) == 2, what="the STOP confirmation")
            await until(lambda: seen, what="the MO event")
        finally:
            await watcher.close()
            reader.cancel()
        assert _texts_to(r, PHONE)[1] == CONFIRMATION
        assert [rec.source_addr for rec in r.sims["acme"].received] == [OURS, OURS]
        (mo,) = seen
        assert (mo["from"], mo["to"], mo["text"], mo["keyword"], mo["action"]) == (
            PHONE, OURS, "Stop", "STOP", "opt_out")

        second = await r.client.submit(OURS, PHONE, text="your code is 5678", client_ref="otp-2")
        assert (second["ok"], second["error"]) == (False, "opted_out"), second
        audit = await r.client.status(second["id"])
        mdr = audit["mdr"]
        assert (mdr["status"], mdr["error"], mdr["client_ref"], mdr["carrier"]) == (
            "REJECTED", "opted_out", "otp-2", None)

        status = await r.client.consent_status(OURS, "+" + PHONE)
        assert status["ok"] and status["opted_out"] is True
        assert (status["scope"], status["keyword"], status["source"]) == (OURS, "STOP", "sms")

        stats = await r.client.stats()
        assert stats["compliance"]["list_size"] == 1
        assert stats["compliance"]["opt_outs_total"] == 1
        assert stats["compliance"]["refused_opted_out_total"] == 1
        exposition = r.app.metrics.exposition().decode()  # type: ignore[union-attr]
        assert "smpp_router_opt_outs_total 1.0" in exposition
        assert "smpp_router_refused_opted_out_total 1.0" in exposition

        # Every MDR of the confirmation says what it is; the carrier saw nothing more.
        await asyncio.sleep(0.2)
        assert len(_texts_to(r, PHONE)) == 2
        replies = [m for m in r.app.store.iter_mdrs() if m["tags"] == {"auto_reply": "stop"}]  # type: ignore[union-attr]
        assert len(replies) == 1 and replies[0]["from"] == OURS

        # The export reads the store while the daemon runs.
        assert cli_main(["consent", "-c", str(r.config_path), "--number", PHONE]) == 0
        lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
        (rec,) = [x for x in lines if "recipient" in x]  # the daemon's log lines share stdout here
        assert (rec["recipient"], rec["scope"], rec["action"], rec["keyword"], rec["carrier"]) == (
            PHONE, OURS, "opt_out", "STOP", "acme")
        assert rec["mo_id"] == mo["id"]


async def test_socket_ops_and_a_restart_keep_the_list(tmp_path: Path) -> None:
    async with _router(tmp_path) as r:
        assert (await r.client.opt_out(OURS, PHONE, source="web-form"))["ok"]
        assert (await r.client.opt_out("*", "15551230000"))["ok"]
        refused = await r.client.submit(OURS, PHONE, text="hi")
        assert refused["error"] == "opted_out" and "id" in refused
        bad = await r.client.request("opt_out", {"from": OURS, "to": "0770"})
        assert (bad["ok"], bad["error"]) == (False, "invalid_number") and "to" in bad["message"]

    async with _router(tmp_path) as r:  # a new process on the same state
        assert (await r.client.submit(OURS, PHONE, text="hi"))["error"] == "opted_out"
        assert (await r.client.submit("ACME", "15551230000", text="hi"))["error"] == "opted_out"
        status = await r.client.consent_status(OURS, PHONE)
        assert (status["opted_out"], status["source"]) == (True, "web-form")
        assert (await r.client.stats())["compliance"]["list_size"] == 2

        assert (await r.client.opt_in(OURS, PHONE, source="crm"))["ok"]
        assert (await r.client.submit(OURS, PHONE, text="welcome back"))["ok"]
        await until(lambda: _texts_to(r, PHONE) == ["welcome back"], what="the message after opt_in")
        status = await r.client.consent_status(OURS, PHONE)
        assert (status["opted_out"], status["source"]) == (False, "crm")
