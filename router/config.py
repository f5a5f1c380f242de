"""Load and validate the TOML config file into the frozen objects of `router.config_schema`.

`load_config(path)` reads a file, `parse_config(text, base_dir=..., env=...)` reads text;
both return a `Config` or raise `ConfigError` listing *every* problem, one line each,
starting with the key path (``carriers[0].tps: must be > 0, got -5``). Strings may name
environment variables as ``${NAME}``; relative paths are relative to the config file's
folder. Unknown keys are refused at every level: a typo must not silently fall back to a
default on a production router.

Hot reload (diff old/new, keep the old config on error) lives in `router.reload`.
"""

from __future__ import annotations

import ipaddress
import os
import sys
import tomllib
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any, Final, NamedTuple

from router.config_carriers import read_carrier, valid_name
from router.config_fields import Problems, Table, expand_env
from router.config_routes import read_routes, sender_prefix
from router.config_schema import (
    DEFAULT_HELP_KEYWORDS,
    DEFAULT_METRICS,
    DEFAULT_OPT_IN_KEYWORDS,
    DEFAULT_OPT_OUT_KEYWORDS,
    DEFAULT_SOCKET,
    CarrierConfig,
    ComplianceConfig,
    Config,
    ConfigError,
    HealthConfig,
    LimitsConfig,
    MqttConfig,
    NumberLimit,
    ProgramConfig,
    RouteCarrier,
    RouteConfig,
    RouterConfig,
    defaults,
)

__all__ = [
    "CarrierConfig", "ComplianceConfig", "Config", "ConfigError", "HealthConfig", "LimitsConfig",
    "MqttConfig",
    "NumberLimit", "ProgramConfig", "RouteCarrier", "RouteConfig", "RouterConfig",
    "SocketAddress", "build_config", "check_config_main", "load_config", "parse_config",
    "parse_socket_url",
]

_SOCKET_FORMS: Final = "must be unix:///absolute/path or tcp://host:port"
_ROUTER: Final = defaults(RouterConfig)
_LIMITS: Final = defaults(LimitsConfig)


class SocketAddress(NamedTuple):
    """The internal socket: `kind` "unix" with `path`, or "tcp" with `host` and `port`."""

    kind: str
    path: str | None = None
    host: str | None = None
    port: int | None = None

    @property
    def loopback(self) -> bool:
        """True for a unix socket or a TCP socket on a loopback address."""
        if self.kind == "unix":
            return True
        return _is_loopback(self.host or "")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve anywhere


def _host_port(text: str) -> tuple[str, int]:
    """'host:port' or '[v6]:port' → (host, port). Raises ValueError."""
    host, sep, port_text = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(text)
    return host, int(port_text)


def parse_socket_url(url: str) -> SocketAddress:
    """`unix:///path` or `tcp://host:port` → SocketAddress. Raises ValueError otherwise."""
    if url.startswith("unix://"):
        path = url[len("unix://"):]
        if not path.startswith("/") or path == "/":
            raise ValueError(url)
        return SocketAddress("unix", path=path)
    if url.startswith("tcp://"):
        host, port = _host_port(url[len("tcp://"):])
        return SocketAddress("tcp", host=host, port=port)
    raise ValueError(url)


def _read_router(t: Table | None, base_dir: Path) -> RouterConfig:
    if t is None:
        return RouterConfig(state_dir=_resolve(base_dir, str(_ROUTER["state_dir"])))
    socket = t.string("socket", DEFAULT_SOCKET)
    address = None
    try:
        address = parse_socket_url(socket)
    except ValueError:
        t.problem("socket", f'{_SOCKET_FORMS}, got "{socket}"')
    metrics = t.string("metrics", DEFAULT_METRICS) or None
    if metrics is not None:
        try:
            _host_port(metrics)
        except ValueError:
            t.problem("metrics", f'must be host:port (or "" for none), got "{metrics}"')
    token = t.string("token", None) or None
    if address is not None and not address.loopback and token is None:
        t.problem("token", f"is required when router.socket listens beyond loopback ({socket})")
    config = RouterConfig(
        socket=socket,
        state_dir=_resolve(base_dir, t.string("state_dir", str(_ROUTER["state_dir"]))),
        metrics=metrics,
        token=token,
        default_validity_s=t.integer("default_validity_s", _ROUTER["default_validity_s"], low=1),
        max_segments=t.integer("max_segments", _ROUTER["max_segments"], low=1, high=255),
        queue_high_water=t.integer("queue_high_water", _ROUTER["queue_high_water"], low=1),
        mdr_retention_days=t.integer("mdr_retention_days", _ROUTER["mdr_retention_days"], low=1),
    )
    t.finish()
    return config


