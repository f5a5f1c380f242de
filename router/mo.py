"""Inbound messages (MO): decoding deliver_sm / data_sm bodies and reassembling long ones.

Theory of operation
-------------------
The daemon hands :meth:`Reassembler.add` the plain values of one inbound PDU. The body is
``message_payload`` when the PDU carries one, else ``short_message``. A UDH is split off only
when the UDHI bit is set (tested with a mask: esm_class 0x40 and 0x48 both have it); a
header-looking text without it is text. Every information element is walked, so a port IE
before the concatenation IE changes nothing. Concatenation comes from the UDH's IE 0x00 / 0x08,
else from the SAR TLVs (a 16-bit reference); an invalid one (total 0, seq 0, seq > total)
means "not concatenated". A header that cannot be walked makes the PDU one message of binary
data — its raw body — so nothing a carrier sent is ever dropped.

A part of a long message joins the open *set* keyed by (carrier, source, dest, ref, total,
ref width). Each part is decoded on arrival (packed GSM needs its own septet alignment after
its own header), and the set is joined when its last part comes: texts concatenated in part
order, or — when any part is not text — the data octets concatenated. A UCS-2 emoji split
across two parts decodes as U+FFFD at the end of one and the start of the next; the join
sees the surrogate octets behind those and puts the pair back together.

Duplicates (the same part with the same octets) are dropped and counted, also for a while
after their set completed (carriers redeliver a deliver_sm whose response was late), so a
replay never comes back as a stray partial message. A part whose sequence number is taken by
*different* octets means the sender reused the reference: the old set goes out as partial
and a new one starts.

Every set lives ``hold_s`` from its first part; :meth:`Reassembler.expire` delivers what has
arrived of an overdue set as one message marked ``partial`` whose ``parts`` is the number of
parts received. At most ``max_sets`` are open: the oldest is forced out the same way.
``now`` is epoch seconds passed in, expected not to run backwards; nothing here reads a
clock or does I/O.
"""

from __future__ import annotations

from typing import Any

from router.model import iso_ms
from router.text import DC0_CHARSETS, TextError, decode_short_message

__all__ = ["UDHI", "InboundMessage", "Reassembler"]

UDHI = 0x40  #: SMPP 3.4 §5.2.12: esm_class bit 6, the short message starts with a UDH.
_SAR_REF_BITS = 16  #: SMPP 3.4 §5.3.2.22: sar_msg_ref_num is an Integer(2).
_SAR_MAX = 0xFF  #: SMPP 3.4 §5.3.2.23-24: total and seqnum are Integer(1).
_REPLACEMENT = "\ufffd"  # what a lone surrogate decodes to (utf-16 "replace")
_CHARSETS = frozenset(DC0_CHARSETS)


class InboundMessage:
    """One inbound message, whole or partial, ready to be stored and published.

    ``text`` is set for a text message, else ``data`` holds the octets (binary data coding,
    parts that mix text and data, or an unreadable UDH — then the raw body). ``data_coding``
    is the first part's. ``received_at`` is when the first part arrived. ``parts`` is the
    number of parts it was joined from; ``partial`` marks a long message some of whose
    parts never came. ``id`` is assigned by the daemon, ``keyword`` / ``action`` by
    compliance; all three are None here.
    """

    __slots__ = (
        "action",
        "carrier",
        "data",
        "data_coding",
        "dest",
        "id",
        "keyword",
        "partial",
        "parts",
        "received_at",
        "source",
        "text",
    )

    def __init__(
        self,
        source: str,
        dest: str,
        carrier: str,
        *,
        text: str | None,
        data: bytes | None,
        data_coding: int,
        received_at: float,
        parts: int = 1,
        partial: bool = False,
    ) -> None:
        self.id: str | None = None
        self.source = source
        self.dest = dest
        self.carrier = carrier
        self.text = text
        self.data = data
        self.data_coding = data_coding
        self.received_at = received_at
        self.parts = parts
        self.partial = partial
        self.keyword: str | None = None
        self.action: str | None = None

    def to_event(self) -> dict[str, Any]:
        """The MO event of DESIGN.md: ``text``, or ``data`` (bytes) with ``data_coding``.

        ``keyword`` and ``action`` are present once compliance has set either.
        """
        event: dict[str, Any] = {
            "id": self.id,
            "from": self.source,
            "to": self.dest,
            "carrier": self.carrier,
        }
        if self.text is not None:
            event["text"] = self.text
        else:
            event["data"] = self.data
            event["data_coding"] = self.data_coding
        event["received_at"] = iso_ms(self.received_at)
        event["parts"] = self.parts
        event["partial"] = self.partial
        if self.keyword is not None or self.action is not None:
            event["keyword"] = self.keyword
            event["action"] = self.action
        return event

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, InboundMessage):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self.__slots__)

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value

    def __repr__(self) -> str:
        body = f"text={self.text!r}" if self.text is not None else f"data={self.data!r}"
        flag = " partial" if self.partial else ""
        return (
            f"InboundMessage({self.source}->{self.dest} via {self.carrier}, {body},"
            f" dc=0x{self.data_coding:02X}, parts={self.parts}{flag})"
        )


