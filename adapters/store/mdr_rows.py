"""How one message is laid out in the `mdr` table.

A row is narrow: the columns the store queries (`status`, `live`, `accepted_at`,
`done_at`) and one msgpack document with everything else. Measured here, that is 2–3x
cheaper in the writer thread than a column per MDR field (fewer parameters to bind under
the GIL, one small record to rewrite), and the store is the largest share of the daemon's
CPU per message.

A batch is written as one multi-row `INSERT OR REPLACE` statement per CHUNK rows
(`write_batch`), not one execution per row. The sqlite3 module releases the GIL around every step and needs it
back to bind the next row; while the event loop thread is busy each take-back waits for
its switch interval (5 ms), so 200 rows one by one took ~280 ms against ~2 ms as one
statement (measured here with a busy loop thread). The same statement serves a new row
and a changed one (REPLACE costs what an UPDATE does here, ~3.5 µs a row).

Only the primary key and a partial index on live rows are kept: `accepted_at` follows the
id (ids only grow, across restarts too), so a time range is found by a binary search on
the id instead of a second index every insert would pay for.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Collection
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
_WRITE = "INSERT OR REPLACE INTO mdr (id, accepted_at, status, live, done_at, doc) VALUES "

#: Rows per statement at most (6 parameters each, far below SQLite's 32,766): a batch is
#: one statement per CHUNK rows, each statement one wait for the GIL. The writer's
#: statement cache holds one statement per size (see `STATEMENT_CACHE`).
CHUNK = 256
#: Statements the writer connection keeps compiled: every size up to CHUNK, and the rest.
STATEMENT_CACHE = CHUNK + 64

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


def row(msg: Message) -> tuple[Any, ...]:
    """The row of `msg`, in `COLUMNS` order."""
    return (int(msg.id), msg.accepted_at, msg.status, 1 if is_live(msg) else 0, msg.done_at, _doc(msg))


@functools.cache
def write_sql(n: int) -> str:
    """The statement writing `n` rows (new or changed)."""
    return _WRITE + ",".join(["(?,?,?,?,?,?)"] * n)


def chunk_sizes(n: int) -> list[int]:
    """How `n` rows are cut into statements: full CHUNKs, then the rest in one."""
    sizes = [CHUNK] * (n // CHUNK)
    if n % CHUNK:
        sizes.append(n % CHUNK)
    return sizes


def write_batch(msgs: Collection[Message]) -> list[tuple[str, list[Any]]]:
    """The statements (SQL, flat parameters) writing every message of `msgs`."""
    out: list[tuple[str, list[Any]]] = []
    it = iter(msgs)
    for size in chunk_sizes(len(msgs)):
        params: list[Any] = []
        extend = params.extend
        for _ in range(size):
            extend(row(next(it)))
        out.append((write_sql(size), params))
    return out


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
