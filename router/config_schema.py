"""The typed, immutable configuration objects and their defaults.

Attribute names are the TOML keys exactly (see the config section of DESIGN.md); the
parser in `router.config` builds these objects and nothing else should. Every object is a
frozen, slotted dataclass and every mapping a read-only `MappingProxyType`, so a `Config`
handed to the running pipeline cannot be changed under it: a reload builds a new one.

Per-carrier tables (`status_map`, `status_classes`, `ton_npi`) hold the carrier's
*overrides* only; the default tables belong to the modules that apply them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

_EMPTY: Final[Mapping[Any, Any]] = MappingProxyType({})


def _empty() -> Mapping[Any, Any]:
    """The shared read-only empty mapping (a dataclass default must come from a factory)."""
    return _EMPTY


# --- allowed values of the enumerated keys ----------------------------------------------

BIND_TYPES: Final = ("transmitter", "receiver", "transceiver")
TRANSMITTING_BINDS: Final = ("transmitter", "transceiver")
MESSAGE_ID_FORMATS: Final = ("auto", "same", "hex", "dec")
DC0_CHARSETS: Final = ("gsm7", "gsm7_packed", "latin1", "ascii")
CONCAT_MODES: Final = ("udh8", "udh16", "sar", "payload")
#: MDR statuses a receipt word may map to; SUBMITTED means "intermediate, keep waiting".
RECEIPT_STATUSES: Final = ("DELIVERED", "EXPIRED", "UNDELIVERABLE", "REJECTED", "UNKNOWN", "SUBMITTED")
STATUS_CLASSES: Final = ("transient", "permanent")
SENDER_KINDS: Final = ("e164", "short_code", "alphanumeric")
#: SMPP 3.4 §5.2.5 addr_ton: 0 unknown .. 6 abbreviated.
VALID_TON: Final = frozenset(range(7))
#: SMPP 3.4 §5.2.6 addr_npi: unknown, ISDN, data, telex, land mobile, national, private,
#: ERMES, Internet (IP), WAP client id.
VALID_NPI: Final = frozenset((0, 1, 3, 4, 6, 8, 9, 10, 14, 18))

DEFAULT_SOCKET: Final = "unix:///tmp/smpp-router.sock"
DEFAULT_METRICS: Final = "127.0.0.1:9464"
DEFAULT_OPT_OUT_KEYWORDS: Final = ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT")
DEFAULT_OPT_IN_KEYWORDS: Final = ("START", "UNSTOP")
DEFAULT_HELP_KEYWORDS: Final = ("HELP", "INFO")


class ConfigError(Exception):
    """A configuration that cannot be used; `problems` has one line per problem.

    Each problem starts with the key path it is about, e.g.
    ``routes[3].carriers[1].name: no carrier "globx"``.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))

    def __str__(self) -> str:
        return "\n".join(self.problems)


@dataclass(frozen=True, slots=True)
class RouterConfig:
    """`[router]`: the daemon itself."""

    socket: str = DEFAULT_SOCKET
    state_dir: Path = Path("var")
    #: host:port of the Prometheus endpoint; None when set to "" (no endpoint).
    metrics: str | None = DEFAULT_METRICS
    token: str | None = field(default=None, repr=False)
    default_validity_s: int = 86400
    max_segments: int = 10
    queue_high_water: int = 1_000_000
    mdr_retention_days: int = 30


@dataclass(frozen=True, slots=True, repr=False)
class MqttConfig:
    """`[mqtt]`: event publishing; absent means nothing is published."""

    url: str
    topic_prefix: str = "smpp-router"

    def __repr__(self) -> str:
        # mqtt://user:secret@host: the password must not reach a log line.
        scheme, sep, rest = self.url.partition("://")
        userinfo, at, host = rest.rpartition("@")
        shown = f"{scheme}{sep}{userinfo.partition(':')[0]}:***@{host}" if at else self.url
        return f"MqttConfig(url={shown!r}, topic_prefix={self.topic_prefix!r})"


@dataclass(frozen=True, slots=True)
class HealthConfig:
    """A carrier's circuit breaker: open past `error_rate` over `window_s` seconds."""

    error_rate: float = 0.5
    window_s: float = 30.0
    min_samples: int = 20
    cooldown_s: float = 15.0
    probes: int = 3


