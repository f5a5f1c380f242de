"""Whole-daemon test harness: configs with free ports, simulated carriers, the router.

Two ways to run the router against simulated carriers on 127.0.0.1:

- in process (`Router`): `App(config)` on the test's own event loop, with in-process
  `CarrierSim`s. Fast, and the test can stop a carrier, change its faults and read
  `sim.received` directly.
- as processes (`DaemonProcess`, `SimProcess`): `python -m router run -c FILE` and
  `python -m router carrier-sim --log FILE`, each in its own process group, for what
  only a process can show: kill -9, SIGTERM's exit status, SIGHUP, the CLI verbs.

Every wait is a bounded poll; every process is killed (its whole group) on the way out.
Test configs use short timeouts so a carrier's death or return shows in well under a
second.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Self

from adapters.carrier_sim import CarrierSim, SimOptions
from adapters.client import AsyncClient, Client
from adapters.store.sqlite import iter_mdrs, open_readonly
from router.app import App
from router.config import load_config
from router.tomlwrite import toml_value

ROOT = Path(__file__).resolve().parents[2]

#: Carrier keys every test carrier gets unless a test says otherwise: short timers so a
#: dead carrier is noticed and a revived one rebound within a second.
FAST_CARRIER: dict[str, Any] = {
    "tps": 1000,
    "window": 64,
    "response_timeout_s": 2,
    "enquire_link_s": 1,
    "bind_timeout_s": 2,
    "reconnect_max_s": 0.3,
    "stale_session_s": 0.3,
    "throttle_failover_s": 5,
    "health": {"error_rate": 0.5, "window_s": 5, "min_samples": 5, "cooldown_s": 0.5, "probes": 1},
}

#: How long a poll waits by default: generous, the machine is shared.
WAIT_S = 15.0


# -- config ------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _table(header: str, values: Mapping[str, Any]) -> str:
    lines = [header] + [f"{k} = {toml_value(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


def carrier_entry(name: str, port: int, **overrides: Any) -> dict[str, Any]:
    """One `[[carriers]]` table for a simulator on 127.0.0.1:`port`, fast timers included."""
    entry: dict[str, Any] = {
        "name": name, "host": "127.0.0.1", "port": port, "system_id": name, "password": "pw",
    }
    entry.update(FAST_CARRIER)
    entry.update(overrides)
    return entry


def render_config(
    *,
    socket_url: str,
    carriers: Sequence[Mapping[str, Any]],
    routes: Sequence[Mapping[str, Any]],
    limits: Mapping[str, Any] | None = None,
    number_limits: Sequence[Mapping[str, Any]] = (),
    router: Mapping[str, Any] | None = None,
) -> str:
    """router.toml text: state in ./state, no metrics endpoint, the given tables."""
    base = {"socket": socket_url, "state_dir": "state", "metrics": ""}
    base.update(router or {})
    parts = [_table("[router]", base)]
    parts += [_table("[[carriers]]", c) for c in carriers]
    parts += [_table("[[routes]]", r) for r in routes]
    parts.append(_table("[limits]", limits or {"default_mps": 1000, "burst": 1000}))
    parts += [_table("[[limits.numbers]]", n) for n in number_limits]
    return "\n".join(parts)


def route(prefix: str, *carriers: tuple[str, float]) -> dict[str, Any]:
    """A `[[routes]]` table with fixed costs: `route("", ("cheap", 0.001), ("dear", 0.002))`."""
    return {"prefix": prefix, "carriers": [{"name": n, "cost": c} for n, c in carriers]}


# -- waiting -----------------------------------------------------------------------


async def until(check: Callable[[], Any], timeout: float = WAIT_S, what: str = "condition") -> Any:
    """Poll `check` (sync or async) every 20 ms until it returns something truthy.

    Raises AssertionError naming `what` after `timeout` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


def all_bound(stats: Mapping[str, Any], names: Iterable[str] | None = None) -> bool:
    """Whether every bind of the named carriers (all by default; none: just the socket) is
    bound in a `stats` reply."""
    if not stats.get("ok"):
        return False
    wanted = None if names is None else set(names)
    if wanted == set():
        return True  # the socket answers: all that was asked
    carriers = [c for c in stats["carriers"] if wanted is None or c["name"] in wanted]
    return bool(carriers) and all(b["state"] == "bound" for c in carriers for b in c["binds"])


def text_of(record: Any) -> str:
    """The text of a simulator record (dict from a log or SubmitRecord), UDH stripped."""
    if isinstance(record, Mapping):
        raw, esm, dc = bytes.fromhex(record["short_message"]), record["esm_class"], record["data_coding"]
    else:
        raw, esm, dc = record.short_message, record.esm_class, record.data_coding
    if esm & 0x40 and raw:
        raw = raw[1 + raw[0]:]
    return raw.decode("utf-16-be") if dc == 8 else raw.decode("latin-1")


# -- the router in process -----------------------------------------------------------


