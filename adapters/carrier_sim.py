"""A simulated carrier SMSC with fault injection: the far end of tests, the demo and benchmarks.

Theory of operation
-------------------
``CarrierSim`` listens through ``SmscServer`` (``adapters/smpp/smsc.py``); each
connection gets a ``_Link`` that passes the session's events back here.  Binds
are checked against the configured credentials; a submit_sm (or data_sm) is
judged in this order — throttle (a sliding second of accepted submits per
system_id), ``reject_numbers`` (ESME_RINVDSTADR), ``fail_rate``
(ESME_RSYSERR, transient), ``reject_rate`` (``reject_status``, by default
ESME_RINVDSTADR, permanent in DESIGN's table) — then answered with an id from
one counter.

A submit that asks for a receipt (registered_delivery bits 0-1: 1 always, 2 on
failure only) gets one deliver_sm, built at once and handed to the
``ReceiptRouter`` (``carrier_sim_routing.py``), which releases it after
``dlr_delay_ms`` on a receiving bind of the same system_id (round robin, so
receipts arrive on other binds as they do from real carriers).  With
``receipts_first`` the submit_sm_resp is held with its receipt and written
right after it.

Fault switches per connection (``stall_after``, ``drop_after``) need exact PDU
counts, so connections made while either is set are fed PDU by PDU
(``count_pdus``); set them before the client connects.  ``stall()`` /
``resume()`` / ``drop_all()`` act on every connection at once.

Window check: a client must never have more than ``window`` submits without a
*written* response.  Per connection we count submits received minus responses
written (a write is seen through ``conn.writes``); above ``window`` is a
violation, counted in ``stats["window_violations"]``.

Bind PDUs carry the password: only system_id and the status are ever logged.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import random
import signal
import sys
import time
import uuid
from collections import deque
from collections.abc import Sequence
from typing import Any

import structlog

from adapters.carrier_sim_options import SimOptions, add_arguments, options_from_args
from adapters.carrier_sim_receipts import ReceiptMaker, format_id, receipt_id
from adapters.carrier_sim_records import FLUSH_S, JsonlLog, SubmitRecord
from adapters.carrier_sim_routing import Pending, ReceiptRouter
from adapters.smpp.constants import CommandId, CommandStatus, TlvTag, status_name
from adapters.smpp.events import (
    EnquireLinkDue,
    EnquireLinkReceived,
    Event,
    MalformedPdu,
    PeerDead,
    ProtocolViolation,
    RequestReceived,
    RequestRejected,
    ResponseReceived,
    ResponseTimedOut,
    UnbindReceived,
)
from adapters.smpp.pdu import DeliverSm
from adapters.smpp.session import Role, Session
from adapters.smpp.smsc import SmscConnection, SmscServer
from router.gsm import encode_septets
from router.logs import configure as configure_logs

__all__ = ["CarrierSim", "SimOptions", "add_arguments", "main", "run"]

log = structlog.get_logger("adapters.carrier_sim")

_SUBMIT_SM = CommandId.SUBMIT_SM
_DATA_SM = CommandId.DATA_SM
_DELIVER_SM = CommandId.DELIVER_SM
_BIND_KIND = {
    CommandId.BIND_TRANSMITTER: "transmitter",
    CommandId.BIND_RECEIVER: "receiver",
    CommandId.BIND_TRANSCEIVER: "transceiver",
}
_RECEIVING = frozenset({CommandId.BIND_RECEIVER, CommandId.BIND_TRANSCEIVER})
_ROK = CommandStatus.ESME_ROK
_RTHROTTLED = CommandStatus.ESME_RTHROTTLED
_RINVDSTADR = CommandStatus.ESME_RINVDSTADR
_RSYSERR = CommandStatus.ESME_RSYSERR
#: §5.2.17 registered_delivery bits 0-1: 1 = receipt on success or failure, 2 = on failure only.
_RECEIPT_MASK = 0x03
_RECEIPT_ON_FAILURE = 0x02
#: Receipt text err: for an undeliverable number (§Appendix B, "network specific").
_ERR_UNDELIVERABLE = 1
#: §4.1.2 sc_interface_version of our bind responses: SMPP 3.4.
_SMPP_34 = 0x34
#: Destinations of inbound messages this short or shorter are short codes (as DESIGN's 3-8 digits).
_SHORT_CODE_MAX = 8


def _new_stats() -> dict[str, Any]:
    return {
        "connections": 0,
        "binds": 0,
        "binds_refused": 0,
        "unbinds": 0,
        "submits": 0,
        "submit_status": {},
        "receipts_sent": 0,
        "receipts_acked": 0,
        "receipts_refused": 0,
        "receipts_timed_out": 0,
        "receipts_requeued": 0,
        "receipts_dropped": 0,
        "enquire_links_received": 0,
        "enquire_links_sent": 0,
        "window_violations": 0,
        "malformed": 0,
        "rejected_requests": 0,
        "unsupported": 0,
        "ignored": 0,
        "stalls": 0,
        "drops": 0,
        "records_dropped": 0,
    }


class _Link:
    """The simulator's view of one connection: its bind and its window bookkeeping."""

    __slots__ = ("conn", "kind", "mark", "queued", "sim", "system_id", "unanswered")

    def __init__(self, sim: CarrierSim, conn: SmscConnection) -> None:
        self.sim = sim
        self.conn = conn
        self.system_id = ""
        self.kind = ""
        #: Submits received whose response has not been written, as of ``mark``.
        self.unanswered = 0
        #: Responses queued since the write count was ``mark``.
        self.queued = 0
        self.mark = conn.writes

    def settle_written(self) -> None:
        """Responses queued before the latest write have reached the client."""
        writes = self.conn.writes
        if writes != self.mark:
            self.unanswered -= self.queued
            self.queued = 0
            self.mark = writes

    def handle_events(self, conn: SmscConnection, events: list[Event], now: float) -> None:
        self.sim._on_events(self, events, now)

    def connection_lost(self, conn: SmscConnection, exc: Exception | None) -> None:
        self.sim._on_lost(self)


