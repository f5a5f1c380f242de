"""Event publishing on MQTT: MDR changes, receipts and inbound messages, in batches.

Theory of operation
-------------------
The router calls `publish_mdr` / `publish_receipt` / `publish_mo` on the event loop for
every event. Those calls only append the event (a dict, kept as is until it is sent) to the
list of its topic: no task, no JSON, no I/O per event. One background task owns the broker
connection. Every `flush_interval_s` — or sooner, when a topic has `batch_max` events
waiting — it takes every pending list, cuts each into batches of at most `batch_max`
events, encodes each batch once as a JSON array and publishes the batches at QoS 1
concurrently. One QoS-1 publish costs far more than one event (a PUBACK round trip, and
~300 CPU-µs in paho), which is why events travel in arrays.

aiomqtt does not reconnect by itself: the task reconnects with exponential backoff and
jitter. While the broker is away, events wait in a bounded buffer (`buffer_max` events);
beyond it new events are dropped and counted — every one of them is still in the router's
store. A batch whose publish did not complete (connection lost, PUBACK timeout) goes back
to the front of its topic's list and is sent again after the reconnect: delivery is at
least once, and consumers de-duplicate by `id` and `status` (DESIGN.md, "MDR fields").

Topics: ``{prefix}/mdr/{carrier}`` (``_router`` for an MDR no carrier saw),
``{prefix}/receipt/{carrier}`` and ``{prefix}/mo/{to digits}``. Bytes in an event (an MO's
binary ``data``) are written as lowercase hex strings, JSON having no byte type.
"""

from __future__ import annotations

import asyncio
import json
import random
import ssl
from typing import Any, Final
from urllib.parse import SplitResult, unquote, urlsplit

import aiomqtt
import structlog

log = structlog.get_logger("adapters.mqtt")

#: The carrier segment of an MDR topic for records no carrier saw (e.g. opted_out).
ROUTER_TOPIC: Final = "_router"
#: The last segment of an MO topic whose recipient has no digits at all.
NO_DIGITS_TOPIC: Final = "_none"
#: Default ports: 1883 plain, 8883 TLS (the IANA registrations for MQTT).
DEFAULT_PORTS: Final = {"mqtt": 1883, "mqtts": 8883}
#: Distinct topics remembered per kind; recipients of MO are not bounded by config.
TOPIC_CACHE_MAX: Final = 10_000

Event = dict[str, Any]


class BrokerUrl:
    """A parsed ``mqtt://[user[:password]@]host[:port]`` (``mqtts://`` for TLS)."""

    __slots__ = ("host", "password", "port", "tls", "username")

    def __init__(self, url: str) -> None:
        """Raises ValueError naming `url` when it is not an mqtt:// or mqtts:// URL."""
        try:
            parts: SplitResult = urlsplit(url)
            port = parts.port
        except ValueError:
            raise ValueError(f"url: not a valid mqtt:// URL: {_redacted(url)!r}") from None
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            raise ValueError(
                f"url: must be mqtt://host[:port] or mqtts://host[:port], got {_redacted(url)!r}"
            )
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(f"url: no path or query allowed, got {_redacted(url)!r}")
        self.host: str = parts.hostname
        self.port: int = port if port is not None else DEFAULT_PORTS[parts.scheme]
        self.username: str | None = unquote(parts.username) if parts.username else None
        self.password: str | None = unquote(parts.password) if parts.password else None
        self.tls: bool = parts.scheme == "mqtts"

    def __repr__(self) -> str:
        user = f"{self.username}:***@" if self.username else ""
        return f"BrokerUrl({'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port})"


