"""`smpp-router demo`: the main job on embedded defaults, judged against a fixed expectation.

Three simulated carriers run as processes of their own (`python -m router carrier-sim`),
the router as another (`python -m router run`) on a config generated into the state
dir, and this process plays the upstream service: it pushes the scenario of
`router.demo_scenario` through the socket at a steady rate, SIGKILLs the cheapest
carrier a third of the way in and starts it again on the same port later, follows every
MDR through a `subscribe` connection, waits (bounded) until each accepted message is
final, scrapes /metrics, stops the router with SIGTERM, exports the MDRs to `mdr.jsonl`
and prints a summary. The exit status is 0 only when the run matches the expected
outcome the scenario fixed before it started.

It runs processes and talks over sockets, so it lives with the adapters; the scenario
and the summary stay pure in `router/demo_scenario.py` and `router/demo_report.py`. Every process is started in its own
session and killed on the way out; every wait has a bound.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from router.demo_report import count_final, progress_line, summarize
from router.demo_scenario import (
    CARRIERS,
    KILLED,
    RESTART_FIRST_ID,
    CarrierSpec,
    KillWindow,
    Planned,
    Scenario,
    judge,
    render_config,
)
from router.model import parse_iso

ROOT = Path(__file__).resolve().parent.parent
#: Messages per second pushed by default: 500 messages take about a minute in all.
DEFAULT_RATE = 12.0
#: Bounds of the waits: a process to start or stop, the router to bind every carrier, and
#: the last receipts (or their timeouts, receipt_timeout_s = 6) after the push ends.
START_S = 20.0
STOP_S = 20.0
SETTLE_S = 30.0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="smpp-router demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--messages", type=int, default=500, metavar="N", help="requests to push [500]")
    p.add_argument("--state-dir", metavar="DIR", help="where config, store, logs and mdr.jsonl go [a new temp dir]")
    p.add_argument("--rate", type=float, default=DEFAULT_RATE, metavar="R", help=f"requests per second [{DEFAULT_RATE:g}]")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; 0 when the run matched the expected outcome, 1 when not (or when a
    process did not start: the message names it and its log), 2 for bad flags."""
    args = build_parser().parse_args(argv)
    try:
        scenario = Scenario(args.messages, args.rate)
    except ValueError as exc:
        print(f"demo: --{exc}", file=sys.stderr)
        return 2
    state_dir = Path(args.state_dir) if args.state_dir else Path(tempfile.mkdtemp(prefix="smpp-router-demo-"))
    state_dir = state_dir.absolute()
    if (state_dir / "router.db").exists():
        # Old records would be resumed by the router and counted in the summary.
        print(f"demo: --state-dir: {state_dir} already holds a router store; give a new or empty folder",
              file=sys.stderr)
        return 2
    state_dir.mkdir(parents=True, exist_ok=True)
    demo = Demo(scenario, state_dir)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        runner = asyncio.run
    else:
        runner = uvloop.run
    try:
        return int(runner(demo.run()))
    except (RuntimeError, OSError) as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1


# -- processes -----------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


