"""One SMPP bind connection: the asyncio edge around a sans-IO ``Session``.

Theory of operation
-------------------
A ``BindConnection`` is the ``asyncio.Protocol`` of one TCP (or TLS) connection
to a carrier, in the shape of aioquic's ``asyncio/protocol.py``: bytes in go to
``Session.receive_data``, the events that come back are acted on, and
everything the session queued leaves through one write path.  There is one
timer, re-armed from ``Session.get_timer()`` after every call into the session,
and it only moves when a deadline comes *earlier* than the armed one (response
deadlines grow with every send, so under load the handle is rarely replaced).

Submits are ``Part`` objects.  A part is *queued* (assigned to this bind, not
yet handed to the session), *sent* (``Session.send`` gave it a sequence number)
or finished.  ``pump`` moves queued parts into the window in order, never past
a part whose ``ready`` future (the store's group commit) has not resolved; a
part the carrier throttled goes to ``retry``, which is written before anything
else once the carrier limiter allows it.  Writes are coalesced: a pump from
outside a socket callback schedules one ``call_soon`` flush; a socket callback
flushes once at its end.

When the connection ends, every part fails at once (asyncpg's
``_handle_waiter_on_connection_lost``): sent and flushed → IN_DOUBT, never
flushed or still queued → NOT_SENT, both with the connection's end reason.
"""

from __future__ import annotations

import asyncio
import enum
import math
from bisect import insort
from collections import OrderedDict, deque
from typing import Any, Protocol

import structlog

from adapters.smpp import pdu as _pdu
from adapters.smpp.constants import CommandId, CommandStatus, status_name
from adapters.smpp.errors import LocalProtocolError
from adapters.smpp.events import (
    BindComplete,
    BindFailed,
    MalformedPdu,
    PeerDead,
    ProtocolViolation,
    RequestReceived,
    ResponseReceived,
    ResponseTimedOut,
    UnbindComplete,
    UnbindReceived,
    UnexpectedResponse,
)
from adapters.smpp.session import BindKind, Role, Session, State
from adapters.smpp.states import BOUND_STATES

log = structlog.get_logger("smpp.bind")

__all__ = ["BindConnection", "Part", "PoolHooks", "ResultKind", "SubmitResult", "THROTTLE_STATUSES"]

#: §5.1.3 back-pressure statuses: slow down and send the same part again.
THROTTLE_STATUSES = frozenset({CommandStatus.ESME_RTHROTTLED, CommandStatus.ESME_RMSGQFUL})
#: §5.1.3 "ESME Receiver Temporary App Error": the carrier redelivers later.
_APP_TEMP_ERROR = CommandStatus.ESME_RX_T_APPN
_SUBMIT_SM = CommandId.SUBMIT_SM
_GENERIC_NACK = CommandId.GENERIC_NACK
_INBOUND = frozenset({CommandId.DELIVER_SM, CommandId.DATA_SM})
#: Late responses we can still match after a timeout (the session keeps as many tombstones).
_MAX_TIMED_OUT = 4096


class ResultKind(enum.Enum):
    """What became of one submitted part."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    THROTTLED = "throttled"
    IN_DOUBT = "in_doubt"
    NOT_SENT = "not_sent"


class SubmitResult:
    """One outcome of one part (see the pool contract in ``esme.py``)."""

    __slots__ = ("kind", "status", "message_id", "bind", "latency_s", "late", "reason")

    def __init__(
        self,
        kind: ResultKind,
        status: int | None = None,
        message_id: str | None = None,
        bind: str = "",
        latency_s: float | None = None,
        late: bool = False,
        reason: str | None = None,
    ) -> None:
        self.kind = kind
        self.status = status
        self.message_id = message_id
        self.bind = bind
        self.latency_s = latency_s
        self.late = late
        self.reason = reason

    def __repr__(self) -> str:
        status = None if self.status is None else status_name(self.status)
        return (
            f"SubmitResult({self.kind.name}, status={status}, message_id={self.message_id!r}, "
            f"bind={self.bind!r}, late={self.late}, reason={self.reason!r})"
        )


class Part:
    """One submit_sm on its way: the caller's token and index, and where it stands."""

    __slots__ = ("token", "index", "pdu", "ready", "order", "sent_at")

    def __init__(self, token: object, index: int, pdu: Any, ready: asyncio.Future[Any] | None, order: int) -> None:
        self.token = token
        self.index = index
        self.pdu = pdu
        #: the store's group-commit future; None once it resolved (or when there was none).
        self.ready = ready
        #: pool-wide submit order, so throttled retries go back in their original order.
        self.order = order
        self.sent_at = 0.0

    def __lt__(self, other: Part) -> bool:
        return self.order < other.order


