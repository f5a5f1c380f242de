"""The metrics adapter: every contract metric with its labels, bounded labels, the sampler,
and /metrics served over HTTP on the loop."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from adapters.metrics import UNKNOWN_STATUS_MAX, Metrics, Sample, parse_host_port
from router import status

#: DESIGN.md "Metrics" and the ops additions: sample name → its label names.
CONTRACT: dict[str, set[str]] = {
    "smpp_router_submitted_total": {"carrier"},
    "smpp_router_submit_resp_total": {"carrier", "status"},
    "smpp_router_receipts_total": {"carrier", "stat"},
    "smpp_router_mdr_total": {"status"},
    "smpp_router_bind_up": {"carrier", "bind"},
    "smpp_router_carrier_healthy": {"carrier"},
    "smpp_router_failover_total": {"from_carrier", "to_carrier"},
    "smpp_router_throttled_total": {"scope"},
    "smpp_router_queue_depth": {"priority"},
    "smpp_router_in_doubt": set(),
    "smpp_router_submit_latency_seconds_bucket": {"le"},
    "smpp_router_delivery_latency_seconds_bucket": {"le"},
    "smpp_router_config_reloads_total": {"result"},
    "smpp_router_bind_flaps_total": {"carrier"},
    "smpp_router_window_used": {"carrier"},
    "smpp_router_carrier_throttled_seconds": {"carrier"},
    "smpp_router_orphan_receipts_total": {"carrier"},
    "smpp_router_store_commit_seconds_bucket": {"le"},
    "smpp_router_mqtt_backlog": set(),
    "smpp_router_mqtt_dropped_total": set(),
    "smpp_router_opt_outs_total": set(),
    "smpp_router_opt_ins_total": set(),
    "smpp_router_refused_opted_out_total": set(),
}


def full_sample() -> Sample:
    return Sample(
        queue_depth={0: 120, 1: 3},
        in_doubt=2,
        binds={("acme", "transceiver-0"): True, ("acme", "transceiver-1"): False},
        carrier_healthy={"acme": True, "globex": False},
        window_used={"acme": 17},
        throttled_seconds={"acme": 0.0, "globex": 42.5},
        mqtt_backlog=9,
        mqtt_dropped=4,
    )


def exercised() -> Metrics:
    """Metrics after one call of everything, as a running daemon would make them."""
    m = Metrics()
    m.declare_carriers(["acme", "globex"])
    m.submitted("acme", 3)
    m.submit_resp("acme", 0x00000000)
    m.submit_resp("acme", 0x00000058)
    m.submit_resp("globex", 0x00000401)
    m.receipt("acme", status.DELIVERED)
    m.receipt("acme", "NOSUCH")  # not an MDR status name: counted as UNKNOWN
    m.mdr(status.SUBMITTED)
    m.failover("globex", "acme")
    m.throttled("number")
    m.submit_latency(0.012)
    m.delivery_latency(4.2)
    m.store_commit(0.002)
    m.config_reload(True)
    m.config_reload(False)
    m.bind_flap("acme")
    m.orphan_receipt("globex")
    m.opt_out()
    m.opt_in()
    m.refused_opted_out()
    m.set_sampler(full_sample)
    return m


def samples(m: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the text exposition, parsed back by prometheus_client's own parser."""
    out = {}
    for fam in text_string_to_metric_families(m.exposition().decode()):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(m: Metrics, name: str, **labels: str) -> float:
    return samples(m)[(name, frozenset(labels.items()))]


def test_every_contract_metric_exists_with_its_labels() -> None:
    names: dict[str, set[str]] = {}
    for name, pairs in samples(exercised()):
        names.setdefault(name, set()).update(k for k, _ in pairs)
    for name, labels in CONTRACT.items():
        assert name in names, name
        assert names[name] == labels, name


def test_counting_reaches_the_exposition() -> None:
    m = exercised()
    assert value(m, "smpp_router_submitted_total", carrier="acme") == 3
    assert value(m, "smpp_router_submitted_total", carrier="globex") == 0  # declared
    assert value(m, "smpp_router_submit_resp_total", carrier="acme", status="ESME_RTHROTTLED") == 1
    assert value(m, "smpp_router_submit_resp_total", carrier="globex", status="0x00000401") == 1
    assert value(m, "smpp_router_receipts_total", carrier="acme", stat="UNKNOWN") == 1
    assert value(m, "smpp_router_mdr_total", status="SUBMITTED") == 1
    assert value(m, "smpp_router_mdr_total", status="DELIVERED") == 0  # every status from the start
    assert value(m, "smpp_router_throttled_total", scope="destination") == 0
    assert value(m, "smpp_router_config_reloads_total", result="error") == 1
    assert value(m, "smpp_router_failover_total", from_carrier="globex", to_carrier="acme") == 1
    assert value(m, "smpp_router_submit_latency_seconds_bucket", le="0.025") == 1
    assert value(m, "smpp_router_submit_latency_seconds_bucket", le="0.01") == 0
    assert value(m, "smpp_router_delivery_latency_seconds_sum") == pytest.approx(4.2)
    for _ in range(4):
        m.submitted("acme")
    assert value(m, "smpp_router_submitted_total", carrier="acme") == 7


def test_sampled_gauges_are_read_at_scrape_time() -> None:
    m = exercised()
    depth = {0: 120}
    m.set_sampler(lambda: Sample(queue_depth=depth, in_doubt=len(depth)))
    assert value(m, "smpp_router_queue_depth", priority="0") == 120
    depth[0] = 5
    depth[1] = 7
    assert value(m, "smpp_router_queue_depth", priority="0") == 5
    assert value(m, "smpp_router_queue_depth", priority="1") == 7
    assert value(m, "smpp_router_in_doubt") == 2
    m.set_sampler(full_sample)
    assert value(m, "smpp_router_bind_up", carrier="acme", bind="transceiver-1") == 0
    assert value(m, "smpp_router_carrier_healthy", carrier="globex") == 0
    assert value(m, "smpp_router_carrier_throttled_seconds", carrier="globex") == 42.5
    assert value(m, "smpp_router_mqtt_dropped_total") == 4


