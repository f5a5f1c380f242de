"""Writing records out as JSON lines or CSV (`smpp-router mdr`, `smpp-router consent`)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

MDR_FIELDS = (
    "id", "client_ref", "tags", "from", "to", "carrier", "route", "segments", "encoding",
    "cost", "status", "dlr_stat", "error", "error_code", "carrier_ids", "attempts",
    "accepted_at", "submitted_at", "done_at",
)

FORMATS = ("jsonl", "csv")


def write_records(
    records: Iterable[dict[str, Any]], out: TextIO, fmt: str, fields: Sequence[str] = MDR_FIELDS
) -> int:
    """Write `records` to `out` in `fmt` (jsonl or csv); returns how many were written.

    CSV cells that hold lists or maps (tags, carrier_ids, attempts) carry compact JSON, so a
    spreadsheet shows them and a script can still parse them. Raises ValueError for an
    unknown format.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format: must be one of {', '.join(FORMATS)}, got {fmt!r}")
    n = 0
    if fmt == "jsonl":
        for rec in records:
            out.write(json.dumps(rec, ensure_ascii=False, separators=(",", ":")))
            out.write("\n")
            n += 1
        return n
    writer = csv.writer(out)
    writer.writerow(fields)
    for rec in records:
        writer.writerow([_cell(rec.get(f)) for f in fields])
        n += 1
    return n


def _cell(value: Any) -> Any:
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if value is None:
        return ""
    return value
