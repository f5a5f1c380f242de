"""Compliance decisions put to work: consent records stored, queues purged, replies sent.

`router.compliance` decides (which keyword, which scope, which reply); this module does
what a decision asks of the daemon, in the order a crash must not break:

1. The MO's `keyword` / `action` are set before the MO is stored, so the stored MO and
   its published event say what the router did about it.
2. Every consent record goes to the store in the same group commit as the MO, and the
   MO's deliver_sm_resp waits for that commit: a crash before it makes the carrier send
   the STOP again, a crash after it keeps the opt-out.
3. Messages already queued for a pair that just opted out leave the queue and end
   REJECTED / `opted_out` (the dispatcher also checks each message as it leaves).
4. The reply is an ordinary message through `Dispatcher.accept`, tagged `auto_reply`, so
   it is routed, throttled and recorded like any other; only the opt-out check is skipped
   (a STOP confirmation goes to a recipient who has just opted out).

No loops: an MO from one of our own numbers, or one the carrier marks as an automatic
acknowledgement, changes the list but gets no reply; and one reply of a kind per
(sender, recipient) within `REPLY_HOLDOFF_S`, so a carrier redelivering a STOP whose
response was late does not make a second confirmation.

Pure: `now` comes in, the store and the dispatcher are passed in; nothing here reads a
clock or touches a socket.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

import structlog

from router.compliance import (
    ALL,
    AUTO_REPLY_TAG,
    OPT_IN,
    Action,
    Compliance,
    ConsentRecord,
)
from router.config_schema import ComplianceConfig
from router.dispatch import Dispatcher
from router.mo import InboundMessage
from router.model import iso_ms
from router.numbers import NumberError
from router.optout import OptOutError
from router.requests import ConsentRequest, RequestError, parse_submit

__all__ = ["REPLY_HOLDOFF_S", "ConsentDesk", "ConsentStore"]

log = structlog.get_logger("router.consent")

#: A second reply of the same kind to the same pair within this time is not sent.
REPLY_HOLDOFF_S = 60.0
#: Past this many remembered replies, those older than the hold-off are forgotten.
_HOLDOFF_PRUNE_AT = 10_000
#: Numbers that received MOs are ours; remember at most this many of them.
MAX_OWN_NUMBERS = 100_000
#: Auto-replies go before bulk traffic (priority 1), still through every limiter.
REPLY_PRIORITY = 1


class ConsentStore(Protocol):
    """What the desk needs of the store (adapters/store/sqlite.py has these)."""

    def save_consent(self, record: ConsentRecord) -> None:
        """Add `record` to the next group commit, with the opt-out state it changes."""
        ...

    def last_consent(self, recipient: str, scopes: Iterable[str]) -> dict[str, Any] | None:
        """The newest committed record of `recipient` in one of `scopes`, or None."""
        ...


class Observer(Protocol):
    """Counters (adapters/metrics.py `Metrics`)."""

    def opt_out(self, n: int = 1) -> None: ...

    def opt_in(self, n: int = 1) -> None: ...


class ConsentDesk:
    """Carries out keyword decisions and the consent socket ops for one daemon."""

    def __init__(
        self, compliance: Compliance, config: ComplianceConfig, dispatcher: Dispatcher,
        store: ConsentStore, *, observer: Observer | None = None,
    ) -> None:
        self.dispatcher = dispatcher
        self.store = store
        self.observer = observer
        self._replied: dict[tuple[str, str, str], float] = {}
        self._seen_ours: set[str] = set()
        self._program_senders: frozenset[str] = frozenset()
        self.compliance = compliance
        self.set_compliance(compliance, config)
        self.stats = {"replies": 0, "replies_held_off": 0, "replies_refused": 0, "loops_stopped": 0}

    def set_compliance(self, compliance: Compliance, config: ComplianceConfig) -> None:
        """Use `compliance`, built from `config`, from now on (a config reload builds a
        new one on the same list); the dispatcher's submit check follows."""
        self.compliance = compliance
        self.dispatcher.compliance = compliance
        self._program_senders = frozenset(s for p in config.programs for s in p.senders)

    def is_ours(self, number: str) -> bool:
        """Whether `number` is one of our senders: in a program, or a number MOs came to."""
        number = number.removeprefix("+")
        return number in self._program_senders or number in self._seen_ours

    # -- inbound -----------------------------------------------------------------------

    def on_mo(self, mo: InboundMessage, now: float, *, auto_reply: bool = False) -> Action | None:
        """Act on an MO (its `id` already set) before it is stored and published.

        Sets `mo.keyword` and `mo.action`, stores the consent records, purges the queue,
        and sends the reply. `auto_reply`: the carrier marked the MO as an automatic
        message. Never raises for what a carrier sent: a source that is no E.164 number
        is logged and the MO passes through unchanged.
        """
        dest = mo.dest.removeprefix("+")
        if len(self._seen_ours) < MAX_OWN_NUMBERS:
            self._seen_ours.add(dest)
        robot = auto_reply or self.is_ours(mo.source)
        try:
            action = self.compliance.on_inbound(
                mo.text, sender_of_reply=mo.dest, recipient=mo.source, now=now,
                auto_reply=robot, carrier=mo.carrier, mo_id=mo.id,
            )
        except (NumberError, OptOutError) as exc:
            if mo.text is not None and self.compliance.keyword(mo.text) is not None:
                log.warning("keyword from a number that is no E.164 number ignored",
                            mo_id=mo.id, carrier=mo.carrier, error=str(exc))
            return None
        if action is None:
            return None
        mo.keyword, mo.action = action.keyword, action.kind
        if robot:
            self.stats["loops_stopped"] += 1
        self._keep(action.records, now)
        if action.reply_text is not None:
            self._reply(action, now)
        return action

    # -- socket ops --------------------------------------------------------------------

    def record(self, action: str, req: ConsentRequest, now: float) -> ConsentRecord:
        """`opt_out` / `opt_in` from upstream: apply, store and purge.

        Raises RequestError `invalid_request` naming the field the list cannot take.
        """
        try:
            rec = self.compliance.record(action, req.recipient, req.scope, req.source, now)
        except (NumberError, OptOutError, ValueError) as exc:
            raise RequestError("invalid_request", str(exc)) from None
        self._keep((rec,), now)
        return rec

    def status(self, req: ConsentRequest) -> dict[str, Any]:
        """The `consent_status` reply (without `ok`): read after the store's last commit.

        `scope` is the scope asked about, or the one that blocks (a program, a sender,
        "*" for a STOPALL); `since`, `keyword` and `source` come from the record that set
        the current state, None when there is none. Raises RequestError naming the field.
        """
        comp = self.compliance
        try:
            scope = comp.resolve_scope(req.scope)
            blocked = comp.consent_status(req.scope, req.recipient)
        except (NumberError, OptOutError) as exc:
            raise RequestError("invalid_number", str(exc)) from None
        scopes = (blocked,) if blocked is not None else (scope, ALL)
        last = self.store.last_consent(req.recipient, scopes)
        if blocked is None and last is not None and last["action"] != OPT_IN:
            last = None  # an opt-out overridden by a START to this scope only
        return {
            "opted_out": blocked is not None,
            "scope": blocked or scope,
            "since": iso_ms(last["at"]) if last else None,
            "keyword": last["keyword"] if last else None,
            "source": last["source"] if last else None,
        }

    # -- effects -----------------------------------------------------------------------

    def _keep(self, records: Iterable[ConsentRecord], now: float) -> None:
        for rec in records:
            self.store.save_consent(rec)
            if self.observer is not None:
                if rec.action == OPT_IN:
                    self.observer.opt_in()
                else:
                    self.observer.opt_out()
            if rec.action != OPT_IN:
                self.dispatcher.drop_opted_out(rec.recipient, now)

    def _reply(self, action: Action, now: float) -> None:
        tag = action.auto_reply_tag
        key = (action.reply_from.removeprefix("+"), action.reply_to, tag)
        last = self._replied.get(key)
        if last is not None and now - last < REPLY_HOLDOFF_S:
            self.stats["replies_held_off"] += 1
            return
        cfg = self.dispatcher.config.router
        try:
            req = parse_submit(
                {"from": action.reply_from, "to": action.reply_to, "text": action.reply_text,
                 "priority": REPLY_PRIORITY, "tags": {AUTO_REPLY_TAG: tag}},
                max_segments=cfg.max_segments, default_validity_s=cfg.default_validity_s,
            )
            self.dispatcher.accept(req, now, auto_reply=True)
        except RequestError as exc:
            # No route back, an overloaded queue, a reply text too long: logged, the
            # opt-out itself stands.
            self.stats["replies_refused"] += 1
            log.warning("auto-reply not sent", reply=tag, sender=action.reply_from,
                        error=exc.code, message=exc.message)
            return
        self.stats["replies"] += 1
        self._remember(key, now)

    def _remember(self, key: tuple[str, str, str], now: float) -> None:
        replied = self._replied
        if len(replied) >= _HOLDOFF_PRUNE_AT:
            for k in [k for k, at in replied.items() if now - at >= REPLY_HOLDOFF_S]:
                del replied[k]
        replied[key] = now
