"""How one message is laid out in the `mdr` table.

A row is narrow: the columns the store queries (`status`, `live`, `accepted_at`,
`done_at`) and one msgpack document with everything else. Every write of a message is one
INSERT or one UPDATE of five values; measured here, that is 2–3x cheaper in the writer
thread than a column per MDR field (fewer parameters to bind under the GIL, one small
record to rewrite), and the store is the largest share of the daemon's CPU per message.

Only the primary key and a partial index on live rows are kept: `accepted_at` follows the
id (ids only grow, across restarts too), so a time range is found by a binary search on
the id instead of a second index every insert would pay for.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import msgpack

from router.model import FINAL, UNKNOWN, Attempt, Message

#: Bumped when the layout changes; a store of another version is refused, not misread.
SCHEMA_VERSION = 2

MDR_SCHEMA = """
CREATE TABLE IF NOT EXISTS mdr (
    id INTEGER PRIMARY KEY,
    accepted_at REAL NOT NULL,
    status TEXT NOT NULL,
    live INTEGER NOT NULL,
    done_at REAL,
    doc BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS mdr_live ON mdr(live) WHERE live = 1;
"""

COLUMNS = "id, accepted_at, status, live, done_at, doc"
INSERT = "INSERT OR REPLACE INTO mdr (id, accepted_at, status, live, done_at, doc) VALUES (?,?,?,?,?,?)"
UPDATE = "UPDATE mdr SET status=?, live=?, done_at=?, doc=? WHERE id=?"

_pack = msgpack.Packer(use_bin_type=True).pack


def is_live(msg: Message) -> bool:
    """Whether the router must hold `msg` in memory after a restart.

    Unfinished messages are; so are UNKNOWN ones, which a late response or receipt may settle.
    """
    return msg.status not in FINAL or msg.status == UNKNOWN


def _doc(msg: Message) -> bytes:
    return _pack((
        msg.client_ref, msg.tags, msg.source, msg.dest, msg.text, msg.data, msg.data_coding,
        msg.encoding, msg.segments, msg.priority, msg.dlr, msg.expires_at, msg.carrier,
        msg.route, msg.cost, msg.dlr_stat, msg.error, msg.error_code, msg.carrier_ids,
        [a.as_tuple() for a in msg.attempts], msg.submitted_at, msg.part_status, msg.tried,
        msg.parts_sent,
    ))


def insert_row(msg: Message) -> tuple[Any, ...]:
    return (int(msg.id), msg.accepted_at, msg.status, 1 if is_live(msg) else 0, msg.done_at, _doc(msg))


def update_row(msg: Message) -> tuple[Any, ...]:
    return (msg.status, 1 if is_live(msg) else 0, msg.done_at, _doc(msg), int(msg.id))


def message_from_row(row: tuple[Any, ...]) -> Message:
    """Rebuild a `Message` from its stored row (columns in `COLUMNS` order)."""
    id_, accepted_at, status, _live, done_at, doc = row
    (client_ref, tags, source, dest, text, data, data_coding, encoding, segments, priority,
     dlr, expires_at, carrier, route, cost, dlr_stat, error, error_code, carrier_ids,
     attempts, submitted_at, part_status, tried, parts_sent) = msgpack.unpackb(doc, raw=False)
    msg = Message(
        str(id_), source, dest, text=text, data=data, data_coding=data_coding,
        encoding=encoding, segments=segments, priority=priority, dlr=bool(dlr),
        accepted_at=accepted_at, expires_at=expires_at, client_ref=client_ref, tags=tags,
        status=status,
    )
    msg.carrier, msg.route, msg.cost, msg.dlr_stat = carrier, route, cost, dlr_stat
    msg.error, msg.error_code = error, error_code
    msg.carrier_ids = list(carrier_ids)
    msg.attempts = [Attempt.from_tuple(t) for t in attempts]
    msg.submitted_at, msg.done_at = submitted_at, done_at
    msg.part_status, msg.tried, msg.parts_sent = list(part_status), list(tried), parts_sent
    msg.stored = True
    return msg


def mdr_from_row(row: tuple[Any, ...]) -> dict[str, Any]:
    """The public MDR of a stored row."""
    return message_from_row(row).to_mdr()


def first_id_at(conn: sqlite3.Connection, since: float) -> int:
    """The smallest id accepted at or after `since` (ids grow with time), or past the end.

    A binary search over primary-key lookups: O(log n) reads, no index on accepted_at.
    """
    row = conn.execute("SELECT MIN(id), MAX(id) FROM mdr").fetchone()
    lo, hi = row if row and row[0] is not None else (1, 0)
    end = hi + 1
    while lo <= hi:
        mid = (lo + hi) // 2
        hit = conn.execute("SELECT id, accepted_at FROM mdr WHERE id >= ? ORDER BY id LIMIT 1", (mid,)).fetchone()
        if hit is None:
            hi = mid - 1
        elif hit[1] >= since:
            end = min(end, hit[0])
            hi = mid - 1
        else:
            lo = hit[0] + 1
    return end
