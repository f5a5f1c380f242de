"""The daemon end to end: upstream socket → router → two simulated carriers, against direct.

Run: ``python -m benchmarks.pipeline [--seconds S] [--quick] [--soak-minutes N]
[--profile [submit|receipts]]``.

Scenario (``benchmarks._load``): 1,000 source numbers at 20 segments/s each (burst
20), a fixed mix of 1-part GSM, 3-part GSM and UCS-2 texts (1.4 segments per
message), half to the UK and half to the US; two carriers, each a simulator in its
own process (``python -m adapters.carrier_sim --log``), configured with tps 10,000,
two transceivers and a window of 64; route ``44`` prefers the first, ``1`` the second.
The daemon is ``python -m router run -c FILE`` with its embedded store (durable
accepts).  This process generates the load.  Phases, each bounded:

1. ``direct`` — the baseline: the same messages from this process straight into the
   simulators over SMPP (``benchmarks._direct``: 2 binds × window 64 per simulator).
2. ``pipeline`` — ``Client.submit_pipelined`` (window 256) at full speed, no receipts
   asked: messages/s from the first send to the last part's arrival at a simulator,
   and the daemon's CPU (its whole process tree, /proc utime + stime) per message.
3. ``latency`` — the same at half the pipeline's rate: accept → submit_sm, the
   client's send time against the simulator's arrival time (one clock), per message.
4. ``receipts`` — full speed with receipts asked: final MDRs per second (submit →
   resp → receipt → final MDR in the store) and CPU per message with its receipt.
5. ``receipts+mqtt`` — the same with ``[mqtt]`` set and a private mosquitto.

``--soak-minutes N`` adds a run at ``--soak-rate`` msgs/s with receipts for N minutes,
sampling the daemon's RSS (``rss_growth_mb_per_10min``, a linear fit after the first
fifth).  ``--profile`` adds a full-speed run (receipts off, or on with
``--profile receipts``) with py-spy attached, after the measured phases so sampling
does not colour them, and prints the daemon's self time per function and per module
and its inclusive time.  ``--quick`` is the smoke test's size.

Prints a table per phase, then ``RESULT pipeline_msgs_per_s``, ``pipeline_vs_direct``,
``accept_to_submit_p99_ms``, ``router_cpu_us_per_msg``, ``final_mdrs_per_s``,
``final_mdrs_per_s_mqtt``, ``router_cpu_us_per_msg_with_receipts`` (and
``rss_growth_mb_per_10min`` with a soak).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from adapters.client import Client
from benchmarks._direct import run_direct
from benchmarks._load import (
    NUMBERS,
    SEGMENTS_PER_MESSAGE,
    CarrierLog,
    LogReading,
    Message,
    messages,
)
from benchmarks._procs import (
    Daemon,
    Proc,
    mosquitto,
    simulator,
    tree_cpu_s,
    tree_rss_mb,
    write_config,
)
from benchmarks._profile import Profile, py_spy, self_time, start_recording
from router.status import FINAL

#: The scenario's limits and carriers (see the module docstring).
MPS, BURST, TPS, BINDS, WINDOW, CLIENT_WINDOW = 20, 20, 10_000, 2, 64, 256
CARRIERS = ("simA", "simB")
#: Tokens of each phase start here, so no record of one phase is taken for another's.
_PHASE_TOKENS = 10_000_000


class Phase:
    """The figures of one phase (None where it does not apply)."""

    __slots__ = (
        "accept_rate",
        "cpu_us",
        "errors",
        "finals",
        "finals_per_s",
        "lost",
        "name",
        "p50_ms",
        "p99_ms",
        "pmax_ms",
        "rate",
        "sent",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.sent = 0
        self.errors = 0
        self.lost = 0
        self.rate = 0.0
        self.accept_rate: float | None = None
        self.cpu_us: float | None = None
        self.p50_ms: float | None = None
        self.p99_ms: float | None = None
        self.pmax_ms: float | None = None
        self.finals: int | None = None
        self.finals_per_s: float | None = None


# -- load -------------------------------------------------------------------------------


def _submit(url: str, stream: Iterator[Message], seconds: float, *, rate: float | None = None,
            dlr: bool = False, sent: dict[int, float] | None = None) -> tuple[int, int, float, float]:
    """Offer ``stream`` to the router for ``seconds``: full speed, or ``rate`` messages/s.

    Each pass hands ``submit_pipelined`` what is due (full speed: a window's worth)
    as one call, and ``sent`` gets the time it went out (time.time(), the clock the
    simulators log with).  Two reasons for passes rather than one endless source:
    ``submit_pipelined`` fills its window before it writes, so a source that slept
    to pace itself would hold messages back in the client; and when its source runs
    dry with nothing in flight it waits for a reply that never comes, so a pass
    carries at most window - 1 messages (replies come a window at a time anyway,
    one group commit each).  Returns (accepted, refused, time.time() of the first
    send, of the last reply).
    """
    ok = refused = offered = 0
    batch_max = CLIENT_WINDOW - 1
    with Client.connect(url, timeout=30.0) as client:
        t0 = time.time()
        end = t0 + seconds
        while (now := time.time()) < end:
            due = batch_max if rate is None else min(batch_max, int((now - t0) * rate) + 1 - offered)
            if due <= 0:
                assert rate is not None
                time.sleep(min(0.002, (offered - (now - t0) * rate) / rate + 1e-4))
                continue
            batch = [m for _, m in zip(range(due), stream)]
            if not batch:
                break
            offered += len(batch)
            if sent is not None:
                now = time.time()
                for msg in batch:
                    sent[msg.token] = now
            replies = client.submit_pipelined(
                ({"from_": m.source, "to": m.dest, "text": m.text, "dlr": dlr, "client_ref": str(m.token)}
                 for m in batch), window=CLIENT_WINDOW)
            good = sum(1 for r in replies if r.get("ok") is True)
            ok += good
            refused += len(replies) - good
        t1 = time.time()
    return ok, refused, t0, t1


def _collect(logs: Sequence[CarrierLog], first: int, expected: int, timeout: float) -> LogReading:
    """Read the carrier logs until ``expected`` tokens from ``first`` on arrived, or nothing new came for 1 s."""
    reading = LogReading(first)
    deadline = time.monotonic() + timeout
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        before = reading.parts
        for log in logs:
            log.read(reading)
        if len(reading.arrivals) >= expected:
            return reading
        now = time.monotonic()
        if reading.parts != before:
            quiet_since = now
        elif now - quiet_since > 1.0:
            break
        time.sleep(0.1)
    return reading


def _settle(pid: int, timeout: float = 15.0) -> float:
    """Wait until the daemon is idle (< 3 % of a core over 0.3 s); its tree's CPU seconds then."""
    deadline = time.monotonic() + timeout
    last = tree_cpu_s(pid)
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = tree_cpu_s(pid)
        if now - last < 0.01:
            return now
        last = now
    return last


def _finals(state_dir: Path, since: float) -> tuple[int, float]:
    """Final MDRs accepted at or after ``since``, and the latest done_at among them."""
    with contextlib.closing(sqlite3.connect(f"file:{state_dir / 'router.db'}?mode=ro", uri=True)) as db:
        db.execute("PRAGMA busy_timeout=5000")
        marks = ",".join("?" * len(FINAL))
        n, done = db.execute(
            f"SELECT count(*), max(done_at) FROM mdr WHERE accepted_at >= ? AND status IN ({marks})",
            (since, *sorted(FINAL)),
        ).fetchone()
    return int(n), float(done or 0.0)


# -- phases -----------------------------------------------------------------------------


def phase_direct(ports: tuple[int, int], logs: Sequence[CarrierLog], seconds: float, first: int) -> Phase:
    """The baseline: the load straight into the simulators."""
    for log in logs:
        log.skip()
    coro = run_direct(ports, CARRIERS, messages(first), seconds, BINDS, WINDOW)
    sent, t0, errors = _run_loop(coro)
    reading = _collect(logs, first, sent, 30.0)
    ph = Phase("direct")
    ph.sent, ph.errors, ph.lost = sent, errors, sent - len(reading.arrivals)
    ph.rate = len(reading.arrivals) / max(1e-9, reading.last_at - t0)
    return ph


def phase_pipeline(daemon: Daemon, logs: Sequence[CarrierLog], seconds: float, first: int,
                   rate: float | None = None) -> Phase:
    """Full speed (``rate`` None) or paced: throughput, CPU, and accept → submit_sm latency."""
    cpu0 = _settle(daemon.pid)  # what an earlier phase left is sent before this one starts
    for log in logs:
        log.skip()
    sent_at: dict[int, float] = {}
    ok, refused, t0, t1 = _submit(daemon.socket_url, messages(first), seconds, rate=rate, sent=sent_at)
    reading = _collect(logs, first, ok, 30.0)
    cpu1 = _settle(daemon.pid)
    ph = Phase("pipeline" if rate is None else "latency")
    ph.sent, ph.errors, ph.lost = ok + refused, refused, ok - len(reading.arrivals)
    ph.rate = len(reading.arrivals) / max(1e-9, reading.last_at - t0)
    ph.accept_rate = ok / max(1e-9, t1 - t0)
    ph.cpu_us = (cpu1 - cpu0) / max(1, ok) * 1e6
    lat = sorted(at - sent_at[token] for token, at in reading.arrivals.items() if token in sent_at)
    if lat:
        ph.p50_ms = lat[len(lat) // 2] * 1e3
        ph.p99_ms = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e3
        ph.pmax_ms = lat[-1] * 1e3
    return ph


def phase_receipts(daemon: Daemon, state_dir: Path, seconds: float, first: int, name: str) -> Phase:
    """Full speed with receipts asked; final MDRs counted in the store as they appear."""
    cpu0 = _settle(daemon.pid)
    ok, refused, t0, _ = _submit(daemon.socket_url, messages(first), seconds, dlr=True)
    finals, done, progress_at = 0, 0.0, time.monotonic()
    deadline = time.monotonic() + 30.0
    while finals < ok and time.monotonic() < deadline and time.monotonic() - progress_at < 3.0:
        time.sleep(0.25)
        n, done = _finals(state_dir, t0 - 1.0)
        if n > finals:
            finals, progress_at = n, time.monotonic()
    cpu1 = _settle(daemon.pid)
    ph = Phase(name)
    ph.sent, ph.errors = ok + refused, refused
    ph.finals = finals
    ph.finals_per_s = finals / max(1e-9, done - t0) if finals else 0.0
    ph.cpu_us = (cpu1 - cpu0) / max(1, ok) * 1e6
    return ph


def _queued(daemon: Daemon) -> int:
    """Messages accepted but not yet sent, from the ``stats`` op."""
    with Client.connect(daemon.socket_url, timeout=10.0) as client:
        depth = client.stats().get("queues", {}).get("depth_by_priority", {})
    return sum(int(v) for v in depth.values())


def phase_soak(workdir: Path, minutes: float, rate: float) -> tuple[float, list[tuple[float, float, int]]]:
    """Receipts on at ``rate`` for ``minutes``: (RSS growth in MiB per 10 min, samples).

    Each sample is (seconds, RSS MiB, queued messages): a queue that grows means the
    rate is above what the daemon sustains, and the RSS then measures the backlog.
    """
    sims = [simulator(f"soak-{name}", workdir, log=False) for name in CARRIERS]
    daemon = None
    try:
        daemon = _start_daemon(workdir, "soak", {n: p for n, (_, p) in zip(CARRIERS, sims)}, None)
        samples: list[tuple[float, float, int]] = []
        stream = messages(9 * _PHASE_TOKENS)
        t_start = time.monotonic()
        step = min(10.0, minutes * 6.0)  # ten samples at least
        while (elapsed := time.monotonic() - t_start) < minutes * 60.0:
            samples.append((elapsed, tree_rss_mb(daemon.pid), _queued(daemon)))
            _submit(daemon.socket_url, stream, min(step, minutes * 60.0 - elapsed), rate=rate, dlr=True)
        samples.append((time.monotonic() - t_start, tree_rss_mb(daemon.pid), _queued(daemon)))
    finally:
        if daemon is not None:
            daemon.stop()
        for proc, _ in sims:
            proc.stop()
    tail = samples[len(samples) // 5:]
    n = len(tail)
    mx = sum(t for t, _, _ in tail) / n
    my = sum(r for _, r, _ in tail) / n
    var = sum((t - mx) ** 2 for t, _, _ in tail)
    slope = sum((t - mx) * (r - my) for t, r, _ in tail) / var if var else 0.0
    return slope * 600.0, samples


def phase_profile(daemon: Daemon, workdir: Path, seconds: float, first: int, dlr: bool) -> tuple[Profile, float]:
    """A full-speed run (receipts asked when ``dlr``) with py-spy attached.

    Returns its samples ranked and the daemon's CPU µs per message over the sampled
    time (sampling slows the daemon a little; the share per function is what counts).
    Raises RuntimeError when py-spy is missing or fails (it needs ptrace rights).
    """
    exe = py_spy()
    if exe is None:
        raise RuntimeError("py-spy is not installed (pip install py-spy)")
    out = workdir / "profile.txt"
    cpu0 = _settle(daemon.pid)
    spy = start_recording(exe, daemon.pid, seconds + 1.0, out)
    try:
        time.sleep(0.5)  # attached before the load starts
        ok, _, _, _ = _submit(daemon.socket_url, messages(first), seconds, dlr=dlr)
        _, err = spy.communicate(timeout=seconds + 30.0)
    finally:
        if spy.poll() is None:
            spy.kill()
            spy.wait()
    cpu1 = tree_cpu_s(daemon.pid)
    if spy.returncode != 0 or not out.exists():
        raise RuntimeError(f"py-spy failed ({spy.returncode}): {err.decode(errors='replace')[-300:]}")
    return self_time(out.read_text()), (cpu1 - cpu0) / max(1, ok) * 1e6


# -- running ----------------------------------------------------------------------------


def _run_loop(coro: Any) -> Any:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - a dependency on Linux
        return asyncio.run(coro)
    return uvloop.run(coro)


def _start_daemon(workdir: Path, name: str, sims: dict[str, int], mqtt_port: int | None) -> Daemon:
    state = workdir / f"state-{name}"
    sock = workdir / f"{name}.sock"
    config = write_config(
        workdir / f"{name}.toml", socket_path=sock, state_dir=state, sims=sims, mqtt_port=mqtt_port,
        mps=MPS, burst=BURST, tps=TPS, binds=BINDS, window=WINDOW,
    )
    return Daemon(config, sock, workdir / f"{name}.log", carriers=len(sims), binds=BINDS)


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _print_table(phases: list[Phase], direct: Phase) -> None:
    head = ("phase", "sent", "refused", "missing", "msgs/s", "vs direct", "accepted/s", "p50 ms", "p99 ms",
            "max ms", "CPU µs/msg", "final MDRs", "finals/s")
    rows = [
        (ph.name, str(ph.sent), str(ph.errors), str(ph.lost),
         _fmt(ph.rate or None, ",.0f"), _fmt(ph.rate / direct.rate if ph.rate and direct.rate else None, ".2f"),
         _fmt(ph.accept_rate, ",.0f"), _fmt(ph.p50_ms, ".1f"), _fmt(ph.p99_ms, ".1f"), _fmt(ph.pmax_ms, ".1f"),
         _fmt(ph.cpu_us, ".1f"), _fmt(ph.finals, "d"), _fmt(ph.finals_per_s, ",.0f"))
        for ph in phases
    ]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    print("  ".join(h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(head, widths))))
    for r in rows:
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the phases, print the tables and RESULT lines; the exit status."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pipeline", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="load time of each full-speed phase [8]")
    parser.add_argument("--quick", action="store_true", help="tiny phases (the smoke test)")
    parser.add_argument("--soak-minutes", type=float, default=0.0, help="add a memory soak of N minutes [off]")
    parser.add_argument("--soak-rate", type=float, default=500.0,
                        help="messages/s during the soak, below what the daemon sustains [500]")
    parser.add_argument("--profile", nargs="?", const="submit", choices=("submit", "receipts"),
                        help="add a full-speed run under py-spy (receipts off, or on) and print where CPU goes")
    parser.add_argument("--keep", action="store_true", help="keep the working folder (configs, logs, stores)")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.soak_minutes < 0 or args.soak_rate <= 0:
        parser.error("--seconds and --soak-rate must be > 0, --soak-minutes >= 0")
    seconds = 0.5 if args.quick else args.seconds
    workdir = Path(tempfile.mkdtemp(prefix="smpp-bench-"))
    procs: list[Proc] = []
    daemon: Daemon | None = None
    phases: list[Phase] = []
    profile: tuple[Profile, float] | None = None
    soak: tuple[float, list[tuple[float, float, int]]] | None = None
    try:
        sims = {}
        for name in CARRIERS:
            proc, port = simulator(name, workdir, log=True)
            procs.append(proc)
            sims[name] = port
        logs = [CarrierLog(str(workdir / f"{name}.jsonl")) for name in CARRIERS]
        ports = (sims[CARRIERS[0]], sims[CARRIERS[1]])
        print(f"scenario: {NUMBERS:,} source numbers at {MPS} segments/s (burst {BURST}); "
              f"{SEGMENTS_PER_MESSAGE:.1f} segments/msg; 2 carriers × tps {TPS:,}, {BINDS} binds × window {WINDOW}; "
              f"{seconds:g} s per phase", flush=True)
        direct = phase_direct(ports, logs, seconds, 1 * _PHASE_TOKENS)
        phases.append(direct)
        daemon = _start_daemon(workdir, "router", sims, None)
        _submit(daemon.socket_url, messages(0, 2000 if not args.quick else 200), 30.0)  # warm-up
        full = phase_pipeline(daemon, logs, seconds, 2 * _PHASE_TOKENS)
        phases.append(full)
        phases.append(phase_pipeline(daemon, logs, seconds, 3 * _PHASE_TOKENS, rate=max(100.0, full.rate / 2)))
        phases.append(phase_receipts(daemon, workdir / "state-router", seconds, 4 * _PHASE_TOKENS, "receipts"))
        if args.profile:
            profile = phase_profile(daemon, workdir, max(seconds, 5.0), 5 * _PHASE_TOKENS,
                                    dlr=args.profile == "receipts")
        daemon.stop()
        daemon = None
        broker = mosquitto(workdir)
        if broker is None:
            print("mosquitto not found: the MQTT phase is skipped", file=sys.stderr)
        else:
            procs.append(broker[0])
            daemon = _start_daemon(workdir, "router-mqtt", sims, broker[1])
            phases.append(phase_receipts(daemon, workdir / "state-router-mqtt", seconds, 6 * _PHASE_TOKENS,
                                         "receipts+mqtt"))
            daemon.stop()
            daemon = None
        if args.soak_minutes:
            soak = phase_soak(workdir, args.soak_minutes, args.soak_rate)
    finally:
        if daemon is not None:
            daemon.stop()
        for proc in reversed(procs):
            proc.stop()
        if args.keep:
            print(f"working folder kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    _print_table(phases, direct)
    by = {ph.name: ph for ph in phases}
    if profile is not None:
        prof, cpu_us = profile
        total = max(1, prof.total)
        print(f"\nprofile ({args.profile}): {prof.total} py-spy samples, the daemon at {cpu_us:.0f} CPU µs/msg "
              "while sampled; share, µs/msg:")
        for title, ranked, count in (("self time by function", prof.functions, 15),
                                     ("self time by module", prof.modules, 12),
                                     ("inclusive time", prof.inclusive, 25)):
            print(f"-- {title}")
            for func, n in ranked[:count]:
                print(f"{100 * n / total:6.1f} % {cpu_us * n / total:7.1f}  {func}")
    if soak is not None:
        samples = soak[1]
        print(f"\nsoak at {args.soak_rate:g} msgs/s with receipts (minutes, RSS MiB, queued):")
        print(", ".join(f"{t / 60:.1f} {r:.0f} {q}" for t, r, q in samples))
    receipts, mqtt = by["receipts"], by.get("receipts+mqtt")
    if not receipts.finals:
        print("no final MDRs: receipts are acknowledged but not yet correlated by the daemon")
    full, latency = by["pipeline"], by["latency"]
    print(f"RESULT pipeline_msgs_per_s={full.rate:.0f} 1/s")
    print(f"RESULT pipeline_vs_direct={full.rate / direct.rate:.2f} x")
    print(f"RESULT accept_to_submit_p99_ms={_fmt(latency.p99_ms, '.1f')} ms")
    print(f"RESULT router_cpu_us_per_msg={_fmt(full.cpu_us, '.1f')} us")
    print(f"RESULT final_mdrs_per_s={receipts.finals_per_s or 0:.0f} 1/s")
    if mqtt is not None:
        print(f"RESULT final_mdrs_per_s_mqtt={mqtt.finals_per_s or 0:.0f} 1/s")
    print(f"RESULT router_cpu_us_per_msg_with_receipts={_fmt(receipts.cpu_us, '.1f')} us")
    if soak is not None:
        print(f"RESULT rss_growth_mb_per_10min={soak[0]:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
