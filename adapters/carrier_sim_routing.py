"""Where and when the simulated carrier's receipts go: binds, round robin, backlog, one timer.

A receipt is built when its submit is accepted and released after the
receipt delay from one heap (``DueQueue``) behind one ``call_at`` — receipts
due within ``BUCKET_S`` of each other leave on the same call, and none leaves
early.  Released, it goes to a receiving bind (receiver or transceiver) of
the submit's system_id, round robin, skipping muted binds and full windows.
With none available it joins the system_id's backlog (bounded by
``max_pending``; beyond it receipts are dropped and counted), which drains
when a receiving bind comes, a deliver_sm is answered or times out, or a bind
is lost (its unanswered deliver_sm are put back first: carriers redeliver).
Once a backlog exists new receipts queue behind it, so they leave in due order.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from adapters.carrier_sim_receipts import DueQueue
from adapters.smpp.constants import CommandId
from adapters.smpp.smsc import SmscConnection

__all__ = ["BUCKET_S", "Pending", "ReceiptRouter"]

#: Receipts due within this bucket go out together, on one timer call.
BUCKET_S = 0.001
_DELIVER_SM = CommandId.DELIVER_SM


class Bound(Protocol):
    """What the router needs of a bind: its connection and its system_id."""

    conn: SmscConnection
    system_id: str


class Pending:
    """A receipt waiting for its time, and with receipts_first the response held with it."""

    __slots__ = ("system_id", "pdu", "resp", "link")

    def __init__(self, system_id: str, pdu: Any, resp: Any = None, link: Any = None) -> None:
        self.system_id = system_id
        self.pdu = pdu
        self.resp = resp
        self.link = link


class ReceiptRouter:
    """Receiving binds per system_id, the receipt heap and timer, the backlog.

    ``send_resp(link, resp)`` writes a held response; ``stats`` is the
    simulator's dict (receipts_sent, receipts_requeued, receipts_dropped).
    """

    def __init__(self, stats: dict[str, Any], send_resp: Callable[[Any, Any], None], max_pending: int) -> None:
        self.stats = stats
        self.max_pending = max_pending
        self._send_resp = send_resp
        self._loop: asyncio.AbstractEventLoop | None = None
        self._receivers: dict[str, list[Bound]] = {}
        self._next: dict[str, int] = {}
        self._backlog: dict[str, deque[Any]] = {}
        self._backlog_size = 0
        self._due = DueQueue()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0

    @property
    def pending(self) -> int:
        """Receipts not yet sent: waiting for their time or for a receiving bind."""
        return len(self._due) + self._backlog_size

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Use ``loop`` for the receipt timer."""
        self._loop = loop

    def stop(self) -> None:
        """Cancel the timer; receipts not yet due are dropped with the simulator."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # ------------------------------------------------------------------ binds

    def add_receiver(self, link: Bound) -> None:
        """``link`` is bound as a receiver or transceiver: it takes receipts from now on."""
        self._receivers.setdefault(link.system_id, []).append(link)
        self.drain(link.system_id)

    def lost(self, link: Bound) -> None:
        """``link``'s connection is gone: forget it, and redeliver what it left unanswered."""
        system_id = link.system_id
        receivers = self._receivers.get(system_id)
        if receivers is not None and link in receivers:
            receivers.remove(link)
            if not receivers:
                del self._receivers[system_id]
        unanswered = [req for _, req in link.conn.session.in_flight() if req.command_id == _DELIVER_SM]
        if unanswered:
            backlog = self._backlog.setdefault(system_id, deque())
            backlog.extendleft(reversed(unanswered))  # they were due first: they go first
            self._backlog_size += len(unanswered)
            self.stats["receipts_requeued"] += len(unanswered)
            self.drain(system_id)

    def slot_free(self, system_id: str) -> None:
        """A deliver_sm of ``system_id`` was answered or timed out: its window has room."""
        if self._backlog:
            self.drain(system_id)

    def drain_all(self) -> None:
        """Try every backlog (after binds were unmuted)."""
        for system_id in list(self._backlog):
            self.drain(system_id)

    def drain(self, system_id: str) -> None:
        """Send ``system_id``'s backlog, in order, while a bind has room."""
        backlog = self._backlog.get(system_id)
        while backlog:
            if self._try_send(system_id, backlog[0]) is None:
                return
            backlog.popleft()
            self._backlog_size -= 1
        self._backlog.pop(system_id, None)

    # --------------------------------------------------------------- receipts

    def schedule(self, pending: Pending, due: float) -> None:
        """Release ``pending`` at loop time ``due`` (rounded up to the bucket)."""
        self._due.push(due, pending)
        if self._timer is None or due < self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._arm(due)

    def release(self, pending: Pending) -> None:
        """Send a receipt that is due, then its held response (the receipt is written first)."""
        system_id = pending.system_id
        via = None if system_id in self._backlog else self._try_send(system_id, pending.pdu)
        if via is None:
            self._hold(system_id, pending.pdu)
        resp = pending.resp
        if resp is not None:
            if via is not None and via is not pending.link:
                via.conn.flush()  # another socket: write the receipt before the response leaves
            self._send_resp(pending.link, resp)

    def _arm(self, due: float) -> None:
        # Rounded up: never early, and everything due in the bucket goes at once.
        self._timer_at = math.ceil(due / BUCKET_S) * BUCKET_S
        self._timer = self._loop.call_at(self._timer_at, self._on_timer)  # type: ignore[union-attr]

    def _on_timer(self) -> None:
        self._timer = None
        loop = self._loop
        assert loop is not None
        for pending in self._due.pop_due(max(loop.time(), self._timer_at)):
            self.release(pending)
        due = self._due.next_due()
        if due is not None:
            self._arm(due)

    def _try_send(self, system_id: str, pdu: Any) -> Bound | None:
        links = self._receivers.get(system_id)
        if not links:
            return None
        count = len(links)
        start = self._next.get(system_id, 0)
        for step in range(count):
            link = links[(start + step) % count]
            conn = link.conn
            if not conn.muted and conn.session.can_send():
                self._next[system_id] = (start + step + 1) % count
                conn.send(pdu)
                self.stats["receipts_sent"] += 1
                return link
        return None

    def _hold(self, system_id: str, pdu: Any) -> None:
        if self._backlog_size >= self.max_pending:
            self.stats["receipts_dropped"] += 1
            return
        self._backlog.setdefault(system_id, deque()).append(pdu)
        self._backlog_size += 1
