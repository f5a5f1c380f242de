"""MDRs on MQTT end to end: a real mosquitto subscriber sees every final MDR of a run.

The router runs in process with `[mqtt]` configured; a subscriber (tests/mqtt_broker.py's
`Collector`) records every MQTT message. The broker is the shared one on 127.0.0.1:1883
when it answers (CI starts it), else a private mosquitto; the restart test always uses a
private one, since it kills it. Each test publishes under its own topic prefix, so runs
sharing a broker never see each other's events.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.e2e.harness import Router, SimOptions, route, until
from tests.mqtt_broker import SHARED_BROKER, Collector, Mosquitto, reachable

TO = "4915112345678"
DEAD_TO = "447700900123"
FINAL = frozenset({"DELIVERED", "UNDELIVERABLE", "EXPIRED", "REJECTED", "FAILED", "UNKNOWN"})


class MqttRouter(Router):
    """`Router` whose config also has an `[mqtt]` table (the harness renders none)."""

    def __init__(self, *args: Any, mqtt_port: int, prefix: str, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.mqtt_table = f'\n[mqtt]\nurl = "mqtt://127.0.0.1:{mqtt_port}"\ntopic_prefix = "{prefix}"\n'

    def config_text(self, routes: Sequence[Mapping[str, Any]] | None = None,
                    entries: Mapping[str, Mapping[str, Any]] | None = None) -> str:
        return super().config_text(routes, entries) + self.mqtt_table


@contextlib.contextmanager
def _broker() -> Iterator[int]:
    """The port of a reachable broker: the shared one, or a private one for this test."""
    if reachable(*SHARED_BROKER):
        yield SHARED_BROKER[1]
        return
    broker = Mosquitto()
    try:
        broker.start()
        yield broker.port
    finally:
        broker.cleanup()


def _prefix() -> str:
    return f"e2e-{uuid.uuid4().hex[:12]}"


def _router(tmp_path: Path, port: int, prefix: str, sim: SimOptions | None = None) -> MqttRouter:
    return MqttRouter(tmp_path, {"acme": sim or SimOptions(dlr_delay_ms=20)}, [route("", ("acme", 0.001))],
                      mqtt_port=port, prefix=prefix)


async def _submit(r: Router, n: int, tag: str, to: str = TO) -> list[str]:
    replies = await asyncio.gather(*(r.client.submit("ACME", to, text=f"{tag} {i}") for i in range(n)))
    assert all(rep["ok"] for rep in replies), replies
    return [rep["id"] for rep in replies]


async def _final(r: Router, ids: Iterable[str]) -> dict[str, str]:
    ids = list(ids)
    await until(lambda: set(r.mdr_status(ids).values()) <= FINAL, what="every MDR final")
    return r.mdr_status(ids)


def _final_ids(events: Iterable[Mapping[str, Any]]) -> set[str]:
    return {e["id"] for e in events if e.get("status") in FINAL}


async def _seen(collector: Collector, wanted: set[str], timeout: float = 20.0) -> set[str]:
    """Wait (bounded) until every wanted id had a final event; the ones still missing."""
    with contextlib.suppress(AssertionError):
        await until(lambda: wanted <= _final_ids(collector.events), timeout, "final MDRs on MQTT")
    return wanted - _final_ids(collector.events)


async def test_every_final_mdr_is_published_as_json_arrays(tmp_path: Path) -> None:
    prefix = _prefix()
    with _broker() as port:
        async with Collector(port, f"{prefix}/#") as collector, \
                _router(tmp_path, port, prefix, SimOptions(undeliverable_numbers=("4477",))) as r:
            ids = await _submit(r, 30, "alive") + await _submit(r, 5, "dead", to=DEAD_TO)
            status = await _final(r, ids)
            missing = await _seen(collector, set(ids))
            stats = r.app.mqtt.stats if r.app and r.app.mqtt else {}

    assert not missing, f"final MDRs never published: {sorted(missing)}"
    mdr_topic = f"{prefix}/mdr/acme"
    for topic, batch in collector.messages:
        assert isinstance(batch, list) and batch, (topic, batch)  # every payload is a JSON array
        assert topic in (mdr_topic, f"{prefix}/receipt/acme"), topic
    mdr_events = [e for topic, batch in collector.messages if topic == mdr_topic for e in batch]
    last = {e["id"]: e for e in mdr_events if e["status"] in FINAL}
    assert {i: last[i]["status"] for i in ids} == status
    assert {last[i]["dlr_stat"] for i in ids} == {"DELIVRD", "UNDELIV"}
    assert all(last[i]["carrier"] == "acme" and last[i]["done_at"] for i in ids)
    # Receipts go out on their own topic, each naming the MDR it settled.
    receipts = [e for topic, batch in collector.messages if topic == f"{prefix}/receipt/acme" for e in batch]
    assert {e["matched_id"] for e in receipts} == set(ids)
    assert stats.get("dropped") == 0


async def test_broker_killed_and_restarted_mid_run_loses_no_final_mdr(tmp_path: Path) -> None:
    prefix = _prefix()
    broker = Mosquitto()
    await asyncio.to_thread(broker.start)
    try:
        # A persistent session (client id, clean_session false): the broker keeps what is
        # published for the subscriber while it reconnects after the restart.
        async with Collector(broker.port, f"{prefix}/mdr/#", client_id=f"{prefix}-sub") as collector, \
                _router(tmp_path, broker.port, prefix) as r:
            before = await _submit(r, 20, "before")
            await _final(r, before)
            assert not await _seen(collector, set(before))
            # The subscriber's persistent session must be on disk before the kill -9.
            await asyncio.to_thread(broker.save)

            await asyncio.to_thread(broker.kill)  # SIGKILL: no goodbye to anyone
            during = await _submit(r, 20, "during")
            await _final(r, during)  # settled while nothing can be published
            await asyncio.sleep(0.3)
            await asyncio.to_thread(broker.start)  # same port, same persistence directory

            after = await _submit(r, 20, "after")
            wanted = set(before + during + after)
            await _final(r, wanted)
            missing = await _seen(collector, wanted, timeout=30)
            assert r.app is not None and r.app.mqtt is not None
            stats = r.app.mqtt.stats
    finally:
        await asyncio.to_thread(broker.cleanup)

    assert not missing, f"final MDRs lost across the broker restart: {sorted(missing, key=int)}"
    assert stats["reconnects"] >= 1 and stats["dropped"] == 0, stats
    assert all(isinstance(batch, list) for _, batch in collector.messages)

