"""The embedded store: one SQLite database in WAL mode, written by one thread.

Theory of operation. The event loop never waits on SQLite. `save(msg)` puts the message in
a dirty map (keyed by id, so a message changed three times before a commit is written once)
and schedules a flush for the end of the loop's current pass. A flush snapshots the dirty
messages into row tuples on the loop thread and hands the batch to the writer thread, which
commits it in one transaction and resolves that batch's future back on the loop. Only one
batch is in flight: whatever is saved meanwhile forms the next batch, so batches grow with
load and the cost of a commit is shared by everything in it (group commit).

Durability: `journal_mode=WAL` and `synchronous=NORMAL`. A committed transaction survives a
crash or kill -9 of the process (the WAL is in the OS page cache); after a power loss or OS
crash the last transactions before it may be rolled back, never corrupted. The daemon
acknowledges a submit only after the batch holding it resolves.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from adapters.store.mdr_rows import (
    COLUMNS,
    MDR_SCHEMA,
    SCHEMA_VERSION,
    STATEMENT_CACHE,
    first_id_at,
    is_live,
    mdr_from_row,
    message_from_row,
    write_batch,
)
from router.model import Message
from router.ports import StoreError

SCHEMA = MDR_SCHEMA + """
CREATE TABLE IF NOT EXISTS mo (
    id INTEGER PRIMARY KEY,
    carrier TEXT NOT NULL,
    source TEXT NOT NULL,
    dest TEXT NOT NULL,
    text TEXT,
    data BLOB,
    data_coding INTEGER,
    received_at REAL NOT NULL,
    parts INTEGER NOT NULL,
    partial INTEGER NOT NULL,
    keyword TEXT,
    action TEXT
);
CREATE INDEX IF NOT EXISTS mo_received ON mo(received_at);
CREATE TABLE IF NOT EXISTS receipt (
    carrier TEXT NOT NULL,
    carrier_id TEXT,
    stat TEXT,
    err TEXT,
    message_state INTEGER,
    source TEXT,
    dest TEXT,
    text TEXT,
    received_at REAL NOT NULL,
    outcome TEXT NOT NULL,
    raw BLOB
);
CREATE INDEX IF NOT EXISTS receipt_received ON receipt(received_at);
CREATE TABLE IF NOT EXISTS consent (
    id INTEGER PRIMARY KEY,
    recipient TEXT NOT NULL,
    scope TEXT NOT NULL,
    action TEXT NOT NULL,
    keyword TEXT,
    source TEXT NOT NULL,
    at REAL NOT NULL,
    carrier TEXT,
    mo_id TEXT
);
CREATE INDEX IF NOT EXISTS consent_recipient ON consent(recipient, scope);
CREATE INDEX IF NOT EXISTS consent_at ON consent(at);
CREATE TABLE IF NOT EXISTS optout (
    scope TEXT NOT NULL,
    recipient TEXT NOT NULL,
    PRIMARY KEY (scope, recipient)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS resubscribed (
    scope TEXT NOT NULL,
    recipient TEXT NOT NULL,
    PRIMARY KEY (recipient, scope)
) WITHOUT ROWID;
"""

# Consent: `consent` is the audit log, never pruned; `optout` and `resubscribed` are the
# state router.optout.OptOutList holds in memory, changed by the same statements in the
# same transaction, so a start loads the list without replaying the log. The state
# statements mirror OptOutList.opt_out / opt_in, "*" being STOPALL.
_INSERT_CONSENT = (
    "INSERT INTO consent (recipient, scope, action, keyword, source, at, carrier, mo_id)"
    " VALUES (?,?,?,?,?,?,?,?)"
)
_OPT_OUT = "INSERT OR IGNORE INTO optout (scope, recipient) VALUES (?, ?)"
_OPT_IN = "DELETE FROM optout WHERE scope = ? AND recipient = ?"
_UNRESUB_ONE = "DELETE FROM resubscribed WHERE scope = ? AND recipient = ?"
_UNRESUB_ALL = "DELETE FROM resubscribed WHERE recipient = ?"
_RESUB = (
    "INSERT OR IGNORE INTO resubscribed (scope, recipient) SELECT ?1, ?2 WHERE EXISTS"
    " (SELECT 1 FROM optout WHERE scope = '*' AND recipient = ?2)"
)
_CONSENT_COLUMNS = "id, recipient, scope, action, keyword, source, at, carrier, mo_id"

_INSERT_MO = (
    "INSERT OR REPLACE INTO mo (id, carrier, source, dest, text, data, data_coding, received_at,"
    " parts, partial, keyword, action) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
)
_RECEIPT_FIELDS = ("message_id", "stat", "err", "message_state", "source_addr", "destination_addr", "text")
_INSERT_RECEIPT = (
    "INSERT INTO receipt (carrier, carrier_id, stat, err, message_state, source, dest, text,"
    " received_at, outcome, raw) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
)

PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA busy_timeout=5000",
    "PRAGMA wal_autocheckpoint=10000",
)

class SqliteStore:
    """`router.ports.Store` on SQLite. Create, then `open()` before use; one per loop."""

    def __init__(self, state_dir: str | Path, *, filename: str = "router.db") -> None:
        self.path = Path(state_dir) / filename
        self._dirty: dict[str, Message] = {}
        #: The messages of the batch being committed, until it is.
        self._writing: dict[str, Message] = {}
        self._rows: list[tuple[str, tuple[Any, ...]]] = []
        self._pending: asyncio.Future[None] | None = None
        self._inflight: asyncio.Future[None] | None = None
        self._flush_scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._reader: sqlite3.Connection | None = None
        self._next_id = 1
        self._next_mo_id = 1
        self.batches = 0
        self.rows_written = 0
        self.last_commit_s = 0.0

    # -- lifecycle ---------------------------------------------------------------------

    def open(self) -> None:
        """Create the database and its schema, and start the writer thread.

        Raises StoreError when the state directory or database cannot be opened.
        """
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            writer = _connect(self.path, check_same_thread=False, cached_statements=STATEMENT_CACHE)
            _check_version(writer, self.path)
            writer.executescript(SCHEMA)
            writer.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            (max_id,) = writer.execute("SELECT COALESCE(MAX(id), 0) FROM mdr").fetchone()
            (max_mo,) = writer.execute("SELECT COALESCE(MAX(id), 0) FROM mo").fetchone()
            self._reader = _connect(self.path, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"state_dir: cannot open {self.path}: {exc}") from exc
        self._next_id = max_id + 1
        self._next_mo_id = max_mo + 1
        self._thread = threading.Thread(target=self._run, args=(writer,), name="store-writer", daemon=True)
        self._thread.start()

    async def close(self) -> None:
        if self._dirty or self._inflight is not None:
            await self.durable()
        if self._thread is not None:
            self._jobs.put(None)
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join)
            self._thread = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    # -- writes ------------------------------------------------------------------------

    def next_id(self) -> str:
        n = self._next_id
        self._next_id = n + 1
        return str(n)

    def save(self, msg: Message) -> None:
        self._dirty[msg.id] = msg
        if not self._flush_scheduled and self._inflight is None:
            self._flush_scheduled = True
            self._get_loop().call_soon(self._flush)

    def next_mo_id(self) -> str:
        n = self._next_mo_id
        self._next_mo_id = n + 1
        return str(n)

    def save_mo(self, mo: Any) -> None:
        """Record an inbound message (router.mo.InboundMessage with its `id` set)."""
        self._add_row(_INSERT_MO, (
            int(mo.id), mo.carrier, mo.source, mo.dest, mo.text, mo.data, mo.data_coding,
            mo.received_at, mo.parts, 1 if mo.partial else 0, mo.keyword, mo.action,
        ))

    def save_receipt(self, carrier: str, receipt: Any, outcome: str, now: float, raw: bytes | None = None) -> None:
        """Record a receipt the MDRs do not hold: held, orphaned or unreadable ones."""
        fields = [getattr(receipt, f, None) for f in _RECEIPT_FIELDS]
        self._add_row(_INSERT_RECEIPT, (carrier, *fields, now, outcome, raw))

    def save_consent(self, record: Any) -> None:
        """Record an opt-out / opt-in (router.compliance.ConsentRecord) and the opt-out
        state it changes, in the next group commit."""
        r = record
        recipient, scope = r.recipient, r.scope
        self._add_row(_INSERT_CONSENT, (
            recipient, scope, r.action, r.keyword, r.source, r.at, r.carrier, r.mo_id,
        ))
        everyone = scope == "*"
        if r.action == "opt_in":
            self._add_row(_OPT_IN, (scope, recipient))
            if everyone:
                self._add_row(_UNRESUB_ALL, (recipient,))
            else:
                self._add_row(_RESUB, (scope, recipient))
        else:
            self._add_row(_OPT_OUT, (scope, recipient))
            if everyone:
                self._add_row(_UNRESUB_ALL, (recipient,))
            else:
                self._add_row(_UNRESUB_ONE, (scope, recipient))

    def _add_row(self, sql: str, row: tuple[Any, ...]) -> None:
        self._rows.append((sql, row))
        if not self._flush_scheduled and self._inflight is None:
            self._flush_scheduled = True
            self._get_loop().call_soon(self._flush)

    def durable(self) -> asyncio.Future[None]:
        if self._dirty or self._rows:
            if self._pending is None:
                self._pending = self._get_loop().create_future()
            return self._pending
        if self._inflight is not None:
            return self._inflight
        fut = self._get_loop().create_future()
        fut.set_result(None)
        return fut

    def prune(self, done_before: float) -> asyncio.Future[int]:
        fut: asyncio.Future[int] = self._get_loop().create_future()
        self._jobs.put(("prune", done_before, fut))
        return fut

    def _get_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._inflight is not None or not (self._dirty or self._rows):
            return
        # Packed here, on the loop thread: the writer then holds the GIL only to bind.
        dirty = self._dirty
        writes = write_batch(dirty.values())
        for msg in dirty.values():
            msg.stored = True
        count = len(self._dirty) + len(self._rows)
        self._writing = self._dirty
        self._dirty = {}
        rows, self._rows = self._rows, []
        fut = self._pending or self._get_loop().create_future()
        self._pending = None
        self._inflight = fut
        self._jobs.put(("batch", writes, rows, count, fut))

    def _batch_done(self, fut: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
        if fut is self._inflight:
            self._inflight = None
            self._writing = {}
        if not fut.done():
            if error is not None:
                fut.set_exception(StoreError(f"store commit failed: {error}"))
            else:
                fut.set_result(result)
        if (self._dirty or self._rows) and not self._flush_scheduled:
            self._flush()

    # -- the writer thread -------------------------------------------------------------

    def _run(self, conn: sqlite3.Connection) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                break
            kind, *args = job
            result: Any = None
            error: BaseException | None = None
            started = time.perf_counter()
            try:
                if kind == "batch":
                    writes, rows, count, fut = args
                    with conn:
                        for sql, params in writes:
                            conn.execute(sql, params)
                        for sql, row in rows:
                            conn.execute(sql, row)
                    self.batches += 1
                    self.rows_written += count
                else:
                    done_before, fut = args
                    result = _prune(conn, done_before)
            except Exception as exc:  # noqa: BLE001 - the thread must outlive any failure
                error = exc
            self.last_commit_s = time.perf_counter() - started
            loop = self._loop
            if loop is not None and not loop.is_closed():
                loop.call_soon_threadsafe(self._batch_done, fut, result, error)
        conn.close()

    # -- reads -------------------------------------------------------------------------

    def load_live(self) -> list[Message]:
        assert self._reader is not None, "open() first"
        rows = self._reader.execute(f"SELECT {COLUMNS} FROM mdr WHERE live = 1 ORDER BY id").fetchall()
        return [message_from_row(r) for r in rows]

    def get_mdr(self, id: str) -> dict[str, Any] | None:
        """The newest state: a change not yet committed wins over the stored row."""
        assert self._reader is not None, "open() first"
        pending = self._dirty.get(id) or self._writing.get(id)
        if pending is not None:
            return pending.to_mdr()
        try:
            key = int(id)
        except ValueError:
            return None
        row = self._reader.execute(f"SELECT {COLUMNS} FROM mdr WHERE id = ?", (key,)).fetchone()
        return mdr_from_row(row) if row else None

    def iter_mdrs(self, since: float | None = None, status: str | None = None) -> Iterator[dict[str, Any]]:
        assert self._reader is not None, "open() first"
        yield from iter_mdrs(self._reader, since, status)

    def load_optouts(self) -> tuple[Iterator[tuple[str, str]], list[tuple[str, str]]]:
        """The committed opt-out state for `OptOutList.load`: (scope, recipient) pairs
        grouped by scope, streamed from a cursor, and the re-subscribed pairs."""
        assert self._reader is not None, "open() first"
        resub = self._reader.execute("SELECT scope, recipient FROM resubscribed").fetchall()
        cur = self._reader.execute("SELECT scope, recipient FROM optout ORDER BY scope")
        return iter(cur), resub

    def last_consent(self, recipient: str, scopes: Iterable[str]) -> dict[str, Any] | None:
        """The newest committed consent record of `recipient` in one of `scopes`, or None."""
        assert self._reader is not None, "open() first"
        scopes = tuple(scopes)
        marks = ",".join("?" * len(scopes))
        row = self._reader.execute(
            f"SELECT {_CONSENT_COLUMNS} FROM consent WHERE recipient = ? AND scope IN ({marks})"
            " ORDER BY id DESC LIMIT 1", (recipient, *scopes),
        ).fetchone()
        return _consent_row(row) if row else None


def _check_version(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a database laid out by another version rather than misread it."""
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    has_mdr = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'mdr'").fetchone()
    if has_mdr and version != SCHEMA_VERSION:
        conn.close()
        raise StoreError(
            f"state_dir: {path} was written by another version of the store (layout {version},"
            f" this one reads {SCHEMA_VERSION}); move it away or export it with that version"
        )


def _connect(path: Path, *, check_same_thread: bool = True, cached_statements: int = 128) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=check_same_thread,
                           cached_statements=cached_statements)
    conn.isolation_level = "DEFERRED"
    for pragma in PRAGMAS:
        conn.execute(pragma)
    return conn