class CarrierSim:
    """A carrier SMSC simulator (see the module docstring).

    In-process use::

        sim = CarrierSim(SimOptions(dlr_delay_ms=50))   # or CarrierSim(dlr_delay_ms=50)
        await sim.start(); port = sim.port
        ...; sim.stats["submits"], sim.received[0].destination_addr
        await sim.stop()
    """

    def __init__(self, options: SimOptions | None = None, **overrides: Any) -> None:
        """Raises ValueError naming the option that is out of range (TypeError for an unknown one)."""
        base = options if options is not None else SimOptions()
        self.options = dataclasses.replace(base, **overrides) if overrides else base
        self.stats: dict[str, Any] = _new_stats()
        #: Every submit received (up to ``record_limit``), in arrival order.
        self.received: list[SubmitRecord] = []
        self._server: SmscServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wall_offset = 0.0
        self._rng = random.Random(self.options.seed)
        self._next_number = self.options.first_id
        self._alybnd_left = self.options.alybnd_first
        self._maker = ReceiptMaker(self.options.receipt_style)
        self._links: set[_Link] = set()
        self._receipts = ReceiptRouter(self.stats, self._send_resp, self.options.max_pending_receipts)
        self._rates: dict[str, deque[float]] = {}
        self._log: JsonlLog | None = None
        self._log_timer: asyncio.TimerHandle | None = None
        self._stalled = False
        self._status_names: dict[int, str] = {}

    # -------------------------------------------------------------- lifecycle

    @property
    def port(self) -> int:
        """The listening port (the ephemeral one after ``start`` with port 0)."""
        return self._server.port if self._server is not None else self.options.port

    async def start(self) -> None:
        """Listen on ``options.host:options.port``. Raises OSError (address in use, log file)."""
        opts = self.options
        self._loop = asyncio.get_running_loop()
        self._wall_offset = time.time() - self._loop.time()
        self._receipts.start(self._loop)
        if opts.log:
            self._log = JsonlLog(opts.log)
        self._server = SmscServer(
            opts.host,
            opts.port,
            on_connection=self._on_connection,
            session_factory=self._new_session,
            count_pdus=lambda: self.options.stall_after is not None or self.options.drop_after is not None,
        )
        await self._server.start()
        log.info("carrier_sim.listening", host=opts.host, port=self._server.port)

    async def stop(self) -> None:
        """Close every connection and the listener; flush the log. Receipts not yet due are dropped."""
        self._receipts.stop()
        if self._log_timer is not None:
            self._log_timer.cancel()
            self._log_timer = None
        if self._server is not None:
            await self._server.stop()
            self._server = None
        if self._log is not None:
            self._log.close()
            self._log = None

    # ----------------------------------------------------------- test control

    def stall(self) -> None:
        """Stop answering anything, on every connection and on new ones, until ``resume``."""
        self._stalled = True
        for link in self._links:
            link.conn.flush()
            link.conn.muted = True
        self.stats["stalls"] += 1

    def resume(self) -> None:
        """Answer again what arrives from now on (what arrived meanwhile stays unanswered)."""
        self._stalled = False
        for link in self._links:
            link.conn.muted = False
        self._receipts.drain_all()

    def drop_all(self) -> None:
        """Close every connection now, as a carrier restart would (the listener stays)."""
        if self._server is not None:
            self.stats["drops"] += len(self._server.connections)
            self._server.close_connections(abort=True)

    def send_mo(
        self, source: str, destination: str, text: str, *, system_id: str | None = None,
        esm_class: int = 0,
    ) -> None:
        """Deliver an inbound message (a handset's SMS, e.g. "STOP") to a receiving bind.

        It goes as a deliver_sm (§4.6.1) with data_coding 0, GSM 03.38 default alphabet
        octets (one per septet, unpacked), E.164 source (TON 1 / NPI 1), through the same
        queue as receipts (so it waits for a receiving bind and counts in receipts_sent /
        receipts_acked), on `system_id`'s binds: by default the configured one, else the
        one system_id bound. Raises ValueError naming `text` when it is not GSM-encodable,
        `system_id` when none can be chosen.
        """
        if system_id is None:
            system_id = self.options.system_id
        if system_id is None:
            bound = {link.system_id for link in self._links if link.system_id}
            if len(bound) != 1:
                raise ValueError(f"system_id: name the bind to deliver to, {len(bound)} are bound")
            (system_id,) = bound
        try:
            body = encode_septets(text)
        except ValueError as exc:
            raise ValueError(f"text: {exc}") from None
        dest = destination.lstrip("+")
        short_code = len(dest) <= _SHORT_CODE_MAX  # TON 3 (network specific) / NPI 0
        pdu = DeliverSm(
            source_addr_ton=1, source_addr_npi=1, source_addr=source.lstrip("+"),
            dest_addr_ton=3 if short_code else 1, dest_addr_npi=0 if short_code else 1,
            destination_addr=dest, esm_class=esm_class, short_message=body,
        )
        self.stats["mo_sent"] = self.stats.get("mo_sent", 0) + 1
        self._receipts.release(Pending(system_id, pdu))

    def set_options(self, **changes: Any) -> None:
        """Change options at run time (``set_options(fail_rate=0.5)``).

        Raises ValueError naming the option that is out of range, TypeError for
        an unknown one; nothing changes then.  host/port/log apply on the next
        ``start``; stall_after/drop_after to connections made afterwards.
        """
        options = dataclasses.replace(self.options, **changes)
        if "receipt_style" in changes:
            self._maker = ReceiptMaker(options.receipt_style)
        if "alybnd_first" in changes:
            self._alybnd_left = options.alybnd_first
        if "first_id" in changes:
            self._next_number = options.first_id
        if "seed" in changes:
            self._rng = random.Random(options.seed)
        self.options = options

    # ------------------------------------------------------------ connections

    def _new_session(self) -> Session:
        opts = self.options
        return Session(
            Role.SMSC,
            window=opts.receipt_window,
            response_timeout_s=opts.response_timeout_s,
            enquire_link_s=opts.enquire_link_s,
            bind_timeout_s=opts.response_timeout_s,
        )

    def _on_connection(self, conn: SmscConnection) -> _Link:
        link = _Link(self, conn)
        self._links.add(link)
        self.stats["connections"] += 1
        conn.muted = self._stalled
        return link

    def _on_lost(self, link: _Link) -> None:
        self._links.discard(link)
        self._receipts.lost(link)

    # ----------------------------------------------------------------- events

    def _on_events(self, link: _Link, events: list[Event], now: float) -> None:
        conn = link.conn
        if conn.count_pdus and self._over_limit(link):
            return
        if conn.muted:
            self._ignore(link, events)
            return
        stats = self.stats
        for event in events:
            kind = type(event)
            if kind is RequestReceived:
                pdu = event.pdu  # type: ignore[attr-defined]
                cid = pdu.command_id
                if cid == _SUBMIT_SM or cid == _DATA_SM:
                    self._on_submit(link, pdu, now)
                elif cid in _BIND_KIND:
                    self._on_bind(link, pdu)
                else:
                    stats["unsupported"] += 1
                    conn.send_response(pdu.response(CommandStatus.ESME_RINVCMDID))
            elif kind is ResponseReceived:
                self._on_receipt_resp(link, event.status)  # type: ignore[attr-defined]
            elif kind is EnquireLinkReceived:
                stats["enquire_links_received"] += 1
            elif kind is EnquireLinkDue:
                stats["enquire_links_sent"] += 1
            elif kind is ResponseTimedOut:
                if event.request.command_id == _DELIVER_SM:  # type: ignore[attr-defined]
                    stats["receipts_timed_out"] += 1
                    self._receipts.slot_free(link.system_id)
            elif kind is UnbindReceived:
                stats["unbinds"] += 1
            elif kind is MalformedPdu or kind is ProtocolViolation:
                stats["malformed"] += 1
            elif kind is RequestRejected:
                stats["rejected_requests"] += 1
            elif kind is PeerDead:
                log.info("carrier_sim.peer_dead", bind_id=conn.id, system_id=link.system_id)
        if conn.count_pdus and conn.pdus_received == self.options.drop_after and not conn.closed:
            self.stats["drops"] += 1
            conn.close()  # writes the answers to the first N, then FIN

    def _ignore(self, link: _Link, events: list[Event]) -> None:
        """Stalled: answer nothing, but a client overrunning its window is still seen."""
        window = self.options.window
        for event in events:
            if type(event) is RequestReceived and event.pdu.command_id in (_SUBMIT_SM, _DATA_SM):
                self.stats["ignored"] += 1
                link.settle_written()
                link.unanswered += 1
                if window and link.unanswered > window:
                    self.stats["window_violations"] += 1

    def _over_limit(self, link: _Link) -> bool:
        """Apply stall_after / drop_after to the PDU just fed; True when it goes unanswered."""
        opts, conn = self.options, link.conn
        count = conn.pdus_received
        if opts.drop_after is not None and count > opts.drop_after:
            conn.close()
            return True
        if opts.stall_after is not None and count > opts.stall_after and not conn.muted:
            # Answers to the first N are already collected; from this PDU on, output is discarded.
            conn.muted = True
            self.stats["stalls"] += 1
        return False

    def _on_bind(self, link: _Link, pdu: Any) -> None:
        opts = self.options
        status = _ROK
        if opts.system_id is not None:
            if pdu.system_id != opts.system_id:
                status = CommandStatus.ESME_RINVSYSID
            elif pdu.password != opts.password:
                status = CommandStatus.ESME_RINVPASWD
        if status == _ROK and self._alybnd_left > 0:
            self._alybnd_left -= 1
            status = CommandStatus.ESME_RALYBND
        kind = _BIND_KIND[pdu.command_id]
        if status != _ROK:
            self.stats["binds_refused"] += 1
            link.conn.send_response(pdu.response(status))
            log.info("carrier_sim.bind_refused", system_id=pdu.system_id, kind=kind, status=status_name(status))
            return
        link.conn.send_response(pdu.response(_ROK, system_id=opts.smsc_id, tlvs={TlvTag.SC_INTERFACE_VERSION: _SMPP_34}))
        self.stats["binds"] += 1
        link.system_id, link.kind = pdu.system_id, kind
        if pdu.command_id in _RECEIVING:
            self._receipts.add_receiver(link)

    # ---------------------------------------------------------------- submits

    def _on_submit(self, link: _Link, pdu: Any, now: float) -> None:
        opts = self.options
        stats = self.stats
        stats["submits"] += 1
        link.settle_written()
        link.unanswered += 1
        if opts.window and link.unanswered > opts.window:
            stats["window_violations"] += 1
        status = self._judge(link.system_id, pdu.destination_addr, now)
        if status == _ROK:
            number = self._next_number
            self._next_number = number + 1
            fmt = opts.id_format
            mid = format_id(number, fmt) if fmt != "uuid" else str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
            resp = pdu.response(_ROK, message_id=mid)
        else:
            number, mid = 0, ""
            resp = pdu.response(status)
        names = self._status_names
        name = names.get(status) or names.setdefault(status, status_name(status))
        by_status = stats["submit_status"]
        by_status[name] = by_status.get(name, 0) + 1
        if opts.record_limit or self._log is not None:
            self._record(link, pdu, status, mid, now)
        wants = pdu.registered_delivery & _RECEIPT_MASK
        delivered = True
        if status == _ROK and wants:
            delivered = not (opts.undeliverable_numbers and pdu.destination_addr.lstrip("+").startswith(
                opts.undeliverable_numbers))
            if delivered and wants == _RECEIPT_ON_FAILURE:
                wants = 0
        if status != _ROK or not wants:
            self._send_resp(link, resp)
            return
        rid = receipt_id(mid, number, opts.receipt_id_format)
        delay = opts.dlr_delay_ms / 1000.0
        wall = now + self._wall_offset
        err = 0 if delivered else _ERR_UNDELIVERABLE
        receipt = self._maker.deliver_sm(pdu, rid, wall, wall + delay, delivered, err)
        held = resp if opts.receipts_first else None
        if held is None:
            self._send_resp(link, resp)
        pending = Pending(link.system_id, receipt, held, link)
        if delay:
            self._receipts.schedule(pending, now + delay)
        else:
            self._receipts.release(pending)

    def _judge(self, system_id: str, destination: str, now: float) -> int:
        """The status to answer a submit with, in the documented order."""
        opts = self.options
        if opts.throttle_tps:
            stamps = self._rates.get(system_id)
            if stamps is None:
                stamps = self._rates[system_id] = deque()
            cutoff = now - 1.0
            while stamps and stamps[0] <= cutoff:
                stamps.popleft()
            if len(stamps) >= opts.throttle_tps:
                return _RTHROTTLED
            stamps.append(now)
        if opts.reject_numbers and destination.lstrip("+").startswith(opts.reject_numbers):
            return _RINVDSTADR
        if opts.fail_rate and self._rng.random() < opts.fail_rate:
            return _RSYSERR
        if opts.reject_rate and self._rng.random() < opts.reject_rate:
            return opts.reject_status
        return _ROK

    def _send_resp(self, link: _Link, resp: Any) -> None:
        conn = link.conn
        if conn.closed:
            return
        link.settle_written()
        conn.send_response(resp)
        link.queued += 1

    def _record(self, link: _Link, pdu: Any, status: int, mid: str, now: float) -> None:
        record = SubmitRecord(now + self._wall_offset, link.system_id, link.conn.id, pdu, status, mid)
        if len(self.received) < self.options.record_limit:
            self.received.append(record)
        else:
            self.stats["records_dropped"] += 1
        logfile = self._log
        if logfile is not None:
            logfile.append(record)
            if logfile.pending and self._log_timer is None and self._loop is not None:
                self._log_timer = self._loop.call_later(FLUSH_S, self._flush_log)

    def _flush_log(self) -> None:
        self._log_timer = None
        if self._log is not None:
            self._log.flush()

    # --------------------------------------------------------------- receipts

    def _on_receipt_resp(self, link: _Link, status: int) -> None:
        if status == _ROK:
            self.stats["receipts_acked"] += 1
        else:
            self.stats["receipts_refused"] += 1
        self._receipts.slot_free(link.system_id)

    @property
    def pending_receipts(self) -> int:
        """Receipts not yet sent: waiting for their time or for a receiving bind."""
        return self._receipts.pending


