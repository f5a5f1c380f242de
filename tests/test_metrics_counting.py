"""The metrics' own counting: it exposes exactly what prometheus_client's Counter and
Histogram would for the same events, puts values on bucket bounds where Prometheus does,
refuses counters going down, and keeps its memory bounded whatever peers send."""

from __future__ import annotations

import gc
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from adapters.metrics import COMMIT_BUCKETS, DELIVERY_BUCKETS, SUBMIT_BUCKETS, Metrics
from adapters.smpp.constants import status_name
from router import status
from tests.test_metrics import samples, value

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

CARRIERS = ("acme", "globex")
#: Named codes, a vendor code and an unnamed one: all below the hex cap.
CODES = (0x00000000, 0x00000058, 0x00000014, 0x00000401, 0x000000FE)
STATS = (status.DELIVERED, status.UNDELIVERABLE, status.SUBMITTED, "DELIVRD", "weird")

event = st.one_of(
    st.tuples(st.just("submitted"), st.sampled_from(CARRIERS), st.integers(0, 10)),
    st.tuples(st.just("submit_resp"), st.sampled_from(CARRIERS), st.sampled_from(CODES)),
    st.tuples(st.just("receipt"), st.sampled_from(CARRIERS), st.sampled_from(STATS)),
    st.tuples(st.just("mdr"), st.sampled_from(sorted(status.ALL))),
    st.tuples(st.just("failover"), st.sampled_from(CARRIERS), st.sampled_from(CARRIERS)),
    # Bounds themselves, values between them and beyond the last one.
    *(
        st.tuples(st.just(name), st.one_of(st.sampled_from(buckets), st.floats(0, 2 * buckets[-1])))
        for name, buckets in (
            ("submit_latency", SUBMIT_BUCKETS),
            ("delivery_latency", DELIVERY_BUCKETS),
            ("store_commit", COMMIT_BUCKETS),
        )
    ),
)