class Proc:
    """A child process in its own session, stderr appended to a log file in the state dir."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process, log: TextIO) -> None:
        self.name = name
        self.proc = proc
        self.log = log

    @classmethod
    async def start(cls, name: str, args: Sequence[str], state_dir: Path, *, stdout: bool = False) -> Proc:
        # A local file opened once per process start: not worth a thread.
        log = open(state_dir / f"{name}.log", "a", encoding="utf-8")  # noqa: SIM115, ASYNC230 - closed in stop
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "router", *args, cwd=state_dir, env=_env(), start_new_session=True,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE if stdout else asyncio.subprocess.DEVNULL,
            stderr=log,
        )
        return cls(name, proc, log)

    def send(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_S) -> int | None:
        """Send `sig`, wait up to `timeout`, then SIGKILL; the exit status (None if killed here)."""
        code: int | None = None
        if self.proc.returncode is None:
            self.send(sig)
            try:
                code = await asyncio.wait_for(self.proc.wait(), timeout)
            except TimeoutError:
                self.send(signal.SIGKILL)
                await asyncio.wait_for(self.proc.wait(), 5.0)
        else:
            code = self.proc.returncode
        self.log.close()
        return code


async def start_sim(spec: CarrierSpec, state_dir: Path, port: int = 0, first_id: int = 1) -> tuple[Proc, int]:
    """Start one simulated carrier; (the process, its port) once it listens.

    Raises RuntimeError naming the carrier when it does not come up within START_S.
    """
    args = ["carrier-sim", "--port", str(port), "--dlr-delay-ms", str(spec.dlr_delay_ms),
            "--first-id", str(first_id), "--record-limit", "0", *spec.flags]
    proc = await Proc.start(f"sim-{spec.name}", args, state_dir, stdout=True)
    assert proc.proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.proc.stdout.readline(), START_S)
        listening = int(json.loads(line)["port"])
    except (TimeoutError, ValueError, KeyError) as exc:
        await proc.stop(signal.SIGKILL)
        raise RuntimeError(f"carrier {spec.name}: simulator did not start ({exc!r}); see {proc.log.name}") from None
    return proc, listening


# -- the run -------------------------------------------------------------------------


class Demo:
    """One demo run over `scenario` in `state_dir` (see the module docstring)."""

    def __init__(self, scenario: Scenario, state_dir: Path, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.scenario = scenario
        self.state_dir = state_dir
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.procs: dict[str, Proc] = {}
        self.ports: dict[str, int] = {}
        self.replies: list[dict[str, Any] | None] = [None] * len(scenario.plan)
        self.status: dict[str, str] = {}
        self.accepted: set[str] = set()
        self.sent = 0
        self.phase = "starting"
        self.hung_at: float | None = None
        self.killed_at: float | None = None
        self.restarted_at: float | None = None
        self.t0 = time.monotonic()

    async def run(self) -> int:
        from adapters.client import AsyncClient

        socket_url = f"tcp://127.0.0.1:{free_port()}"
        metrics = f"127.0.0.1:{free_port()}"
        problems: list[str] = []
        metrics_text = ""
        try:
            for spec in CARRIERS:
                self.procs[spec.name], self.ports[spec.name] = await start_sim(spec, self.state_dir)
            config = self.state_dir / "router.toml"
            config.write_text(render_config(socket_url=socket_url, metrics=metrics, ports=self.ports), encoding="utf-8")
            self.procs["router"] = await Proc.start("router", ["run", "-c", str(config)], self.state_dir)
            client = await self._wait_ready(socket_url)
            watcher = await AsyncClient.connect(socket_url, timeout=10.0)
            follow = asyncio.get_running_loop().create_task(self._follow(watcher))
            progress = asyncio.get_running_loop().create_task(self._progress())
            push_s = await self._push(client)
            self.phase = "waiting for receipts"
            await self._settle()
            progress.cancel()
            self._progress_done()
            metrics_text = await asyncio.to_thread(_scrape, f"http://{metrics}/metrics")
            (self.state_dir / "metrics.prom").write_text(metrics_text, encoding="utf-8")
            await client.close()
            await watcher.close()
            follow.cancel()
            code = await self.procs.pop("router").stop()
            if code != 0:
                problems.append(f"router: SIGTERM should drain and exit 0, exited {code}")
        finally:
            for proc in self.procs.values():
                await proc.stop(signal.SIGKILL)
            self.procs.clear()
        total_s = time.monotonic() - self.t0
        return self._report(problems, metrics_text, push_s, total_s, metrics)

    async def _wait_ready(self, url: str) -> Any:
        """A connected client once every carrier's binds are bound. Raises RuntimeError after START_S."""
        from adapters.client import AsyncClient

        deadline = time.monotonic() + START_S
        last: object = None
        while time.monotonic() < deadline:
            router = self.procs["router"].proc
            if router.returncode is not None:
                raise RuntimeError(f"router exited {router.returncode}; see {self.state_dir / 'router.log'}")
            try:
                client = await AsyncClient.connect(url, timeout=5.0)
            except OSError as exc:
                last = exc
                await asyncio.sleep(0.1)
                continue
            stats = await client.stats()
            binds = [b["state"] for c in stats.get("carriers", ()) for b in c["binds"]]
            if binds and all(s == "bound" for s in binds):
                return client
            last = stats
            await client.close()
            await asyncio.sleep(0.1)
        raise RuntimeError(f"router not ready in {START_S:g} s (last: {last}); see {self.state_dir / 'router.log'}")

    async def _follow(self, watcher: Any) -> None:
        """Keep the latest status of every MDR from the subscription."""
        with contextlib.suppress(ConnectionError):
            async for event in await watcher.subscribe(["mdr"]):
                mdr = event.get("mdr")
                if mdr:
                    self.status[mdr["id"]] = mdr["status"]

    async def _push(self, client: Any) -> float:
        """Send the plan at its times, killing and restarting the cheapest carrier on the way."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        chaos = loop.create_task(self._chaos(start))
        self.phase = "all carriers up"
        pending = []
        for p in self.scenario.plan:
            delay = start + p.at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            pending.append(loop.create_task(self._send(client, p)))
            self.sent += 1
        await asyncio.gather(*pending)
        push_s = loop.time() - start
        await chaos
        return push_s

    async def _send(self, client: Any, p: Planned) -> None:
        try:
            reply = await client.request("submit", {**p.request, "client_ref": p.client_ref})
        except (ConnectionError, TimeoutError):
            return
        self.replies[p.index] = reply
        if reply.get("ok"):
            self.accepted.add(reply["id"])

    async def _chaos(self, start: float) -> None:
        """Hang the cheapest carrier (SIGSTOP), SIGKILL it HANG_S later, start it again on its port."""
        loop = asyncio.get_running_loop()
        sc = self.scenario
        await asyncio.sleep(max(0.0, start + sc.hang_offset - loop.time()))
        self.procs[KILLED].send(signal.SIGSTOP)
        self.hung_at = time.time()
        self.phase = f"{KILLED} hangs"
        await asyncio.sleep(max(0.0, start + sc.kill_offset - loop.time()))
        self.procs[KILLED].send(signal.SIGKILL)
        self.killed_at = time.time()
        self.phase = f"{KILLED} killed"
        await self.procs.pop(KILLED).stop(signal.SIGKILL)
        await asyncio.sleep(max(0.0, start + sc.restart_offset - loop.time()))
        spec = next(s for s in CARRIERS if s.name == KILLED)
        self.procs[KILLED], _ = await start_sim(spec, self.state_dir, self.ports[KILLED], RESTART_FIRST_ID)
        self.restarted_at = time.time()
        self.phase = f"{KILLED} restarted"

    async def _settle(self) -> None:
        """Wait until every accepted message is final, at most SETTLE_S."""
        deadline = time.monotonic() + SETTLE_S
        while time.monotonic() < deadline:
            if count_final(self.status.get(i, "") for i in self.accepted) == len(self.accepted):
                return
            await asyncio.sleep(0.1)

    # -- progress and report ---------------------------------------------------------

    def _line(self) -> str:
        return progress_line(
            sent=self.sent, total=len(self.scenario.plan), accepted=len(self.accepted),
            final=count_final(self.status.get(i, "") for i in self.accepted),
            phase=self.phase, elapsed=time.monotonic() - self.t0,
        )

    async def _progress(self) -> None:
        """One updating line on a terminal; a plain line every few seconds otherwise."""
        tty = self.err.isatty()
        while True:
            if tty:
                self.err.write("\r" + self._line())
            else:
                self.err.write(self._line() + "\n")
            self.err.flush()
            await asyncio.sleep(0.2 if tty else 3.0)

    def _progress_done(self) -> None:
        self.err.write(("\r" if self.err.isatty() else "") + self._line() + "\n")
        self.err.flush()

    def _report(self, problems: list[str], metrics_text: str, push_s: float, total_s: float, metrics: str) -> int:
        mdrs = export_mdrs(self.state_dir)
        by_id = {m["id"]: m for m in mdrs}
        kill = None
        if self.hung_at is not None and self.killed_at is not None:
            kill = KillWindow(KILLED, self.hung_at, self.killed_at)
        from router.demo_report import metric_samples

        failovers = sum(v for _, v in metric_samples(metrics_text, "smpp_router_failover_total"))
        found, counts = judge(self.scenario.plan, self.replies, by_id, kill, failovers, parse_iso)
        problems = found + problems
        refusals = {k: v for k, v in counts.items() if k[:1].islower() and k not in ("missing",)}
        sc = self.scenario
        w = self.out.write
        w(f"smpp-router demo: {len(sc.plan)} requests at {sc.rate:g}/s over {sc.duration:.1f} s; {KILLED} "
          f"(the cheapest carrier) hung at {sc.hang_offset:.1f} s, SIGKILLed at {sc.kill_offset:.1f} s, "
          f"restarted at {sc.restart_offset:.1f} s\n")
        expected = sc.expected_counts()
        w("expected: " + ", ".join(f"{k} {v}" for k, v in sorted(expected.items())) +
          f"; UNKNOWN (in_doubt / no_receipt) only on {KILLED} around the kill; failover_total >= 1\n")
        for line in summarize(mdrs, parse_time=parse_iso, refusals=refusals, metrics_text=metrics_text,
                              push_s=push_s, total_s=total_s):
            w(line + "\n")
        w(f"MDR export: {self.state_dir / 'mdr.jsonl'} ({len(mdrs)} records)\n")
        w(f"metrics: http://{metrics}/metrics while the router ran; last scrape in {self.state_dir / 'metrics.prom'}\n")
        w(f"config and logs: {self.state_dir / 'router.toml'}, {self.state_dir}/*.log\n")
        if problems:
            w(f"result: MISMATCH ({len(problems)} problems)\n")
            for problem in problems:
                w(f"  - {problem}\n")
            return 1
        w("result: OK, the run matches the expected outcome\n")
        return 0


def _scrape(url: str) -> str:
    """The /metrics body ('' when it cannot be read: the judgment then reports it)."""
    try:
        with urllib.request.urlopen(url, timeout=5.0) as resp:
            return str(resp.read().decode("utf-8"))
    except OSError:
        return ""


def export_mdrs(state_dir: Path) -> list[dict[str, Any]]:
    """Every MDR in the store, also written to `state_dir/mdr.jsonl`. Raises StoreError."""
    from adapters.store.sqlite import iter_mdrs, open_readonly
    from router.export import write_records

    conn = open_readonly(state_dir)
    try:
        mdrs = list(iter_mdrs(conn, None, None))
    finally:
        conn.close()
    with open(state_dir / "mdr.jsonl", "w", encoding="utf-8") as f:
        write_records(mdrs, f, "jsonl")
    return mdrs