def _prune(conn: sqlite3.Connection, done_before: float, chunk: int = 5000) -> int:
    with conn:
        conn.execute("DELETE FROM mo WHERE received_at < ?", (done_before,))
        conn.execute("DELETE FROM receipt WHERE received_at < ?", (done_before,))
    # A record finishes after it is accepted, so every candidate lies below the first id
    # accepted at the cutoff: scan only that range, in short transactions.
    below = first_id_at(conn, done_before)
    total = 0
    while True:
        with conn:
            cur = conn.execute(
                "DELETE FROM mdr WHERE id IN (SELECT id FROM mdr WHERE id < ? AND live = 0"
                " AND done_at < ? LIMIT ?)",
                (below, done_before, chunk),
            )
        total += cur.rowcount
        if cur.rowcount < chunk:
            return total


def iter_mdrs(
    conn: sqlite3.Connection, since: float | None, status: str | None, page: int = 1000
) -> Iterator[dict[str, Any]]:
    """MDRs in id order, read in short transactions of `page` rows (never one long read)."""
    where = ["id > ?"]
    params: list[Any] = []
    last = 0
    if since is not None:
        last = first_id_at(conn, since) - 1
        where.append("accepted_at >= ?")
        params.append(since)
    if status is not None:
        where.append("status = ?")
        params.append(status)
    sql = f"SELECT {COLUMNS} FROM mdr WHERE {' AND '.join(where)} ORDER BY id LIMIT {page}"
    while True:
        rows = conn.execute(sql, [last, *params]).fetchall()
        for row in rows:
            yield mdr_from_row(row)
        if len(rows) < page:
            return
        last = rows[-1][0]