@dataclass(frozen=True, slots=True)
class CarrierConfig:
    """One `[[carriers]]` entry: how to bind to a carrier and how it behaves."""

    name: str
    host: str
    port: int
    system_id: str
    password: str = field(default="", repr=False)
    system_type: str = ""
    #: bind type → number of binds; only types with a count > 0 are present.
    binds: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({"transceiver": 1}))
    tps: float = 100.0
    window: int = 64
    tls: bool = False
    message_id_format: str = "auto"
    dc0_charset: str = "gsm7"
    concat: str = "udh8"
    rate_deck: Path | None = None
    #: destination prefix → cost per segment, from `rate_deck` (empty without one).
    rates: Mapping[str, float] = field(default_factory=_empty, repr=False)
    retry_in_doubt: bool = False
    receipt_timeout_s: float = 172800.0
    receipts_on_esm_class_zero: bool = False
    receipt_first_part_only: bool = False
    #: receipt stat word (upper case) → MDR status; overrides of the default table.
    status_map: Mapping[str, str] = field(default_factory=_empty)
    #: command_status → "transient" | "permanent"; overrides of the default table.
    status_classes: Mapping[int, str] = field(default_factory=_empty)
    throttle_failover_s: float = 30.0
    #: sender kind (e164 | short_code | alphanumeric) → (ton, npi); overrides only.
    ton_npi: Mapping[str, tuple[int, int]] = field(default_factory=_empty)
    enquire_link_s: float = 30.0
    response_timeout_s: float = 30.0
    bind_timeout_s: float = 10.0
    reconnect_max_s: float = 60.0
    stale_session_s: float = 90.0
    max_pdu_bytes: int = 73728
    health: HealthConfig = field(default_factory=HealthConfig)


@dataclass(frozen=True, slots=True)
class RouteCarrier:
    """A carrier named by a route, with the route's own cost per segment if given."""

    name: str
    cost: float | None = None


@dataclass(frozen=True, slots=True)
class RouteConfig:
    """One `[[routes]]` entry; `prefix` "" is the default route."""

    prefix: str
    carriers: tuple[RouteCarrier, ...]
    sources: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=_empty)


@dataclass(frozen=True, slots=True)
class ProgramConfig:
    """Sender numbers that share one opt-out list, and the auto-replies they send."""

    name: str
    senders: tuple[str, ...]
    opt_out_reply: str
    opt_in_reply: str
    help_reply: str


@dataclass(frozen=True, slots=True)
class ComplianceConfig:
    """`[compliance]`: opt-out keywords (stored upper case) and programs."""

    opt_out_keywords: tuple[str, ...] = DEFAULT_OPT_OUT_KEYWORDS
    opt_in_keywords: tuple[str, ...] = DEFAULT_OPT_IN_KEYWORDS
    help_keywords: tuple[str, ...] = DEFAULT_HELP_KEYWORDS
    programs: tuple[ProgramConfig, ...] = ()

    def program_for(self, sender: str) -> ProgramConfig | None:
        """The program `sender` belongs to (a leading "+" ignored), or None."""
        sender = sender.removeprefix("+")
        for program in self.programs:
            if sender in program.senders:
                return program
        return None


@dataclass(frozen=True, slots=True)
class NumberLimit:
    """A `[[limits.numbers]]` entry: the limit of source numbers starting with `match`."""

    match: str
    mps: float
    burst: int


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    """`[limits]`: throughput per source number and per destination, in segments/s."""

    default_mps: float = 1.0
    burst: int = 1
    #: 0 means no per-destination limit.
    destination_mps: float = 0.0
    numbers: tuple[NumberLimit, ...] = ()

    def for_source(self, number: str) -> tuple[float, int]:
        """(mps, burst) for a source number: the first matching prefix wins, else the default.

        A leading "+" on `number` is ignored.
        """
        if self.numbers:
            if number[:1] == "+":
                number = number[1:]
            for limit in self.numbers:
                if number.startswith(limit.match):
                    return limit.mps, limit.burst
        return self.default_mps, self.burst


@dataclass(frozen=True, slots=True)
class Config:
    """The whole configuration; `path` is the file it came from (None for parsed text)."""

    router: RouterConfig
    mqtt: MqttConfig | None
    carriers: tuple[CarrierConfig, ...]
    routes: tuple[RouteConfig, ...]
    compliance: ComplianceConfig
    limits: LimitsConfig
    path: Path | None = None
    #: name → carrier, built once: `carrier()` is called per message.
    _by_name: Mapping[str, CarrierConfig] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # A frozen dataclass sets its own fields through object.__setattr__ as well.
        object.__setattr__(self, "_by_name", MappingProxyType({c.name: c for c in self.carriers}))

    def carrier(self, name: str) -> CarrierConfig:
        """The carrier called `name`. Raises KeyError if there is none."""
        return self._by_name[name]


def defaults(cls: type) -> dict[str, Any]:
    """Field name → default value of a config dataclass (fields without one are left out).

    The parser reads its defaults from here, so the documented default lives in one place.
    """
    result: dict[str, Any] = {}
    for f in fields(cls):
        if f.default is not MISSING:
            result[f.name] = f.default
        elif f.default_factory is not MISSING:
            result[f.name] = f.default_factory()
    return result
