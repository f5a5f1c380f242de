"""`smpp-router status`: the `stats` reply as a table an operator reads at a glance."""

from __future__ import annotations

import time
from typing import Any


def _since(ts: Any, now: float) -> str:
    if not isinstance(ts, (int, float)) or ts <= 0:
        return "-"
    age = max(0.0, now - ts)
    if age < 120:
        return f"{age:.0f}s"
    if age < 7200:
        return f"{age / 60:.0f}m"
    return f"{age / 3600:.1f}h"


def _num(value: Any, fmt: str) -> str:
    return format(value, fmt) if isinstance(value, (int, float)) else "-"


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]


def render_stats(stats: dict[str, Any], now: float | None = None) -> str:
    """The carriers, their binds and the queues, as plain text."""
    now = time.time() if now is None else now
    lines: list[str] = []
    rows = [["CARRIER", "HEALTHY", "CIRCUIT", "BINDS UP", "WINDOW", "TPS NOW/LIMIT", "ERR RATE", "LATENCY"]]
    bind_rows = [["CARRIER", "BIND", "STATE", "SINCE"]]
    for c in stats.get("carriers", []):
        binds = c.get("binds", [])
        up = sum(1 for b in binds if str(b.get("state", "")).startswith("bound"))
        rows.append([
            str(c.get("name")),
            "yes" if c.get("healthy") else "NO",
            str(c.get("circuit", "-")),
            f"{up}/{len(binds)}",
            str(c.get("window_used", "-")),
            f"{_num(c.get('tps_now'), '.1f')}/{_num(c.get('tps_limit'), 'g')}",
            _num(c.get("error_rate"), ".1%"),
            f"{_num(c.get('latency_ms'), '.1f')} ms",
        ])
        for b in binds:
            bind_rows.append([
                str(c.get("name")), f"{b.get('type')}-{b.get('index')}", str(b.get("state")),
                _since(b.get("since"), now),
            ])
    lines += _table(rows)
    if len(bind_rows) > 1:
        lines.append("")
        lines += _table(bind_rows)
    q = stats.get("queues", {})
    depth = q.get("depth_by_priority", {})
    lines.append("")
    lines.append(
        f"queued: priority 1: {depth.get('1', 0)}, priority 0: {depth.get('0', 0)};"
        f" in doubt: {q.get('in_doubt', 0)}"
    )
    top = q.get("top_sources") or []
    if top:
        lines.append("top sources by backlog: " + ", ".join(f"{t['number']} ({t['depth']})" for t in top))
    comp = stats.get("compliance")
    if comp:
        lines.append(
            f"opt-out list: {comp.get('list_size', 0)} entries; opt-outs {comp.get('opt_outs_total', 0)},"
            f" opt-ins {comp.get('opt_ins_total', 0)}, submits refused {comp.get('refused_opted_out_total', 0)}"
        )
    return "\n".join(lines)