class Reference:
    """The same metrics counted by prometheus_client's own Counter and Histogram."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        p = "smpp_router_"
        self.submitted = Counter(p + "submitted_total", "", ["carrier"], registry=r)
        self.submit_resp = Counter(p + "submit_resp_total", "", ["carrier", "status"], registry=r)
        self.receipt = Counter(p + "receipts_total", "", ["carrier", "stat"], registry=r)
        self.mdr = Counter(p + "mdr_total", "", ["status"], registry=r)
        self.failover = Counter(p + "failover_total", "", ["from_carrier", "to_carrier"], registry=r)
        self.histograms = {
            "submit_latency": Histogram(p + "submit_latency_seconds", "", buckets=SUBMIT_BUCKETS, registry=r),
            "delivery_latency": Histogram(p + "delivery_latency_seconds", "", buckets=DELIVERY_BUCKETS,
                                          registry=r),
            "store_commit": Histogram(p + "store_commit_seconds", "", buckets=COMMIT_BUCKETS, registry=r),
        }
        for s in status.ALL:
            self.mdr.labels(s)

    def apply(self, ev: tuple) -> None:  # type: ignore[type-arg]
        kind, *args = ev
        if kind == "submitted":
            self.submitted.labels(args[0]).inc(args[1])
        elif kind == "submit_resp":
            self.submit_resp.labels(args[0], status_name(args[1])).inc()
        elif kind == "receipt":
            self.receipt.labels(args[0], args[1] if args[1] in status.ALL else status.UNKNOWN).inc()
        elif kind == "mdr":
            self.mdr.labels(args[0]).inc()
        elif kind == "failover":
            self.failover.labels(*args).inc()
        else:
            self.histograms[kind].observe(args[0])

    def samples(self) -> Samples:
        out = {}
        for fam in text_string_to_metric_families(generate_latest(self.registry).decode()):
            for s in fam.samples:
                if not s.name.endswith("_created"):
                    out[(s.name, frozenset(s.labels.items()))] = s.value
        return out


@settings(max_examples=60, deadline=None)
@given(st.lists(event, max_size=60))
def test_exposes_what_prometheus_client_would(events: list[tuple]) -> None:  # type: ignore[type-arg]
    ref, m = Reference(), Metrics()
    for ev in events:
        ref.apply(ev)
        getattr(m, ev[0])(*ev[1:])
    want = ref.samples()
    got = {k: v for k, v in samples(m).items() if k[0] in {name for name, _ in want}}
    assert got == want


@pytest.mark.parametrize(
    ("seconds", "first_le"),
    [(0.0, "0.005"), (0.005, "0.005"), (0.0051, "0.01"), (1, "1.0"), (60, "60.0"), (60.5, "+Inf"),
     (1e12, "+Inf")],
)
def test_a_value_on_a_bound_counts_in_that_bucket(seconds: float, first_le: str) -> None:
    m = Metrics()
    m.submit_latency(seconds)
    les = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0", "30.0",
           "60.0", "+Inf"]
    got = [value(m, "smpp_router_submit_latency_seconds_bucket", le=le) for le in les]
    first = les.index(first_le)
    assert got == [0.0] * first + [1.0] * (len(les) - first)
    assert value(m, "smpp_router_submit_latency_seconds_count") == 1
    assert value(m, "smpp_router_submit_latency_seconds_sum") == seconds


def test_observations_add_up() -> None:
    m = Metrics()
    for s in (0.5, 2.0, 30.0, 3600.0, 200000.0):
        m.delivery_latency(s)
    assert value(m, "smpp_router_delivery_latency_seconds_bucket", le="1.0") == 1
    assert value(m, "smpp_router_delivery_latency_seconds_bucket", le="30.0") == 3
    assert value(m, "smpp_router_delivery_latency_seconds_bucket", le="172800.0") == 4
    assert value(m, "smpp_router_delivery_latency_seconds_count") == 5
    assert value(m, "smpp_router_delivery_latency_seconds_sum") == pytest.approx(203632.5)


@pytest.mark.parametrize("call", ["submitted", "opt_out", "opt_in", "refused_opted_out"])
def test_a_counter_cannot_go_down(call: str) -> None:
    m = Metrics()
    args = ("acme", -1) if call == "submitted" else (-1,)
    with pytest.raises(ValueError, match="n: a counter cannot go down, got -1"):
        getattr(m, call)(*args)
    getattr(m, call)(*args[:-1], 2)
    name = {"submitted": "submitted_total", "opt_out": "opt_outs_total", "opt_in": "opt_ins_total",
            "refused_opted_out": "refused_opted_out_total"}[call]
    labels = {"carrier": "acme"} if call == "submitted" else {}
    assert value(m, "smpp_router_" + name, **labels) == 2


def test_counts_survive_a_scrape_and_go_on() -> None:
    m = Metrics()
    m.submit_resp("acme", 0)
    m.submit_latency(0.02)
    assert value(m, "smpp_router_submit_resp_total", carrier="acme", status="ESME_ROK") == 1
    m.submit_resp("acme", 0)
    m.submit_latency(0.02)
    assert value(m, "smpp_router_submit_resp_total", carrier="acme", status="ESME_ROK") == 2
    assert value(m, "smpp_router_submit_latency_seconds_count") == 2


def retained_bytes(run: object) -> int:
    """Memory still allocated after `run()` returns (its garbage collected)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        run()  # type: ignore[operator]
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def test_invented_receipt_words_and_status_codes_keep_memory_bounded() -> None:
    m = Metrics()
    for code in range(0x400, 0x800):  # past the cap of hex labels
        m.submit_resp("acme", code)
    m.receipt("acme", "warm-up")

    def hostile() -> None:
        for i in range(20_000):
            m.receipt("acme", f"STAT{i}")
            m.submit_resp("acme", 0x10000 + i)

    # Caching a labelled child per (carrier, word) or (carrier, code) kept ~5 MB here.
    assert retained_bytes(hostile) < 16_384
    assert value(m, "smpp_router_receipts_total", carrier="acme", stat="UNKNOWN") == 20_001
    assert value(m, "smpp_router_submit_resp_total", carrier="acme", status="other") == 0x400 - 300 + 20_000