class Router:
    """`App` plus in-process simulators on the test's loop (see the module docstring).

    `carriers` maps a name to its SimOptions; `entries` gives extra carrier keys per name.
    Use as `async with Router(...) as r:`; `r.client` is a connected AsyncClient.
    """

    def __init__(
        self,
        tmp_path: Path,
        carriers: Mapping[str, SimOptions],
        routes: Sequence[Mapping[str, Any]],
        *,
        entries: Mapping[str, Mapping[str, Any]] | None = None,
        limits: Mapping[str, Any] | None = None,
        number_limits: Sequence[Mapping[str, Any]] = (),
        router: Mapping[str, Any] | None = None,
    ) -> None:
        self.dir = tmp_path
        self.sims = {name: CarrierSim(opts) for name, opts in carriers.items()}
        self.routes = list(routes)
        self.entries = dict(entries or {})
        self.limits = limits
        self.number_limits = number_limits
        self.router_keys = dict(router or {})
        self.socket_url = self.router_keys.get("socket", f"unix://{tmp_path}/router.sock")
        self.token = self.router_keys.get("token")
        self.config_path = tmp_path / "router.toml"
        self.ports: dict[str, int] = {}
        self.app: App | None = None
        self.client: AsyncClient = None  # type: ignore[assignment]

    def config_text(self, routes: Sequence[Mapping[str, Any]] | None = None,
                    entries: Mapping[str, Mapping[str, Any]] | None = None) -> str:
        entries = self.entries if entries is None else entries
        carriers = [carrier_entry(n, self.ports[n], **entries.get(n, {})) for n in self.sims]
        return render_config(
            socket_url=self.socket_url, carriers=carriers, routes=self.routes if routes is None else routes,
            limits=self.limits, number_limits=self.number_limits, router=self.router_keys,
        )

    async def __aenter__(self) -> Self:
        for name, sim in self.sims.items():
            await sim.start()
            self.ports[name] = sim.port
        self.config_path.write_text(self.config_text())
        await self.start_app()
        await self.wait_bound()
        return self

    async def start_app(self) -> None:
        """Start the router on the config file (again) and connect `client`."""
        self.app = App(load_config(self.config_path))
        await self.app.start()
        self.client = await AsyncClient.connect(self.socket_url, self.token, timeout=WAIT_S)

    async def stop_app(self, grace_s: float = 2.0) -> None:
        """Stop the router gracefully (the simulators keep running)."""
        with contextlib.suppress(Exception):
            await self.client.close()
        if self.app is not None:
            app, self.app = self.app, None
            await app.stop(grace_s)

    async def __aexit__(self, *exc: object) -> None:
        await self.stop_app()
        for sim in self.sims.values():
            await sim.stop()

    async def wait_bound(self, names: Iterable[str] | None = None, timeout: float = WAIT_S) -> None:
        """Wait until `stats` shows every bind of `names` (default: all carriers) bound."""
        names = list(names) if names is not None else None
        await until(lambda: self._bound(names), timeout, f"binds of {names or 'all carriers'} bound")

    async def _bound(self, names: list[str] | None) -> bool:
        return all_bound(await self.client.stats(), names)

    async def restart_sim(self, name: str, **changes: Any) -> CarrierSim:
        """Stop carrier `name` (if it still runs) and start a new one on the same port."""
        old = self.sims[name]
        await old.stop()
        sim = self.sims[name] = CarrierSim(dataclasses.replace(old.options, port=self.ports[name], **changes))
        await sim.start()
        return sim

    def mdr_status(self, ids: Iterable[str]) -> dict[str, str]:
        """Router id → MDR status, read from the store file (also while the router is stopped)."""
        wanted = set(ids)
        conn = open_readonly(self.dir / "state")
        try:
            return {m["id"]: m["status"] for m in iter_mdrs(conn, None, None) if m["id"] in wanted}
        finally:
            conn.close()