class PoolHooks(Protocol):
    """What a connection needs from the pool that owns it."""

    stopping: bool
    #: the connection whose socket callback is running, if any (submits prefer it).
    current: BindConnection | None

    def result(self, part: Part, result: SubmitResult) -> None: ...
    def throttled(self, now: float) -> None: ...
    def retry_delay(self) -> float: ...
    def deliver(self, bind_id: str, pdu: Any) -> int | asyncio.Future[int]: ...
    def count(self, name: str) -> None: ...


class BindConnection(asyncio.Protocol):
    """One connection of one bind; built fresh for every connect (see the module docstring)."""

    def __init__(
        self,
        pool: PoolHooks,
        bind_id: str,
        kind: BindKind,
        cfg: Any,
        loop: asyncio.AbstractEventLoop,
        first_sequence: int = 1,
    ) -> None:
        """``cfg`` is the carrier's CarrierConfig. Raises ValueError naming a bad session option."""
        self.pool = pool
        self.bind_id = bind_id
        self.kind = kind
        self.can_submit = kind is not BindKind.RECEIVER
        self._cfg = cfg
        self._loop = loop
        self.session = Session(
            Role.ESME,
            window=cfg.window,
            response_timeout_s=cfg.response_timeout_s,
            enquire_link_s=cfg.enquire_link_s,
            bind_timeout_s=cfg.bind_timeout_s,
            max_pdu_bytes=cfg.max_pdu_bytes,
            first_sequence=first_sequence,
        )
        self.transport: asyncio.Transport | None = None
        self.queue: deque[Part] = deque()
        self.retry: list[Part] = []
        self.sent: dict[int, Part] = {}
        self._timed_out: OrderedDict[int, Part] = OrderedDict()
        #: how many of the newest ``sent`` entries are still only in the session's buffer.
        self._unflushed = 0
        #: None once bound; otherwise why the bind did not happen.
        self.bound: asyncio.Future[str | None] = loop.create_future()
        #: the reason the connection ended, set in connection_lost.
        self.closed: asyncio.Future[str] = loop.create_future()
        self.reason: str | None = None
        self.refused_status: int | None = None
        self.local_port: int | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self._soon: asyncio.Handle | None = None
        #: inside a socket or timer callback, which pumps and flushes once at its end.
        self._busy = False
        #: bound for submitting and not closing; a plain attribute, read per message.
        self.usable = False
        #: the window in force: the configured one, at most the session's own.
        self.cap = cfg.window
        self._retry_handle: asyncio.TimerHandle | None = None
        #: Inbound PDUs whose answer waits, by the future that gives it (see _on_request).
        self._acks: dict[asyncio.Future[int], list[Any]] = {}
        self._waiting: asyncio.Future[Any] | None = None
        self._idle: asyncio.Future[None] | None = None

    # ------------------------------------------------------------ properties

    @property
    def unwritten(self) -> int:
        """Parts assigned here and not yet handed to the session."""
        return len(self.queue) + len(self.retry)

    # -------------------------------------------------------- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sockname = transport.get_extra_info("sockname")
        self.local_port = sockname[1] if isinstance(sockname, tuple) and len(sockname) > 1 else None
        cfg = self._cfg
        now = self._loop.time()
        # The bind PDU carries the password: it is encoded here and never logged.
        try:
            self.session.bind(self.kind, cfg.system_id, cfg.password, cfg.system_type, now=now)
        except LocalProtocolError as exc:
            # A credential the spec cannot carry (§4.1.1: password <= 8 octets): the
            # error names the field, never its value.
            log.error("bind refused by the encoder", bind=self.bind_id, error=str(exc))
            self.bound.set_result("bind_invalid")
            self.end("bind_invalid")
            return
        self._flush()
        self._arm()

    def data_received(self, data: bytes) -> None:
        now = self._loop.time()
        self._busy = True
        pool = self.pool
        pool.current = self  # what the app submits now can go out in this same write
        try:
            events = self.session.receive_data(data, now)
            if events:
                self._handle(events, now)
            if self.queue or self.retry:
                self._pump(now)
        finally:
            self._busy = False
            pool.current = None
        self._flush()
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self.session.close()
        self.usable = False
        for handle in (self._timer, self._soon, self._retry_handle):
            if handle is not None:
                handle.cancel()
        self._timer = self._soon = self._retry_handle = None
        reason = self.reason or "connection_lost"
        self.reason = reason
        if not self.bound.done():
            self.bound.set_result(reason)
        self._fail_all()
        self._acks.clear()  # unanswered: the carrier redelivers them
        if self._idle is not None and not self._idle.done():
            self._idle.set_result(None)
        if not self.closed.done():
            self.closed.set_result(reason)

    # --------------------------------------------------------------- events

    def _handle(self, events: list[Any], now: float) -> None:
        for ev in events:
            t = type(ev)
            if t is ResponseReceived:
                self._on_response(ev, now)
            elif t is RequestReceived:
                self._on_request(ev.pdu, now)
            elif t is ResponseTimedOut:
                self._on_timeout(ev)
            elif t is BindComplete:
                self.usable = self.can_submit and self.session.state in _SUBMIT_STATES
                if not self.bound.done():
                    self.bound.set_result(None)
            elif t is BindFailed:
                self._on_bind_failed(ev)
            elif t is UnexpectedResponse:
                self.pool.count("unexpected_resps")
            elif t is MalformedPdu:
                self.pool.count("malformed")
            elif t is PeerDead:
                self.end("keepalive")
            elif t is UnbindReceived:
                self.end("unbound")
            elif t is UnbindComplete:
                self.end("unbind_complete")
            elif t is ProtocolViolation:
                log.warning("carrier broke framing", bind=self.bind_id, error=str(ev.error))
                self.end("protocol_error")

    def _on_response(self, ev: ResponseReceived, now: float) -> None:
        if ev.request.command_id != _SUBMIT_SM:
            return
        seq = ev.request_seq
        late = ev.late
        part = self._timed_out.pop(seq, None) if late else self.sent.pop(seq, None)
        if part is None:
            return
        pool = self.pool
        status = ev.status
        pdu = ev.pdu
        latency = now - part.sent_at
        if status == 0 and pdu.command_id != _GENERIC_NACK:
            message_id = pdu.message_id
            pool.result(part, SubmitResult(ResultKind.ACCEPTED, 0, message_id, self.bind_id, latency, late))
        elif status in THROTTLE_STATUSES and not late:
            pool.result(part, SubmitResult(ResultKind.THROTTLED, status, None, self.bind_id, latency))
            part.ready = None
            insort(self.retry, part)
            pool.throttled(now)
        else:
            # A late throttle is reported as the rejection it is: the part was
            # already given up as in doubt, so nothing will retry it here.
            pool.result(part, SubmitResult(ResultKind.REJECTED, status, None, self.bind_id, latency, late))
        if not self.sent and self._idle is not None and not self._idle.done():
            self._idle.set_result(None)

    def _on_timeout(self, ev: ResponseTimedOut) -> None:
        part = self.sent.pop(ev.seq, None)
        if part is None:
            return
        timed_out = self._timed_out
        timed_out[ev.seq] = part
        if len(timed_out) > _MAX_TIMED_OUT:
            timed_out.popitem(last=False)
        self.pool.result(part, SubmitResult(ResultKind.IN_DOUBT, None, None, self.bind_id, None, False, "timeout"))
        if not self.sent and self._idle is not None and not self._idle.done():
            self._idle.set_result(None)

    def _on_bind_failed(self, ev: BindFailed) -> None:
        if ev.status is None:
            reason = "bind_timeout"
        elif ev.status == CommandStatus.ESME_RALYBND:
            reason = "already_bound"
        else:
            reason = "bind_refused"
        self.refused_status = ev.status
        if not self.bound.done():
            self.bound.set_result(reason)
        self.end(reason)

    def _on_request(self, pdu: Any, now: float) -> None:
        if pdu.command_id not in _INBOUND:
            return  # alert_notification / outbind take no answer (§4.12, §4.1.7)
        try:
            answer = self.pool.deliver(self.bind_id, pdu)
        except Exception:
            log.exception("on_deliver raised; answering ESME_RX_T_APPN", bind=self.bind_id)
            answer = _APP_TEMP_ERROR
        if isinstance(answer, int):
            self._answer(pdu, answer, now)
            return
        # The pool's answers share one future per store commit: one callback answers all.
        waiting = self._acks.get(answer)
        if waiting is None:
            self._acks[answer] = [pdu]
            answer.add_done_callback(self._deliver_done)
        else:
            waiting.append(pdu)

    def _deliver_done(self, fut: asyncio.Future[int]) -> None:
        pdus = self._acks.pop(fut, ())
        status: int
        if fut.cancelled() or fut.exception() is not None:
            status = _APP_TEMP_ERROR
        else:
            status = fut.result()
        if self.session.state is State.CLOSED:
            return  # the carrier redelivers what it did not see answered
        now = self._loop.time()
        for pdu in pdus:
            self._answer(pdu, status, now)
        self.pump()

    def _answer(self, pdu: Any, status: int, now: float) -> None:
        try:
            self.session.send_response(pdu.response(command_status=int(status)), now)
        except LocalProtocolError as exc:
            log.warning("could not answer an inbound message", bind=self.bind_id, error=str(exc))

    # -------------------------------------------------------------- writing

    def pump(self) -> None:
        """Write what the window, the ready futures and the limiter allow, once, on this loop pass.

        Many submits in one pass cost one pump and one write: inside this
        connection's own callback the pump at its end does it, otherwise one
        ``call_soon`` is scheduled.
        """
        if self._busy or self._soon is not None or self.transport is None:
            return
        self._soon = self._loop.call_soon(self._run_soon)

    def _run_soon(self) -> None:
        self._soon = None
        if self.queue or self.retry:
            self._pump(self._loop.time())
        self._flush()
        self._arm()

    def _pump(self, now: float) -> None:
        if not self.usable:
            return
        pool = self.pool
        if pool.stopping:
            self.fail_unwritten(ResultKind.NOT_SENT, "stopped")
            return
        session = self.session
        window = self.cap
        if self.retry and not self._send_retries(now, window):
            return
        queue = self.queue
        sent = self.sent
        send = session.send
        while queue and session.outstanding < window:
            part = queue[0]
            ready = part.ready
            if ready is not None:
                if not ready.done():
                    self._wait_for(ready)
                    return
                part.ready = None
                if ready.cancelled() or ready.exception() is not None:
                    queue.popleft()
                    pool.result(part, SubmitResult(ResultKind.NOT_SENT, None, None, self.bind_id, reason="stopped"))
                    continue
            queue.popleft()
            try:  # _send, inlined: this loop runs once per part
                seq = send(part.pdu, now)
            except LocalProtocolError as exc:
                self._refused(part, exc)
                continue
            part.sent_at = now
            sent[seq] = part
            self._unflushed += 1

    def _send_retries(self, now: float, window: int) -> bool:
        """Send throttled parts first, paced by the carrier limiter; False while any still wait."""
        retry = self.retry
        session = self.session
        while retry and session.outstanding < window:
            delay = self.pool.retry_delay()
            if delay > 0.0:
                if self._retry_handle is None:
                    self._retry_handle = self._loop.call_later(delay, self._retry_due)
                return False
            self._send(retry.pop(0), now)
        return not retry

    def _retry_due(self) -> None:
        self._retry_handle = None
        self.pump()

    def _send(self, part: Part, now: float) -> None:
        try:
            seq = self.session.send(part.pdu, now)
        except LocalProtocolError as exc:
            self._refused(part, exc)
            return
        part.sent_at = now
        self.sent[seq] = part
        self._unflushed += 1

    def _refused(self, part: Part, exc: LocalProtocolError) -> None:
        # A part the codec refuses (a field out of range) is rejected alone; the bind stays.
        log.warning("submit_sm refused by the encoder", bind=self.bind_id, error=str(exc))
        self.pool.result(part, SubmitResult(ResultKind.REJECTED, exc.command_status, None, self.bind_id, reason=str(exc)))

    def _wait_for(self, ready: asyncio.Future[Any]) -> None:
        if self._waiting is not ready:
            self._waiting = ready
            ready.add_done_callback(self._ready_done)

    def _ready_done(self, fut: asyncio.Future[Any]) -> None:
        if self._waiting is fut:
            self._waiting = None
        self.pump()

    def _flush(self) -> None:
        data = self.session.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)
            self._unflushed = 0

    # ---------------------------------------------------------------- timer

    def _arm(self) -> None:
        at = self.session.get_timer()
        if at is None or at >= self._timer_at:
            return  # the armed handle fires first and re-arms
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = at
        self._timer = self._loop.call_at(at, self._on_timer)

    def _on_timer(self) -> None:
        # The loop may run a handle a clock tick early: count it as due.
        now = max(self._loop.time(), self._timer_at)
        self._timer = None
        self._timer_at = math.inf
        self._busy = True
        try:
            events = self.session.handle_timer(now)
            if events:
                self._handle(events, now)
            if self.queue or self.retry:
                self._pump(now)
        finally:
            self._busy = False
        self._flush()
        self._arm()

    # ------------------------------------------------------------ lifecycle

    def end(self, reason: str) -> None:
        """Close the connection for ``reason`` after writing what the session queued."""
        if self.reason is None:
            self.reason = reason
        self.usable = False
        self._flush()
        if self.transport is not None:
            self.transport.close()

    def abort(self, reason: str) -> None:
        """Drop the connection at once (nothing more is written)."""
        if self.reason is None:
            self.reason = reason
        self.usable = False
        if self.transport is not None:
            self.transport.abort()

    async def drain(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for every sent part's response; True when none is left."""
        if self.sent and timeout > 0 and not self.closed.done():
            self._idle = self._loop.create_future()
            try:
                await asyncio.wait_for(asyncio.shield(self._idle), timeout)
            except asyncio.TimeoutError:
                pass
        return not self.sent

    async def unbind(self, timeout: float) -> None:
        """Send unbind (§4.2) and wait up to ``timeout`` s for its resp or the peer's close; then close."""
        self.usable = False
        if self.session.state in BOUND_STATES:
            try:
                self.session.unbind(self._loop.time())
            except LocalProtocolError:
                pass
            else:
                self._flush()
                self._arm()
                try:
                    await asyncio.wait_for(asyncio.shield(self.closed), timeout)
                except asyncio.TimeoutError:
                    pass
        self.end("stopped")
        try:
            await asyncio.wait_for(asyncio.shield(self.closed), 1.0)
        except asyncio.TimeoutError:
            self.abort("stopped")

    def fail_unwritten(self, kind: ResultKind, reason: str) -> None:
        """Hand back every part not yet given to the session."""
        parts = self.retry + list(self.queue)
        self.retry.clear()
        self.queue.clear()
        result = self.pool.result
        for part in parts:
            result(part, SubmitResult(kind, None, None, self.bind_id, reason=reason))

    def _fail_all(self) -> None:
        sent = list(self.sent.values())
        self.sent.clear()
        self._timed_out.clear()
        flushed = len(sent) - self._unflushed
        self._unflushed = 0
        result = self.pool.result
        for i, part in enumerate(sent):
            if i < flushed:
                result(part, SubmitResult(ResultKind.IN_DOUBT, None, None, self.bind_id, reason="connection_lost"))
            else:
                result(part, SubmitResult(ResultKind.NOT_SENT, None, None, self.bind_id, reason="connection_lost"))
        self.fail_unwritten(ResultKind.NOT_SENT, "stopped" if self.pool.stopping else "connection_lost")


_SUBMIT_STATES = frozenset({State.BOUND_TX, State.BOUND_TRX})
