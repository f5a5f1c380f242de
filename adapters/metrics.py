"""Prometheus metrics: one registry, cheap counting on the hot path, /metrics over HTTP.

Every name below is part of the interface contract (DESIGN.md, "Metrics"; prefix
``smpp_router_``): dashboards and alert rules in ``config/`` are written against them.

Counting is plain arithmetic on dicts of ints (one per labelled counter, keyed by label
values) and lists of bucket counts (histograms, placed with `bisect`); a collector turns
them into metric families only when /metrics is scraped. prometheus_client's own
`Counter.inc()` and `Histogram.observe()` take a lock each time: with ~8 counts per message
that was ~6.6 µs per message (and ~8 % of the daemon's CPU under load). Here a count costs
0.1 µs (a histogram observation 0.18 µs), about half of it the method call itself. No lock
is needed: all of it lives on the event loop's thread.

Label values stay bounded: carriers come from the config, statuses are command_status
names (hex for codes the spec does not name, and ``other`` past `UNKNOWN_STATUS_MAX` of
those), receipt stats are MDR status names.

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
import math
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping
from itertools import accumulate
from typing import Final

import structlog
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

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


class _SampledCollector(Collector):
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


class _Histogram:
    """One unlabelled histogram as plain numbers: a count per bucket (not cumulative) and
    the sum. `bounds` ends with +Inf, so `bisect_left(bounds, v)` is v's bucket for every
    number but NaN: the first upper bound ``>= v``, Prometheus' ``le``."""

    __slots__ = ("bounds", "counts", "doc", "les", "name", "sum")

    def __init__(self, name: str, doc: str, buckets: Iterable[float]) -> None:
        self.name = PREFIX + name
        self.doc = doc
        self.bounds: tuple[float, ...] = (*(float(b) for b in buckets), math.inf)
        self.les = tuple(floatToGoString(b) for b in self.bounds)  # type: ignore[no-untyped-call]
        self.counts = [0] * len(self.bounds)
        self.sum = 0.0

    def family(self) -> HistogramMetricFamily:
        """The histogram as Prometheus exposes it: cumulative buckets, count and sum."""
        return HistogramMetricFamily(
            self.name, self.doc, buckets=list(zip(self.les, accumulate(self.counts))), sum_value=self.sum
        )


