"""Processes of the pipeline benchmark: simulators, the daemon, a broker; their CPU and memory.

Everything here is an edge of the benchmark: it starts programs the way a user would
(``python -m adapters.carrier_sim``, ``python -m router run -c FILE``, ``mosquitto``),
waits for them with a bound, and reads ``/proc`` for what a process tree has used.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

__all__ = [
    "Daemon",
    "Proc",
    "free_port",
    "mosquitto",
    "simulator",
    "tree_cpu_s",
    "tree_pids",
    "tree_rss_mb",
    "write_config",
]

_CLK_TCK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stat_fields(pid: int) -> list[str]:
    """/proc/<pid>/stat from field 3 (state) on; the command name may hold spaces."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    return data[data.rindex(b")") + 2:].decode().split()


def tree_pids(root: int) -> list[int]:
    """``root`` and every live descendant (found by parent pid in /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                children.setdefault(int(_stat_fields(int(entry))[1]), []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def tree_cpu_s(root: int) -> float:
    """CPU seconds (user + system) used by ``root``'s process tree so far.

    Counts each live process's utime + stime (all its threads) and cutime + cstime
    (children it has reaped).  Raises OSError when ``root`` is gone.
    """
    total = 0
    for pid in tree_pids(root):
        try:
            f = _stat_fields(pid)
        except OSError:
            if pid == root:
                raise
            continue  # a child that ended meanwhile is in its parent's cutime
        total += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
    return total / _CLK_TCK


def tree_rss_mb(root: int) -> float:
    """Resident memory of ``root``'s process tree, in MiB (shared pages counted per process)."""
    pages = 0
    for pid in tree_pids(root):
        with contextlib.suppress(OSError, ValueError, IndexError), open(f"/proc/{pid}/statm", "rb") as f:
            pages += int(f.read().split()[1])
    return pages * _PAGE / 2**20


def _wait_listening(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout:g} s")


class Proc:
    """A child process with its output in a file; ``stop`` ends it (SIGTERM, then SIGKILL)."""

    def __init__(self, name: str, cmd: list[str], output: Path) -> None:
        self.name = name
        self.output = output
        with open(output, "wb") as out:
            self.popen = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ))

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 5) -> str:
        """The last lines it printed, for an error message."""
        with contextlib.suppress(OSError):
            return "\n".join(self.output.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, wait up to ``timeout``, then SIGKILL; the exit status."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5.0)
        return int(self.popen.returncode)


def simulator(name: str, workdir: Path, *, log: bool) -> tuple[Proc, int]:
    """A carrier simulator in its own process (``--log`` into ``workdir`` when asked): (proc, port).

    Raises RuntimeError when it does not listen.
    """
    port = free_port()
    cmd = [sys.executable, "-m", "adapters.carrier_sim", "--port", str(port), "--record-limit", "0"]
    if log:
        cmd += ["--log", str(workdir / f"{name}.jsonl")]
    proc = Proc(name, cmd, workdir / f"{name}.out")
    try:
        _wait_listening(port, proc.popen, f"simulator {name}")
    except BaseException:
        proc.stop()
        raise
    return proc, port


def mosquitto(workdir: Path) -> tuple[Proc, int] | None:
    """A private mosquitto on 127.0.0.1 (no persistence): (proc, port), or None when not installed."""
    exe = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)
    if exe is None:
        return None
    port = free_port()
    conf = workdir / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 100000\n")
    proc = Proc("mosquitto", [exe, "-c", str(conf)], workdir / "mosquitto.out")
    try:
        _wait_listening(port, proc.popen, "mosquitto", 5.0)
    except BaseException:
        proc.stop()
        raise
    return proc, port


def write_config(
    path: Path, *, socket_path: Path, state_dir: Path, sims: dict[str, int], mqtt_port: int | None,
    mps: int, burst: int, tps: int, binds: int, window: int,
) -> Path:
    """The router.toml of the scenario: two carriers, one cheaper for each country.

    ``sims`` maps carrier name → simulator port (the first is cheaper for 44, the
    second for 1).  Metrics listen on a free port, so the scrape path is built as in
    production; nothing scrapes it.
    """
    (a, port_a), (b, port_b) = sims.items()
    carriers = "".join(
        f"""
[[carriers]]
name = "{name}"
host = "127.0.0.1"
port = {port}
system_id = "{name}"
password = "bench"
binds = {{ transceiver = {binds} }}
tps = {tps}
window = {window}
reconnect_max_s = 2
"""
        for name, port in ((a, port_a), (b, port_b))
    )
    mqtt = f'\n[mqtt]\nurl = "mqtt://127.0.0.1:{mqtt_port}"\ntopic_prefix = "bench"\n' if mqtt_port else ""
    path.write_text(
        f"""[router]
socket = "unix://{socket_path}"
state_dir = "{state_dir}"
metrics = "127.0.0.1:{free_port()}"
{mqtt}{carriers}
[[routes]]
prefix = "44"
carriers = [ {{ name = "{a}", cost = 0.0040 }}, {{ name = "{b}", cost = 0.0045 }} ]

[[routes]]
prefix = "1"
carriers = [ {{ name = "{b}", cost = 0.0060 }}, {{ name = "{a}", cost = 0.0065 }} ]

[limits]
default_mps = {mps}
burst = {burst}
"""
    )
    return path


class Daemon:
    """``python -m router run -c FILE`` in its own process, ready once its socket answers ``ping``."""

    def __init__(self, config: Path, socket_path: Path, output: Path, carriers: int, binds: int) -> None:
        self.socket_url = f"unix://{socket_path}"
        self.proc = Proc("router", [sys.executable, "-m", "router", "run", "-c", str(config)], output)
        try:
            self._wait_ready(carriers * binds)
        except BaseException:
            self.proc.stop()
            raise

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _wait_ready(self, binds: int, timeout: float = 20.0) -> None:
        """Wait until the socket answers and every bind is up. Raises RuntimeError otherwise."""
        from adapters.client import Client

        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if not self.proc.alive():
                raise RuntimeError(f"the router exited ({self.proc.popen.returncode}):\n{self.proc.tail()}")
            try:
                with Client.connect(self.socket_url, timeout=2.0) as client:
                    stats = client.stats()
            except (OSError, TimeoutError) as exc:
                last = str(exc)
            else:
                up = sum(b["state"] == "bound" for c in stats.get("carriers", ()) for b in c["binds"])
                if up >= binds:
                    return
                last = f"{up} of {binds} binds up"
            time.sleep(0.1)
        raise RuntimeError(f"the router was not ready within {timeout:g} s ({last}):\n{self.proc.tail()}")

    def stop(self) -> int:
        """SIGTERM (graceful drain), SIGKILL after 15 s; the exit status."""
        return self.proc.stop(15.0)