class _Part:
    """One received part of a long message: its decoded text (None if not text) and octets."""

    __slots__ = ("data", "data_coding", "raw", "text")

    def __init__(self, text: str | None, data: bytes, data_coding: int, raw: bytes) -> None:
        self.text = text
        self.data = data
        self.data_coding = data_coding
        self.raw = raw  # the whole body as received: what tells a duplicate from a reuse


_Key = tuple[str, str, str, int, int, int]


class _Set:
    """The parts of one long message received so far, by sequence number."""

    __slots__ = ("deadline", "first_at", "parts")

    def __init__(self, first_at: float, deadline: float) -> None:
        self.first_at = first_at
        self.deadline = deadline
        self.parts: dict[int, _Part] = {}


class Reassembler:
    """Turns inbound PDUs into whole messages; see the module docstring.

    ``hold_s``: how long a long message's set waits for missing parts, from its first part.
    ``max_sets``: how many sets may be open at once. Raises ValueError naming the argument
    when either is not a positive finite number.
    """

    __slots__ = ("_counts", "_done", "_hold_s", "_max_sets", "_sets")

    def __init__(self, *, hold_s: float = 300.0, max_sets: int = 10_000) -> None:
        if not 0 < hold_s < float("inf"):
            raise ValueError(f"hold_s: must be a positive number of seconds, got {hold_s!r}")
        if isinstance(max_sets, bool) or not isinstance(max_sets, int) or max_sets < 1:
            raise ValueError(f"max_sets: must be a positive integer, got {max_sets!r}")
        self._hold_s = float(hold_s)
        self._max_sets = max_sets
        # Both dicts keep insertion order, which is deadline order while ``now`` does not
        # run backwards: the oldest entry is always the first.
        self._sets: dict[_Key, _Set] = {}
        #: Completed sets: key -> (forget at, {(seq, hash of the raw body)}), to drop late
        #: replays. Hashes keep a tombstone small; a 64-bit collision within one set's
        #: reference and hold time is not a practical risk.
        self._done: dict[_Key, tuple[float, frozenset[tuple[int, int]]]] = {}
        self._counts = {"singles": 0, "assembled": 0, "duplicates": 0, "partial": 0, "evicted": 0}

    @property
    def stats(self) -> dict[str, int]:
        """Counters: ``singles`` (delivered at once, one part), ``assembled`` (long messages
        delivered whole), ``duplicates`` (parts dropped), ``partial`` (long messages delivered
        with parts missing: expired, evicted or displaced by a reused reference), ``evicted``
        (of those, forced out by ``max_sets``) and ``open_sets`` (waiting now)."""
        return {**self._counts, "open_sets": len(self._sets)}

    def add(
        self,
        *,
        carrier: str,
        source: str,
        dest: str,
        esm_class: int,
        data_coding: int,
        short_message: bytes,
        sar: tuple[int, int, int] | None = None,
        message_payload: bytes | None = None,
        dc0_charset: str = "gsm7",
        now: float,
    ) -> list[InboundMessage]:
        """Take one inbound PDU; return the messages it lets out, in the order to deliver them.

        A single-part message comes back at once; the last missing part of a long message
        brings the whole message back; other parts return nothing. The list can also start
        with a *partial* message this part forced out (the oldest set when ``max_sets`` are
        open, or the set whose reference the sender reused). ``sar`` is (sar_msg_ref_num,
        sar_total_segments, sar_segment_seqnum). Raises ValueError naming ``dc0_charset``
        when it is not a known charset; never for the octets themselves.
        """
        if dc0_charset not in _CHARSETS:
            raise ValueError(
                f"dc0_charset: {dc0_charset!r} is not one of {', '.join(DC0_CHARSETS)}"
            )
        body = message_payload if message_payload else short_message
        if type(body) is not bytes:  # a memoryview or bytearray from the codec
            body = bytes(body)
        try:
            part = decode_short_message(
                body, data_coding, bool(esm_class & UDHI), dc0_charset=dc0_charset
            )
        except TextError:  # an unreadable UDH: keep every octet as data
            return [self._single(carrier, source, dest, None, body, data_coding, now)]
        concat = part.concat or _sar_concat(sar)
        if concat is None or concat[1] == 1:
            return [self._single(carrier, source, dest, part.text, part.data, data_coding, now)]
        ref, total, seq, bits = concat
        key = (carrier, source, dest, ref, total, bits)
        return self._add_part(key, seq, _Part(part.text, part.data, data_coding, body), now)

    def expire(self, now: float) -> list[InboundMessage]:
        """Deliver every set whose ``hold_s`` has run out at ``now`` as a partial message.

        Each comes back as one message: the received parts joined in part order,
        ``partial=True``, ``parts`` = how many parts were received. Never raises.
        """
        out = []
        sets = self._sets
        while sets:
            key = next(iter(sets))
            if sets[key].deadline > now:
                break
            out.append(self._partial(key, sets.pop(key)))
        self._forget_done(now)
        return out

    def next_due(self) -> float | None:
        """When :meth:`expire` next has something to deliver, or None with no set open."""
        for pending in self._sets.values():
            return pending.deadline
        return None

    # -- internals ----------------------------------------------------------------------

    def _single(
        self,
        carrier: str,
        source: str,
        dest: str,
        text: str | None,
        data: bytes,
        data_coding: int,
        now: float,
    ) -> InboundMessage:
        self._counts["singles"] += 1
        return InboundMessage(
            source,
            dest,
            carrier,
            text=text,
            data=None if text is not None else data,
            data_coding=data_coding,
            received_at=now,
        )

    def _add_part(self, key: _Key, seq: int, part: _Part, now: float) -> list[InboundMessage]:
        out: list[InboundMessage] = []
        pending = self._sets.get(key)
        if pending is not None:
            seen = pending.parts.get(seq)
            if seen is not None:
                if seen.raw == part.raw:
                    self._counts["duplicates"] += 1
                    return out
                # Same reference, same part number, other octets: a new message.
                out.append(self._partial(key, self._sets.pop(key)))
                pending = None
        if pending is None:
            if self._is_replay(key, seq, part.raw, now):
                self._counts["duplicates"] += 1
                return out
            if len(self._sets) >= self._max_sets:
                oldest = next(iter(self._sets))
                self._counts["evicted"] += 1
                out.append(self._partial(oldest, self._sets.pop(oldest)))
            pending = self._sets[key] = _Set(now, now + self._hold_s)
        pending.parts[seq] = part
        if len(pending.parts) == key[4]:
            del self._sets[key]
            self._remember_done(key, pending, now)
            self._counts["assembled"] += 1
            out.append(self._message(key, pending, partial=False))
        return out

    def _partial(self, key: _Key, pending: _Set) -> InboundMessage:
        self._counts["partial"] += 1
        return self._message(key, pending, partial=True)

    def _message(self, key: _Key, pending: _Set, *, partial: bool) -> InboundMessage:
        carrier, source, dest = key[0], key[1], key[2]
        seqs = sorted(pending.parts)
        ordered = [pending.parts[seq] for seq in seqs]
        text, data = _join(ordered, seqs)
        return InboundMessage(
            source,
            dest,
            carrier,
            text=text,
            data=data,
            data_coding=ordered[0].data_coding,
            received_at=pending.first_at,
            parts=len(ordered),
            partial=partial,
        )

    def _remember_done(self, key: _Key, pending: _Set, now: float) -> None:
        done = self._done
        done.pop(key, None)  # re-inserted at the end: the dict stays in expiry order
        while len(done) >= self._max_sets:
            del done[next(iter(done))]
        seen = frozenset((seq, hash(part.raw)) for seq, part in pending.parts.items())
        done[key] = (now + self._hold_s, seen)

    def _is_replay(self, key: _Key, seq: int, raw: bytes, now: float) -> bool:
        self._forget_done(now)
        entry = self._done.get(key)
        if entry is None:
            return False
        if (seq, hash(raw)) in entry[1]:
            return True
        del self._done[key]  # the reference is in use again by a new message
        return False

    def _forget_done(self, now: float) -> None:
        done = self._done
        while done:
            key = next(iter(done))
            if done[key][0] > now:
                return
            del done[key]