def _resolve(base_dir: Path, value: str) -> Path:
    return Path(os.path.normpath(base_dir.absolute() / value))


def _read_mqtt(t: Table | None) -> MqttConfig | None:
    if t is None:
        return None
    url = t.string("url")
    if url is not None:
        scheme, sep, rest = url.partition("://")
        if scheme not in ("mqtt", "mqtts") or not sep or not rest.rpartition("@")[2].strip("/"):
            t.problem("url", f'must be mqtt://host[:port] or mqtts://host[:port], got "{url}"')
    prefix = t.string("topic_prefix", "smpp-router")
    if not prefix or any(c in prefix for c in "#+") or prefix.startswith("/") or prefix.endswith("/"):
        t.problem("topic_prefix", f'must be a topic without wildcards or outer slashes, got "{prefix}"')
    t.finish()
    return MqttConfig(url=url or "", topic_prefix=prefix)


def _keywords(t: Table, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
    def check(path: str, word: str) -> str | None:
        if not word.strip() or any(c.isspace() for c in word.strip()):
            problems.add(path, f'must be one word, got "{word}"')
            return None
        return word.strip().upper()

    problems = t.problems
    return tuple(t.strings(key, default, check) or ())


def _read_compliance(t: Table | None) -> ComplianceConfig:
    if t is None:
        return ComplianceConfig()
    out = _keywords(t, "opt_out_keywords", DEFAULT_OPT_OUT_KEYWORDS)
    opt_in = _keywords(t, "opt_in_keywords", DEFAULT_OPT_IN_KEYWORDS)
    help_words = _keywords(t, "help_keywords", DEFAULT_HELP_KEYWORDS)
    for key, words in (("opt_in_keywords", opt_in), ("help_keywords", help_words)):
        for word in words:
            if word in out or (key == "help_keywords" and word in opt_in):
                t.problem(key, f'"{word}" is already a keyword of another kind')
    programs = _read_programs(t, out, opt_in)
    t.finish()
    return ComplianceConfig(out, opt_in, help_words, programs)


def _read_program(p: Table, stop: str, start: str) -> ProgramConfig:
    """One [[compliance.programs]] entry; replies left out name the program."""
    name = valid_name(p, "name", p.string("name"))
    senders = p.strings("senders", check=partial(sender_prefix, p.problems)) or ()
    if not senders and "senders" in p.data:
        p.problem("senders", "must name at least one sender")
    label = name or "this program"
    program = ProgramConfig(
        name=name or "",
        senders=senders,
        opt_out_reply=p.string("opt_out_reply", f"{label}: you are unsubscribed and will get "
                                                f"no more messages. Reply {start} to resubscribe."),
        opt_in_reply=p.string("opt_in_reply", f"{label}: you are subscribed again. "
                                              f"Reply {stop} to unsubscribe."),
        help_reply=p.string("help_reply", f"{label}: reply {stop} to unsubscribe. "
                                          "Msg&data rates may apply."),
    )
    p.finish()
    return program


def _read_programs(
    t: Table, opt_out: tuple[str, ...], opt_in: tuple[str, ...]
) -> tuple[ProgramConfig, ...]:
    """The programs; a name used twice, or a sender in two programs, is a problem."""
    stop, start = (opt_out or ("STOP",))[0], (opt_in or ("START",))[0]
    programs: list[ProgramConfig] = []
    sender_owner: dict[str, str] = {}
    for p in t.tables("programs"):
        program = _read_program(p, stop, start)
        if any(program.name == other.name for other in programs):
            p.problem("name", f'duplicate program "{program.name}"')
        for sender in program.senders:
            owner = sender_owner.setdefault(sender, program.name)
            if owner != program.name:
                p.problem("senders", f'"{sender}" is already a sender of program "{owner}"')
        programs.append(program)
    return tuple(programs)


def _read_limits(t: Table | None) -> LimitsConfig:
    if t is None:
        return LimitsConfig()
    burst = t.integer("burst", _LIMITS["burst"], low=1)
    numbers = []
    for n in t.tables("numbers"):
        match = n.string("match")
        if match is not None:
            match = sender_prefix(n.problems, n.key("match"), match)
        numbers.append(NumberLimit(match or "", n.number("mps", positive=True) or 1.0,
                                   n.integer("burst", burst, low=1)))
        n.finish()
    limits = LimitsConfig(
        default_mps=t.number("default_mps", _LIMITS["default_mps"], positive=True),
        burst=burst,
        destination_mps=t.number("destination_mps", _LIMITS["destination_mps"], low=0),
        numbers=tuple(numbers),
    )
    t.finish()
    return limits


def _read_carriers(root: Table, base_dir: Path) -> tuple[CarrierConfig, ...]:
    carriers: list[CarrierConfig] = []
    first_index: dict[str, int] = {}
    tables = root.tables("carriers")
    if not tables and root.data.get("carriers", []) == []:
        root.problem("carriers", "at least one [[carriers]] entry is required")
    for index, t in enumerate(tables):
        name = t.data.get("name")
        if isinstance(name, str) and name in first_index:
            t.problem("name", f'duplicate carrier "{name}" (also carriers[{first_index[name]}])')
        elif isinstance(name, str):
            first_index[name] = index
        carrier = read_carrier(t, base_dir)
        if carrier is not None:
            carriers.append(carrier)
    return tuple(carriers)


def parse_config(text: str, *, base_dir: Path, env: Mapping[str, str],
                 path: Path | None = None) -> Config:
    """The Config described by TOML `text`; relative paths are relative to `base_dir`.

    `path` only names the source (in `Config.path` and in a TOML syntax error).
    Raises ConfigError with every problem found.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path or 'config'}: invalid TOML: {exc}"]) from None
    return build_config(data, base_dir=base_dir, env=env, path=path)


def build_config(data: Mapping[str, Any], *, base_dir: Path, env: Mapping[str, str],
                 path: Path | None = None) -> Config:
    """The Config described by already parsed TOML `data` (what tomllib returns).

    Raises ConfigError with every problem found.
    """
    problems = Problems()
    root = Table(expand_env(dict(data), "", env, problems), "", problems)
    router = _read_router(root.table("router"), base_dir)
    mqtt = _read_mqtt(root.table("mqtt"))
    carriers = _read_carriers(root, base_dir)
    raw_carriers = root.raw("carriers")
    # Routes are checked against every name written, so a carrier with a problem of its
    # own does not also make each route naming it "unknown".
    known = {c["name"] for c in raw_carriers if isinstance(c, dict) and isinstance(c.get("name"), str)} \
        if isinstance(raw_carriers, list) else set()
    routes = read_routes(root.tables("routes"), root, known)
    compliance = _read_compliance(root.table("compliance"))
    limits = _read_limits(root.table("limits"))
    root.finish()
    if problems:
        raise ConfigError(problems.items)
    return Config(router, mqtt, carriers, routes, compliance, limits, path)


def load_config(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Config:
    """The Config in the TOML file at `path`; `env` defaults to os.environ.

    Raises ConfigError (also when the file cannot be read).
    """
    file = Path(path).absolute()
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{file}: config file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError([f"{file}: cannot read the config file ({reason})"]) from None
    return parse_config(text, base_dir=file.parent, env=os.environ if env is None else env, path=file)


def check_config_main(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> int:
    """`smpp-router check-config`: 0 and a summary on stdout, or 1 and one problem per line on stderr."""
    try:
        config = load_config(path, env)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    n_carriers, n_routes = len(config.carriers), len(config.routes)
    print(f"ok: {n_carriers} carrier{'s' * (n_carriers != 1)}, {n_routes} route{'s' * (n_routes != 1)}")
    return 0

