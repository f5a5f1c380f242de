"""The send path: accepted messages through routing and throttling onto carriers.

Theory of operation
-------------------
`accept` turns a validated request into a `Message` and sends it at once when nothing
queued goes before it (`Scheduler.push_or_send`); otherwise it queues it and runs one
scheduling pass. Either way a message that may go now is marked SENDING before its first
write: the store's INSERT then carries SENDING and the accept commit doubles as the
SENDING commit. Every message the pass takes is rendered for its carrier and handed to
that carrier's pool together with the store's group-commit future, so its bytes go out
only after SENDING is durable (a crash can always tell sent from unsent).

Pools report each part's outcome through `on_result`. A message is settled when every
part has one: all accepted → SUBMITTED; a permanent error → REJECTED; transient errors or
parts never written with nothing accepted → failover to the next candidate; parts that
failed after others were accepted → retried on the same carrier (never elsewhere: that
would duplicate the accepted parts); no response → UNKNOWN / `in_doubt`, not resent unless
the carrier's `retry_in_doubt` says so. A late response settles an in-doubt part.

Nothing here touches a socket or the event loop: the clock, the pools, the store and the
PDU builder come in from the composition root (`router/app.py`), and the one timer the
scheduler needs is armed through `arm_timer`.

Opt-outs (`compliance`, set by the composition root): `accept` refuses a message to a
recipient who opted out of its sender's scope, recording a REJECTED / `opted_out` MDR for
audit; a message already queued when the opt-out arrives is taken out by `drop_opted_out`,
and every message is checked again as it leaves the queue, so none that waited (or failed
over) reaches the air after the STOP. The router's own auto-replies, tagged `auto_reply`,
skip both checks: the STOP confirmation goes to a recipient who just opted out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from router.compliance import AUTO_REPLY_TAG, Compliance
from router.config import CarrierConfig, Config
from router.health import CarrierHealth, Outcome
from router.model import (
    EXPIRED, FAILED, FINAL, QUEUED, REJECTED, SENDING, SUBMITTED, UNKNOWN, Attempt,
    Message, aggregate_parts,
)
from router.numbers import Address, address_for_carrier, classify_source
from router.ports import Store
from router.requests import INVALID_REQUEST, OPTED_OUT, RequestError, SubmitRequest
from router.routing import RoutingTable
from router.scheduler import Scheduler
from router.text import render, render_binary

#: Error statuses that end a message REJECTED unless a carrier's status_classes says
#: otherwise (DESIGN.md, "The flow of one message", step 4).
PERMANENT_STATUSES = frozenset({
    0x01,  # ESME_RINVMSGLEN
    0x0B,  # ESME_RINVDSTADR
    0x0A,  # ESME_RINVSRCADR
    0x48, 0x49,  # ESME_RINVSRCTON / ESME_RINVSRCNPI
    0x50, 0x51,  # ESME_RINVDSTTON / ESME_RINVDSTNPI
    0x43,  # ESME_RINVESMCLASS
    0x104,  # ESME_RINVDCS
    0x61,  # ESME_RINVSCHED
    0x62,  # ESME_RINVEXPIRY
    0x07,  # ESME_RINVREGDLVFLG
})

#: Attempt statuses that mean "slow down", not "failed".
_BACKPRESSURE = frozenset({"ESME_RTHROTTLED", "ESME_RMSGQFUL"})

# Part states while a message is on a carrier (besides the MDR statuses).
_PENDING = "PENDING"
_RETRY = "RETRY"

#: How often a part that failed after other parts were accepted is retried.
PART_RETRIES = 3

#: A carrier whose limiter frees up within this long counts as free now. Passes run on
#: loop turns and timers that fire a millisecond late, so a carrier limiter with burst 1
#: paced strictly would let one message out per pass, not its tps (at 10,000 tps about
#: one message per millisecond, and one pass per message). The carrier may see up to
#: 1 + tps x PACE_SLACK_S segments at once; over any longer span it gets its tps.
PACE_SLACK_S = 0.002

#: Past this queue depth an opt-out does not walk the whole queue (O(n): ~35 ms for 50,000
#: here) on the event loop; the check as each message leaves the queue still stops the
#: messages waiting.
EAGER_DROP_MAX = 50_000


class OptedOut(RequestError):
    """A submit refused because the recipient opted out; `id` is the REJECTED audit MDR."""

    def __init__(self, message: str, id: str) -> None:
        super().__init__(OPTED_OUT, message)
        self.id = id

    def reply(self) -> dict[str, Any]:
        return {**super().reply(), "id": self.id}


class Pool(Protocol):
    """What the dispatcher needs of a carrier's bind pool (adapters/smpp/esme.py)."""

    name: str

    def available_at(self, n: int, now: float) -> float: ...

    def submit(self, token: object, pdus: list[Any], now: float, ready: Any = None) -> None: ...


