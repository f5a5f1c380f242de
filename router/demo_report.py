"""The demo's words: the progress line while it runs and the summary at the end.

Pure functions over MDR maps, counts and the Prometheus text the router served; the
caller passes times in. Nothing here reads a clock or touches a socket.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from router.status import FINAL

#: One sample line of the text exposition format: name, labels, value.
_SAMPLE = re.compile(r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)')
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')

BAR_WIDTH = 30


def progress_line(*, sent: int, total: int, final: int, accepted: int, phase: str, elapsed: float) -> str:
    """`[#########.....] 312/500 sent  280/300 final  budget killed  12.4 s` (one line, no newline)."""
    done = BAR_WIDTH * sent // total if total else BAR_WIDTH
    bar = "#" * done + "." * (BAR_WIDTH - done)
    return f"[{bar}] {sent}/{total} sent  {final}/{accepted} final  {phase:<22} {elapsed:5.1f} s"


def metric_samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """Every sample of metric `name` (e.g. `smpp_router_failover_total`) in a /metrics body."""
    out = []
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if m is None or m.group("name") != name:
            continue
        labels = dict(_LABEL.findall(m.group("labels") or ""))
        try:
            out.append((labels, float(m.group("value"))))
        except ValueError:
            continue
    return out


def percentile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank `q` percentile (0 < q <= 100) of `values`, None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f} ms"


def summarize(
    mdrs: Iterable[Mapping[str, Any]],
    *,
    parse_time: Callable[[str], float],
    refusals: Mapping[str, int],
    metrics_text: str,
    push_s: float,
    total_s: float,
) -> list[str]:
    """The summary's lines: statuses, carriers and cost, failovers, latency, throughput."""
    records = list(mdrs)
    lines = ["messages by final status:"]
    by_status: dict[str, int] = {}
    for m in records:
        key = m["status"] if not m.get("error") or m["status"] == "DELIVERED" else f"{m['status']} ({m['error']})"
        by_status[key] = by_status.get(key, 0) + 1
    for key in sorted(by_status, key=lambda k: (-by_status[k], k)):
        lines.append(f"  {key:<34} {by_status[key]:>6}")
    for code in sorted(refusals):
        lines.append(f"  {'refused ' + code:<34} {refusals[code]:>6}")
    lines += _carriers(records)
    lines += _failovers(metrics_text)
    lines += _latency(records, parse_time)
    segments = sum(int(m.get("segments") or 0) for m in records if m.get("carrier_ids"))
    lines.append(
        f"throughput: {len(records) / push_s:.1f} messages/s accepted while pushing "
        f"({len(records)} in {push_s:.1f} s); {segments} segments accepted by carriers; whole run {total_s:.1f} s"
    )
    return lines


def _carriers(records: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = ["per carrier:            messages  segments  delivered      cost"]
    rows: dict[str, list[float]] = {}
    for m in records:
        name = m.get("carrier") or "(none)"
        row = rows.setdefault(name, [0, 0, 0, 0.0])
        row[0] += 1
        row[1] += int(m.get("segments") or 0)
        row[2] += m["status"] == "DELIVERED"
        row[3] += float(m.get("cost") or 0.0)
    for name in sorted(rows):
        n, seg, ok, cost = rows[name]
        lines.append(f"  {name:<20} {int(n):>9} {int(seg):>9} {int(ok):>10} {cost:>9.4f}")
    total = sum(r[3] for r in rows.values())
    lines.append(f"  {'total':<20} {len(records):>9} {'':>9} {'':>10} {total:>9.4f}")
    return lines


def _failovers(metrics_text: str) -> list[str]:
    samples = metric_samples(metrics_text, "smpp_router_failover_total")
    total = sum(v for _, v in samples)
    parts = [f"{lab.get('from_carrier')}→{lab.get('to_carrier')} {v:g}" for lab, v in samples if v]
    return [f"failovers (failover_total): {total:g}" + (f"  ({', '.join(parts)})" if parts else "")]


def _latency(records: Sequence[Mapping[str, Any]], parse_time: Callable[[str], float]) -> list[str]:
    receipt, end_to_end = [], []
    for m in records:
        if m["status"] != "DELIVERED" or not m.get("done_at") or not m.get("submitted_at"):
            continue
        done = parse_time(m["done_at"])
        receipt.append(done - parse_time(m["submitted_at"]))
        end_to_end.append(done - parse_time(m["accepted_at"]))
    return [
        _pair("receipt latency (carrier accept → receipt)", receipt),
        _pair("delivery latency (router accept → receipt)", end_to_end),
    ]


def _pair(what: str, values: Sequence[float]) -> str:
    return f"{what}: p50 {_ms(percentile(values, 50))}, p99 {_ms(percentile(values, 99))}"


def count_final(statuses: Iterable[str]) -> int:
    """How many of `statuses` are final."""
    return sum(1 for s in statuses if s in FINAL)