class _Rendered(Collector):
    """A prometheus_client collector that asks its owner for metric families at scrape time."""

    def __init__(self, families: Callable[[], Iterator[Metric]]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families()


def _counter(name: str, doc: str, labels: list[str],
             counts: Iterable[tuple[tuple[str, ...], int]]) -> CounterMetricFamily:
    c = CounterMetricFamily(PREFIX + name, doc, labels=labels)
    for values, n in counts:
        c.add_metric(values, n)
    return c


def _increment(n: int) -> int:
    """`n`, checked: a counter that went down would read as a reset to rate()."""
    if n < 0:
        raise ValueError(f"n: a counter cannot go down, got {n}")
    return n


class Metrics:
    """The router's metrics on a registry of their own; see the module docstring.

    Counts live in plain dicts of ints and lists of bucket counts, updated with ordinary
    arithmetic and rendered into metric families only when /metrics is scraped. No lock
    guards them, and none is needed: every method here, the sampler and the scrape itself
    run on the event loop's thread (the endpoint is served on the loop, see the module
    docstring). Calling a counting method from another thread is a bug.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        # Counters by label values, in first-seen order (the exposition's order).
        self._submitted: dict[str, int] = {}
        # Two-level dicts rather than tuple keys: building and hashing a tuple per count
        # cost more than the second lookup (~190 against ~110 ns a call).
        #: carrier → command_status → count, for codes that have a label of their own;
        #: the labels are in `_status_labels`, codes past the cap count in `_submit_resp_other`.
        self._submit_resp: dict[str, dict[int, int]] = {}
        self._submit_resp_other: dict[str, int] = {}
        self._status_labels: dict[int, str] = {}
        self._unknown_statuses: set[int] = set()
        #: carrier → MDR status → count; only MDR status names ever become keys.
        self._receipts: dict[str, dict[str, int]] = {}
        self._failover: dict[tuple[str, str], int] = {}
        self._bind_flaps: dict[str, int] = {}
        self._orphans: dict[str, int] = {}
        # Bounded label sets exist from the start, so that rate() sees their first increase.
        self._mdr = dict.fromkeys(sorted(mdr_status.ALL), 0)
        self._throttled = dict.fromkeys(THROTTLE_SCOPES, 0)
        self._reloads = dict.fromkeys(RELOAD_RESULTS, 0)
        self._opt_outs = 0
        self._opt_ins = 0
        self._refused_opted_out = 0
        self._submit_latency = _Histogram("submit_latency_seconds", "submit_sm to submit_sm_resp.",
                                          SUBMIT_BUCKETS)
        self._delivery_latency = _Histogram("delivery_latency_seconds", "Accept to final receipt.",
                                            DELIVERY_BUCKETS)
        self._store_commit = _Histogram("store_commit_seconds", "One group commit of the store.",
                                        COMMIT_BUCKETS)
        self.registry.register(_Rendered(self._families))
        self._sampled = _SampledCollector()
        self.registry.register(self._sampled)
        self._server: asyncio.Server | None = None
        self.port: int | None = None

    # -- hot path -----------------------------------------------------------------------
    # try/except KeyError rather than dict.get: once a label set has been seen (nearly
    # every call) the try costs nothing, and a miss goes to a slow path that may bound it.

    def submitted(self, carrier: str, n: int = 1) -> None:
        """Count `n` submit_sm PDUs (parts) sent to `carrier`. Raises ValueError for n < 0."""
        if n < 0:
            raise ValueError(f"n: a counter cannot go down, got {n}")
        try:
            self._submitted[carrier] += n
        except KeyError:
            self._submitted[carrier] = n

    def submit_resp(self, carrier: str, command_status: int) -> None:
        """Count one submit_sm_resp (or generic_nack) by its command_status."""
        try:
            self._submit_resp[carrier][command_status] += 1
        except KeyError:
            self._first_submit_resp(carrier, command_status)

    def _first_submit_resp(self, carrier: str, code: int) -> None:
        label = self._status_labels.get(code) or self._status_label(code)
        if label == OTHER:
            self._submit_resp_other[carrier] = self._submit_resp_other.get(carrier, 0) + 1
        else:
            self._status_labels[code] = label
            self._submit_resp.setdefault(carrier, {})[code] = 1

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
        try:
            self._receipts[carrier][stat] += 1
        except KeyError:
            # Unknown words are counted under UNKNOWN and never become keys themselves, so
            # a carrier inventing stats cannot grow the dict.
            counts = self._receipts.setdefault(carrier, {})
            label = stat if stat in mdr_status.ALL else mdr_status.UNKNOWN
            counts[label] = counts.get(label, 0) + 1

    def mdr(self, status: str) -> None:
        """Count one MDR entering `status`. Raises ValueError for a name that is no MDR status."""
        try:
            self._mdr[status] += 1
        except KeyError:
            raise ValueError(f"status: not an MDR status: {status!r}") from None

    def failover(self, from_carrier: str, to_carrier: str) -> None:
        """Count one message moved from one carrier to the next."""
        try:
            self._failover[from_carrier, to_carrier] += 1
        except KeyError:
            self._failover[from_carrier, to_carrier] = 1

    def throttled(self, scope: str) -> None:
        """Count a message held back. Raises ValueError unless scope is number, carrier
        or destination."""
        try:
            self._throttled[scope] += 1
        except KeyError:
            raise ValueError(f"scope: must be one of {', '.join(THROTTLE_SCOPES)}, got {scope!r}") from None

    # The three observers repeat two lines instead of calling a shared method: a call is
    # most of what they cost.

    def submit_latency(self, seconds: float) -> None:
        """Observe one submit_sm → resp time (a number of seconds, not NaN)."""
        h = self._submit_latency
        h.counts[bisect_left(h.bounds, seconds)] += 1
        h.sum += seconds

    def delivery_latency(self, seconds: float) -> None:
        """Observe one accept → final receipt time (a number of seconds, not NaN)."""
        h = self._delivery_latency
        h.counts[bisect_left(h.bounds, seconds)] += 1
        h.sum += seconds

    def store_commit(self, seconds: float) -> None:
        """Observe one group commit of the store (a number of seconds, not NaN)."""
        h = self._store_commit
        h.counts[bisect_left(h.bounds, seconds)] += 1
        h.sum += seconds

    # -- events -------------------------------------------------------------------------

    def bind_flap(self, carrier: str) -> None:
        """Count a bind of `carrier` lost after it had been bound."""
        self._bind_flaps[carrier] = self._bind_flaps.get(carrier, 0) + 1

    def orphan_receipt(self, carrier: str) -> None:
        """Count a receipt from `carrier` that matched no message."""
        self._orphans[carrier] = self._orphans.get(carrier, 0) + 1

    def config_reload(self, ok: bool) -> None:
        """Count a config reload, applied (`ok`) or refused."""
        self._reloads["ok" if ok else "error"] += 1

    def opt_out(self, n: int = 1) -> None:
        """Count `n` opt-outs recorded. Raises ValueError for n < 0."""
        self._opt_outs += _increment(n)

    def opt_in(self, n: int = 1) -> None:
        """Count `n` opt-ins recorded. Raises ValueError for n < 0."""
        self._opt_ins += _increment(n)

    def refused_opted_out(self, n: int = 1) -> None:
        """Count `n` submits refused because the recipient opted out. Raises ValueError for n < 0."""
        self._refused_opted_out += _increment(n)

    def declare_carriers(self, carriers: Iterable[str]) -> None:
        """Create the per-carrier series at 0 (at start and after a reload), so that
        rate() and absent() work before a carrier's first event."""
        for carrier in carriers:
            for counts in (self._submitted, self._bind_flaps, self._orphans):
                counts.setdefault(carrier, 0)

    def set_sampler(self, sampler: Sampler | None) -> None:
        """Read the gauges of state (queues, in-doubt, binds, health, window, throttled
        time, MQTT) from `sampler()` at every scrape. It runs on the loop serving /metrics;
        if it raises, that scrape has no such gauges and a warning is logged."""
        self._sampled.sampler = sampler

    def exposition(self) -> bytes:
        """The text exposition of every metric, as served on /metrics."""
        return generate_latest(self.registry)

    def _families(self) -> Iterator[Metric]:
        """The counted metrics as families, in the order they have always been exposed."""
        yield _counter("submitted_total", "submit_sm PDUs sent (message parts).", ["carrier"],
                       (((c,), n) for c, n in self._submitted.items()))
        by_label: dict[tuple[str, str], int] = {}
        for carrier, codes in self._submit_resp.items():
            for code, n in codes.items():
                key = (carrier, self._status_labels[code])
                by_label[key] = by_label.get(key, 0) + n
        for carrier, n in self._submit_resp_other.items():
            by_label[carrier, OTHER] = n
        yield _counter("submit_resp_total", "submit_sm responses by command_status name.",
                       ["carrier", "status"], by_label.items())
        yield _counter("receipts_total", "Delivery receipts by the MDR status they map to.",
                       ["carrier", "stat"],
                       (((c, stat), n) for c, stats in self._receipts.items() for stat, n in stats.items()))
        yield _counter("mdr_total", "MDR status changes, by the status entered.", ["status"],
                       (((s,), n) for s, n in self._mdr.items()))
        yield _counter("failover_total", "Messages moved to another carrier.",
                       ["from_carrier", "to_carrier"], self._failover.items())
        yield _counter("throttled_total", "Messages held back by a limiter.", ["scope"],
                       (((s,), n) for s, n in self._throttled.items()))
        yield _counter("config_reloads_total", "Config reloads by result.", ["result"],
                       (((r,), n) for r, n in self._reloads.items()))
        yield _counter("bind_flaps_total", "Binds lost after having been bound.", ["carrier"],
                       (((c,), n) for c, n in self._bind_flaps.items()))
        yield _counter("orphan_receipts_total", "Receipts that matched no message.", ["carrier"],
                       (((c,), n) for c, n in self._orphans.items()))
        yield CounterMetricFamily(PREFIX + "opt_outs_total", "Opt-out events recorded.", self._opt_outs)
        yield CounterMetricFamily(PREFIX + "opt_ins_total", "Opt-in events recorded.", self._opt_ins)
        yield CounterMetricFamily(PREFIX + "refused_opted_out_total", "Submits refused: recipient opted out.",
                                  self._refused_opted_out)
        yield self._submit_latency.family()
        yield self._delivery_latency.family()
        yield self._store_commit.family()

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
