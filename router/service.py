"""The socket's ops behind the upstream server: submit, status, subscribe, stats.

The server (adapters/upstream.py) answers `ping` and `auth` itself and calls `request` for
everything else, on the event loop, in arrival order. A submit's reply is a Future that
resolves when the store's group commit holding the message is durable: the upstream gets
`ok` only for a message that survives a crash.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from router.dispatch import Dispatcher
from router.model import Message
from router.requests import (
    RequestError,
    error_reply,
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
    ) -> None:
        self.dispatcher = dispatcher
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
        msg = self.dispatcher.accept(sub, self._clock())
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

    _ops: dict[str, Callable[[Service, dict[str, Any], Any], Any]] = {
        "submit": _submit,
        "submit_many": _submit_many,
        "status": _status,
        "subscribe": _subscribe,
        "stats": _stats_op,
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


def _after(durable: Any, reply: dict[str, Any]) -> Any:
    """A Future of `reply` that resolves when `durable` does (or fails with it)."""
    fut = durable.get_loop().create_future()

    def done(d: Any) -> None:
        if fut.done():
            return
        exc = d.exception() if not d.cancelled() else None
        if d.cancelled() or exc is not None:
            fut.set_result(error_reply("internal", "internal: the message could not be stored"))
        else:
            fut.set_result(reply)

    durable.add_done_callback(done)
    return fut
