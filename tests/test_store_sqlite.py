"""The SQLite store: group commit, updates, live reload, export, prune, kill -9."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from adapters.store.sqlite import SqliteStore, open_readonly, iter_mdrs
from router.model import DELIVERED, QUEUED, SENDING, SUBMITTED, UNKNOWN, Attempt, Message


def make(store: SqliteStore, **kw) -> Message:
    kw.setdefault("text", "hello")
    kw.setdefault("accepted_at", 1_700_000_000.0)
    kw.setdefault("expires_at", 1_700_086_400.0)
    return Message(store.next_id(), kw.pop("source", "12025550100"), kw.pop("dest", "447700900123"), **kw)


@pytest.fixture
async def store(tmp_path: Path):
    s = SqliteStore(tmp_path)
    s.open()
    yield s
    await s.close()


async def test_group_commit_batches_many_saves(store: SqliteStore) -> None:
    msgs = [make(store) for _ in range(500)]
    for m in msgs:
        store.save(m)
    await store.durable()
    assert store.rows_written == 500
    assert store.batches <= 2, "500 saves in one loop pass commit together"
    assert store.get_mdr(msgs[123].id)["status"] == QUEUED


async def test_changes_before_a_commit_are_written_once_in_their_newest_state(store: SqliteStore) -> None:
    m = make(store)
    store.save(m)
    m.status = SENDING
    store.save(m)
    await store.durable()
    assert store.rows_written == 1
    m.status = SUBMITTED
    m.carrier, m.route, m.cost = "acme", "44", 0.004
    m.carrier_ids = ["abc"]
    m.attempts.append(Attempt("acme", "transceiver-0", 1, 1_700_000_001.5, "ESME_ROK", None, "abc"))
    m.submitted_at = 1_700_000_001.5
    store.save(m)
    await store.durable()
    mdr = store.get_mdr(m.id)
    assert mdr["status"] == SUBMITTED
    assert mdr["carrier_ids"] == ["abc"]
    assert mdr["attempts"] == [{
        "carrier": "acme", "bind": "transceiver-0", "part": 1, "at": "2023-11-14T22:13:21.500Z",
        "status": "ESME_ROK", "error": None, "carrier_id": "abc",
    }]
    assert mdr["accepted_at"] == "2023-11-14T22:13:20.000Z"


async def test_live_messages_reload_and_ids_continue(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path)
    s.open()
    done, queued, doubt = make(s), make(s, tags={"k": "v"}, priority=1), make(s)
    done.status, done.done_at = DELIVERED, 1_700_000_100.0
    doubt.status, doubt.error = UNKNOWN, "in_doubt"
    doubt.part_status, doubt.tried, doubt.parts_sent = ["UNKNOWN"], ["acme"], 1
    for m in (done, queued, doubt):
        s.save(m)
    await s.close()

    s2 = SqliteStore(tmp_path)
    s2.open()
    live = {m.id: m for m in s2.load_live()}
    assert set(live) == {queued.id, doubt.id}
    assert live[queued.id].tags == {"k": "v"} and live[queued.id].priority == 1
    assert live[doubt.id].tried == ["acme"] and live[doubt.id].error == "in_doubt"
    assert all(m.stored for m in live.values())
    assert int(s2.next_id()) == int(doubt.id) + 1
    await s2.close()


async def test_export_filters_and_pages(store: SqliteStore) -> None:
    msgs = [make(store, accepted_at=1_700_000_000.0 + i) for i in range(2500)]
    for i, m in enumerate(msgs):
        if i % 2:
            m.status = DELIVERED
        store.save(m)
    await store.durable()
    conn = open_readonly(store.path.parent)
    everything = list(iter_mdrs(conn, None, None, page=700))
    assert [m["id"] for m in everything] == [m.id for m in msgs]
    delivered_late = list(iter_mdrs(conn, 1_700_002_000.0, DELIVERED))
    assert len(delivered_late) == 250
    assert all(m["status"] == DELIVERED for m in delivered_late)
    conn.close()


async def test_prune_removes_only_old_final_records(store: SqliteStore) -> None:
    old = make(store, accepted_at=50.0)
    recent, open_ = make(store, accepted_at=9_000.0), make(store, accepted_at=9_500.0)
    old.status, old.done_at = DELIVERED, 100.0
    recent.status, recent.done_at = DELIVERED, 10_000.0
    for m in (old, recent, open_):
        store.save(m)
    await store.durable()
    assert await store.prune(5_000.0) == 1
    assert store.get_mdr(old.id) is None
    assert store.get_mdr(recent.id) is not None and store.get_mdr(open_.id) is not None


def test_unopenable_state_dir_names_the_key(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    from router.ports import StoreError

    with pytest.raises(StoreError, match="state_dir"):
        SqliteStore(blocker / "sub").open()


WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from adapters.store.sqlite import SqliteStore
    from router.model import Message

    async def main():
        s = SqliteStore(sys.argv[1]); s.open()
        n = 0
        while True:
            batch = []
            for _ in range(50):
                m = Message(s.next_id(), "12025550100", "447700900123", text="x" * 40,
                            accepted_at=1.0, expires_at=2.0)
                s.save(m); batch.append(m.id)
            await s.durable()
            sys.stdout.write(" ".join(batch) + "\\n"); sys.stdout.flush()
            n += 1

    asyncio.run(main())
    """
)


