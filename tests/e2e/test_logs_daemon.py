"""The daemon's stderr over a whole run: JSON lines only, no secrets, nothing per message.

`smpp-router run` as a process with JSON logs (the default) behind a TCP socket with a
token, carriers whose passwords come from the environment (one of them wrong, so a bind
is refused), traffic, a refused config edit, a carrier that dies; then the whole stderr
is read. DESIGN.md "Rules that hold everywhere": passwords never appear in logs, and the
hot path logs nothing per message at INFO.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from adapters.client import Client
from tests.e2e.harness import (
    DaemonProcess,
    SimProcess,
    all_bound,
    carrier_entry,
    free_port,
    render_config,
    route,
)

#: SMPP passwords are at most 8 characters (§4.1.1); each is distinctive enough to grep.
PASSWORD = "Xq7kPz2w"
WRONG_PASSWORD = "Vb3mNw9t"
TOO_LONG_PASSWORD = "Hj4sRt8yUi6o"  # refused by the config check: must not be echoed
TOKEN = "tok-5f2e9a1c7d3b8e40"
TO = "4915112345678"


def _wait(check: Any, what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _bound(url: str, names: Iterable[str]) -> bool:
    try:
        with Client.connect(url, TOKEN, timeout=5) as c:
            return all_bound(c.stats(), names)
    except (OSError, ConnectionError, TimeoutError):
        return False


def _send(url: str, n: int, tag: str) -> list[str]:
    with Client.connect(url, TOKEN, timeout=30) as c:
        replies = [c.submit("ACME", TO, text=f"{tag} {i}") for i in range(n)]
    assert all(r["ok"] for r in replies), [r for r in replies if not r["ok"]][:3]
    return [r["id"] for r in replies]


def _all_delivered(daemon: DaemonProcess, ids: Iterable[str]) -> bool:
    status = {m["id"]: m["status"] for m in daemon.mdrs()}
    return all(status.get(i) == "DELIVERED" for i in ids)


def _lines(daemon: DaemonProcess) -> list[str]:
    return daemon.log_path.read_text(encoding="utf-8").splitlines()


def test_logs_are_json_without_secrets_or_per_message_lines(
    tmp_path: Path, processes: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    acme = SimProcess(tmp_path, "acme", "--system-id", "acme", "--password", PASSWORD)
    processes.append(acme)
    locked = SimProcess(tmp_path, "locked", "--system-id", "locked", "--password", "other123")
    processes.append(locked)
    monkeypatch.setenv("ACME_SMPP_PASSWORD", PASSWORD)
    monkeypatch.setenv("LOCKED_SMPP_PASSWORD", WRONG_PASSWORD)
    monkeypatch.setenv("ROUTER_TOKEN", TOKEN)
    url = f"tcp://127.0.0.1:{free_port()}"

    def config(acme_password: str = "${ACME_SMPP_PASSWORD}", tps: Any = 1000) -> str:
        return render_config(
            socket_url=url,
            carriers=[carrier_entry("acme", acme.port, password=acme_password, tps=tps),
                      carrier_entry("locked", locked.port, password="${LOCKED_SMPP_PASSWORD}")],
            routes=[route("", ("acme", 0.001), ("locked", 0.002))],
            router={"token": "${ROUTER_TOKEN}"},
        )

    path = tmp_path / "router.toml"
    path.write_text(config())
    daemon = DaemonProcess(path, url)
    processes.append(daemon)
    daemon.start()
    _wait(lambda: _bound(url, ["acme"]), "acme bound")
    time.sleep(1.0)  # the refused binds of "locked" log their retries meanwhile
    with Client.connect(url, timeout=5) as anonymous:
        assert anonymous.stats()["error"] == "unauthorized"

    few = _send(url, 20, "few")
    _wait(lambda: _all_delivered(daemon, few), "20 delivered")
    after_few = len(_lines(daemon))
    many = _send(url, 400, "many")
    _wait(lambda: _all_delivered(daemon, many), "400 delivered")
    after_many = len(_lines(daemon))

    # Edits the config check refuses: a wrong type, and a password too long for SMPP.
    path.write_text(config(tps='"fast"'))
    assert daemon.proc is not None
    os.kill(daemon.proc.pid, signal.SIGHUP)
    time.sleep(0.5)
    path.write_text(config(acme_password=TOO_LONG_PASSWORD))
    os.kill(daemon.proc.pid, signal.SIGHUP)
    time.sleep(0.5)
    acme.stop()  # the carrier dies: bind down, reconnect attempts
    time.sleep(1.0)
    assert daemon.terminate() == 0

    lines = _lines(daemon)
    text = "\n".join(lines)
    events = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all(isinstance(e, dict) and "event" in e and "level" in e for e in events)
    for secret in (PASSWORD, WRONG_PASSWORD, TOO_LONG_PASSWORD, TOKEN):
        assert secret not in text, f"a secret reached the log: {secret!r}"
    # 400 more messages, no more lines: nothing is logged per message.
    assert after_many - after_few <= 2, lines[after_few:after_many]
    names = [e["event"] for e in events]
    assert "config reload refused" in names and "router stopped" in names
    # The refused bind is there, with its status and without what was sent.
    assert any(e.get("carrier") == "locked" and e.get("status") == "ESME_RINVPASWD" for e in events)