# -- processes -----------------------------------------------------------------------


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _kill_group(proc: subprocess.Popen[Any], sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


class SimProcess:
    """`smpp-router carrier-sim --port 0 --log FILE ...` in its own process group."""

    def __init__(self, tmp_path: Path, name: str, *flags: str) -> None:
        self.name = name
        self.log_path = tmp_path / f"sim-{name}.jsonl"
        self.stderr = open(tmp_path / f"sim-{name}.err", "wb")  # noqa: SIM115 - closed in stop
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "router", "carrier-sim", "--port", "0", "--log", str(self.log_path), *flags],
            stdout=subprocess.PIPE, stderr=self.stderr, env=_env(), cwd=tmp_path, start_new_session=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # bounded: the process prints it or dies
        if not line:
            self.stop()
            raise AssertionError(f"carrier-sim {name} did not start: {(tmp_path / f'sim-{name}.err').read_text()}")
        self.port = int(json.loads(line)["port"])

    def stop(self) -> None:
        """SIGTERM (the log is flushed and closed), SIGKILL after 10 s."""
        if self.proc.poll() is None:
            _kill_group(self.proc, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                _kill_group(self.proc)
                self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.stderr.close()

    def records(self) -> list[dict[str, Any]]:
        """Every submit the simulator logged so far (call after `stop` for all of them)."""
        if not self.log_path.exists():
            return []
        with self.log_path.open(encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]


class DaemonProcess:
    """`python -m router run -c FILE` in its own process group; stderr kept in a file."""

    def __init__(self, config_path: Path, socket_url: str) -> None:
        self.config_path = config_path
        self.socket_url = socket_url
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def log_path(self) -> Path:
        return self.config_path.parent / f"daemon-{self.starts}.log"

    def start(self) -> None:
        self.starts += 1
        with open(self.log_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "router", "run", "-c", str(self.config_path)],
                stdout=subprocess.DEVNULL, stderr=err, env=_env(), cwd=self.config_path.parent,
                start_new_session=True,
            )

    def cli(self, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        """Run `python -m router VERB -c FILE ARGS...` against this daemon's config."""
        verb, *rest = args
        return subprocess.run(
            [sys.executable, "-m", "router", verb, "-c", str(self.config_path), *rest],
            check=False, capture_output=True, text=True, env=_env(), cwd=self.config_path.parent,
            timeout=timeout,
        )

    def wait_ready(self, names: Iterable[str] | None = None, timeout: float = 20.0) -> dict[str, Any]:
        """Poll until the socket answers `stats` with every bind bound; the stats reply.

        Raises AssertionError (with the daemon's log) when it exits or times out.
        """
        names = list(names) if names is not None else None
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited {self.proc.returncode}:\n{self.log_path.read_text()[-3000:]}")
            try:
                with Client.connect(self.socket_url, timeout=5.0) as c:
                    last = c.stats()
                if all_bound(last, names):
                    return last
            except (OSError, ConnectionError, TimeoutError) as exc:
                last = exc
            time.sleep(0.05)
        raise AssertionError(f"daemon not ready in {timeout} s (last: {last}):\n{self.log_path.read_text()[-3000:]}")

    def kill9(self) -> None:
        """SIGKILL the daemon's process group and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            _kill_group(self.proc)
            self.proc.wait(10)

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait for the exit status (SIGKILL and fail after `timeout`)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill9()
                raise AssertionError(f"daemon ignored SIGTERM for {timeout} s") from None
        return int(self.proc.returncode)

    def mdrs(self) -> list[dict[str, Any]]:
        """Every MDR in the store (read-only, works while the daemon runs)."""
        conn = open_readonly(self.config_path.parent / "state")
        try:
            return list(iter_mdrs(conn, None, None))
        except sqlite3.Error:
            return []
        finally:
            conn.close()

    def close(self) -> None:
        self.kill9()


# -- load ----------------------------------------------------------------------------


class Load:
    """Sustained traffic through an AsyncClient: one message every `interval` s, each text
    carrying a unique token (also its client_ref). `acked` maps token → (router id, the
    time the submit was answered); refusals and lost connections are counted, not raised.
    """

    def __init__(self, url: str, *, interval: float = 0.005, to: str = "4915112345678",
                 sources: int = 50, prefix: str = "t") -> None:
        self.url = url
        self.interval = interval
        self.to = to
        self.sources = sources
        self.prefix = prefix
        self.acked: dict[str, tuple[str, float]] = {}
        self.sent: list[str] = []
        self.refused: list[dict[str, Any]] = []
        self.lost = 0
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        n = 0
        pending: set[asyncio.Task[None]] = set()
        while not self._stop.is_set():
            try:
                client = await AsyncClient.connect(self.url, timeout=10.0)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            try:
                while not self._stop.is_set() and client._error is None:
                    token = f"{self.prefix}{n:06d}"
                    n += 1
                    source = f"4930{n % self.sources:07d}"
                    task = asyncio.ensure_future(self._one(client, token, source))
                    pending.add(task)
                    task.add_done_callback(pending.discard)
                    await asyncio.sleep(self.interval)
            finally:
                if pending:
                    await asyncio.gather(*pending, return_exceptions=True)
                await client.close()

    async def _one(self, client: AsyncClient, token: str, source: str) -> None:
        self.sent.append(token)
        try:
            reply = await client.submit(source, self.to, text=f"load {token}", client_ref=token)
        except (ConnectionError, TimeoutError):
            self.lost += 1
            return
        if reply.get("ok"):
            self.acked[token] = (reply["id"], time.time())
        else:
            self.refused.append(reply)


def tokens_of(records: Iterable[Any], prefix: str = "t") -> dict[str, list[Any]]:
    """Token → the simulator records (accepted submits only) whose text carries it."""
    out: dict[str, list[Any]] = {}
    for rec in records:
        status = rec["status"] if isinstance(rec, Mapping) else rec.status
        if status != 0:
            continue
        for word in text_of(rec).split():
            if word.startswith(prefix) and word[len(prefix):].isdigit():
                out.setdefault(word, []).append(rec)
    return out


__all__ = [
    "FAST_CARRIER",
    "WAIT_S",
    "DaemonProcess",
    "Load",
    "Router",
    "SimOptions",
    "SimProcess",
    "all_bound",
    "carrier_entry",
    "free_port",
    "render_config",
    "route",
    "text_of",
    "tokens_of",
    "until",
]
