"""The socket's ops behind the upstream server: submit, status, subscribe, stats, consent.

The server (adapters/upstream.py) answers `ping` and `auth` itself and calls `request` for
everything else, on the event loop, in arrival order. A submit's reply is an `AfterCommit`
(the store's group-commit future and the reply), ready when that commit is durable: the upstream gets
`ok` only for a message that survives a crash. The same holds for an `opted_out` refusal
(its audit MDR) and for `opt_out` / `opt_in` (the consent record); `consent_status` is
read after the commit that holds every consent change made before it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

from router.compliance import OPT_IN, OPT_OUT
from router.consent import ConsentDesk
from router.dispatch import Dispatcher, OptedOut
from router.model import Message
from router.requests import (
    RequestError,
    error_reply,
    parse_consent,
    parse_consent_status,
    parse_status,
    parse_submit,
    parse_submit_many,
    parse_subscribe,
)

INVALID = "invalid_request"


class Service:
    """Serves the socket protocol of DESIGN.md against the dispatcher and the store."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        *,
        stats: Callable[[], dict[str, Any]],
        clock: Callable[[], float] = time.time,
        consent: ConsentDesk | None = None,
    ) -> None:
        self.dispatcher = dispatcher
        #: The consent ops' desk; None: those ops are refused as not served.
        self.consent = consent
        self._stats = stats
        self._clock = clock
        self.subscribers: dict[str, set[Any]] = {"mdr": set(), "mo": set()}

    # -- the Handler protocol of adapters/upstream.py -----------------------------------

    def request(self, op: str, req: dict[str, Any], conn: Any) -> Any:
        handler = self._ops.get(op)
        if handler is None:
            return error_reply(INVALID, f"{INVALID}: op {op!r} is not served by this router")
        try:
            return handler(self, req, conn)
        except RequestError as exc:
            return exc.reply()

    def _submit(self, req: dict[str, Any], conn: Any) -> Any:
        cfg = self.dispatcher.config.router
        sub = parse_submit(req, max_segments=cfg.max_segments, default_validity_s=cfg.default_validity_s)
        try:
            msg = self.dispatcher.accept(sub, self._clock())
        except OptedOut as exc:  # the refusal names an audit MDR: answer once it is stored
            return _after(self.dispatcher.store.durable(), exc.reply())
        return _after(self.dispatcher.store.durable(), _accepted(msg))

    def _submit_many(self, req: dict[str, Any], conn: Any) -> Any:
        cfg = self.dispatcher.config.router
        items = parse_submit_many(req, max_segments=cfg.max_segments, default_validity_s=cfg.default_validity_s)
        now = self._clock()
        results: list[dict[str, Any]] = []
        for item in items:
            if isinstance(item, RequestError):
                results.append(item.reply())
                continue
            try:
                msg = self.dispatcher.accept(item, now)
            except RequestError as exc:
                results.append(exc.reply())
            else:
                results.append(_accepted(msg))
        return _after(self.dispatcher.store.durable(), {"ok": True, "results": results})

    def _status(self, req: dict[str, Any], conn: Any) -> dict[str, Any]:
        mid = parse_status(req)
        mdr = self.dispatcher.store.get_mdr(mid)
        if mdr is None:
            return error_reply("unknown_id", f'unknown_id: no message with id "{mid}"')
        return {"ok": True, "mdr": mdr}

    def _subscribe(self, req: dict[str, Any], conn: Any) -> dict[str, Any]:
        events = parse_subscribe(req)
        for event in events:
            self.subscribers[event].add(conn)
        conn.subscriptions.update(events)
        conn.on_close(self._unsubscribe)
        return {"ok": True}

    def _unsubscribe(self, conn: Any) -> None:
        for subs in self.subscribers.values():
            subs.discard(conn)

    def _stats_op(self, req: dict[str, Any], conn: Any) -> dict[str, Any]:
        return {"ok": True, **self._stats()}

    def _desk(self, op: str) -> ConsentDesk:
        if self.consent is None:
            raise RequestError(INVALID, f"{INVALID}: op {op!r} is not served by this router")
        return self.consent

    def _opt_out(self, req: dict[str, Any], conn: Any) -> Any:
        self._desk("opt_out").record(OPT_OUT, parse_consent(req), self._clock())
        return _after(self.dispatcher.store.durable(), {"ok": True})

    def _opt_in(self, req: dict[str, Any], conn: Any) -> Any:
        self._desk("opt_in").record(OPT_IN, parse_consent(req), self._clock())
        return _after(self.dispatcher.store.durable(), {"ok": True})

    def _consent_status(self, req: dict[str, Any], conn: Any) -> Any:
        desk = self._desk("consent_status")
        creq = parse_consent_status(req)
        return _after(self.dispatcher.store.durable(), lambda: {"ok": True, **desk.status(creq)})

    _ops: dict[str, Callable[[Service, dict[str, Any], Any], Any]] = {
        "submit": _submit,
        "submit_many": _submit_many,
        "status": _status,
        "subscribe": _subscribe,
        "stats": _stats_op,
        "opt_out": _opt_out,
        "opt_in": _opt_in,
        "consent_status": _consent_status,
    }

    # -- events ------------------------------------------------------------------------

    def publish_mdr(self, msg: Message) -> None:
        """Push an MDR change to every `mdr` subscriber (cheap when there are none)."""
        subs = self.subscribers["mdr"]
        if not subs:
            return
        event = {"event": "mdr", "mdr": msg.to_mdr()}
        for conn in tuple(subs):
            conn.send_event(event)


    def publish_mo(self, event: dict[str, Any]) -> None:
        """Push an inbound message to every `mo` subscriber."""
        subs = self.subscribers["mo"]
        if not subs:
            return
        frame = {"event": "mo", "mo": event}
        for conn in tuple(subs):
            conn.send_event(frame)


def _accepted(msg: Message) -> dict[str, Any]:
    return {"ok": True, "id": msg.id, "segments": msg.segments, "encoding": msg.encoding}


class AfterCommit:
    """A reply that is ready once the store's group commit `durable` resolves.

    Every reply of one commit shares its future: the upstream server waits on it once
    per connection and commit, not once per request (a Future and two callbacks per
    submit were ~6 µs of the daemon's CPU per message). `result()`, called once
    `durable` is done, is `reply` (a callable is called then, to read what the commit
    holds), or an `internal` error when the commit failed.
    """

    __slots__ = ("durable", "reply")

    def __init__(self, durable: Any, reply: dict[str, Any] | Callable[[], dict[str, Any]]) -> None:
        self.durable = durable
        self.reply = reply

    def result(self) -> dict[str, Any]:
        """The reply map; never raises (a failed read becomes an `internal` error)."""
        d = self.durable
        if d.cancelled() or d.exception() is not None:
            return error_reply("internal", "internal: the message could not be stored")
        reply = self.reply
        if not callable(reply):
            return reply
        try:
            return reply()
        except RequestError as err:
            return err.reply()
        except Exception as err:  # noqa: BLE001 - a reply must come whatever the read did
            return error_reply("internal", f"internal: {type(err).__name__}: {err}")

    def __await__(self) -> Any:
        """Await the reply (for callers other than the upstream server)."""
        if not self.durable.done():
            with contextlib.suppress(Exception):  # a failed commit is an `internal` reply
                yield from self.durable.__await__()
        return self.result()


def _after(durable: Any, reply: dict[str, Any] | Callable[[], dict[str, Any]]) -> AfterCommit:
    """`reply` once `durable` resolves (an `internal` error if that fails)."""
    return AfterCommit(durable, reply)