def _redacted(url: str) -> str:
    """`url` with the password (if any) replaced, for error messages and logs."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    return f"{scheme}{sep}{userinfo.partition(':')[0]}:***@{host}"


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_json_default).encode


def encode_batch(events: list[Event]) -> bytes:
    """One MQTT payload: the events as a UTF-8 JSON array.

    Raises TypeError when an event holds a value JSON cannot carry (bytes become hex).
    """
    return _encode(events).encode("utf-8")


def _topic_segment(value: str) -> str:
    # '/' would add levels and '+'/'#' are wildcards: neither may appear inside a level.
    return value.replace("/", "_").replace("+", "_").replace("#", "_") or ROUTER_TOPIC


class MqttPublisher:
    """Batches router events and publishes them at QoS 1; reconnects on its own.

    Not thread-safe: every method is called on the event loop that runs `start()`.
    """

    def __init__(
        self,
        url: str,
        topic_prefix: str,
        *,
        buffer_max: int = 100_000,
        flush_interval_s: float = 0.1,
        batch_max: int = 500,
        publish_timeout_s: float = 10.0,
        reconnect_min_s: float = 0.5,
        reconnect_max_s: float = 30.0,
        client_id: str | None = None,
    ) -> None:
        """Raises ValueError naming the argument when one is out of range."""
        self._broker = BrokerUrl(url)
        if not topic_prefix or any(c in topic_prefix for c in "#+"):
            raise ValueError(f"topic_prefix: must be a topic without wildcards, got {topic_prefix!r}")
        for name, value in (("buffer_max", buffer_max), ("batch_max", batch_max)):
            if value < 1:
                raise ValueError(f"{name}: must be at least 1, got {value}")
        for name, seconds in (
            ("flush_interval_s", flush_interval_s),
            ("publish_timeout_s", publish_timeout_s),
            ("reconnect_min_s", reconnect_min_s),
            ("reconnect_max_s", reconnect_max_s),
        ):
            if not seconds > 0:  # also refuses NaN
                raise ValueError(f"{name}: must be a positive number of seconds, got {seconds}")
        self._prefix = topic_prefix.rstrip("/")
        self._buffer_max = buffer_max
        self._batch_max = batch_max
        self._flush_interval = flush_interval_s
        self._publish_timeout = publish_timeout_s
        self._backoff = (reconnect_min_s, max(reconnect_min_s, reconnect_max_s))
        self._client_id = client_id
        self._pending: dict[str, list[Event]] = {}
        self._count = 0  # events in _pending
        self._in_flight = 0  # events taken for the publish round under way
        self._mdr_topics: dict[str, str] = {}
        self._receipt_topics: dict[str, str] = {}
        self._mo_topics: dict[str, str] = {}
        self._wake: asyncio.Future[None] | None = None  # a full batch or stop() ends the wait
        self._stop_fut: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._connected = False
        self._connects = 0
        self._published_events = 0
        self._published_messages = 0
        self._dropped = 0

    # -- the per-event calls (hot path) ---------------------------------------------

    def publish_mdr(self, mdr: Event) -> None:
        """Queue an MDR change on ``{prefix}/mdr/{carrier}``; the dict must not change after."""
        carrier = mdr.get("carrier") or ROUTER_TOPIC
        topic = self._mdr_topics.get(carrier)
        if topic is None:
            topic = self._new_topic(self._mdr_topics, "mdr", carrier)
        self._add(topic, mdr)

    def publish_receipt(self, carrier: str, receipt: Event) -> None:
        """Queue a receipt on ``{prefix}/receipt/{carrier}``; the dict must not change after."""
        topic = self._receipt_topics.get(carrier)
        if topic is None:
            topic = self._new_topic(self._receipt_topics, "receipt", carrier)
        self._add(topic, receipt)

    def publish_mo(self, mo: Event) -> None:
        """Queue an inbound message on ``{prefix}/mo/{digits of to}``."""
        to = mo.get("to") or ""
        topic = self._mo_topics.get(to)
        if topic is None:
            digits = "".join(c for c in to if c.isdigit()) or NO_DIGITS_TOPIC
            topic = self._new_topic(self._mo_topics, "mo", digits, key=to)
        self._add(topic, mo)

    def _new_topic(self, cache: dict[str, str], kind: str, name: str, key: str | None = None) -> str:
        if len(cache) >= TOPIC_CACHE_MAX:
            cache.clear()  # a flood of distinct recipients must not grow memory forever
        topic = cache[name if key is None else key] = f"{self._prefix}/{kind}/{_topic_segment(name)}"
        return topic

    def _add(self, topic: str, event: Event) -> None:
        if self._count + self._in_flight >= self._buffer_max:
            self._dropped += 1  # still in the store: MQTT is a feed, not the record
            return
        self._count += 1
        events = self._pending.get(topic)
        if events is None:
            self._pending[topic] = [event]
        else:
            events.append(event)
            if len(events) >= self._batch_max:
                wake = self._wake
                if wake is not None and not wake.done():
                    wake.set_result(None)

    # -- state ----------------------------------------------------------------------

    @property
    def stats(self) -> dict[str, Any]:
        """Counters for `stats` and metrics: published events and messages, dropped,
        backlog (events not yet acknowledged by the broker), connected, reconnects."""
        return {
            "published_events": self._published_events,
            "published_messages": self._published_messages,
            "dropped": self._dropped,
            "backlog": self._count + self._in_flight,
            "connected": self._connected,
            "reconnects": max(0, self._connects - 1),
        }

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        """Launch the background task that connects, flushes and reconnects.

        Returns at once (the first connection is made in the background). Raises
        RuntimeError if already started.
        """
        if self._task is not None:
            raise RuntimeError("MqttPublisher already started")
        loop = asyncio.get_running_loop()
        self._stopping = False
        self._stop_fut = loop.create_future()
        self._task = loop.create_task(self._run(), name="mqtt-publisher")

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Flush what can be flushed within `timeout_s`, then disconnect.

        Events still unsent after that stay counted in `stats["backlog"]`. Never raises
        for broker trouble.
        """
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        for fut in (self._wake, self._stop_fut):
            if fut is not None:
                _resolve(fut)
        done, _ = await asyncio.wait({task}, timeout=timeout_s)
        if not done:
            task.cancel()
            await asyncio.wait({task})
        elif not task.cancelled() and task.exception() is not None:
            log.error("mqtt publisher failed", error=repr(task.exception()))
        self._connected = False

    async def _run(self) -> None:
        failures = 0
        while not self._stopping:
            try:
                async with self._client() as client:
                    failures = 0
                    self._on_connect()
                    await self._pump(client)
            except aiomqtt.MqttError as exc:
                failures += 1
                self._on_disconnect(exc, failures)
            else:
                self._on_disconnect(None, 0)
                return
            await self._sleep(self._delay(failures))

    def _client(self) -> aiomqtt.Client:
        b = self._broker
        return aiomqtt.Client(
            b.host,
            b.port,
            username=b.username,
            password=b.password,
            identifier=self._client_id,
            tls_context=ssl.create_default_context() if b.tls else None,
            timeout=self._publish_timeout,
            keepalive=30,
            max_inflight_messages=64,
        )

    def _delay(self, failures: int) -> float:
        low, high = self._backoff
        ceiling = min(high, low * 2.0 ** min(failures - 1, 30))
        return ceiling * random.uniform(0.5, 1.0)  # jitter: instances do not reconnect in step

    async def _sleep(self, seconds: float) -> None:
        """Sleep, cut short by stop() (not by traffic: that would defeat the backoff)."""
        assert self._stop_fut is not None
        await asyncio.wait({self._stop_fut}, timeout=seconds)

    def _on_connect(self) -> None:
        self._connected = True
        self._connects += 1
        b = self._broker
        log.info("mqtt connected", host=b.host, port=b.port, tls=b.tls, backlog=self._count)

    def _on_disconnect(self, exc: BaseException | None, failures: int) -> None:
        was_connected, self._connected = self._connected, False
        b = self._broker
        if exc is None:
            log.info("mqtt disconnected", host=b.host, port=b.port, backlog=self._count)
        elif was_connected:
            log.warning("mqtt connection lost", host=b.host, port=b.port, error=str(exc),
                        backlog=self._count)
        else:
            log.warning("mqtt connect failed", host=b.host, port=b.port, error=str(exc),
                        attempt=failures, backlog=self._count, dropped=self._dropped)

    # -- flushing ---------------------------------------------------------------------

    async def _pump(self, client: aiomqtt.Client) -> None:
        """Flush rounds until stop(); raises MqttError when the connection fails."""
        loop = asyncio.get_running_loop()
        lost = loop.create_task(_until_disconnected(client))
        try:
            while True:
                stopping = self._stopping
                if self._count:
                    await self._flush_round(client, lost)
                if stopping:
                    return
                self._wake = wake = loop.create_future()
                if self._stopping or any(len(v) >= self._batch_max for v in self._pending.values()):
                    continue  # stop() came, or full batches piled up during the round: go again
                timer = loop.call_later(self._flush_interval, _resolve, wake)
                await asyncio.wait({wake, lost}, return_when=asyncio.FIRST_COMPLETED)
                timer.cancel()
                if lost.done():
                    lost.result()  # raises the MqttError that ended the connection
        finally:
            lost.cancel()

    async def _flush_round(self, client: aiomqtt.Client, lost: asyncio.Task[None]) -> None:
        pending, self._pending = self._pending, {}
        batches = [
            (topic, events[i : i + self._batch_max])
            for topic, events in pending.items()
            for i in range(0, len(events), self._batch_max)
        ]
        self._in_flight, self._count = self._count, 0
        acked = [False] * len(batches)
        publish = self._publish_one
        # return_exceptions: the round ends when every publish has ended, so nothing still
        # running can mark a batch acknowledged after it was re-queued.
        round_ = asyncio.gather(
            *(publish(client, b, acked, i) for i, b in enumerate(batches)), return_exceptions=True
        )
        # A round cut short (connection lost, or stop) ends with CancelledError set on it and
        # may never be read below; mark it read, or the loop logs it at garbage collection.
        round_.add_done_callback(_retrieve)
        try:
            waiting: set[asyncio.Future[Any]] = {round_, lost}
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not round_.done():
                round_.cancel()
                await asyncio.wait({round_})
            self._in_flight = 0
            self._requeue([b for b, ok in zip(batches, acked) if not ok])
        if lost.done():
            lost.result()  # raises the MqttError that ended the connection
        if not round_.cancelled():
            for result in round_.result():
                if isinstance(result, BaseException):
                    raise result

    async def _publish_one(
        self, client: aiomqtt.Client, batch: tuple[str, list[Event]], acked: list[bool], i: int
    ) -> None:
        topic, events = batch
        try:
            payload = encode_batch(events)
        except (TypeError, ValueError) as exc:
            # One unencodable event must not block its topic forever: drop the batch, say why.
            log.error("mqtt batch not encodable", topic=topic, events=len(events), error=str(exc))
            self._dropped += len(events)
            acked[i] = True
            return
        await client.publish(topic, payload, qos=1)
        acked[i] = True
        self._published_events += len(events)
        self._published_messages += 1

    def _requeue(self, batches: list[tuple[str, list[Event]]]) -> None:
        """Put unacknowledged batches back in front of what arrived meanwhile, in order."""
        for topic, events in reversed(batches):
            newer = self._pending.get(topic)
            self._pending[topic] = events + newer if newer else events
            self._count += len(events)


def _retrieve(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


async def _until_disconnected(client: aiomqtt.Client) -> None:
    """Returns never; raises MqttError when the connection drops.

    Nothing is subscribed, so the message iterator only ever ends by disconnection: it is
    aiomqtt's public way to learn that the socket closed while a publish waits for its
    PUBACK (which would otherwise wait `publish_timeout_s`).
    """
    async for _ in client.messages:
        pass
    raise aiomqtt.MqttError("message iterator ended")


__all__ = ["ROUTER_TOPIC", "BrokerUrl", "MqttPublisher", "encode_batch"]