# --------------------------------------------------------------------- CLI


def run(args: argparse.Namespace) -> int:
    """``smpp-router carrier-sim``: serve until SIGTERM/SIGINT; the exit status.

    Prints one JSON line ``{"listening": "host:port", "host", "port"}`` on
    stdout once listening and ``{"stats": {...}}`` when stopped; 2 for bad
    options (one line naming the option), 1 when the port cannot be bound.
    """
    try:
        options = options_from_args(args)
    except ValueError as exc:
        print(f"carrier-sim: {exc}", file=sys.stderr)
        return 2
    configure_logs(getattr(args, "log_format", "json"))  # stdout carries only the JSON lines below
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.run(_serve(options))
    return uvloop.run(_serve(options))


async def _serve(options: SimOptions) -> int:
    sim = CarrierSim(options)
    try:
        await sim.start()
    except OSError as exc:
        print(f"carrier-sim: cannot listen on {options.host}:{options.port}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"listening": f"{options.host}:{sim.port}", "host": options.host, "port": sim.port}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await sim.stop()
    print(json.dumps({"stats": sim.stats}), flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m adapters.carrier_sim [flags]``; the same flags as ``smpp-router carrier-sim``."""
    parser = argparse.ArgumentParser(prog="carrier-sim", description="A simulated SMPP 3.4 carrier SMSC.")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