def _sar_concat(sar: tuple[int, int, int] | None) -> tuple[int, int, int, int] | None:
    """(ref, total, seq, 16) from SAR TLV values, or None when absent or invalid."""
    if sar is None:
        return None
    ref, total, seq = sar
    if not 1 <= seq <= total <= _SAR_MAX:
        return None
    return ref & 0xFFFF, total, seq, _SAR_REF_BITS


def _join(parts: list[_Part], seqs: list[int]) -> tuple[str | None, bytes | None]:
    """(text, None) when every part is text, else (None, the data octets joined)."""
    for part in parts:
        if part.text is None:
            return None, b"".join(part.data for part in parts)
    texts: list[str] = [parts[0].text or ""]
    for i in range(1, len(parts)):
        text = parts[i].text or ""
        if seqs[i] == seqs[i - 1] + 1 and _split_pair(parts[i - 1], parts[i], texts[-1], text):
            pair = (parts[i - 1].data[-2:] + parts[i].data[:2]).decode("utf-16-be")
            texts[-1] = texts[-1][:-1] + pair
            text = text[1:]
        texts.append(text)
    return "".join(texts), None


def _split_pair(before: _Part, after: _Part, text_before: str, text_after: str) -> bool:
    """Whether ``before`` ends in a high surrogate that ``after`` starts with the low half of.

    Only UTF-16 decoding makes U+FFFD here (GSM, Latin-1 and ASCII readers make '?'), so
    the replacement characters plus the surrogate octets behind them are the evidence.
    """
    head, tail = before.data, after.data
    return (
        text_before.endswith(_REPLACEMENT)
        and text_after.startswith(_REPLACEMENT)
        and len(head) >= 2
        and len(head) % 2 == 0
        and len(tail) >= 2
        and 0xD8 <= head[-2] <= 0xDB
        and 0xDC <= tail[0] <= 0xDF
    )
