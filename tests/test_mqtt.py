"""MqttPublisher against real mosquitto brokers: batching, topics, outages, overflow."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from structlog.testing import capture_logs

from adapters.mqtt import BrokerUrl, MqttPublisher, encode_batch
from tests.mqtt_broker import (
    SHARED_BROKER,
    Mosquitto,
    Proxy,
    broker_at,
    collecting,
    free_port,
    reachable,
)

FAST: dict[str, Any] = {"reconnect_min_s": 0.05, "reconnect_max_s": 0.3, "publish_timeout_s": 3.0}


@pytest.fixture
def shared_port() -> Iterator[int]:
    """The broker on 127.0.0.1:1883 (CI starts one); our own if none is listening."""
    if reachable(*SHARED_BROKER):
        yield SHARED_BROKER[1]
        return
    with broker_at() as b:
        yield b.port


def prefix() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


def mdr(i: int, carrier: str | None = "acme", status: str = "SUBMITTED") -> dict[str, Any]:
    return {"id": f"m{i}", "carrier": carrier, "status": status, "to": "447700900001"}


async def wait_until(cond: Any, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


# -- without a broker -----------------------------------------------------------------


def test_url_forms() -> None:
    u = BrokerUrl("mqtts://ops%40acme:p%3Aw@broker.example")
    assert (u.host, u.port, u.tls) == ("broker.example", 8883, True)
    assert (u.username, u.password) == ("ops@acme", "p:w")
    u = BrokerUrl("mqtt://127.0.0.1:1884")
    assert (u.host, u.port, u.username, u.password, u.tls) == ("127.0.0.1", 1884, None, None, False)
    assert "p:w" not in repr(BrokerUrl("mqtt://u:p:w@h"))


@pytest.mark.parametrize(
    ("url", "kwargs", "message"),
    [
        ("http://h", {}, "url: must be mqtt://host[:port]"),
        ("mqtt://u:secret@h:99999", {}, "url: not a valid mqtt:// URL"),
        ("mqtt://h/a", {}, "url: no path or query allowed"),
        ("mqtt://h", {"batch_max": 0}, "batch_max: must be at least 1"),
        ("mqtt://h", {"buffer_max": 0}, "buffer_max: must be at least 1"),
        ("mqtt://h", {"flush_interval_s": float("nan")}, "flush_interval_s: must be a positive"),
    ],
)
def test_bad_arguments_name_the_field(url: str, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as err:
        MqttPublisher(url, "p", **kwargs)
    assert "secret" not in str(err.value)


def test_bad_prefix() -> None:
    with pytest.raises(ValueError, match="topic_prefix"):
        MqttPublisher("mqtt://h", "a/#")


def test_encode_batch_is_a_utf8_json_array_with_hex_bytes() -> None:
    payload = encode_batch([{"id": "1", "text": "héllo €"}, {"id": "2", "data": b"\x05\x00\x03"}])
    assert json.loads(payload.decode("utf-8")) == [
        {"id": "1", "text": "héllo €"},
        {"id": "2", "data": "050003"},
    ]
    assert "€".encode() in payload  # not \\u escapes: consumers get plain UTF-8


def test_buffer_is_bounded_and_drops_are_counted_without_a_loop() -> None:
    p = MqttPublisher("mqtt://127.0.0.1:1", "p", buffer_max=3)
    for i in range(5):
        p.publish_mdr(mdr(i))
    assert p.stats["backlog"] == 3 and p.stats["dropped"] == 2
    assert p.stats["connected"] is False and p.stats["published_events"] == 0


# -- the shared broker ----------------------------------------------------------------


async def test_every_event_arrives_batched_on_its_topic(shared_port: int) -> None:
    pre = prefix()
    async with collecting(shared_port, f"{pre}/#") as sub:
        pub = MqttPublisher(f"mqtt://127.0.0.1:{shared_port}", pre, batch_max=50, **FAST)
        await pub.start()
        await wait_until(lambda: pub.stats["connected"])
        for i in range(300):
            pub.publish_mdr(mdr(i, carrier="acme" if i % 3 else "globex"))
        pub.publish_mdr(mdr(1000, carrier=None, status="REJECTED"))
        pub.publish_receipt("acme", {"id": "r1", "carrier": "acme", "carrier_id": "X1", "stat": "DELIVRD"})
        pub.publish_mo({"id": "mo1", "from": "447700900001", "to": "+1 800-555", "text": "STOP"})
        wanted = {f"m{i}" for i in range(300)} | {"m1000", "r1", "mo1"}
        assert await sub.wait_for_ids(wanted) == set()
        await pub.stop(2)

    by_topic: dict[str, set[str]] = {}
    for topic, batch in sub.messages:
        assert isinstance(batch, list) and 1 <= len(batch) <= 50
        by_topic.setdefault(topic, set()).update(e["id"] for e in batch)
    assert by_topic[f"{pre}/mdr/globex"] == {f"m{i}" for i in range(0, 300, 3)}
    assert by_topic[f"{pre}/mdr/acme"] == {f"m{i}" for i in range(300) if i % 3}
    assert by_topic[f"{pre}/mdr/_router"] == {"m1000"}
    assert by_topic[f"{pre}/receipt/acme"] == {"r1"}
    assert by_topic[f"{pre}/mo/1800555"] == {"mo1"}
    # Batching is what keeps MQTT cheap: far fewer messages than events.
    assert len(sub.messages) < 303 / 5
    stats = pub.stats
    assert stats["published_events"] == 303 and stats["backlog"] == 0
    assert stats["published_messages"] == len(sub.messages)
    assert stats["connected"] is False  # after stop()


async def test_order_per_topic_is_kept(shared_port: int) -> None:
    pre = prefix()
    async with collecting(shared_port, f"{pre}/mdr/acme") as sub:
        pub = MqttPublisher(f"mqtt://127.0.0.1:{shared_port}", pre, batch_max=7, **FAST)
        await pub.start()
        for i in range(100):
            pub.publish_mdr(mdr(i))
        assert await sub.wait_for_ids({f"m{i}" for i in range(100)}) == set()
        await pub.stop(2)
    assert [e["id"] for e in sub.events] == [f"m{i}" for i in range(100)]


async def test_stop_flushes_what_is_pending(shared_port: int) -> None:
    pre = prefix()
    async with collecting(shared_port, f"{pre}/#") as sub:
        pub = MqttPublisher(f"mqtt://127.0.0.1:{shared_port}", pre, flush_interval_s=30, **FAST)
        await pub.start()
        await wait_until(lambda: pub.stats["connected"])
        for i in range(20):
            pub.publish_mdr(mdr(i))
        await pub.stop(3)  # the 30 s interval never came: stop() itself flushed
        assert pub.stats["published_events"] == 20
        assert await sub.wait_for_ids({f"m{i}" for i in range(20)}) == set()


async def test_logs_one_line_per_connection_and_no_password(shared_port: int) -> None:
    with capture_logs() as logs:
        pub = MqttPublisher(f"mqtt://user:hunter2@127.0.0.1:{shared_port}", prefix(), **FAST)
        await pub.start()
        await wait_until(lambda: pub.stats["connected"])
        for i in range(50):
            pub.publish_mdr(mdr(i))
        await wait_until(lambda: pub.stats["published_events"] == 50)
        await pub.stop(2)
    assert [e["event"] for e in logs] == ["mqtt connected", "mqtt disconnected"]
    assert "hunter2" not in repr(logs)


# -- our own broker: outages ----------------------------------------------------------


async def test_graceful_restart_loses_nothing_for_a_persistent_subscriber() -> None:
    broker = Mosquitto()
    broker.start()
    pre = prefix()
    try:
        async with collecting(broker.port, f"{pre}/#", client_id=f"{pre}-sub") as sub:
            pub = MqttPublisher(f"mqtt://127.0.0.1:{broker.port}", pre, batch_max=20, **FAST)
            await pub.start()
            sent = await _produce_across_outage(pub, broker, signal.SIGTERM)
            assert pub.stats["reconnects"] >= 1 and pub.stats["dropped"] == 0
            # Everything: before, during (buffered) and after the outage.
            assert await sub.wait_for_ids(sent, timeout=10) == set()
            await pub.stop(2)
    finally:
        broker.cleanup()


async def test_kill_9_resumes_and_delivers_the_outage_backlog() -> None:
    broker = Mosquitto()
    broker.start()
    pre = prefix()
    try:
        async with collecting(broker.port, f"{pre}/#", client_id=f"{pre}-sub") as sub:
            pub = MqttPublisher(f"mqtt://127.0.0.1:{broker.port}", pre, batch_max=20, **FAST)
            await pub.start()
            sent_before: set[str] = set()
            # The subscriber's persistent session must be on disk before the kill -9.
            await asyncio.to_thread(broker.save)
            sent = await _produce_across_outage(pub, broker, signal.SIGKILL, sent_before)
            # The broker kept nothing on disk: what it had acknowledged but not yet passed
            # on died with it. Everything published from the kill on must arrive.
            assert await sub.wait_for_ids(sent - sent_before, timeout=10) == set()
            assert pub.stats["reconnects"] >= 1 and pub.stats["backlog"] == 0
            await pub.stop(2)
    finally:
        broker.cleanup()


async def _produce_across_outage(
    pub: MqttPublisher, broker: Mosquitto, sig: int, before: set[str] | None = None
) -> set[str]:
    """Publish steadily while the broker is stopped with `sig` and started again."""
    sent: set[str] = set()
    i = 0

    async def burst(seconds: float) -> None:
        nonlocal i
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while loop.time() < end:
            for _ in range(5):
                pub.publish_mdr(mdr(i, carrier=("acme", "globex")[i % 2]))
                sent.add(f"m{i}")
                i += 1
            await asyncio.sleep(0.005)

    await wait_until(lambda: pub.stats["connected"])
    await burst(0.4)
    if before is not None:
        before.update(sent)
    broker.stop(sig)
    await burst(0.4)  # the broker is away: these wait in the buffer
    await wait_until(lambda: not pub.stats["connected"])
    assert pub.stats["backlog"] > 0
    broker.start()
    await burst(0.4)
    await wait_until(lambda: pub.stats["backlog"] == 0, timeout=10)
    return sent


async def test_overflow_while_the_broker_is_down_drops_and_counts() -> None:
    port = free_port()  # nothing listens yet
    pre = prefix()
    pub = MqttPublisher(f"mqtt://127.0.0.1:{port}", pre, buffer_max=100, **FAST)
    with capture_logs() as logs:
        await pub.start()
        for i in range(150):
            pub.publish_mdr(mdr(i))
        await asyncio.sleep(0.3)  # a few failed connects
    assert pub.stats["dropped"] == 50 and pub.stats["backlog"] == 100
    assert {e["event"] for e in logs} == {"mqtt connect failed"}
    with broker_at(port) as broker:
        async with collecting(broker.port, f"{pre}/#") as sub:
            # The publisher may have connected before the subscriber: look at what it sent.
            await wait_until(lambda: pub.stats["backlog"] == 0, timeout=10)
            assert pub.stats["published_events"] == 100 and pub.stats["dropped"] == 50
            pub.publish_mdr(mdr(999))
            assert await sub.wait_for_ids({"m999"}) == set()
            await pub.stop(2)


# -- the network fails in the middle of a round ---------------------------------------


@pytest.mark.parametrize("how", ["cut", "puback_timeout"])
async def test_a_batch_unacknowledged_when_the_link_fails_is_sent_again(shared_port: int, how: str) -> None:
    pre = prefix()
    async with Proxy(shared_port) as proxy, collecting(shared_port, f"{pre}/#") as sub:
        pub = MqttPublisher(
            f"mqtt://127.0.0.1:{proxy.port}", pre,
            **{**FAST, "publish_timeout_s": 0.5 if how == "puback_timeout" else 30.0},
        )
        await pub.start()
        await wait_until(lambda: pub.stats["connected"])
        proxy.blackhole = True  # a partition: neither the PUBLISH nor any PUBACK gets through
        for i in range(40):
            pub.publish_mdr(mdr(i))
        await asyncio.sleep(0.3)  # the round is under way, waiting for its PUBACK
        assert pub.stats["published_events"] == 0 and pub.stats["backlog"] == 40
        if how == "cut":
            proxy.cut()
        await wait_until(lambda: not pub.stats["connected"])
        proxy.blackhole = False
        await wait_until(lambda: pub.stats["backlog"] == 0, timeout=10)
        assert await sub.wait_for_ids({f"m{i}" for i in range(40)}) == set()
        assert [e["id"] for e in sub.events] == [f"m{i}" for i in range(40)]  # once, in order
        assert pub.stats["reconnects"] == 1 and pub.stats["published_events"] == 40
        await pub.stop(2)
