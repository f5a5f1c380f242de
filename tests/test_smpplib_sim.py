"""The simulator against an independent client (smpplib), and run from its command line."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import smpplib.client
import smpplib.consts

from adapters.carrier_sim import CarrierSim, SimOptions
from adapters.smpp.constants import TlvTag
from tests.test_carrier_sim import Esme

ROOT = Path(__file__).resolve().parents[1]
#: Every blocking read in the smpplib thread and every wait on the child process is bounded.
TIMEOUT = 5.0


def smpplib_session(port: int, **submit: Any) -> dict[str, Any]:
    """Bind a smpplib transceiver, submit once, read until the resp and the receipt came, unbind."""
    seen: dict[str, Any] = {}

    def keep(name: str) -> Any:
        def handler(pdu: Any, **_: Any) -> None:  # None: smpplib answers deliver_sm with ESME_ROK
            seen.setdefault(name, pdu)

        return handler

    client = smpplib.client.Client("127.0.0.1", port, timeout=TIMEOUT, allow_unknown_opt_params=True)
    client.set_message_sent_handler(keep("resp"))
    client.set_message_received_handler(keep("receipt"))
    client.connect()
    try:
        seen["bind"] = client.bind_transceiver(system_id="acme", password="secret")
        seen["submit"] = client.send_message(**submit)
        for _ in range(10):  # bounded: two PDUs are expected
            if "resp" in seen and "receipt" in seen:
                break
            client.read_once(auto_send_enquire_link=False)
        seen["unbind"] = client.unbind()
    finally:
        client.disconnect()
    return seen


async def test_smpplib_binds_submits_and_gets_its_receipt() -> None:
    sim = CarrierSim(SimOptions(system_id="acme", password="secret", dlr_delay_ms=20))
    await sim.start()
    try:
        seen = await asyncio.wait_for(asyncio.to_thread(
            smpplib_session,
            sim.port,
            source_addr_ton=smpplib.consts.SMPP_TON_INTL,
            source_addr_npi=smpplib.consts.SMPP_NPI_ISDN,
            source_addr="12025550100",
            dest_addr_ton=smpplib.consts.SMPP_TON_INTL,
            dest_addr_npi=smpplib.consts.SMPP_NPI_ISDN,
            destination_addr="447700900123",
            short_message=b"Hello from smpplib",
            registered_delivery=1,
        ), TIMEOUT * 3)
    finally:
        await sim.stop()
    assert seen["bind"].status == 0 and seen["bind"].system_id == b"carrier-sim"
    resp, receipt = seen["resp"], seen["receipt"]
    assert resp.status == 0 and resp.sequence == seen["submit"].sequence
    assert resp.message_id == b"1"
    assert receipt.esm_class == 0x04
    assert receipt.receipted_message_id == b"1"
    assert receipt.source_addr == b"447700900123" and receipt.destination_addr == b"12025550100"
    assert receipt.short_message.startswith(b"id:1 sub:001 dlvrd:001 ")
    assert b"stat:DELIVRD err:000 text:Hello from smpplib" in receipt.short_message
    assert seen["unbind"].command == "unbind_resp"
    record = sim.received[0]
    assert (record.source_addr, record.source_addr_ton, record.short_message) == ("12025550100", 1, b"Hello from smpplib")
    assert sim.stats["receipts_acked"] == 1 and sim.stats["unbinds"] == 1


async def _first_line(proc: asyncio.subprocess.Process) -> dict[str, Any]:
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)
    return json.loads(line)


async def test_the_command_line_prints_its_port_serves_and_stops_on_sigterm(tmp_path) -> None:
    log = tmp_path / "submits.jsonl"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "adapters.carrier_sim", "--port", "0", "--system-id", "acme", "--password", "secret",
        "--id-format", "hex", "--first-id", "255", "--dlr-delay-ms", "10", "--log", str(log),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        ready = await _first_line(proc)
        assert ready["host"] == "127.0.0.1" and ready["listening"] == f"127.0.0.1:{ready['port']}"

        class _Port:  # Esme.connect wants something with a port
            port = ready["port"]

        esme = await Esme.connect(_Port)  # type: ignore[arg-type]
        assert (await esme.bind(password="wrong")).command_status != 0
        assert (await esme.bind()).command_status == 0
        assert (await esme.submit()).message_id == "ff"
        assert (await esme.receipt()).tlvs[TlvTag.RECEIPTED_MESSAGE_ID] == "ff"
        await esme.close()
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err
    stats = json.loads(out.decode().strip().splitlines()[-1])["stats"]
    assert (stats["binds"], stats["binds_refused"], stats["submits"], stats["receipts_sent"]) == (1, 1, 1, 1)
    (record,) = [json.loads(line) for line in log.read_text().splitlines()]
    assert (record["message_id"], record["system_id"], record["destination_addr"]) == ("ff", "acme", "447700900123")
    assert b"secret" not in err and b"wrong" not in err  # bind PDUs are never logged


async def test_the_command_line_refuses_a_bad_option_by_name() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "adapters.carrier_sim", "--port", "0", "--fail-rate", "2",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode == 2
    assert b"fail_rate" in err and out == b""


async def test_the_command_line_reports_a_port_in_use() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "adapters.carrier_sim", "--port", str(port),
            cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode == 1
    assert f"127.0.0.1:{port}".encode() in err
