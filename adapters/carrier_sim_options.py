"""Options of the simulated carrier: one validated dataclass, and its command-line flags.

Every fault the simulator can inject is an option here; ``CarrierSim.set_options``
replaces them at run time through ``dataclasses.replace``, so validation lives
in one place (``__post_init__``) and names the field it refuses.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Sequence

from adapters.carrier_sim_receipts import ID_FORMATS, RECEIPT_ID_FORMATS, RECEIPT_STYLES
from adapters.smpp.constants import CommandStatus

__all__ = ["SimOptions", "add_arguments", "options_from_args", "parse_status"]


def parse_status(value: str | int) -> int:
    """A command_status from a name (``ESME_RINVDSTADR``) or a number (``11``, ``0x0401``).

    Raises ValueError naming reject_status when it is neither.
    """
    if isinstance(value, int):
        code = value
    else:
        text = value.strip()
        try:
            code = CommandStatus[text.upper()] if text.upper().startswith("ESME_") else int(text, 0)
        except (KeyError, ValueError):
            raise ValueError(f"reject_status: not a command_status name or number: {value!r}") from None
    if not 0 < code <= 0xFFFFFFFF:
        raise ValueError(f"reject_status: must be a non-zero 32-bit status, got {value!r}")
    return int(code)


def _prefixes(name: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [p for p in value.split(",") if p.strip()]
    items = tuple(str(p).strip().lstrip("+") for p in value)  # type: ignore[attr-defined]
    for p in items:
        if not p.isdigit():
            raise ValueError(f"{name}: prefixes are digits, got {p!r}")
    return items


@dataclasses.dataclass(frozen=True)
class SimOptions:
    """How the simulated carrier behaves; defaults are a well-behaved carrier.

    ``None`` turns an "after N" fault off; rates are probabilities per submit.
    """

    host: str = "127.0.0.1"
    #: 0 picks a free port (see ``CarrierSim.port``).
    port: int = 0
    #: None accepts any system_id / password; otherwise ESME_RINVSYSID / ESME_RINVPASWD.
    system_id: str | None = None
    password: str | None = None
    #: The system_id in our bind responses.
    smsc_id: str = "carrier-sim"
    id_format: str = "dec"
    receipt_id_format: str = "same"
    first_id: int = 1
    dlr_delay_ms: float = 0.0
    receipt_style: str = "spec"
    #: Destinations (prefixes) whose receipts say UNDELIV err:001 instead of DELIVRD.
    undeliverable_numbers: tuple[str, ...] = ()
    #: Transient failures: ESME_RSYSERR.
    fail_rate: float = 0.0
    #: Permanent rejects with ``reject_status``.
    reject_rate: float = 0.0
    reject_status: int = CommandStatus.ESME_RINVDSTADR
    #: Destinations (prefixes) refused with ESME_RINVDSTADR.
    reject_numbers: tuple[str, ...] = ()
    #: Accepted submits per system_id over a sliding second; above it ESME_RTHROTTLED. 0: off.
    throttle_tps: int = 0
    #: Per connection: answer the first N PDUs, then nothing (the socket stays open).
    stall_after: int | None = None
    #: Per connection: answer the first N PDUs, then close the socket.
    drop_after: int | None = None
    #: The receipt (deliver_sm) goes out before the submit_sm_resp, which waits for it.
    receipts_first: bool = False
    #: Our own enquire_link after this many idle seconds on a bound session. 0: off.
    enquire_link_s: float = 0.0
    #: Answer this many first bind attempts (over the simulator's life) with ESME_RALYBND.
    alybnd_first: int = 0
    #: Submits a client may have unanswered per connection; more is a window violation. 0: off.
    window: int = 0
    #: Our deliver_sm window per bind, and how long we wait for a deliver_sm_resp.
    receipt_window: int = 64
    response_timeout_s: float = 30.0
    #: Receipts held for a system_id with no receiving bind (beyond it: dropped, counted).
    max_pending_receipts: int = 1_000_000
    #: Submits kept in ``CarrierSim.received`` (the log file gets all of them). 0: none.
    record_limit: int = 100_000
    log: str | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        """Raises ValueError naming the field whose value is out of range."""
        choices = {"id_format": ID_FORMATS, "receipt_id_format": RECEIPT_ID_FORMATS, "receipt_style": RECEIPT_STYLES}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}: expected one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        if self.id_format == "uuid" and self.receipt_id_format != "same":
            raise ValueError("receipt_id_format: a uuid id has no dec/hex spelling; use same")
        for name in ("fail_rate", "reject_rate"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}: must be between 0 and 1, got {value!r}")
        for name in ("dlr_delay_ms", "enquire_link_s"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{name}: must be a finite number >= 0, got {value!r}")
        if not isinstance(self.response_timeout_s, (int, float)) or not self.response_timeout_s > 0:
            raise ValueError(f"response_timeout_s: must be > 0, got {self.response_timeout_s!r}")
        for name in ("port", "throttle_tps", "alybnd_first", "window", "max_pending_receipts", "record_limit"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name}: must be an int >= 0, got {value!r}")
        for name in ("first_id", "receipt_window"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: must be an int >= 1, got {value!r}")
        for name in ("stall_after", "drop_after"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 0):
                raise ValueError(f"{name}: must be an int >= 0 or None, got {value!r}")
        if (self.system_id is None) != (self.password is None):
            raise ValueError("password: give system_id and password together, or neither")
        object.__setattr__(self, "reject_status", parse_status(self.reject_status))
        object.__setattr__(self, "reject_numbers", _prefixes("reject_numbers", self.reject_numbers))
        object.__setattr__(self, "undeliverable_numbers", _prefixes("undeliverable_numbers", self.undeliverable_numbers))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``carrier-sim`` flags to ``parser`` (destinations match SimOptions fields)."""
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to listen on [127.0.0.1]")
    add("--port", type=int, required=True, help="port to listen on; 0 picks a free one (printed)")
    add("--system-id", help="the only system_id accepted (default: any)")
    add("--password", help="its password (ESME_RINVPASWD otherwise)")
    add("--smsc-id", default="carrier-sim", help="system_id in our bind responses")
    add("--id-format", choices=ID_FORMATS, default="dec", help="submit_sm_resp message ids [dec]")
    add("--receipt-id-format", choices=RECEIPT_ID_FORMATS, default="same", help="the id spelling in receipts")
    add("--first-id", type=int, default=1, help="the first message id [1]")
    add("--dlr-delay-ms", type=float, default=0.0, help="receipt delay after the submit [0]")
    add("--receipt-style", choices=RECEIPT_STYLES, default="spec", help="receipt form [spec]")
    add("--undeliverable-numbers", default="", metavar="PREFIX,...", help="receipts say UNDELIV for these")
    add("--fail-rate", type=float, default=0.0, help="share of submits answered ESME_RSYSERR")
    add("--reject-rate", type=float, default=0.0, help="share of submits rejected permanently")
    add("--reject-status", default="ESME_RINVDSTADR", help="status of those rejects (name or number)")
    add("--reject-numbers", default="", metavar="PREFIX,...", help="destinations refused ESME_RINVDSTADR")
    add("--throttle-tps", type=int, default=0, help="ESME_RTHROTTLED above N submits/s per system_id")
    add("--stall-after", type=int, default=None, metavar="N", help="per connection: answer N PDUs, then none")
    add("--drop-after", type=int, default=None, metavar="N", help="per connection: answer N PDUs, then close")
    add("--receipts-first", action="store_true", help="send each receipt before its submit_sm_resp")
    add("--enquire-link-s", type=float, default=0.0, help="our enquire_link after S idle seconds [off]")
    add("--alybnd-first", type=int, default=0, metavar="N", help="answer the first N binds ESME_RALYBND")
    add("--window", type=int, default=0, help="count clients exceeding N unanswered submits [off]")
    add("--receipt-window", type=int, default=64, help="our deliver_sm window per bind [64]")
    add("--record-limit", type=int, default=100_000, help="submits kept in memory [100000]")
    add("--log", metavar="FILE", help="one JSON line per submit received")
    add("--seed", type=int, help="random seed for the fault rates")


def options_from_args(args: argparse.Namespace) -> SimOptions:
    """SimOptions from parsed flags. Raises ValueError naming the field that is wrong."""
    names: Sequence[str] = [f.name for f in dataclasses.fields(SimOptions)]
    return SimOptions(**{name: getattr(args, name) for name in names if hasattr(args, name)})
