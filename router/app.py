"""The composition root: config → store, carrier pools, dispatcher, upstream socket.

Lifecycle (as hypercorn's `run`): `start()` opens the store, picks up what the last run
left, binds the carriers and opens the socket; `run()` waits for a shutdown trigger (a
signal, or an event tests set), applying config reloads on SIGHUP or when the file
changes; `stop()` shuts down in order — stop accepting, let in-flight submits finish up
to a grace period, unbind, flush the store, close.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import gc
import os
import signal
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import structlog

from adapters.inbound import Inbound
from adapters.metrics import Metrics, Sample
from adapters.mqtt import MqttPublisher
from adapters.smpp.constants import status_name
from adapters.smpp.esme import CarrierPool
from adapters.smpp.outbound import build_submit_pdus
from adapters.store.sqlite import SqliteStore
from adapters.upstream import UpstreamServer
from router.compliance import Compliance
from router.config import Config, ConfigError, load_config
from router.consent import ConsentDesk
from router.correlator import Correlator
from router.dispatch import Dispatcher, route_result
from router.model import Message
from router.mo import InboundMessage, Reassembler
from router.ports import StoreError
from router.reload import ConfigDiff, Reloader
from router.optout import OptOutList
from router.service import Service

log = structlog.get_logger("router")

#: How often the config file's modification time is checked for a reload.
WATCH_INTERVAL_S = 1.0
#: How often receipt deadlines, MO holds and the store's retention are looked after.
HOUSEKEEPING_S = 1.0
#: How long a finished message's receipt keys stay in memory, so a duplicate receipt is
#: recognised as one (later duplicates are stored as orphans and change nothing). At high
#: rates this bounds the correlator's memory: it holds what arrives in this many seconds.
FINAL_KEEP_S = 300.0
#: How often final MDRs past `mdr_retention_days` are pruned.
PRUNE_EVERY_S = 3600.0


class App:
    """One router process."""

    def __init__(self, config: Config, *, env: Mapping[str, str] | None = None) -> None:
        self.config = config
        self.env = env
        self.store = SqliteStore(config.router.state_dir)
        self.pools: dict[str, CarrierPool] = {}
        self.dispatcher: Dispatcher | None = None
        self.service: Service | None = None
        self.server: UpstreamServer | None = None
        self.metrics = Metrics()
        self.mqtt: MqttPublisher | None = None
        self.correlator: Correlator | None = None
        self.inbound: Inbound | None = None
        self.compliance: Compliance | None = None
        self.consent: ConsentDesk | None = None
        self._housekeeping: asyncio.Task[None] | None = None
        self.reloader = (
            Reloader(config.path, env, config=config) if config.path is not None else None
        )
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._kicked = False
        self._reload_lock = asyncio.Lock()
        self._lock_fd: int | None = None
        self._binds_up: set[tuple[str, str]] = set()
        self._store_open = False
        #: Pools whose connection tasks run (stop() stops only those).
        self._started: set[CarrierPool] = set()
        #: Carrier → submit_sm per second over the last housekeeping second, and the
        #: pool counter it was measured from.
        self._tps_now: dict[str, float] = {}
        self._submits_seen: dict[str, tuple[float, int]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = asyncio.Event()
        self._mtime = _mtime(config.path)

    # -- start and stop ----------------------------------------------------------------

    async def start(self) -> None:
        """Open the store, resume its live messages, bind carriers, open the socket.

        Raises StoreError or OSError (socket in use) with the key named.
        """
        self._loop = asyncio.get_running_loop()
        self._lock_state_dir()
        self.store.open()
        self._store_open = True
        now = time.time()
        carriers = {c.name: c for c in self.config.carriers}
        self.correlator = Correlator(carriers, final_keep_s=FINAL_KEEP_S)
        self.inbound = Inbound(
            carriers, self.store, self.correlator, Reassembler(), clock=time.time,
            on_mdr=self._changed, on_mo=self._mo, metrics=self.metrics,
            # Receipt events only go to MQTT: without it, skip building one per receipt.
            on_receipt=self._receipt if self.config.mqtt is not None else None,
        )
        for cfg in self.config.carriers:
            self.pools[cfg.name] = self._make_pool(cfg)
        self.dispatcher = Dispatcher(
            self.config, self.store, self.pools,
            build_pdus=build_submit_pdus, status_name=status_name,
            arm_timer=self._arm_timer, now=now, on_change=self._changed,
            observer=self.metrics, tracker=self.correlator, kick=self._kick,
        )
        self.compliance = self._load_compliance()
        self.consent = ConsentDesk(
            self.compliance, self.config.compliance, self.dispatcher, self.store,
            observer=self.metrics,
        )
        self.service = Service(self.dispatcher, stats=self.stats, consent=self.consent)
        self.inbound.on_in_doubt_settled = self.dispatcher.in_doubt_settled
        self.inbound.on_keyword = self._keyword
        self.metrics.declare_carriers(carriers)
        self.metrics.set_sampler(self._sample)
        if self.config.mqtt is not None:
            self.mqtt = MqttPublisher(self.config.mqtt.url, self.config.mqtt.topic_prefix)
            await self.mqtt.start()
        live = self.store.load_live()
        for msg in live:
            if msg.carrier_ids:
                self.correlator.track(msg, now)
        self.dispatcher.resume(live, now)
        self._watch_circuits()
        # Listen before binding carriers: a socket or metrics port in use ends the start
        # here, with nothing bound that would have to be unwound.
        self.server = UpstreamServer(self.service, url=self.config.router.socket, token=self.config.router.token)
        try:
            await self.server.start()
        except OSError as exc:
            raise OSError(f"router.socket: cannot listen on {self.config.router.socket}: {_why(exc)}") from None
        if self.config.router.metrics:
            try:
                await self.metrics.serve(self.config.router.metrics)
            except OSError as exc:
                raise OSError(f"router.metrics: cannot listen on {self.config.router.metrics}: {_why(exc)}") from None
        for pool in self.pools.values():
            await pool.start()
            self._started.add(pool)
        self._housekeeping = self._loop.create_task(self._keep_house())
        log.info(
            "router started", socket=self.server.url, carriers=len(self.pools),
            resumed=len(live), state_dir=str(self.config.router.state_dir),
        )

    async def stop(self, grace_s: float = 10.0) -> None:
        """Stop accepting, finish in-flight work up to `grace_s`, unbind, flush, close."""
        if self.server is not None:
            await self.server.close(grace_s)
        if self._timer is not None:
            self._timer.cancel()
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._housekeeping
        pools = [p for p in self.pools.values() if p in self._started]
        await asyncio.gather(*(p.stop(grace_s) for p in pools), return_exceptions=True)
        self._started.clear()
        if self._store_open:
            self._store_open = False
            await self.store.close()
        if self.mqtt is not None:
            await self.mqtt.stop()
        await self.metrics.stop()
        self._unlock_state_dir()
        log.info("router stopped")

    def request_stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        """Serve until SIGTERM/SIGINT (or `request_stop`); SIGHUP or a file change reloads."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.request_stop)
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(self.reload("signal")))
        try:
            await self.start()
        except (OSError, StoreError) as exc:
            log.error("router could not start", error=str(exc))
            await self.stop(1.0)
            raise StartError(str(exc)) from None
        try:
            while not self._stopping.is_set():
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), WATCH_INTERVAL_S)
                if self._file_changed():
                    await self.reload("file")
        finally:
            await self.stop()

    def _lock_state_dir(self) -> None:
        """Hold state_dir for this process: two routers on one store would send twice.

        Raises StoreError naming state_dir when another process holds it.
        """
        state_dir = Path(self.config.router.state_dir)
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(state_dir / "router.lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(f"state_dir: cannot use {state_dir}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise StoreError(
                f"state_dir: {state_dir} is in use by another router (pid {holder})"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._lock_fd = fd

    def _unlock_state_dir(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None

    def _watch_circuits(self) -> None:
        """One log line per circuit change of every carrier (also those a reload adds)."""
        assert self.dispatcher is not None
        for health in self.dispatcher.health.values():
            health.on_change = self._circuit_changed

    def _circuit_changed(self, carrier: str, old: str, new: str, reason: str) -> None:
        level = log.warning if new == "open" else log.info
        level("circuit " + new, carrier=carrier, was=old, reason=reason)

    def _load_compliance(self) -> Compliance:
        """The opt-out list as the store left it (seconds for ten million entries)."""
        started = time.monotonic()
        entries, resubscribed = self.store.load_optouts()
        optouts = OptOutList.load(entries, resubscribed)
        log.info("opt-out list loaded", entries=len(optouts),
                 seconds=round(time.monotonic() - started, 3))
        return Compliance(self.config.compliance, optouts)

    def _keyword(self, mo: InboundMessage, now: float, auto_reply: bool) -> None:
        assert self.consent is not None
        self.consent.on_mo(mo, now, auto_reply=auto_reply)

    # -- pools -------------------------------------------------------------------------

    def _make_pool(self, cfg: Any) -> CarrierPool:
        assert self.inbound is not None
        return CarrierPool(
            cfg, on_result=self._on_result, on_bind_change=self._bind_changed,
            on_deliver=self.inbound.handler(cfg.name),
        )

    def _on_result(self, token: object, index: int, res: Any) -> None:
        assert self.dispatcher is not None
        route_result(self.dispatcher, token, index, res, time.time())

    def _bind_changed(self, carrier: str, bind_id: str, up: bool, reason: str) -> None:
        assert self.dispatcher is not None
        now = time.time()
        key = (carrier, bind_id)
        was_up = key in self._binds_up
        if up:
            self._binds_up.add(key)
        else:
            self._binds_up.discard(key)
            if was_up:  # a flap is a bind that was up going down, not each failed reconnect
                self.metrics.bind_flap(carrier)
        health = self.dispatcher.health.get(carrier)
        if health is not None:
            if up:
                health.bind_up(bind_id, not bind_id.startswith("receiver"), now)
            else:
                health.bind_down(bind_id, now)
        if up:
            self.dispatcher.pump(now)

    def _changed(self, msg: Message) -> None:
        if self.service is not None:
            self.service.publish_mdr(msg)
        if self.mqtt is not None:
            self.mqtt.publish_mdr(msg.to_mdr())

    def _mo(self, mo: InboundMessage) -> None:
        event = mo.to_event()
        if self.service is not None:
            self.service.publish_mo(event)
        if self.mqtt is not None:
            self.mqtt.publish_mo(event)

    def _receipt(self, carrier: str, event: dict[str, Any]) -> None:
        if self.mqtt is not None:
            self.mqtt.publish_receipt(carrier, event)

    async def _keep_house(self) -> None:
        """Receipt deadlines, MO holds and retention, once a second."""
        assert self.correlator is not None and self.inbound is not None
        next_prune = time.time() + 60.0
        while True:
            await asyncio.sleep(HOUSEKEEPING_S)
            now = time.time()
            try:
                self._measure_tps(now)
                changed, orphans = self.correlator.expire(now)
                for msg in changed:
                    self.store.save(msg)
                    self.metrics.mdr(msg.status)
                    self._changed(msg)
                for carrier, receipt in orphans:
                    self.metrics.orphan_receipt(carrier)
                    self.store.save_receipt(carrier, receipt, "orphan", now)
                self.inbound.expire(now)
                if now >= next_prune:
                    next_prune = now + PRUNE_EVERY_S
                    cutoff = now - self.config.router.mdr_retention_days * 86400.0
                    pruned = await self.store.prune(cutoff)
                    if pruned:
                        log.info("pruned final records", count=pruned, before=cutoff)
            except Exception:  # noqa: BLE001 - housekeeping must outlive one bad round
                log.exception("housekeeping round failed")

    def _measure_tps(self, now: float) -> None:
        """submit_sm per second of each carrier since the previous housekeeping round."""
        for name, pool in self.pools.items():
            count = int(pool.stats.get("submits", 0))
            then, before = self._submits_seen.get(name, (now, count))
            if now > then:
                self._tps_now[name] = max(0, count - before) / (now - then)
            self._submits_seen[name] = (now, count)

    def _sample(self) -> Sample:
        assert self.dispatcher is not None
        now = time.time()
        binds: dict[tuple[str, str], bool] = {}
        window: dict[str, int] = {}
        throttled: dict[str, float] = {}
        for name, pool in self.pools.items():
            for b in pool.binds:
                binds[(name, b.id)] = str(b.state).startswith("bound")
            window[name] = sum(b.window_used for b in pool.binds)
            throttled[name] = pool.throttled_for(now)
        healthy = {n: h.usable(now) is None for n, h in self.dispatcher.health.items()}
        mqtt = self.mqtt.stats if self.mqtt is not None else None
        return Sample(
            queue_depth=self.dispatcher.scheduler.depth_by_priority(),
            in_doubt=self.dispatcher.in_doubt, binds=binds, carrier_healthy=healthy,
            window_used=window, throttled_seconds=throttled,
            mqtt_backlog=mqtt["backlog"] if mqtt else None,
            mqtt_dropped=mqtt["dropped"] if mqtt else None,
        )

    # -- the scheduler's one timer -----------------------------------------------------

    def _arm_timer(self, due: float | None) -> None:
        if due == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = due
        if due is None or self._loop is None:
            return
        # A timer may fire up to one clock tick early; the extra millisecond keeps it
        # from firing, finding nothing due and re-arming for the same instant.
        delay = max(0.0, due - time.time()) + 0.001
        self._timer = self._loop.call_later(delay, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._timer_at = None
        if self.dispatcher is not None:
            self.dispatcher.pump(time.time())

    def _kick(self) -> None:
        """One scheduling pass at the end of this loop turn, however many responses came."""
        if not self._kicked and self._loop is not None:
            self._kicked = True
            self._loop.call_soon(self._kicked_pass)

    def _kicked_pass(self) -> None:
        self._kicked = False
        if self.dispatcher is not None:
            self.dispatcher.pump(time.time())

    # -- reload ------------------------------------------------------------------------

    def _file_changed(self) -> bool:
        mtime = _mtime(self.config.path)
        if mtime is None or mtime == self._mtime:
            return False
        self._mtime = mtime
        return True

    async def reload(self, trigger: str) -> bool:
        """Load the config file again and apply what changed; a bad edit changes nothing."""
        if self.reloader is None:
            return False
        # One reload at a time: applying one awaits pools stopping, and a second edit
        # arriving meanwhile must diff against what the first left in place.
        async with self._reload_lock:
            result = self.reloader.reload()
            self.metrics.config_reload(result.ok)
            if not result.ok:
                log.error("config reload refused", trigger=trigger, problems=list(result.problems))
                return False
            assert result.diff is not None
            await self._apply(result.config, result.diff)
            log.info("config reloaded", trigger=trigger, **result.diff.summary())
            return True

    async def _apply(self, new: Config, diff: ConfigDiff) -> None:
        """Carriers added, removed or rebound get new pools; unchanged ones keep their sockets."""
        assert self.dispatcher is not None
        carriers = {c.name: c for c in new.carriers}
        for name in diff.carriers_removed + diff.carriers_rebind:
            pool = self.pools.pop(name)
            self._started.discard(pool)
            await pool.stop(5.0)
        for name in diff.carriers_added + diff.carriers_rebind:
            self.pools[name] = self._make_pool(carriers[name])
        for name in diff.carriers_in_place:
            self.pools[name].apply_config(carriers[name])
        self.config = new
        self.dispatcher.apply_config(new, time.time())
        if self.compliance is not None and self.consent is not None:
            # Same list and counters, new keywords, programs and replies.
            self.compliance = Compliance(new.compliance, self.compliance.optouts, self.compliance.stats)
            self.consent.set_compliance(self.compliance, new.compliance)
        if self.correlator is not None:
            self.correlator.set_carriers(carriers)
        if self.inbound is not None:
            self.inbound.carriers = carriers
        self.metrics.declare_carriers(carriers)
        self._watch_circuits()
        for name in diff.carriers_added + diff.carriers_rebind:
            await self.pools[name].start()
            self._started.add(self.pools[name])
        self.dispatcher.pump(time.time())

    # -- stats -------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        assert self.dispatcher is not None
        now = time.time()
        carriers = []
        for name, pool in self.pools.items():
            cfg = self.dispatcher.carriers[name]
            health = self.dispatcher.health[name].snapshot(now)
            carriers.append({
                "name": name,
                "healthy": health.get("healthy"),
                "circuit": health.get("circuit"),
                "binds": [
                    {"type": b.type, "index": b.index, "state": b.state, "since": b.since}
                    for b in pool.binds
                ],
                "tps_limit": cfg.tps,
                "tps_now": round(self._tps_now.get(name, 0.0), 1),
                "window_used": sum(b.window_used for b in pool.binds),
                "error_rate": health.get("error_rate"),
                "latency_ms": health.get("latency_ms"),
            })
        return {
            "carriers": carriers, "queues": self.dispatcher.queue_stats(),
            "compliance": self._compliance_stats(),
        }

    def _compliance_stats(self) -> dict[str, Any]:
        """`stats` reply's compliance section: the list's size and the counters."""
        if self.compliance is None:
            return {}
        out: dict[str, Any] = {"list_size": len(self.compliance.optouts)}
        out.update(self.compliance.stats.as_dict())
        if self.consent is not None:
            out["auto_replies"] = self.consent.stats["replies"]
        return out


def _mtime(path: Path | None) -> float | None:
    if path is None:
        return None
    try:
        return path.stat().st_mtime
    except OSError:
        return None


#: Allocations between two young-generation collections (CPython's default is 700).
GC_YOUNG_THRESHOLD = 50_000


def tune_gc() -> None:
    """Collect cycles rarely: the daemon holds many long-lived records and makes few cycles.

    With CPython's defaults a full collection, which walks every tracked object, ran often
    enough under load to cost more CPU per message than routing, throttling and encoding
    together; its time showed up in whatever function happened to allocate.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 100)


def _why(exc: OSError) -> str:
    """An OSError's reason without the errno prefix and the address it repeats."""
    return exc.strerror or str(exc)


class StartError(Exception):
    """The router could not start (the message names the key: socket, metrics, state_dir)."""


def run(config_path: str, env: Mapping[str, str] | None = None) -> int:
    """`smpp-router run`: load the config, serve until SIGTERM; the exit status."""
    try:
        config = load_config(config_path, env)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        uvloop = None
    tune_gc()
    app = App(config, env=env)
    try:
        if uvloop is not None:
            uvloop.run(app.run())
        else:  # pragma: no cover
            asyncio.run(app.run())
    except StartError as exc:
        print(f"smpp-router: {exc}", file=sys.stderr)
        return 1
    return 0
