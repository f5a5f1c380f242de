"""Consent in the SQLite store: records, the opt-out state they keep, export.

The state tables must give back, after a restart, exactly the list the running router
had: a hypothesis run applies random opt-outs and opt-ins (STOPALL and START after it
included) both to an in-memory list and to the store, then loads the store.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.store.sqlite import SqliteStore, iter_consent, open_readonly
from router.cli import main as cli_main
from router.compliance import ALL, CONSENT_FIELDS, ConsentRecord
from router.optout import OptOutList

T0 = 1_800_000_000.0
RECIPIENTS = ("447700900001", "447700900002", "15551230003")
SCOPES = ("alerts", "12025550100", ALL)


def record(action: str, scope: str, recipient: str, at: float = T0, **kw: Any) -> ConsentRecord:
    if action == "opt_out" and scope == ALL:
        action = "opt_out_all"
    return ConsentRecord(recipient, scope, action, kw.get("keyword"), kw.get("source", "sms"), at,
                         kw.get("carrier"), kw.get("mo_id"))


async def write(store: SqliteStore, records: list[ConsentRecord]) -> None:
    for rec in records:
        store.save_consent(rec)
    await store.durable()


def loaded(store: SqliteStore) -> OptOutList:
    entries, resub = store.load_optouts()
    return OptOutList.load(entries, resub)


def answers(optouts: OptOutList) -> dict[tuple[str, str], bool]:
    scopes = ("alerts", "12025550100", "other")
    return {(s, r): optouts.is_opted_out(s, r) for s in scopes for r in RECIPIENTS}


ops = st.lists(st.tuples(st.sampled_from(("opt_out", "opt_in")), st.sampled_from(SCOPES),
                         st.sampled_from(RECIPIENTS)), max_size=12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops)
def test_the_stored_state_loads_as_the_list_the_router_had(tmp_path: Path, seq: list[Any]) -> None:
    async def run() -> None:
        store = SqliteStore(tmp_path / uuid.uuid4().hex)  # a fresh store per example
        store.open()
        live = OptOutList()
        try:
            for action, scope, recipient in seq:
                (live.opt_out if action == "opt_out" else live.opt_in)(scope, recipient)
            await write(store, [record(a, s, r) for a, s, r in seq])
            again = loaded(store)
            assert answers(again) == answers(live)
            assert len(again) == len(live)
            assert sorted(again.resubscribed()) == sorted(live.resubscribed())
        finally:
            await store.close()

    asyncio.run(run())


async def test_records_are_kept_and_the_newest_one_answers(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path)
    store.open()
    try:
        await write(store, [
            record("opt_out", "alerts", RECIPIENTS[0], T0, keyword="STOP", carrier="acme", mo_id="7"),
            record("opt_in", "alerts", RECIPIENTS[0], T0 + 1, source="web-form"),
            record("opt_out", ALL, RECIPIENTS[0], T0 + 2, keyword="STOPALL"),
        ])
        last = store.last_consent(RECIPIENTS[0], ["alerts"])
        assert last is not None and (last["action"], last["source"]) == ("opt_in", "web-form")
        last = store.last_consent(RECIPIENTS[0], ["alerts", ALL])
        assert last is not None and (last["action"], last["keyword"]) == ("opt_out_all", "STOPALL")
        assert store.last_consent(RECIPIENTS[1], ["alerts", ALL]) is None
        conn = open_readonly(tmp_path)
        try:
            rows = list(iter_consent(conn, page=2))
            assert [r["action"] for r in rows] == ["opt_out", "opt_in", "opt_out_all"]
            assert rows[0] == {"recipient": RECIPIENTS[0], "scope": "alerts", "action": "opt_out",
                               "keyword": "STOP", "source": "sms", "at": T0, "carrier": "acme",
                               "mo_id": "7"}
            assert [r["at"] for r in iter_consent(conn, since=T0 + 1, page=1)] == [T0 + 1, T0 + 2]
            assert list(iter_consent(conn, recipient=RECIPIENTS[1])) == []
        finally:
            conn.close()
        # Consent is audit: pruning old MDRs, MOs and receipts leaves it alone.
        await store.prune(T0 + 10**6)
        assert store.last_consent(RECIPIENTS[0], ["alerts"]) is not None
    finally:
        await store.close()


@pytest.fixture
def state(tmp_path: Path) -> Path:
    """A config whose store holds three records, written and closed."""
    async def fill() -> None:
        store = SqliteStore(tmp_path / "var")
        store.open()
        await write(store, [
            record("opt_out", "alerts", RECIPIENTS[0], T0, keyword="STOP", carrier="acme", mo_id="1"),
            record("opt_out", "12025550100", RECIPIENTS[1], T0 + 60, source="crm"),
            record("opt_in", "alerts", RECIPIENTS[0], T0 + 120, keyword="START", carrier="acme", mo_id="2"),
        ])
        await store.close()

    asyncio.run(fill())
    cfg = tmp_path / "router.toml"
    cfg.write_text(
        '[router]\nsocket = "unix:///tmp/unused.sock"\nstate_dir = "var"\nmetrics = ""\n'
        '[[carriers]]\nname = "acme"\nhost = "127.0.0.1"\nport = 1\nsystem_id = "a"\npassword = "p"\n'
        '[[routes]]\nprefix = "4"\ncarriers = [{ name = "acme", cost = 0.01 }]\n'
    )
    return cfg


def test_consent_export_jsonl(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["consent", "-c", str(state)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["recipient"], r["action"]) for r in rows] == [
        (RECIPIENTS[0], "opt_out"), (RECIPIENTS[1], "opt_out"), (RECIPIENTS[0], "opt_in")]
    assert set(rows[0]) == set(CONSENT_FIELDS)
    assert rows[0]["at"] == "2027-01-15T08:00:00.000Z" and rows[0]["mo_id"] == "1"
    assert rows[1]["keyword"] is None and rows[1]["source"] == "crm"


def test_consent_export_csv_by_number_and_since(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["consent", "-c", str(state), "--number", "+" + RECIPIENTS[0],
                     "--since", "2027-01-15T08:01:00Z", "--format", "csv"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == list(CONSENT_FIELDS)
    assert rows[1:] == [[RECIPIENTS[0], "alerts", "opt_in", "START", "sms",
                         "2027-01-15T08:02:00.000Z", "acme", "2"]]


@pytest.mark.parametrize("flags,field", [(["--number", "07700900001"], "--number"),
                                         (["--since", "yesterday"], "--since")])
def test_consent_export_names_the_bad_flag(state: Path, capsys: pytest.CaptureFixture[str],
                                           flags: list[str], field: str) -> None:
    assert cli_main(["consent", "-c", str(state), *flags]) == 1
    assert field in capsys.readouterr().err
