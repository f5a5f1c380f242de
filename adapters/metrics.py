"""Prometheus metrics: one registry, cheap counting on the hot path, /metrics over HTTP.

Every name below is part of the interface contract (DESIGN.md, "Metrics"; prefix
``smpp_router_``): dashboards and alert rules in ``config/`` are written against them.

Counting: each labelled child is looked up once and cached in a dict, so counting a
submit_sm costs a dict lookup and ``inc()``. Label values stay bounded: carriers come from
the config, statuses are command_status names (hex for codes the spec does not name, and
``other`` past `UNKNOWN_STATUS_MAX` of those), receipt stats are MDR status names.

State the daemon already holds (queue depth, in-doubt count, binds, health, window use,
throttled time, the MQTT backlog) is not pushed on every change: a sampler set with
`set_sampler()` is called at scrape time and its answer becomes gauges.

Serving: an asyncio server on the daemon's loop, not prometheus_client's
`start_http_server`. That one runs collection on its own thread, and the sampler reads
dicts the loop mutates (binds, queues): from another thread that is a data race
("dictionary changed size during iteration"). On the loop a scrape sees one consistent
state; it costs the loop the time of `generate_latest` once per scrape interval: 3-7 ms
for ~400 series lines here (prometheus_client formats ~10-20 µs per line). Rendering on
a worker thread after sampling on the loop was measured and did not shorten the loop's
longest stall: the formatting is pure Python and holds the GIL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Final

import structlog
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from adapters.smpp.constants import status_name
from router import status as mdr_status

log = structlog.get_logger("adapters.metrics")

PREFIX: Final = "smpp_router_"
#: `throttled_total{scope}`: which limiter held a message back (DESIGN.md, "throttle").
THROTTLE_SCOPES: Final = ("number", "carrier", "destination")
RELOAD_RESULTS: Final = ("ok", "error")
#: Distinct unnamed command_status codes kept as hex labels; beyond, ``other``. Vendor codes
#: (0x400-0x4FF) fit; a peer sending random statuses cannot grow the series without bound.
UNKNOWN_STATUS_MAX: Final = 300
OTHER: Final = "other"

#: submit_sm → submit_sm_resp: loopback SMSCs answer in ms, congested ones in seconds.
SUBMIT_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
#: accept → final receipt: seconds for a handset nearby, hours or days when it is off.
DELIVERY_BUCKETS: Final = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400, 172800)
#: One group commit of the store.
COMMIT_BUCKETS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1)

DEFAULT_ADDRESS: Final = "127.0.0.1:9464"
#: A scrape request is a request line and a few headers; anything longer is not Prometheus.
REQUEST_HEAD_MAX: Final = 8192
REQUEST_TIMEOUT_S: Final = 5.0


class Sample:
    """What the sampler reports at scrape time; every field is optional.

    `binds` maps (carrier, bind) — bind as ``<type>-<index>`` — to whether it is bound;
    `queue_depth` maps priority to accepted-but-unsent messages; `throttled_seconds` is how
    long each carrier has been throttled without a break (0 when it is not); the MQTT
    fields stay None when MQTT is not configured.
    """

    __slots__ = (
        "binds",
        "carrier_healthy",
        "in_doubt",
        "mqtt_backlog",
        "mqtt_dropped",
        "queue_depth",
        "throttled_seconds",
        "window_used",
    )

    def __init__(
        self,
        *,
        queue_depth: Mapping[int, int] | None = None,
        in_doubt: int | None = None,
        binds: Mapping[tuple[str, str], bool] | None = None,
        carrier_healthy: Mapping[str, bool] | None = None,
        window_used: Mapping[str, int] | None = None,
        throttled_seconds: Mapping[str, float] | None = None,
        mqtt_backlog: int | None = None,
        mqtt_dropped: int | None = None,
    ) -> None:
        self.queue_depth = queue_depth or {}
        self.in_doubt = in_doubt
        self.binds = binds or {}
        self.carrier_healthy = carrier_healthy or {}
        self.window_used = window_used or {}
        self.throttled_seconds = throttled_seconds or {}
        self.mqtt_backlog = mqtt_backlog
        self.mqtt_dropped = mqtt_dropped


Sampler = Callable[[], Sample]


class _SampledCollector:
    """Turns the sampler's answer into gauge families at scrape time."""

    def __init__(self) -> None:
        self.sampler: Sampler | None = None

    def describe(self) -> Iterable[Metric]:
        # Names only, so that registering never calls the sampler.
        return self._families(Sample())

    def collect(self) -> Iterable[Metric]:
        sample = Sample()
        if self.sampler is not None:
            try:
                sample = self.sampler()
            except Exception as exc:  # noqa: BLE001 - a broken sampler must not break the scrape
                log.warning("metrics sampler failed", error=repr(exc))
        return self._families(sample)

    @staticmethod
    def _families(s: Sample) -> Iterator[Metric]:
        g = GaugeMetricFamily(PREFIX + "queue_depth", "Accepted messages not yet sent, by priority.",
                              labels=["priority"])
        for priority, depth in sorted(s.queue_depth.items()):
            g.add_metric([str(priority)], depth)
        yield g
        g = GaugeMetricFamily(PREFIX + "in_doubt", "Messages sent without a response (UNKNOWN in_doubt).")
        if s.in_doubt is not None:
            g.add_metric([], s.in_doubt)
        yield g
        g = GaugeMetricFamily(PREFIX + "bind_up", "1 while the bind is bound.", labels=["carrier", "bind"])
        for (carrier, bind), up in sorted(s.binds.items()):
            g.add_metric([carrier, bind], 1.0 if up else 0.0)
        yield g
        yield _per_carrier("carrier_healthy", "1 while the carrier is usable (circuit closed, a bind up).",
                           {k: 1.0 if v else 0.0 for k, v in s.carrier_healthy.items()})
        yield _per_carrier("window_used", "Outstanding requests over all binds of the carrier.",
                           s.window_used)
        yield _per_carrier("carrier_throttled_seconds",
                           "How long the carrier has been throttling us without a break.",
                           s.throttled_seconds)
        g = GaugeMetricFamily(PREFIX + "mqtt_backlog", "Events waiting to be acknowledged by the broker.")
        if s.mqtt_backlog is not None:
            g.add_metric([], s.mqtt_backlog)
        yield g
        c = CounterMetricFamily(PREFIX + "mqtt_dropped", "Events not published: the buffer was full.")
        if s.mqtt_dropped is not None:
            c.add_metric([], s.mqtt_dropped)
        yield c