class ResultLike(Protocol):
    kind: Any
    status: int | None
    message_id: str | None
    bind: str
    latency_s: float | None
    late: bool
    reason: str | None


class Observer(Protocol):
    """Counters the dispatcher feeds (adapters/metrics.py `Metrics` has these methods)."""

    def submitted(self, carrier: str, n: int = 1) -> None: ...

    def submit_resp(self, carrier: str, command_status: int) -> None: ...

    def submit_latency(self, seconds: float) -> None: ...

    def mdr(self, status: str) -> None: ...

    def failover(self, from_carrier: str, to_carrier: str) -> None: ...

    def refused_opted_out(self, n: int = 1) -> None: ...

    def throttled(self, scope: str) -> None: ...


class _NoObserver:
    def submitted(self, carrier: str, n: int = 1) -> None:
        pass

    def submit_resp(self, carrier: str, command_status: int) -> None:
        pass

    def submit_latency(self, seconds: float) -> None:
        pass

    def mdr(self, status: str) -> None:
        pass

    def failover(self, from_carrier: str, to_carrier: str) -> None:
        pass

    def refused_opted_out(self, n: int = 1) -> None:
        pass

    def throttled(self, scope: str) -> None:
        pass


class Tracker(Protocol):
    """What the dispatcher tells receipt correlation (router/correlator.py)."""

    def on_accepted(self, msg: Message, part: int, now: float) -> list[Message]: ...

    def on_in_doubt(self, msg: Message, now: float) -> list[Message]: ...


BuildPdus = Callable[[Message, CarrierConfig, list[Any], Address, bool], list[Any]]
StatusName = Callable[[int], str]


def status_class(code: int, cfg: CarrierConfig) -> str:
    """`permanent` or `transient` for a carrier's error status."""
    override = cfg.status_classes.get(code)
    if override is not None:
        return override
    return "permanent" if code in PERMANENT_STATUSES else "transient"


