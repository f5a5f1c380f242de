"""What the router holds for one message, and the MDR it becomes.

A `Message` lives in memory from accept until its record is final; the store keeps its
durable copy (`adapters/store/`), rebuilt into `Message` objects at start. Fields follow the
MDR of DESIGN.md; `to_mdr()` renders the public record.

The class is slotted and built with a plain `__init__`: one is made per accepted message.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any

from router.status import (  # noqa: F401 - re-exported for callers of the model
    DELIVERED,
    EXPIRED,
    FAILED,
    FINAL,
    QUEUED,
    REJECTED,
    SENDING,
    SUBMITTED,
    UNDELIVERABLE,
    UNKNOWN,
)

#: A multipart message takes the first of these that any part has (DESIGN.md).
PART_PRECEDENCE = (REJECTED, UNDELIVERABLE, EXPIRED, FAILED, UNKNOWN)


#: The last whole second iso_ms rendered, and its text up to the seconds: receipts and
#: MDR events render times of the same second over and over (datetime costs ~2.5 µs).
_iso_second = 0
_iso_prefix = "1970-01-01T00:00:00"


def iso_ms(ts: float | None) -> str | None:
    """Render an epoch time as ISO 8601 UTC with milliseconds, as the socket and MDRs do.

    Rounds as `datetime.fromtimestamp` does (to the microsecond, half to even), then
    truncates to the millisecond, so the text is the one datetime's isoformat gives.
    Raises OverflowError / ValueError for a time datetime cannot represent.
    """
    global _iso_second, _iso_prefix
    if ts is None:
        return None
    second = math.floor(ts)
    micros = round((ts - second) * 1e6)
    if micros >= 1_000_000:
        second += 1
        micros -= 1_000_000
    if second != _iso_second:
        _iso_prefix = datetime.fromtimestamp(second, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        _iso_second = second
    return f"{_iso_prefix}.{micros // 1000:03d}Z"


def parse_iso(value: str) -> float:
    """Parse an ISO 8601 time (a date alone means midnight UTC) into epoch seconds.

    Raises ValueError naming the value when it is not a date or time.
    """
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not an ISO 8601 time: {value!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


class Attempt:
    """One part on one carrier once: the MDR's `attempts` entry."""

    __slots__ = ("carrier", "bind", "part", "at", "status", "error", "carrier_id")

    def __init__(
        self,
        carrier: str,
        bind: str,
        part: int,
        at: float,
        status: str,
        error: str | None = None,
        carrier_id: str | None = None,
    ) -> None:
        self.carrier = carrier
        self.bind = bind
        self.part = part
        self.at = at
        self.status = status
        self.error = error
        self.carrier_id = carrier_id

    def as_tuple(self) -> tuple[Any, ...]:
        return (self.carrier, self.bind, self.part, self.at, self.status, self.error, self.carrier_id)

    @classmethod
    def from_tuple(cls, t: Any) -> Attempt:
        return cls(*t)

    def to_dict(self) -> dict[str, Any]:
        return {
            "carrier": self.carrier,
            "bind": self.bind,
            "part": self.part,
            "at": iso_ms(self.at),
            "status": self.status,
            "error": self.error,
            "carrier_id": self.carrier_id,
        }


class Message:
    """One accepted message and its record.

    `text` or `data` (+ `data_coding`) is the body; `segments` is the on-air count, judged
    at accept time and replaced by the count actually sent (a 16-bit reference or a charset
    fallback can cut more); `parts_sent` is the number of submit_sm PDUs. `part_status`
    holds each sent part's own status for multipart aggregation; `carrier_ids` the accepted
    id of each part, in part order.
    """

    __slots__ = (
        "id", "client_ref", "tags", "source", "dest", "text", "data", "data_coding",
        "encoding", "segments", "priority", "dlr", "expires_at", "accepted_at",
        "status", "carrier", "route", "cost", "dlr_stat", "error", "error_code",
        "carrier_ids", "attempts", "submitted_at", "done_at", "part_status", "tried",
        "parts_sent", "version", "stored", "ref",
    )

    def __init__(
        self,
        id: str,
        source: str,
        dest: str,
        *,
        text: str | None = None,
        data: bytes | None = None,
        data_coding: int | None = None,
        encoding: str = "gsm7",
        segments: int = 1,
        priority: int = 0,
        dlr: bool = True,
        accepted_at: float = 0.0,
        expires_at: float = 0.0,
        client_ref: str | None = None,
        tags: dict[str, str] | None = None,
        status: str = QUEUED,
    ) -> None:
        self.id = id
        self.client_ref = client_ref
        self.tags = tags
        self.source = source
        self.dest = dest
        self.text = text
        self.data = data
        self.data_coding = data_coding
        self.encoding = encoding
        self.segments = segments
        self.priority = priority
        self.dlr = dlr
        self.accepted_at = accepted_at
        self.expires_at = expires_at
        self.status = status
        self.carrier: str | None = None
        self.route: str | None = None
        self.cost: float | None = None
        self.dlr_stat: str | None = None
        self.error: str | None = None
        self.error_code: int | None = None
        self.carrier_ids: list[str | None] = []
        self.attempts: list[Attempt] = []
        self.submitted_at: float | None = None
        self.done_at: float | None = None
        self.part_status: list[str] = []
        self.tried: list[str] = []
        self.parts_sent = 0
        #: Bumped on every change the store must see (the writer keeps the newest).
        self.version = 0
        #: True once the store has written the message.
        self.stored = False
        #: The concatenation reference its parts carry on the current carrier (in memory
        #: only: a part is retried only within one run).
        self.ref = 0

    @property
    def final(self) -> bool:
        return self.status in FINAL

    def to_mdr(self) -> dict[str, Any]:
        """The public MDR (DESIGN.md, "MDR fields")."""
        return {
            "id": self.id,
            "client_ref": self.client_ref,
            "tags": self.tags or {},
            "from": self.source,
            "to": self.dest,
            "carrier": self.carrier,
            "route": self.route,
            "segments": self.segments,
            "encoding": self.encoding,
            "cost": self.cost,
            "status": self.status,
            "dlr_stat": self.dlr_stat,
            "error": self.error,
            "error_code": self.error_code,
            "carrier_ids": list(self.carrier_ids),
            "attempts": [a.to_dict() for a in self.attempts],
            "accepted_at": iso_ms(self.accepted_at),
            "submitted_at": iso_ms(self.submitted_at),
            "done_at": iso_ms(self.done_at),
        }

    def __repr__(self) -> str:
        return f"<Message {self.id} {self.source}->{self.dest} {self.status}>"


def aggregate_parts(part_status: list[str]) -> str | None:
    """The status of a multipart message from its parts, or None while any part is open.

    DELIVERED only if every part is; otherwise the first of PART_PRECEDENCE any part has.
    """
    if not part_status:
        return None
    for s in part_status:
        if s not in FINAL:
            return None
    for s in PART_PRECEDENCE:
        if s in part_status:
            return s
    return DELIVERED