def _per_carrier(name: str, doc: str, values: Mapping[str, float]) -> GaugeMetricFamily:
    g = GaugeMetricFamily(PREFIX + name, doc, labels=["carrier"])
    for carrier, value in sorted(values.items()):
        g.add_metric([carrier], value)
    return g


class Metrics:
    """The router's metrics on a registry of their own; see the module docstring."""

    def __init__(self) -> None:
        # `*_created` series double the exposition and nothing here reads them. The switch
        # is process-wide in prometheus_client; this registry is the process's only one.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        r = self.registry = CollectorRegistry(auto_describe=True)

        def counter(name: str, doc: str, labels: Iterable[str] = ()) -> Counter:
            return Counter(PREFIX + name, doc, list(labels), registry=r)

        def histogram(name: str, doc: str, buckets: Iterable[float]) -> Histogram:
            return Histogram(PREFIX + name, doc, buckets=tuple(buckets), registry=r)

        self._submitted = counter("submitted_total", "submit_sm PDUs sent (message parts).", ["carrier"])
        self._submit_resp = counter("submit_resp_total", "submit_sm responses by command_status name.",
                                    ["carrier", "status"])
        self._receipts = counter("receipts_total", "Delivery receipts by the MDR status they map to.",
                                 ["carrier", "stat"])
        self._mdr = counter("mdr_total", "MDR status changes, by the status entered.", ["status"])
        self._failover = counter("failover_total", "Messages moved to another carrier.",
                                 ["from_carrier", "to_carrier"])
        self._throttled = counter("throttled_total", "Messages held back by a limiter.", ["scope"])
        self._reloads = counter("config_reloads_total", "Config reloads by result.", ["result"])
        self._bind_flaps = counter("bind_flaps_total", "Binds lost after having been bound.", ["carrier"])
        self._orphans = counter("orphan_receipts_total", "Receipts that matched no message.", ["carrier"])
        self._opt_outs = counter("opt_outs_total", "Opt-out events recorded.")
        self._opt_ins = counter("opt_ins_total", "Opt-in events recorded.")
        self._refused_opted_out = counter("refused_opted_out_total", "Submits refused: recipient opted out.")
        self._submit_latency = histogram("submit_latency_seconds", "submit_sm to submit_sm_resp.",
                                         SUBMIT_BUCKETS)
        self._delivery_latency = histogram("delivery_latency_seconds", "Accept to final receipt.",
                                           DELIVERY_BUCKETS)
        self._store_commit = histogram("store_commit_seconds", "One group commit of the store.",
                                       COMMIT_BUCKETS)
        self._sampled = _SampledCollector()
        r.register(self._sampled)

        self._c_submitted: dict[str, Any] = {}
        self._c_submit_resp: dict[tuple[str, int], Any] = {}
        self._unknown_statuses: set[int] = set()
        self._c_receipts: dict[tuple[str, str], Any] = {}
        self._c_failover: dict[tuple[str, str], Any] = {}
        self._c_bind_flaps: dict[str, Any] = {}
        self._c_orphans: dict[str, Any] = {}
        # Bounded label sets exist from the start, so that rate() sees their first increase.
        self._c_mdr = {s: self._mdr.labels(s) for s in sorted(mdr_status.ALL)}
        self._c_throttled = {s: self._throttled.labels(s) for s in THROTTLE_SCOPES}
        self._c_reloads = {True: self._reloads.labels("ok"), False: self._reloads.labels("error")}
        self._server: asyncio.Server | None = None
        self.port: int | None = None

    # -- hot path -----------------------------------------------------------------------

    def submitted(self, carrier: str, n: int = 1) -> None:
        """Count `n` submit_sm PDUs (parts) sent to `carrier`."""
        child = self._c_submitted.get(carrier)
        if child is None:
            child = self._c_submitted[carrier] = self._submitted.labels(carrier)
        child.inc(n)

    def submit_resp(self, carrier: str, command_status: int) -> None:
        """Count one submit_sm_resp (or generic_nack) by its command_status."""
        key = (carrier, command_status)
        child = self._c_submit_resp.get(key)
        if child is None:
            label = self._status_label(command_status)
            child = self._c_submit_resp[key] = self._submit_resp.labels(carrier, label)
        child.inc()

    def _status_label(self, code: int) -> str:
        name = status_name(code)
        if not name.startswith("0x"):
            return name
        if code not in self._unknown_statuses and len(self._unknown_statuses) >= UNKNOWN_STATUS_MAX:
            return OTHER
        self._unknown_statuses.add(code)
        return name

    def receipt(self, carrier: str, stat: str) -> None:
        """Count one receipt by the MDR status it maps to (SUBMITTED for intermediates);
        anything that is not an MDR status name counts as UNKNOWN, as it maps."""
        key = (carrier, stat)
        child = self._c_receipts.get(key)
        if child is None:
            label = stat if stat in mdr_status.ALL else mdr_status.UNKNOWN
            child = self._c_receipts[key] = self._receipts.labels(carrier, label)
        child.inc()

    def mdr(self, status: str) -> None:
        """Count one MDR entering `status`. Raises ValueError for a name that is no MDR status."""
        child = self._c_mdr.get(status)
        if child is None:
            raise ValueError(f"status: not an MDR status: {status!r}")
        child.inc()

    def failover(self, from_carrier: str, to_carrier: str) -> None:
        """Count one message moved from one carrier to the next."""
        key = (from_carrier, to_carrier)
        child = self._c_failover.get(key)
        if child is None:
            child = self._c_failover[key] = self._failover.labels(from_carrier, to_carrier)
        child.inc()

    def throttled(self, scope: str) -> None:
        """Count a message held back. Raises ValueError unless scope is number, carrier
        or destination."""
        child = self._c_throttled.get(scope)
        if child is None:
            raise ValueError(f"scope: must be one of {', '.join(THROTTLE_SCOPES)}, got {scope!r}")
        child.inc()

    def submit_latency(self, seconds: float) -> None:
        """Observe one submit_sm → resp time."""
        self._submit_latency.observe(seconds)

    def delivery_latency(self, seconds: float) -> None:
        """Observe one accept → final receipt time."""
        self._delivery_latency.observe(seconds)

    def store_commit(self, seconds: float) -> None:
        """Observe one group commit of the store."""
        self._store_commit.observe(seconds)

    # -- events -------------------------------------------------------------------------

    def bind_flap(self, carrier: str) -> None:
        """Count a bind of `carrier` lost after it had been bound."""
        child = self._c_bind_flaps.get(carrier)
        if child is None:
            child = self._c_bind_flaps[carrier] = self._bind_flaps.labels(carrier)
        child.inc()

    def orphan_receipt(self, carrier: str) -> None:
        """Count a receipt from `carrier` that matched no message."""
        child = self._c_orphans.get(carrier)
        if child is None:
            child = self._c_orphans[carrier] = self._orphans.labels(carrier)
        child.inc()

    def config_reload(self, ok: bool) -> None:
        """Count a config reload, applied (`ok`) or refused."""
        self._c_reloads[bool(ok)].inc()

    def opt_out(self, n: int = 1) -> None:
        self._opt_outs.inc(n)

    def opt_in(self, n: int = 1) -> None:
        self._opt_ins.inc(n)

    def refused_opted_out(self, n: int = 1) -> None:
        self._refused_opted_out.inc(n)

    def declare_carriers(self, carriers: Iterable[str]) -> None:
        """Create the per-carrier series at 0 (at start and after a reload), so that
        rate() and absent() work before a carrier's first event."""
        caches = (
            (self._c_submitted, self._submitted),
            (self._c_bind_flaps, self._bind_flaps),
            (self._c_orphans, self._orphans),
        )
        for carrier in carriers:
            for cache, metric in caches:
                if carrier not in cache:
                    cache[carrier] = metric.labels(carrier)

    def set_sampler(self, sampler: Sampler | None) -> None:
        """Read the gauges of state (queues, in-doubt, binds, health, window, throttled
        time, MQTT) from `sampler()` at every scrape. It runs on the loop serving /metrics;
        if it raises, that scrape has no such gauges and a warning is logged."""
        self._sampled.sampler = sampler

    def exposition(self) -> bytes:
        """The text exposition of every metric, as served on /metrics."""
        return generate_latest(self.registry)

    # -- HTTP -----------------------------------------------------------------------------

    async def serve(self, host_port: str = DEFAULT_ADDRESS) -> None:
        """Serve GET /metrics on `host_port` (port 0: any free port, then read `.port`).

        Raises ValueError naming `metrics` for a malformed address, OSError when the
        address cannot be bound, RuntimeError if already serving.
        """
        if self._server is not None:
            raise RuntimeError("metrics endpoint already serving")
        host, port = parse_host_port(host_port)
        self._server = await asyncio.start_server(self._handle, host, port, limit=REQUEST_HEAD_MAX)
        self.port = int(self._server.sockets[0].getsockname()[1])
        log.info("metrics endpoint listening", host=host, port=self.port)

    async def stop(self) -> None:
        """Stop serving; a scrape under way is answered or times out on its own."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT_S)
            writer.write(self._respond(head))
            await asyncio.wait_for(writer.drain(), REQUEST_TIMEOUT_S)
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ConnectionError, ValueError):
            pass  # not a scrape we can answer: just close
        finally:
            writer.close()

    def _respond(self, head: bytes) -> bytes:
        method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
        path = target.split("?", 1)[0]
        if method not in ("GET", "HEAD"):
            return _response(405, "text/plain", b"method not allowed\n", method, "Allow: GET, HEAD\r\n")
        if path != "/metrics":
            return _response(404, "text/plain", b"not found: try /metrics\n", method)
        return _response(200, CONTENT_TYPE_LATEST, self.exposition(), method)


_REASONS: Final = {200: "OK", 404: "Not Found", 405: "Method Not Allowed"}


def _response(code: int, ctype: str, body: bytes, method: str, extra: str = "") -> bytes:
    head = (
        f"HTTP/1.1 {code} {_REASONS[code]}\r\nContent-Type: {ctype}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n{extra}\r\n"
    ).encode("latin-1")
    return head if method == "HEAD" else head + body


def parse_host_port(value: str) -> tuple[str, int]:
    """``"127.0.0.1:9464"`` / ``"[::1]:9464"`` → (host, port).

    Raises ValueError naming `metrics` when it is not host:port with a port in 0–65535.
    """
    host, sep, port = value.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f'metrics: must be host:port, got "{value}"')
    return host, int(port)


__all__ = ["DEFAULT_ADDRESS", "THROTTLE_SCOPES", "Metrics", "Sample", "Sampler", "parse_host_port"]