class Dispatcher:
    """Routes, throttles and submits messages; turns carriers' answers into MDR states."""

    def __init__(
        self,
        config: Config,
        store: Store,
        pools: Mapping[str, Pool],
        *,
        build_pdus: BuildPdus,
        status_name: StatusName,
        arm_timer: Callable[[float | None], None],
        now: float,
        on_change: Callable[[Message], None] | None = None,
        observer: Observer | None = None,
        tracker: Tracker | None = None,
        compliance: Compliance | None = None,
        kick: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        #: The opt-out check; None: no check (the composition root always sets one).
        self.compliance = compliance
        self.pools = pools
        self._build_pdus = build_pdus
        self._status_name = status_name
        self._arm_timer = arm_timer
        self._on_change = on_change
        self.observer: Observer = observer if observer is not None else _NoObserver()
        self.tracker = tracker
        self.health: dict[str, CarrierHealth] = {}
        self._refs: dict[str, int] = {}
        self._pumping = False
        self._again = False
        #: Asks for one pass soon (once per loop turn, however many responses came in);
        #: without it every response runs a pass at once.
        self._kick = kick
        #: Set by a pass that found every carrier unable to take anything: until then
        #: accepting only queues, and passes wait for a response or the timer.
        self._saturated_until = 0.0
        #: Carrier → when it can take work again, found during the current pass.
        self._blocked: dict[str, float] = {}
        self.in_doubt = 0
        self._now = now
        #: When the newest opt-out was applied. A message accepted after it was checked
        #: against the list as it is, so the check as it leaves the queue can be skipped;
        #: messages resumed from a previous run are older than this and are checked.
        self._last_optout = now
        self.apply_config(config, now)
        self.scheduler: Scheduler[Message] = Scheduler(
            config.limits.for_source, config.limits.destination_mps, 1
        )

    # -- configuration -----------------------------------------------------------------

    def apply_config(self, config: Config, now: float) -> None:
        """Swap routes, costs, limits and carrier settings between two messages."""
        self.config = config
        self.carriers = {c.name: c for c in config.carriers}
        self.routing = RoutingTable.build(config.routes, {c.name: c.rates for c in config.carriers})
        for c in config.carriers:
            if c.name not in self.health:
                self.health[c.name] = CarrierHealth(c.health, now=now)
        for name in list(self.health):
            if name not in self.carriers:
                del self.health[name]
        if hasattr(self, "scheduler"):
            self.scheduler.set_limits(config.limits.for_source, config.limits.destination_mps, 1)

    # -- accept ------------------------------------------------------------------------

    def accept(self, req: SubmitRequest, now: float, *, auto_reply: bool = False) -> Message:
        """Queue one validated message; it is durable once `store.durable()` resolves.

        Raises RequestError `overloaded` past the queue's high-water mark, OptedOut
        (`opted_out`, carrying the id of the REJECTED MDR recorded for audit) when the
        recipient opted out of the sender's scope, `no_route` when no route matches the
        destination at all, and `invalid_request` for a `tags.auto_reply` from upstream.
        `auto_reply`: the router's own compliance reply (tagged `auto_reply` by the
        caller), exempt from the opt-out check.
        """
        if len(self.scheduler) >= self.config.router.queue_high_water:
            raise RequestError("overloaded", "overloaded: the queue is past its high-water mark")
        if not auto_reply:
            tags = req.tags
            if tags and AUTO_REPLY_TAG in tags:
                raise RequestError(
                    INVALID_REQUEST, f"tags.{AUTO_REPLY_TAG} is reserved for the router's own replies"
                )
            comp = self.compliance
            if comp is not None and comp.is_opted_out(req.source.addr, req.dest):
                raise self._refuse_opted_out(req, now)
        if self.routing.lookup(req.dest, req.source.addr, req.tags) is None:
            raise RequestError("no_route", f'no_route: no route for to "{req.dest}"')
        msg = Message(
            self.store.next_id(), req.source.addr, req.dest, text=req.text, data=req.data,
            data_coding=req.data_coding, encoding=req.encoding, segments=req.segments,
            priority=req.priority, dlr=req.dlr, accepted_at=now,
            expires_at=now + req.validity_s, client_ref=req.client_ref, tags=req.tags or None,
        )
        if self._pumping:  # accepted from inside a pass: that pass goes round again
            self.scheduler.push(msg, now)
            self._again = True
        elif now < self._saturated_until:
            self.scheduler.push(msg, now)
        elif not self._send_now(msg, now):
            self.pump(now)
        self.store.save(msg)
        return msg

    def _send_now(self, msg: Message, now: float) -> bool:
        """Send `msg` without a scheduling pass when nothing queued goes before it (most
        accepts under a number's limit). True when no pass is due: it went, or every
        carrier is full and it waits queued with the timer armed; False: it is queued
        and a pass must judge it."""
        self._pumping = True
        self._now = now
        try:
            return self.scheduler.push_or_send(msg, now, self._try_send)
        except _Saturated as full:
            self._saturated_until = full.until
            self._arm_timer(full.until)
            return True
        finally:
            self._pumping = False
            self._blocked.clear()

    def _refuse_opted_out(self, req: SubmitRequest, now: float) -> OptedOut:
        """Record the refused message as REJECTED / `opted_out` and return the refusal."""
        msg = Message(
            self.store.next_id(), req.source.addr, req.dest, text=req.text, data=req.data,
            data_coding=req.data_coding, encoding=req.encoding, segments=req.segments,
            priority=req.priority, dlr=req.dlr, accepted_at=now, expires_at=now,
            client_ref=req.client_ref, tags=req.tags or None,
        )
        self.observer.refused_opted_out()
        self._finish(msg, REJECTED, OPTED_OUT, None, now)
        return OptedOut(f'opted_out: "{req.dest}" opted out of messages from "{req.source.addr}"', msg.id)

    def _opted_out(self, msg: Message) -> bool:
        """Whether `msg` may no longer go: its recipient opted out since it was accepted."""
        comp = self.compliance
        if comp is None or msg.accepted_at > self._last_optout:
            return False
        tags = msg.tags
        if tags and AUTO_REPLY_TAG in tags:
            return False
        return comp.optouts.is_opted_out(comp.scope_for(msg.source), msg.dest)

    def drop_opted_out(self, recipient: str, now: float) -> list[Message]:
        """An opt-out of `recipient` was applied: take the queued messages to `recipient`
        that it now blocks out of the queue; they end REJECTED / `opted_out`. Returns them.

        Call it for every opt-out. The queue walk is skipped (returns []) inside a
        scheduling pass or past EAGER_DROP_MAX queued messages: each message accepted
        before the opt-out is checked again as it leaves the queue anyway.
        """
        # The newest time seen: a clock stepping back must not exempt older messages.
        self._last_optout = max(self._last_optout, now, self._now)
        if self._pumping or len(self.scheduler) > EAGER_DROP_MAX:
            return []
        dropped = self.scheduler.remove_if(lambda m: m.dest == recipient and self._opted_out(m))
        for msg in dropped:
            self._finish(msg, REJECTED, OPTED_OUT, None, now)
        if dropped:
            self._arm_timer(self.scheduler.next_due())
        return dropped

    def resume(self, messages: list[Message], now: float) -> None:
        """Pick up what a previous run left: queued messages go out, SENDING ones are in doubt."""
        for msg in messages:
            if msg.status == QUEUED:
                self.scheduler.push(msg, now)
            elif msg.status == SENDING:
                cfg = self.carriers.get(msg.carrier or "")
                if cfg is not None and cfg.retry_in_doubt and not any(
                    s == SUBMITTED for s in msg.part_status
                ):
                    self._requeue(msg, now)
                else:
                    # The last run died with it on the wire: in doubt, as after a timeout.
                    self._give_up_in_doubt(msg, now)
            elif msg.status == UNKNOWN and msg.error == "in_doubt":
                self.in_doubt += 1  # still in doubt: the gauge counts it in this run too
        self.pump(now)

    # -- the scheduling pass -----------------------------------------------------------

    def pump(self, now: float) -> None:
        """Send everything that may go now, then arm the timer for the next due item."""
        if self._pumping:
            self._again = True
            return
        self._pumping = True
        self._now = now
        self._saturated_until = 0.0
        try:
            while True:
                self._again = False
                self._blocked.clear()
                try:
                    self.scheduler.pop_ready(now, self._try_send, self._expired, limit=5000)
                except _Saturated as full:
                    self._saturated_until = full.until
                    break
                if not self._again:
                    break
        finally:
            self._pumping = False
            self._blocked.clear()
        due = self.scheduler.next_due()
        if due is not None and due < self._saturated_until:
            due = self._saturated_until
        self._arm_timer(due)

    def _usable(self, name: str) -> str | None:
        health = self.health.get(name)
        if health is None or name not in self.pools:
            return "unknown_carrier"
        return health.usable(self._now)

    def _try_send(self, msg: Message, now: float) -> float | None:
        self._now = now
        if self._opted_out(msg):
            self._finish(msg, REJECTED, OPTED_OUT, None, now)
            return None
        decision = self.routing.decide(msg.dest, msg.source, msg.tags, self._usable)
        if decision is None:
            self._finish(msg, REJECTED, "no_route", None, now)
            return None
        usable = decision.usable
        tried = msg.tried
        order = [c for c in usable if c.name not in tried] if tried else usable
        if not order:
            order = usable
        blocked = self._blocked
        wait = math.inf
        soon = now + PACE_SLACK_S
        for cand in order:
            name = cand.name
            at = blocked.get(name)
            if at is None:
                at = self.pools[name].available_at(msg.segments, now)
                if at > soon:
                    blocked[name] = at
            if at <= soon:
                if not self.health[name].allow(now):
                    continue
                self._send(msg, name, cand.cost, decision.route, now)
                return None
            if at < wait:
                wait = at
        if wait == math.inf:
            # Every candidate is down or open: look again in a second (a bind coming back
            # also pumps), until the message's validity ends.
            return min(now + 1.0, msg.expires_at)
        if len(blocked) >= len(self.pools):
            # No carrier can take anything now: stop this pass rather than route every
            # queued message only to find the same; a response or the timer resumes it.
            raise _Saturated(min(blocked.values()))
        return min(wait, msg.expires_at)

    def _expired(self, msg: Message) -> None:
        self._finish(msg, EXPIRED, "expired", None, self._now)

    # -- submit ------------------------------------------------------------------------

    def _send(self, msg: Message, carrier: str, cost: float | None, route: str, now: float) -> None:
        cfg = self.carriers[carrier]
        ref = self._refs.get(carrier, 0)
        self._refs[carrier] = (ref + 1) & 0xFFFF
        msg.ref = ref
        parts, source = self._render(msg, cfg)
        pdus = self._build_pdus(msg, cfg, parts, source, msg.dlr)
        if carrier not in msg.tried:
            if msg.tried:
                self.observer.failover(msg.tried[-1], carrier)
            msg.tried.append(carrier)
        elif msg.tried[-1] != carrier:
            msg.tried.remove(carrier)
            msg.tried.append(carrier)
        msg.status = SENDING
        msg.carrier = carrier
        msg.route = route
        n = len(pdus)
        msg.parts_sent = n
        # The on-air count: a carrier taking message_payload gets one PDU for several
        # segments, and a charset fallback to UCS-2 can need more parts than accept said.
        msg.segments = parts.segments
        msg.cost = None if cost is None else round(cost * parts.segments, 6)
        msg.part_status = [_PENDING] * n
        msg.carrier_ids = [None] * n
        self.store.save(msg)
        self.pools[carrier].submit(msg, pdus, now, self.store.durable())
        self.observer.submitted(carrier, n)
        self._changed(msg)

    def _render(self, msg: Message, cfg: CarrierConfig) -> tuple[Any, Address]:
        """The message's wire parts for this carrier, with its reference, and its sender."""
        if msg.text is not None:
            parts = render(msg.text, msg.encoding, dc0_charset=cfg.dc0_charset, concat=cfg.concat, ref=msg.ref)
        else:
            parts = render_binary(msg.data or b"", msg.data_coding or 0, concat=cfg.concat, ref=msg.ref)
        return parts, address_for_carrier(classify_source(msg.source), cfg.ton_npi)

    # -- outcomes ----------------------------------------------------------------------

    def on_result(self, msg: Message, index: int, res: ResultLike, now: float) -> None:
        """One part's outcome from a pool (see adapters/smpp/esme.py, SubmitResult)."""
        carrier = msg.carrier or ""
        cfg = self.carriers.get(carrier)
        health = self.health.get(carrier)
        kind = res.kind.name
        name = self._status_name(res.status) if res.status is not None else None
        if res.status is not None:
            self.observer.submit_resp(carrier, res.status)
            if res.latency_s is not None:
                self.observer.submit_latency(res.latency_s)
        if kind == "IN_DOUBT":
            label = "in_doubt"
        elif kind == "NOT_SENT":
            label = f"not_sent:{res.reason}"
        else:
            label = name or kind.lower()
        msg.attempts.append(Attempt(
            carrier, res.bind, index + 1, now, label,
            None if kind == "ACCEPTED" else (res.reason or name), res.message_id,
        ))
        if index >= len(msg.part_status):
            self.store.save(msg)
            return
        if kind == "THROTTLED":
            self.observer.throttled("carrier")
            self.store.save(msg)
            return
        if kind == "ACCEPTED":
            if health is not None and not res.late:
                health.record(Outcome.OK, res.latency_s, now)
            msg.carrier_ids[index] = res.message_id
            msg.part_status[index] = SUBMITTED
        elif kind == "REJECTED":
            code = res.status or 0
            permanent = cfg is not None and status_class(code, cfg) == "permanent"
            if health is not None and not res.late:
                health.record(Outcome.PERMANENT if permanent else Outcome.TRANSIENT, res.latency_s, now)
            msg.error, msg.error_code = name, code
            msg.part_status[index] = REJECTED if permanent else _RETRY
        elif kind == "IN_DOUBT":
            if health is not None and res.reason == "timeout":
                health.record(Outcome.TIMEOUT, None, now)
            msg.part_status[index] = UNKNOWN
        else:  # NOT_SENT: never written, safe to send elsewhere
            msg.error, msg.error_code = f"not_sent:{res.reason}", None
            msg.part_status[index] = _RETRY
        if res.late:
            self._settle_late(msg, now)
        elif _PENDING not in msg.part_status:
            self._settle(msg, now)
        else:
            self.store.save(msg)
        if kind == "ACCEPTED" and self.tracker is not None:
            for changed in self.tracker.on_accepted(msg, index, now):
                self.store.save(changed)
                self._changed(changed)
        # A response frees window room: whatever waited on a full carrier may go.
        self._saturated_until = 0.0
        if self._kick is not None:
            self._kick()
        else:
            self.pump(now)

    def _settle(self, msg: Message, now: float) -> None:
        parts = msg.part_status
        accepted = parts.count(SUBMITTED)
        cfg = self.carriers.get(msg.carrier or "")
        if accepted == len(parts):
            msg.error = msg.error_code = None
            msg.submitted_at = now
            if msg.dlr:
                self._set(msg, SUBMITTED, now)
            else:
                self._finish(msg, SUBMITTED, None, None, now)
            return
        if REJECTED in parts and accepted == 0:
            self._finish(msg, REJECTED, msg.error, msg.error_code, now)
            return
        if UNKNOWN in parts:
            if cfg is not None and cfg.retry_in_doubt and accepted == 0:
                self._requeue(msg, now)
            else:
                self._give_up_in_doubt(msg, now)
            return
        if accepted == 0:
            self._failover(msg, now)
            return
        self._retry_parts(msg, now)

    def _give_up_in_doubt(self, msg: Message, now: float) -> None:
        """UNKNOWN / `in_doubt`: counted, and registered so a receipt can still settle it."""
        self.in_doubt += 1
        self._finish(msg, UNKNOWN, "in_doubt", None, now)
        # A carrier removed from the config meanwhile has no receipts to settle it with.
        if self.tracker is not None and (msg.carrier or "") in self.carriers:
            for changed in self.tracker.on_in_doubt(msg, now):
                self.store.save(changed)
                self._changed(changed)

    def _settle_late(self, msg: Message, now: float) -> None:
        """A response after its timeout: the part's real outcome replaces `in_doubt`."""
        if msg.status != UNKNOWN or msg.error != "in_doubt":
            self.store.save(msg)
            return
        if _PENDING in msg.part_status or UNKNOWN in msg.part_status:
            self.store.save(msg)
            return
        self.in_doubt = max(0, self.in_doubt - 1)
        msg.status = SENDING
        msg.done_at = None
        self._settle(msg, now)

    def _failover(self, msg: Message, now: float) -> None:
        limit = max(3, 2 * len(self.carriers))
        # Throttled answers are back-pressure, not failed tries: a carrier that throttles
        # past throttle_failover_s must still let the message move.
        tries = sum(1 for a in msg.attempts if a.status not in _BACKPRESSURE)
        if tries >= limit * max(1, msg.parts_sent):
            self._finish(msg, FAILED, msg.error or "failed", msg.error_code, now)
            return
        self._requeue(msg, now)

    def _requeue(self, msg: Message, now: float) -> None:
        """Send the message again, at once when a candidate can take it.

        The source number's limiter was charged when the message first left its queue and
        nothing reached the air since, so an immediate resend is not charged again; only a
        message that must wait goes back through the scheduler.
        """
        msg.status = QUEUED
        msg.part_status = []
        msg.carrier_ids = []
        if self._try_send(msg, now) is None:
            return
        self.store.save(msg)
        self._changed(msg)
        self.scheduler.push(msg, now)

    def _retry_parts(self, msg: Message, now: float) -> None:
        """Resend the failed parts on the same carrier; give up after PART_RETRIES each."""
        retries = sum(1 for a in msg.attempts if a.error is not None and a.status != "in_doubt")
        if retries > PART_RETRIES * msg.parts_sent:
            self._finish(msg, FAILED, msg.error or "failed", msg.error_code, now)
            return
        carrier = msg.carrier or ""
        cfg = self.carriers.get(carrier)
        pool = self.pools.get(carrier)
        if cfg is None or pool is None:
            self._finish(msg, FAILED, "carrier_removed", None, now)
            return
        todo = [i for i, s in enumerate(msg.part_status) if s == _RETRY]
        # Re-render with the message's own reference (not the carrier's newest: other
        # messages went out since) so the handset reassembles old and new parts.
        parts, source = self._render(msg, cfg)
        pdus = self._build_pdus(msg, cfg, parts, source, msg.dlr)
        for i in todo:
            msg.part_status[i] = _PENDING
        self.store.save(msg)
        pool.submit(_PartRetry(msg, todo), [pdus[i] for i in todo], now, self.store.durable())
        self.observer.submitted(carrier, len(todo))

    # -- record keeping ----------------------------------------------------------------

    def _set(self, msg: Message, status: str, now: float) -> None:
        msg.status = status
        self.store.save(msg)
        self._changed(msg)

    def _finish(self, msg: Message, status: str, error: str | None, code: int | None, now: float) -> None:
        msg.status = status
        msg.error, msg.error_code = error, code
        msg.done_at = now
        self.store.save(msg)
        self._changed(msg)

    def _changed(self, msg: Message) -> None:
        self.observer.mdr(msg.status)
        if self._on_change is not None:
            self._on_change(msg)

    def in_doubt_settled(self, msg: Message | None) -> None:
        """A receipt settled a message that was in doubt."""
        self.in_doubt = max(0, self.in_doubt - 1)

    # -- introspection -----------------------------------------------------------------

    def queue_stats(self) -> dict[str, Any]:
        return {
            "depth_by_priority": {str(k): v for k, v in self.scheduler.depth_by_priority().items()},
            "in_doubt": self.in_doubt,
            "top_sources": [
                {"number": n, "depth": d} for n, d in self.scheduler.top_sources(10)
            ],
        }


class _Saturated(Exception):
    """Raised out of a scheduling pass: no carrier can take anything before `until`."""

    def __init__(self, until: float) -> None:
        self.until = until


class _PartRetry:
    """Token for a retry of some parts: maps the pool's part index back to the message's."""

    __slots__ = ("msg", "indexes")

    def __init__(self, msg: Message, indexes: list[int]) -> None:
        self.msg = msg
        self.indexes = indexes


def route_result(dispatcher: Dispatcher, token: object, index: int, res: ResultLike, now: float) -> None:
    """The pools' `on_result`: resolve retry tokens to the message and its part."""
    if isinstance(token, _PartRetry):
        dispatcher.on_result(token.msg, token.indexes[index], res, now)
    elif isinstance(token, Message):
        dispatcher.on_result(token, index, res, now)


__all__ = [
    "Dispatcher", "OptedOut", "route_result", "status_class", "EAGER_DROP_MAX",
    "PERMANENT_STATUSES", "FINAL",
]