def test_a_failing_sampler_costs_its_gauges_not_the_scrape() -> None:
    m = exercised()

    def broken() -> Sample:
        raise RuntimeError("dict changed size")

    m.set_sampler(broken)
    with capture_logs() as logs:
        got = samples(m)
    assert ("smpp_router_submitted_total", frozenset({("carrier", "acme")})) in got
    assert not any(name == "smpp_router_in_doubt" for name, _ in got)
    assert [e["event"] for e in logs] == ["metrics sampler failed"]


def test_status_labels_are_bounded() -> None:
    m = Metrics()
    for code in range(0x400, 0x400 + UNKNOWN_STATUS_MAX + 50):
        m.submit_resp("acme", code)
    m.submit_resp("acme", 0x14)
    labels = {
        dict(lbl)["status"] for name, lbl in samples(m) if name == "smpp_router_submit_resp_total"
    }
    assert "ESME_RMSGQFUL" in labels and "0x00000400" in labels and "other" in labels
    assert len(labels) == UNKNOWN_STATUS_MAX + 2
    assert value(m, "smpp_router_submit_resp_total", carrier="acme", status="other") == 50
    # A code first seen as hex keeps its label after the cap is reached.
    m.submit_resp("acme", 0x400)
    assert value(m, "smpp_router_submit_resp_total", carrier="acme", status="0x00000400") == 2


def test_receipt_stats_are_mdr_statuses_only() -> None:
    m = Metrics()
    for word in ("DELIVRD", "weird", "x" * 50, status.EXPIRED, status.SUBMITTED):
        m.receipt("acme", word)
    stats = {dict(lbl)["stat"] for name, lbl in samples(m) if name == "smpp_router_receipts_total"}
    assert stats == {"UNKNOWN", "EXPIRED", "SUBMITTED"} and stats <= status.ALL


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m: m.throttled("sender"), "scope: must be one of number, carrier, destination"),
        (lambda m: m.mdr("DELIVRD"), "status: not an MDR status"),
    ],
)
def test_bad_label_values_name_the_field(call: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call(Metrics())


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("127.0.0.1:9464", ("127.0.0.1", 9464)), ("[::1]:0", ("::1", 0)), ("localhost:80", ("localhost", 80))],
)
def test_host_port(text: str, parsed: tuple[str, int]) -> None:
    assert parse_host_port(text) == parsed


@pytest.mark.parametrize("text", ["9464", ":9464", "h:", "h:99999", "h:x"])
def test_bad_host_port(text: str) -> None:
    with pytest.raises(ValueError, match="metrics: must be host:port"):
        parse_host_port(text)


def test_two_instances_do_not_collide() -> None:
    a, b = Metrics(), Metrics()  # a registry each: tests and reloads can build another
    a.submitted("acme")
    assert value(a, "smpp_router_submitted_total", carrier="acme") == 1
    assert ("smpp_router_submitted_total", frozenset({("carrier", "acme")})) not in samples(b)


# -- HTTP -------------------------------------------------------------------------------


async def http(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 5)  # the server closes after one answer
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    return int(status_line.split()[1]), headers, body


async def test_metrics_endpoint_serves_the_registry() -> None:
    m = exercised()
    await m.serve("127.0.0.1:0")
    try:
        assert m.port
        code, headers, body = await http(m.port, b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n")
        assert code == 200
        assert headers["content-type"].startswith("text/plain")
        assert int(headers["content-length"]) == len(body)
        assert b'smpp_router_submitted_total{carrier="acme"} 3.0' in body
        assert b'smpp_router_queue_depth{priority="0"} 120.0' in body
        families = {f.name for f in text_string_to_metric_families(body.decode())}
        wanted = {"smpp_router_submitted", "smpp_router_in_doubt", "smpp_router_submit_latency_seconds"}
        assert wanted <= families

        code, headers, body = await http(m.port, b"HEAD /metrics?x=1 HTTP/1.1\r\n\r\n")
        assert code == 200 and body == b"" and int(headers["content-length"]) > 1000
        assert (await http(m.port, b"GET / HTTP/1.1\r\n\r\n"))[0] == 404
        code, headers, _ = await http(m.port, b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
        assert code == 405 and headers["allow"] == "GET, HEAD"
    finally:
        await m.stop()


async def test_garbage_and_oversized_requests_are_closed_and_serving_goes_on() -> None:
    m = Metrics()
    await m.serve("127.0.0.1:0")
    try:
        assert m.port
        for junk in (b"\x16\x03\x01\x02\x00" + b"\x00" * 300 + b"\r\n\r\n", b"GET /" + b"a" * 20000):
            reader, writer = await asyncio.open_connection("127.0.0.1", m.port)
            writer.write(junk)
            await writer.drain()
            assert await asyncio.wait_for(reader.read(), 5) == b""  # closed, no answer
            writer.close()
        assert (await http(m.port, b"GET /metrics HTTP/1.0\r\n\r\n"))[0] == 200
    finally:
        await m.stop()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", m.port)


async def test_serve_twice_and_bad_address() -> None:
    m = Metrics()
    with pytest.raises(ValueError, match="metrics: must be host:port"):
        await m.serve("nowhere")
    await m.serve("127.0.0.1:0")
    try:
        with pytest.raises(RuntimeError, match="already serving"):
            await m.serve("127.0.0.1:0")
    finally:
        await m.stop()
