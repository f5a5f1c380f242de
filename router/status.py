"""MDR status names.

Plain ``str`` constants rather than an enum: they are stored, exported as CSV/JSON, used as
Prometheus label values and compared on the hot path, and a ``str`` does all of that without
conversion. The spelling is the interface contract (DESIGN.md, "MDR fields").
"""

from __future__ import annotations

from typing import Final

QUEUED: Final = "QUEUED"  # accepted, waiting for a carrier
SENDING: Final = "SENDING"  # on the wire, no response yet
SUBMITTED: Final = "SUBMITTED"  # accepted by the carrier; also every intermediate receipt
DELIVERED: Final = "DELIVERED"
UNDELIVERABLE: Final = "UNDELIVERABLE"  # a final failed receipt (UNDELIV, REJECTD, ...)
EXPIRED: Final = "EXPIRED"
REJECTED: Final = "REJECTED"  # the carrier's permanent error, or refused by the router
FAILED: Final = "FAILED"  # the router gave up after transient failures
UNKNOWN: Final = "UNKNOWN"  # in doubt, no receipt, or an UNKNOWN receipt

#: Every status name.
ALL: Final = frozenset(
    {QUEUED, SENDING, SUBMITTED, DELIVERED, UNDELIVERABLE, EXPIRED, REJECTED, FAILED, UNKNOWN}
)

#: States that end a record. UNKNOWN is final too, but a later final receipt may settle it
#: (DESIGN.md): that exception is the correlator's rule, not a different kind of state.
FINAL: Final = frozenset({DELIVERED, UNDELIVERABLE, EXPIRED, REJECTED, FAILED, UNKNOWN})
