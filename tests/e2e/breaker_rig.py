"""A daemon between a hostile carrier written from raw bytes and a well-behaved one.

`Rig` runs the router in process (`App` on the test's loop) with two carriers:

- `evil`: a `RawSmsc` (struct-only SMPP, tests/test_esme_peer.py) the test scripts — it
  can send anything, stop answering, stop reading, or never answer a bind;
- `good`: a `CarrierSim` that behaves.

Routes: destinations starting 44 go to `evil` only, 49 to `good` only, and 33 to `evil`
first with `good` as the dearer fallback. So a test can show a hostile carrier hurting
nothing outside its own traffic, and failover where there is somewhere to fail over to.
"""

from __future__ import annotations

import contextlib
import struct
from pathlib import Path
from typing import Any, Self

from adapters.carrier_sim import CarrierSim, SimOptions
from adapters.client import AsyncClient
from router.app import App
from router.config import load_config
from tests.e2e.harness import (
    WAIT_S,
    all_bound,
    carrier_entry,
    render_config,
    route,
    until,
)
from tests.test_esme_peer import DELIVER_SM, RESP, RawConn, RawSmsc, cstring

EVIL_TO = "447700900001"
GOOD_TO = "4915112345678"
BOTH_TO = "33612345678"
SENDER = "12025550100"

#: §5.2.12 esm_class: SMSC delivery receipt; UDHI + SME delivery ack (0x48).
ESM_RECEIPT, ESM_UDHI_ACK = 0x04, 0x48
#: §5.3.2 TLV tags used by the receipts below.
TAG_RECEIPTED_ID, TAG_MESSAGE_STATE, TAG_PAYLOAD = 0x001E, 0x0427, 0x0424


def tlv(tag: int, value: bytes, length: int | None = None) -> bytes:
    """One §3.3 TLV; `length` may lie about the value's size (an overrun)."""
    return struct.pack(">HH", tag, len(value) if length is None else length) + value


def deliver_body(
    short_message: bytes,
    *,
    esm_class: int = ESM_RECEIPT,
    data_coding: int = 0,
    source: str = EVIL_TO,
    dest: str = SENDER,
    tlvs: bytes = b"",
) -> bytes:
    """§4.6.1 deliver_sm body, built by hand."""
    return (
        cstring("") + b"\x01\x01" + cstring(source) + b"\x01\x01" + cstring(dest)
        + bytes([esm_class, 0, 0]) + cstring("") + cstring("")
        + bytes([0, 0, data_coding, 0, len(short_message)]) + short_message + tlvs
    )


def receipt_text(carrier_id: str, stat: str = "DELIVRD", date: str = "2401011200") -> bytes:
    return (
        f"id:{carrier_id} sub:001 dlvrd:001 submit date:{date} done date:{date} "
        f"stat:{stat} err:000 text:hello"
    ).encode("ascii")


class Rig:
    """`async with Rig(tmp_path) as rig:` — router, `rig.evil` (RawSmsc), `rig.good` (CarrierSim)."""

    def __init__(self, tmp_path: Path, *, evil: dict[str, Any] | None = None,
                 router: dict[str, Any] | None = None) -> None:
        self.dir = tmp_path
        self.evil = RawSmsc()
        self.good = CarrierSim(SimOptions())
        self.evil_keys = {"binds": {"transceiver": 1}, **(evil or {})}
        self.router_keys = {"socket": f"unix://{tmp_path}/router.sock", **(router or {})}
        self.config_path = tmp_path / "router.toml"
        self.app: App | None = None
        self.client: AsyncClient = None  # type: ignore[assignment]

    def config_text(self, **evil_overrides: Any) -> str:
        keys = {**self.evil_keys, **evil_overrides}
        carriers = [
            carrier_entry("evil", self.evil.port, **keys),
            carrier_entry("good", self.good.port, binds={"transceiver": 1}),
        ]
        routes = [route("44", ("evil", 0.001)), route("49", ("good", 0.002)),
                  route("33", ("evil", 0.001), ("good", 0.002))]
        return render_config(socket_url=self.router_keys["socket"], carriers=carriers,
                             routes=routes, router=self.router_keys)

    async def __aenter__(self) -> Self:
        await self.evil.start()
        await self.good.start()
        self.config_path.write_text(self.config_text())
        self.app = App(load_config(self.config_path))
        await self.app.start()
        self.client = await AsyncClient.connect(self.router_keys["socket"], timeout=WAIT_S)
        return self

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            await self.client.close()
        if self.app is not None:
            app, self.app = self.app, None
            await app.stop(1.0)
        await self.evil.close()
        await self.good.stop()

    # -- waiting ----------------------------------------------------------------------

    async def bound(self, *names: str) -> None:
        async def check() -> bool:
            return all_bound(await self.client.stats(), names or None)
        await until(check, what=f"binds of {names or 'all'} bound")

    async def evil_conn(self) -> RawConn:
        """The bound connection of the raw carrier (waits for it)."""
        await until(lambda: [c for c in self.evil.conns if c.bind_kind], what="evil bound")
        return [c for c in self.evil.conns if c.bind_kind][-1]

    async def final(self, router_id: str, timeout: float = WAIT_S) -> dict[str, Any]:
        """The MDR of `router_id` once its status is not QUEUED/SENDING/SUBMITTED."""
        async def check() -> dict[str, Any] | None:
            mdr = (await self.client.status(router_id))["mdr"]
            return mdr if mdr["status"] not in ("QUEUED", "SENDING", "SUBMITTED") else None
        return await until(check, timeout, f"a final MDR for {router_id}")

    async def status(self, router_id: str) -> str:
        return str((await self.client.status(router_id))["mdr"]["status"])

    async def good_still_delivers(self, text: str = "still fine") -> None:
        """A message to the good carrier is DELIVERED: the hostile one hurt nothing else."""
        reply = await self.client.submit(SENDER, GOOD_TO, text=text)
        assert reply["ok"], reply
        mdr = await self.final(reply["id"])
        assert mdr["status"] == "DELIVERED", mdr


async def deliver(conn: RawConn, body: bytes, timeout: float = WAIT_S) -> int:
    """Send a deliver_sm from the raw carrier; the command_status of the router's answer."""
    seq = conn.send_request(DELIVER_SM, body)
    answer = await until(
        lambda: [s for cid, s, q, _ in conn.inbound if cid == DELIVER_SM | RESP and q == seq],
        timeout, f"deliver_sm_resp to seq {seq}",
    )
    return int(answer[0])


__all__ = [
    "BOTH_TO", "ESM_RECEIPT", "ESM_UDHI_ACK", "EVIL_TO", "GOOD_TO", "SENDER",
    "TAG_MESSAGE_STATE", "TAG_PAYLOAD", "TAG_RECEIPTED_ID", "Rig",
    "deliver", "deliver_body", "receipt_text", "tlv",
]
