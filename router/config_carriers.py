"""Reading `[[carriers]]` entries: bind credentials, profile keys, rate decks, health.

Lengths of the bind credentials are checked here, against the SMPP 3.4 limits, so that
a carrier that could never bind is refused at load time and not by a bind_resp at 3 a.m.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from router.config_fields import REQUIRED, Table
from router.config_schema import (
    BIND_TYPES,
    CONCAT_MODES,
    DC0_CHARSETS,
    MESSAGE_ID_FORMATS,
    RECEIPT_STATUSES,
    SENDER_KINDS,
    STATUS_CLASSES,
    TRANSMITTING_BINDS,
    VALID_NPI,
    VALID_TON,
    CarrierConfig,
    HealthConfig,
    defaults,
)
from router.ratedeck import RateDeckError, load_rate_deck

NAME: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: SMPP 3.4 §4.1.1 bind_transmitter: system_id C-Octet String max 16, password max 9,
#: system_type max 13 (each including the terminating NUL).
MAX_SYSTEM_ID: Final = 15
MAX_PASSWORD: Final = 8
MAX_SYSTEM_TYPE: Final = 12
#: §3.2 command_length is 32 bits, but a PDU must hold a 64 KiB message_payload (§5.3.2.32)
#: and a peer must not make us buffer much more than that.
MIN_PDU_BYTES: Final = 1024
MAX_PDU_BYTES: Final = 16 * 1024 * 1024
#: More binds per carrier than this is a typo, not a plan.
MAX_BINDS_PER_TYPE: Final = 64

_D: Final = defaults(CarrierConfig)
_H: Final = defaults(HealthConfig)
#: Keys read alike: durations that must be > 0, true/false flags, enumerations.
_POSITIVE_SECONDS: Final = ("receipt_timeout_s", "throttle_failover_s", "enquire_link_s",
                            "response_timeout_s", "bind_timeout_s", "reconnect_max_s")
_FLAGS: Final = ("tls", "retry_in_doubt", "receipts_on_esm_class_zero", "receipt_first_part_only")
_CHOICES: Final = {"message_id_format": MESSAGE_ID_FORMATS, "dc0_charset": DC0_CHARSETS,
                   "concat": CONCAT_MODES}


def valid_name(t: Table, key: str, value: str | None) -> str | None:
    """`value` if it is a name made of [A-Za-z0-9_-] (metric labels, topics); else a problem."""
    if value is None:
        return None
    if NAME.fullmatch(value):
        return value
    t.problem(key, f'must match [A-Za-z0-9_-]+ (at most 64 characters), got "{value}"')
    return None


def _credential(t: Table, key: str, limit: int, default: Any = REQUIRED) -> str:
    value = t.string(key, default)
    if value is None:
        return ""
    if not value.isascii() or len(value) > limit:
        t.problem(key, f"must be at most {limit} ASCII characters (SMPP 3.4 §4.1.1), got {len(value)}")
    return str(value)


def read_carrier(t: Table, base_dir: Path) -> CarrierConfig | None:
    """The carrier described by table `t`, or None when it has problems (recorded in t)."""
    before = len(t.problems.items)
    values: dict[str, Any] = {
        "name": valid_name(t, "name", t.string("name")),
        "host": t.string("host"),
        "port": t.integer("port", low=1, high=65535),
        "system_id": _credential(t, "system_id", MAX_SYSTEM_ID),
        "password": _credential(t, "password", MAX_PASSWORD, ""),
        "system_type": _credential(t, "system_type", MAX_SYSTEM_TYPE, ""),
        "binds": _binds(t),
        "tps": t.number("tps", _D["tps"], positive=True),
        "window": t.integer("window", _D["window"], low=1, high=10_000),
        "max_pdu_bytes": t.integer("max_pdu_bytes", _D["max_pdu_bytes"],
                                   low=MIN_PDU_BYTES, high=MAX_PDU_BYTES),
        "stale_session_s": t.number("stale_session_s", _D["stale_session_s"], low=0),
        "status_map": _status_map(t),
        "status_classes": _status_classes(t),
        "ton_npi": _ton_npi(t),
        "health": _health(t.table("health")),
    }
    values.update({key: t.number(key, _D[key], positive=True) for key in _POSITIVE_SECONDS})
    values.update({key: t.boolean(key, _D[key]) for key in _FLAGS})
    values.update({key: t.choice(key, allowed, _D[key]) for key, allowed in _CHOICES.items()})
    if values["host"] == "":
        t.problem("host", "must not be empty")
    values["rate_deck"], values["rates"] = _rate_deck(t, base_dir)
    t.finish()
    if len(t.problems.items) > before:
        return None
    return CarrierConfig(**values)


def _binds(t: Table) -> Mapping[str, int]:
    sub = t.table("binds")
    if sub is None:
        return MappingProxyType({"transceiver": 1})
    counts = {kind: sub.integer(kind, 0, low=0, high=MAX_BINDS_PER_TYPE) for kind in BIND_TYPES}
    sub.finish()
    if not any(counts[kind] for kind in TRANSMITTING_BINDS):
        t.problem("binds", "needs at least one transmitter or transceiver bind")
    return MappingProxyType({kind: n for kind, n in counts.items() if n})


def _status_map(t: Table) -> Mapping[str, str]:
    sub = t.table("status_map")
    if sub is None:
        return MappingProxyType({})
    result: dict[str, str] = {}
    for word in sub.data:
        status = sub.string(word)
        if status is None:
            continue
        if status.upper() not in RECEIPT_STATUSES:
            sub.problem(word, f"must be one of {', '.join(RECEIPT_STATUSES)}; got \"{status}\"")
        elif not word.strip():
            sub.problem(word, "the receipt stat word must not be empty")
        else:
            result[word.strip().upper()] = status.upper()
    return MappingProxyType(result)


def _command_status(text: str) -> int | None:
    """'0x0401' or '1025' → 1025; anything else (or outside 1..0xFFFFFFFF) → None."""
    text = text.strip().lower()
    digits, base = (text[2:], 16) if text.startswith("0x") else (text, 10)
    # int() would also take "_" separators and inner signs: a status code has neither.
    if not digits.isascii() or not digits.isalnum():
        return None
    try:
        value = int(digits, base)
    except ValueError:
        return None
    return value if 0 < value <= 0xFFFFFFFF else None


def _status_classes(t: Table) -> Mapping[int, str]:
    sub = t.table("status_classes")
    if sub is None:
        return MappingProxyType({})
    result: dict[int, str] = {}
    for key in sub.data:
        code = _command_status(key)
        if code is None:
            sub.problem(key, "key must be a command_status from 1 to 0xFFFFFFFF, "
                             'like "0x0401" or "1025"')
        kind = sub.choice(key, STATUS_CLASSES)
        if code in result:
            sub.problem(key, f"command_status 0x{code:08X} is listed twice")
        elif code is not None and kind is not None:
            result[code] = kind
    return MappingProxyType(result)


def _ton_npi(t: Table) -> Mapping[str, tuple[int, int]]:
    sub = t.table("ton_npi")
    if sub is None:
        return MappingProxyType({})
    result: dict[str, tuple[int, int]] = {}
    for kind in SENDER_KINDS:
        pair = sub.raw(kind)
        if pair is None:
            continue
        ok = (isinstance(pair, list) and len(pair) == 2
              and all(type(n) is int for n in pair)
              and pair[0] in VALID_TON and pair[1] in VALID_NPI)
        if ok:
            result[kind] = (pair[0], pair[1])
        else:
            sub.problem(kind, "must be [ton, npi] with ton in 0..6 (SMPP 3.4 §5.2.5) and npi one of "
                        f"{', '.join(map(str, sorted(VALID_NPI)))} (§5.2.6)")
    sub.finish()
    return MappingProxyType(result)


def _health(sub: Table | None) -> HealthConfig:
    if sub is None:
        return HealthConfig()
    health = HealthConfig(
        error_rate=sub.number("error_rate", _H["error_rate"], positive=True, high=1.0),
        window_s=sub.number("window_s", _H["window_s"], positive=True),
        min_samples=sub.integer("min_samples", _H["min_samples"], low=1),
        cooldown_s=sub.number("cooldown_s", _H["cooldown_s"], positive=True),
        probes=sub.integer("probes", _H["probes"], low=1),
    )
    sub.finish()
    return health


def _rate_deck(t: Table, base_dir: Path) -> tuple[Path | None, Mapping[str, float]]:
    name = t.string("rate_deck", None)
    if not name:
        return None, MappingProxyType({})
    path = base_dir / name
    try:
        rates = load_rate_deck(path)
    except FileNotFoundError:
        t.problem("rate_deck", f"{name}: file not found ({path})")
    except UnicodeDecodeError:
        t.problem("rate_deck", f"{name}: not UTF-8 text")
    except OSError as exc:
        t.problem("rate_deck", f"{name}: cannot read ({exc.strerror or exc})")
    except RateDeckError as exc:
        for problem in exc.problems:
            t.problem("rate_deck", f"{name} {problem}", again=True)
    else:
        if not rates:
            t.problem("rate_deck", f"{name}: no rates in the file")
        return path, rates
    return path, MappingProxyType({})
