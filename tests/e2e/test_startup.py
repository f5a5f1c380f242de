"""Starting the daemon when something is in the way: one line naming the key, exit 1."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from tests.e2e.harness import carrier_entry, free_port, render_config, route

ROOT = Path(__file__).resolve().parents[2]


def _config(tmp: Path, name: str, state: str, sock: str, metrics: str = "") -> Path:
    # A carrier nobody listens on: the daemon starts without it being bound.
    text = render_config(
        socket_url=f"unix://{tmp / sock}",
        carriers=[carrier_entry("acme", free_port())],
        routes=[route("", ("acme", 0.01))],
        router={"state_dir": state, "metrics": metrics},
    )
    path = tmp / name
    path.write_text(text)
    return path


def _run(cfg: Path, timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "router", "run", "-c", str(cfg)], cwd=ROOT,
        capture_output=True, text=True, timeout=timeout,
    )


def _start(cfg: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "router", "run", "-c", str(cfg)], cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:  # bounded: the daemon logs "router started" or exits
        if "router started" in line:
            return proc
    raise AssertionError(f"the first router did not start (exit {proc.wait()})")


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_a_second_router_on_the_same_state_dir_is_refused(tmp_path: Path) -> None:
    first = _start(_config(tmp_path, "a.toml", "state", "a.sock"))
    try:
        res = _run(_config(tmp_path, "b.toml", "state", "b.sock"))
    finally:
        _stop(first)
    assert res.returncode == 1
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("smpp-router: state_dir:") and "in use by another router" in last
    assert "Traceback" not in res.stderr


def test_a_metrics_port_in_use_ends_the_start_at_once(tmp_path: Path) -> None:
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    try:
        res = _run(_config(tmp_path, "m.toml", "state", "m.sock", metrics=f"127.0.0.1:{port}"))
    finally:
        busy.close()
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines()[-1].startswith("smpp-router: ")


def test_a_socket_in_use_is_one_line(tmp_path: Path) -> None:
    first = _start(_config(tmp_path, "a.toml", "state-a", "same.sock"))
    try:
        res = _run(_config(tmp_path, "b.toml", "state-b", "same.sock"))
    finally:
        _stop(first)
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    assert "same.sock" in res.stderr.strip().splitlines()[-1]