def _consent_row(row: tuple[Any, ...]) -> dict[str, Any]:
    (_id, recipient, scope, action, keyword, source, at, carrier, mo_id) = row
    return {"recipient": recipient, "scope": scope, "action": action, "keyword": keyword,
            "source": source, "at": at, "carrier": carrier, "mo_id": mo_id}


def iter_consent(
    conn: sqlite3.Connection, since: float | None = None, recipient: str | None = None,
    page: int = 1000,
) -> Iterator[dict[str, Any]]:
    """Consent records in the order they were made (`at` as epoch seconds), read in
    short transactions of `page` rows; only `recipient`'s, only those at or after `since`."""
    where = ["id > ?"]
    params: list[Any] = []
    if since is not None:
        where.append("at >= ?")
        params.append(since)
    if recipient is not None:
        where.append("recipient = ?")
        params.append(recipient)
    sql = (f"SELECT {_CONSENT_COLUMNS} FROM consent WHERE {' AND '.join(where)}"
           f" ORDER BY id LIMIT {page}")
    last = 0
    while True:
        rows = conn.execute(sql, [last, *params]).fetchall()
        for row in rows:
            yield _consent_row(row)
        if len(rows) < page:
            return
        last = rows[-1][0]


def open_readonly(state_dir: str | Path, filename: str = "router.db") -> sqlite3.Connection:
    """A read-only connection for exports while the daemon runs.

    Raises StoreError when there is no database in `state_dir`.
    """
    path = Path(state_dir) / filename
    if not path.exists():
        raise StoreError(f"state_dir: no database at {path}")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    conn.execute("PRAGMA busy_timeout=5000")
    _check_version(conn, path)
    return conn


__all__ = ["SqliteStore", "iter_consent", "iter_mdrs", "open_readonly", "message_from_row", "is_live"]