def test_kill_9_loses_no_acknowledged_message(tmp_path: Path) -> None:
    """Ids printed after durable() resolved must survive SIGKILL of the writer."""
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path)],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1],
    )
    acked: list[str] = []
    assert proc.stdout is not None
    while len(acked) < 3000:
        line = proc.stdout.readline()
        assert line, "writer died early"
        acked.extend(line.split())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    conn = open_readonly(tmp_path)
    stored = {row[0] for row in conn.execute("SELECT id FROM mdr")}
    conn.close()
    missing = [i for i in acked if int(i) not in stored]
    assert not missing, f"{len(missing)} acknowledged ids lost"


async def test_store_is_not_blocking_the_loop(store: SqliteStore) -> None:
    """Saves return at once; the loop keeps running while a batch commits."""
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    t = asyncio.get_running_loop().create_task(ticker())
    for _ in range(20):
        for _ in range(500):
            store.save(make(store))
        await store.durable()
    t.cancel()
    assert ticks > 20
    assert store.rows_written == 10_000


async def test_inbound_messages_and_unmatched_receipts_commit_with_the_batch(store: SqliteStore) -> None:
    from types import SimpleNamespace

    mo = SimpleNamespace(
        id=store.next_mo_id(), carrier="acme", source="447700900123", dest="12025550100",
        text="STOP", data=None, data_coding=0, received_at=1.5, parts=1, partial=False,
        keyword="STOP", action="opt_out",
    )
    store.save_mo(mo)
    receipt = SimpleNamespace(message_id="ff01", stat="DELIVRD", err="000", message_state=None,
                              source_addr="1", destination_addr="2", text="hi")
    store.save_receipt("acme", receipt, "orphan", 2.0)
    await store.durable()
    conn = open_readonly(store.path.parent)
    assert conn.execute("SELECT id, source, text, keyword FROM mo").fetchall() == [(1, "447700900123", "STOP", "STOP")]
    assert conn.execute("SELECT carrier, carrier_id, stat, outcome FROM receipt").fetchall() == [
        ("acme", "ff01", "DELIVRD", "orphan")
    ]
    conn.close()
    assert store.next_mo_id() == "2"


def test_a_store_of_another_layout_is_refused_not_misread(tmp_path: Path) -> None:
    import sqlite3

    from router.ports import StoreError

    conn = sqlite3.connect(tmp_path / "router.db")
    conn.execute("CREATE TABLE mdr (id INTEGER PRIMARY KEY, client_ref TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="state_dir: .* another version"):
        SqliteStore(tmp_path).open()


async def test_since_finds_its_first_id_by_bisection(store: SqliteStore) -> None:
    from adapters.store.mdr_rows import first_id_at

    msgs = [make(store, accepted_at=1000.0 + i) for i in range(300)]
    for m in msgs:
        store.save(m)
    await store.durable()
    conn = open_readonly(store.path.parent)
    assert first_id_at(conn, 0.0) == int(msgs[0].id)
    assert first_id_at(conn, 1150.0) == int(msgs[150].id)
    assert first_id_at(conn, 1150.5) == int(msgs[151].id)
    assert first_id_at(conn, 99999.0) == int(msgs[-1].id) + 1
    conn.close()
