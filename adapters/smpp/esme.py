"""Persistent binds to one carrier: the ``CarrierPool``.

Theory of operation
-------------------
A pool owns the binds of one ``[[carriers]]`` entry and the carrier's limiter
(``router.throttle.CarrierLimiter``).  Each configured bind (``binds =
{transceiver = 2}`` → ``transceiver-0``, ``transceiver-1``) has one long-lived
task that connects, binds within ``bind_timeout_s``, waits for the connection
to end, and reconnects with exponential backoff and full jitter capped at
``reconnect_max_s``.  A refused bind (ESME_RALYBND above all: the carrier
still holds our previous session) waits past ``stale_session_s`` instead, and
is reported as ``already_bound``, not as a dead carrier.  The old socket is
always closed, and its close awaited, before the next connect: two sessions
of one bind never overlap.  Everything else about a connection lives in
``bind.BindConnection``; no task is created per message.

``submit`` charges the limiter for the whole message and puts its parts, in
order, on the least loaded bound transmitting bind; the parts wait there for
window room and for their ``ready`` future.  ``available_at`` is the
back-pressure the scheduler sees: ``inf`` without a bound transmitting bind,
later than ``now`` while the unwritten parts already fill every bound window,
else the limiter's answer.  Throttled parts are re-sent first, each paced by
the (AIMD-lowered) limiter; once the carrier has throttled for
``throttle_failover_s`` the unwritten parts go back NOT_SENT "throttled" so
the router can fail them over.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import ssl
import time
from collections.abc import Callable
from typing import Any

import structlog

from adapters.smpp.bind import BindConnection, Part, ResultKind, SubmitResult
from adapters.smpp.constants import status_name
from adapters.smpp.session import BindKind
from router.config import CarrierConfig
from router.throttle import CarrierLimiter

__all__ = ["BindInfo", "CarrierPool", "ResultKind", "SubmitResult"]

log = structlog.get_logger("smpp.esme")

#: First step of the reconnect backoff (doubles per failed attempt, capped by reconnect_max_s).
BACKOFF_BASE_S = 1.0
#: How soon ``available_at`` tells a caller to look again when the windows are full;
#: every response also wakes the router, so this is only a fallback.
BACKPRESSURE_RETRY_S = 0.01
#: Parts the pool takes beyond its open windows before it reports back-pressure, as a
#: multiple of the windows: parts wait here for their SENDING commit and for window room,
#: and a queue only as deep as the windows runs dry between two commits.
QUEUE_DEPTH_WINDOWS = 4
#: Reasons a bind goes down that are ours (a stop, our own unbind), not the carrier's.
_ORDERLY = frozenset({"stopped", "unbind_complete"})
#: Bind refusals: the carrier is alive, it only will not take this session yet.
_REFUSALS = frozenset({"already_bound", "bind_refused", "bind_invalid"})

OnResult = Callable[[object, int, SubmitResult], None]
OnDeliver = Callable[[str, Any], "int | asyncio.Future[int]"]
OnBindChange = Callable[[str, str, bool, str], None]


class BindInfo:
    """A snapshot of one bind for ``stats`` / ``status``."""

    __slots__ = ("id", "type", "index", "state", "since", "window_used", "local_port")

    def __init__(
        self, id: str, type: str, index: int, state: str, since: float, window_used: int, local_port: int | None
    ) -> None:
        self.id = id
        self.type = type
        self.index = index
        self.state = state
        self.since = since
        self.window_used = window_used
        self.local_port = local_port

    def __repr__(self) -> str:
        return f"BindInfo({self.id}, {self.state}, window_used={self.window_used}, local_port={self.local_port})"


class _Counters:
    __slots__ = (
        "submits", "accepted", "rejected", "throttled", "in_doubt", "not_sent", "late",
        "reconnects", "unexpected_resps", "malformed", "resps",
    )

    def __init__(self) -> None:
        self.submits = self.accepted = self.rejected = self.throttled = 0
        self.in_doubt = self.not_sent = self.late = self.reconnects = 0
        self.unexpected_resps = self.malformed = 0
        #: responses by command_status (names are made when stats are read).
        self.resps: dict[int, int] = {}


class _Bind:
    """One configured bind: its connection (when there is one) and its reconnect task."""

    def __init__(self, pool: CarrierPool, kind: BindKind, index: int) -> None:
        self.pool = pool
        self.kind = kind
        self.index = index
        self.id = f"{kind.value}-{index}"
        self.state = "idle"
        self.since = time.time()
        self.conn: BindConnection | None = None
        self.task: asyncio.Task[None] | None = None
        self.binds = 0
        self._reported: tuple[bool, str] | None = None

    def info(self) -> BindInfo:
        conn = self.conn
        used = conn.session.outstanding if conn is not None else 0
        port = conn.local_port if conn is not None and not conn.closed.done() else None
        return BindInfo(self.id, self.kind.value, self.index, self.state, self.since, used, port)

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.since = time.time()

    def _report(self, up: bool, reason: str, **detail: Any) -> None:
        """Log and report a change of up/down (or of the reason a bind stays down)."""
        if self._reported == (up, reason):
            return
        self._reported = (up, reason)
        pool = self.pool
        # Never the bind PDU or the config: they carry the password. A bind going down
        # for any reason but our own stop is something ops want to see at warning.
        emit = log.info if up or reason in _ORDERLY else log.warning
        emit("bind up" if up else "bind down", carrier=pool.name, bind=self.id, reason=reason,
             host=pool.cfg.host, port=pool.cfg.port, **detail)
        if pool._on_bind_change is not None:
            try:
                pool._on_bind_change(pool.name, self.id, up, reason)
            except Exception:
                log.exception("on_bind_change raised", carrier=pool.name, bind=self.id)

    async def run(self) -> None:
        """Connect, bind, serve, reconnect, until the pool stops."""
        pool = self.pool
        attempt = 0
        try:
            while not pool.stopping:
                reason, was_bound = await self._once()
                if pool.stopping:
                    break
                attempt = 0 if was_bound else attempt + 1
                self._set_state("backoff")
                await pool._sleep(pool._backoff(reason, attempt))
        finally:
            conn = self.conn
            if conn is not None and not conn.closed.done():
                conn.abort("stopped")

    async def _once(self) -> tuple[str, bool]:
        """One connection: (why it ended, whether it was bound)."""
        pool = self.pool
        cfg = pool.cfg
        loop = asyncio.get_running_loop()
        self._set_state("connecting")
        conn = BindConnection(pool, self.id, self.kind, cfg, loop, pool._first_sequence)
        try:
            await asyncio.wait_for(
                loop.create_connection(
                    lambda: conn, cfg.host, cfg.port, ssl=pool._ssl, server_hostname=cfg.host if pool._ssl else None
                ),
                cfg.bind_timeout_s,
            )
        except (OSError, asyncio.TimeoutError) as exc:
            if not pool.stopping:
                self._report(False, "connect_failed", error=str(exc) or type(exc).__name__)
            return "connect_failed", False
        self.conn = conn
        self._set_state("binding")
        refused = await conn.bound
        if refused is not None:
            conn.end(refused)
            await conn.closed
            self.conn = None
            if not pool.stopping:
                status = conn.refused_status
                self._report(False, refused, status=None if status is None else status_name(status))
            return refused, False
        self._set_state("bound")
        self.binds += 1
        if self.binds > 1:
            pool._c.reconnects += 1
        self._report(True, "bound", local_port=conn.local_port)
        reason = await conn.closed
        self.conn = None
        if not pool.stopping:
            self._report(False, reason)
        return reason, True

    async def shutdown(self, deadline: float) -> None:
        """Drain, unbind and close (bounded by ``deadline``, loop time), then end the task."""
        loop = asyncio.get_running_loop()
        conn = self.conn
        if conn is not None and conn.bound.done() and conn.bound.result() is None and not conn.closed.done():
            self._set_state("unbinding")
            await conn.drain(deadline - loop.time())
            await conn.unbind(max(0.05, deadline - loop.time()))
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        if conn is not None and not conn.closed.done():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(conn.closed), 1.0)
        self.conn = None
        self._set_state("stopped")
        self._report(False, "stopped")


class CarrierPool:
    """The binds to one carrier, its limiter and its queue of parts (see the module docstring)."""

    def __init__(
        self,
        cfg: CarrierConfig,
        *,
        on_result: OnResult,
        on_deliver: OnDeliver | None = None,
        on_bind_change: OnBindChange | None = None,
        ssl_context: ssl.SSLContext | None = None,
        first_sequence: int = 1,
    ) -> None:
        """``first_sequence`` is where every new session's sequence numbers start.

        Raises ValueError naming the field when ``cfg`` has no bind or a bad tps.
        """
        binds = [
            _Bind(self, BindKind(kind), i) for kind, count in cfg.binds.items() for i in range(count)
        ]
        if not binds:
            raise ValueError(f"carriers.{cfg.name}.binds: must name at least one bind")
        self.cfg = cfg
        self.name = cfg.name
        self.limiter = CarrierLimiter(cfg.tps)
        self.stopping = False
        self.current: BindConnection | None = None
        self._on_result = on_result
        self._on_deliver = on_deliver
        self._on_bind_change = on_bind_change
        self._ssl = ssl_context if ssl_context is not None else (ssl.create_default_context() if cfg.tls else None)
        self._first_sequence = first_sequence
        self._binds = binds
        self._tx = [b for b in binds if b.kind is not BindKind.RECEIVER]
        self._order = 0
        self._c = _Counters()
        self._stop_event = asyncio.Event()
        self._started = False

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start one connect/bind/reconnect task per bind and return at once."""
        if self._started:
            return
        self._started = True
        loop = asyncio.get_running_loop()
        for b in self._binds:
            b.task = loop.create_task(b.run(), name=f"smpp {self.name} {b.id}")

    async def stop(self, grace_s: float) -> None:
        """Stop taking submits, wait up to ``grace_s`` for outstanding responses, unbind, close.

        Unwritten parts go back NOT_SENT "stopped"; parts still without a
        response when the connection closes go back IN_DOUBT "connection_lost".
        """
        if self.stopping:
            return
        self.stopping = True
        self._stop_event.set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, grace_s)
        for b in self._binds:
            if b.conn is not None:
                b.conn.fail_unwritten(ResultKind.NOT_SENT, "stopped")
        await asyncio.gather(*(b.shutdown(deadline) for b in self._binds))

    async def _sleep(self, delay: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stop_event.wait(), delay)

    def _backoff(self, reason: str, attempt: int) -> float:
        cfg = self.cfg
        jitter = random.uniform(0.0, min(cfg.reconnect_max_s, BACKOFF_BASE_S * 2.0 ** min(attempt, 30)))
        if reason in _REFUSALS:
            return cfg.stale_session_s + jitter  # past the carrier's stale-session time
        return jitter

    # -------------------------------------------------------------- submits

    def available_at(self, n: int, now: float) -> float:
        """Earliest epoch time the carrier can take ``n`` more segments (``inf`` with no bound
        transmitter, or once stopping: what it would take it hands straight back).

        Raises ValueError naming ``n`` when it is not a positive segment count.
        """
        if self.stopping:
            # Taking work while stopping would bounce it back NOT_SENT "stopped" at once,
            # and the router would count every bounce as a failed try until it gave up.
            return math.inf
        cap = queued = 0
        for b in self._tx:
            conn = b.conn
            if conn is not None and conn.usable:
                cap += conn.cap
                queued += len(conn.queue) + len(conn.retry)
        if not cap:
            return math.inf
        at = self.limiter.available_at(n, now)
        if queued >= cap * QUEUE_DEPTH_WINDOWS:
            return max(at, now + BACKPRESSURE_RETRY_S)
        return at

    def submit(
        self, token: object, pdus: list[Any], now: float, ready: asyncio.Future[Any] | None = None
    ) -> None:
        """Charge the limiter for ``pdus`` and queue them, in order, on one bind.

        They are written once ``ready`` (if given) resolved; if it fails they
        go back NOT_SENT "stopped".  Without a bound transmitting bind (or once
        stopping) they go back NOT_SENT "no_bind" / "stopped" on the next loop pass.
        """
        n = len(pdus)
        conn = None if self.stopping or not n else self._pick()
        if conn is None:
            if n:
                self._hand_back(token, n, "stopped" if self.stopping else "no_bind")
            return
        self.limiter.acquire(n, now)
        self._c.submits += n
        order = self._order
        if n == 1:
            conn.queue.append(Part(token, 0, pdus[0], ready, order))
        else:
            conn.queue.extend([Part(token, i, pdu, ready, order + i) for i, pdu in enumerate(pdus)])
        self._order = order + n
        conn.pump()

    def _pick(self) -> BindConnection | None:
        """The bind whose socket callback is running if it has window room, else the least loaded.

        The first keeps replies and new submits in one write per read under load.
        """
        conn = self.current
        if conn is not None and conn.usable and len(conn.queue) + len(conn.retry) + conn.session.outstanding < conn.cap:
            return conn
        best: BindConnection | None = None
        best_load = math.inf
        for b in self._tx:
            conn = b.conn
            if conn is not None and conn.usable:
                load = len(conn.queue) + len(conn.retry) + conn.session.outstanding
                if load < best_load:
                    best, best_load = conn, load
        return best

    def _hand_back(self, token: object, n: int, reason: str) -> None:
        def hand_back() -> None:
            for i in range(n):
                self.result(Part(token, i, None, None, 0), SubmitResult(ResultKind.NOT_SENT, reason=reason))

        asyncio.get_running_loop().call_soon(hand_back)

    # ---------------------------------------------------- config and stats

    def apply_config(self, cfg: CarrierConfig) -> None:
        """In-place changes: tps and window now; timeouts and max_pdu_bytes from the next connection.

        A window larger than a live session's own takes effect when it reconnects.
        Raises ValueError naming ``rate``/``burst`` for a bad tps.
        """
        self.limiter.set_tps(cfg.tps)
        self.cfg = cfg
        for b in self._binds:
            if b.conn is not None:
                b.conn.cap = min(cfg.window, b.conn.session.window)
                b.conn.pump()

    def throttled_for(self, now: float) -> float:
        """Seconds the carrier has been throttling us without a success since (0 if not)."""
        return self.limiter.throttled_for(now)

    @property
    def binds(self) -> list[BindInfo]:
        """One snapshot per configured bind, in config order."""
        return [b.info() for b in self._binds]

    @property
    def stats(self) -> dict[str, Any]:
        """Counters since start: submits, resps by status name, throttled, in_doubt, reconnects, ..."""
        c = self._c
        out: dict[str, Any] = {name: getattr(c, name) for name in c.__slots__ if name != "resps"}
        out["resps"] = {status_name(code): count for code, count in sorted(c.resps.items())}
        out["tps_now"] = self.limiter.tps
        out["queued"] = sum(b.conn.unwritten for b in self._tx if b.conn is not None)
        return out

    # --------------------------------------------- hooks for BindConnection

    def result(self, part: Part, result: SubmitResult) -> None:
        """Count one outcome and hand it to ``on_result`` (which may not raise into the pool)."""
        c = self._c
        kind = result.kind
        if kind is ResultKind.ACCEPTED:
            c.accepted += 1
            limiter = self.limiter
            if limiter.throttled_since is not None or limiter.tps < limiter.configured_tps:
                limiter.on_success(time.time())  # only a throttled carrier has anything to recover
        elif kind is ResultKind.THROTTLED:
            c.throttled += 1
        elif kind is ResultKind.REJECTED:
            c.rejected += 1
        elif kind is ResultKind.IN_DOUBT:
            c.in_doubt += 1
        else:
            c.not_sent += 1
        status = result.status
        if result.latency_s is not None and status is not None:
            c.resps[status] = c.resps.get(status, 0) + 1
        if result.late:
            c.late += 1
        try:
            self._on_result(part.token, part.index, result)
        except Exception:
            log.exception("on_result raised", carrier=self.name)

    def throttled(self, now: float) -> None:
        """A part came back throttled: slow down; past throttle_failover_s hand the rest back."""
        epoch = time.time()
        limiter = self.limiter
        limiter.on_throttled(epoch)
        if limiter.throttled_for(epoch) >= self.cfg.throttle_failover_s:
            for b in self._tx:
                if b.conn is not None:
                    b.conn.fail_unwritten(ResultKind.NOT_SENT, "throttled")

    def retry_delay(self) -> float:
        """0 (and one segment charged) when a throttled part may go again, else seconds to wait."""
        epoch = time.time()
        at = self.limiter.available_at(1, epoch)
        if at <= epoch:
            self.limiter.acquire(1, epoch)
            return 0.0
        return at - epoch

    def deliver(self, bind_id: str, pdu: Any) -> int | asyncio.Future[int]:
        """The command_status for an inbound deliver_sm / data_sm (ESME_ROK without ``on_deliver``)."""
        if self._on_deliver is None:
            return 0
        return self._on_deliver(bind_id, pdu)

    def count(self, name: str) -> None:
        """Count a rare connection event (unexpected_resps, malformed)."""
        setattr(self._c, name, getattr(self._c, name) + 1)
