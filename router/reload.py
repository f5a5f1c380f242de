"""Hot reload: what changed between two configs, and a reloader that keeps the old one on error.

A reload (SIGHUP) must never take a working router down: `Reloader.reload()` parses the
file again and, if that fails, keeps serving the old `Config` and returns the problems.
When it succeeds, `diff_configs` tells the composition root what to do with the change:

- carriers added / removed: bind / unbind (drain) them;
- carriers_rebind: a bind parameter changed (host, port, credentials, bind counts, TLS),
  so their binds must be re-established;
- carriers_in_place: only live-tunable keys changed (tps, window, rates, receipt and
  profile settings), applied to the existing binds;
- routes / limits / compliance / mqtt: rebuild those parts from the new config;
- restart_required: keys whose new value only a restart applies (the socket, the store,
  the metrics endpoint); the rest of the reload still applies.

`ConfigDiff.summary()` is for the log line and lists key *names*, never values, so a
changed password shows as "password" and nothing more.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from router.config import load_config
from router.config_schema import CarrierConfig, Config, ConfigError, RouterConfig

#: Carrier keys whose change needs the carrier's binds to be re-established.
REBIND_KEYS: Final = frozenset({"host", "port", "system_id", "password", "system_type", "binds", "tls"})
#: [router] keys that only take effect after a restart.
RESTART_KEYS: Final = frozenset({"socket", "state_dir", "metrics"})

_CARRIER_KEYS: Final = tuple(f.name for f in fields(CarrierConfig))
_ROUTER_KEYS: Final = tuple(f.name for f in fields(RouterConfig))


@dataclass(frozen=True, slots=True)
class ConfigDiff:
    """The difference between a running config and a new one (see the module docstring)."""

    carriers_added: tuple[str, ...] = ()
    carriers_removed: tuple[str, ...] = ()
    carriers_rebind: tuple[str, ...] = ()
    carriers_in_place: tuple[str, ...] = ()
    #: carrier name → the keys that changed, for every rebind and in-place carrier.
    carrier_keys: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    routes_changed: bool = False
    limits_changed: bool = False
    compliance_changed: bool = False
    mqtt_changed: bool = False
    #: [router] keys that changed (bare names, e.g. "max_segments").
    router_changed: tuple[str, ...] = ()
    #: key paths that changed but only take effect after a restart, e.g. "router.socket".
    restart_required: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        """True when anything at all differs."""
        return bool(
            self.carriers_added or self.carriers_removed or self.carriers_rebind
            or self.carriers_in_place or self.routes_changed or self.limits_changed
            or self.compliance_changed or self.mqtt_changed or self.router_changed
        )

    def summary(self) -> dict[str, Any]:
        """A JSON-friendly dict for the reload log line: names of what changed, no values."""
        return {
            "changed": self.changed,
            "carriers_added": list(self.carriers_added),
            "carriers_removed": list(self.carriers_removed),
            "carriers_rebind": list(self.carriers_rebind),
            "carriers_in_place": list(self.carriers_in_place),
            "carrier_keys": {name: list(keys) for name, keys in self.carrier_keys.items()},
            "routes_changed": self.routes_changed,
            "limits_changed": self.limits_changed,
            "compliance_changed": self.compliance_changed,
            "mqtt_changed": self.mqtt_changed,
            "router_changed": list(self.router_changed),
            "restart_required": list(self.restart_required),
        }


def _changed_keys(old: object, new: object, keys: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(k for k in keys if getattr(old, k) != getattr(new, k))


def diff_configs(old: Config, new: Config) -> ConfigDiff:
    """What changed from `old` to `new`. Carrier names are listed in config order."""
    old_carriers = {c.name: c for c in old.carriers}
    new_carriers = {c.name: c for c in new.carriers}
    rebind: list[str] = []
    in_place: list[str] = []
    carrier_keys: dict[str, tuple[str, ...]] = {}
    for name, carrier in new_carriers.items():
        before = old_carriers.get(name)
        if before is None or before == carrier:
            continue
        keys = _changed_keys(before, carrier, _CARRIER_KEYS)
        carrier_keys[name] = keys
        (rebind if REBIND_KEYS.intersection(keys) else in_place).append(name)
    router_keys = _changed_keys(old.router, new.router, _ROUTER_KEYS)
    return ConfigDiff(
        carriers_added=tuple(n for n in new_carriers if n not in old_carriers),
        carriers_removed=tuple(n for n in old_carriers if n not in new_carriers),
        carriers_rebind=tuple(rebind),
        carriers_in_place=tuple(in_place),
        carrier_keys=MappingProxyType(carrier_keys),
        routes_changed=old.routes != new.routes,
        limits_changed=old.limits != new.limits,
        compliance_changed=old.compliance != new.compliance,
        mqtt_changed=old.mqtt != new.mqtt,
        router_changed=router_keys,
        restart_required=tuple(f"router.{k}" for k in router_keys if k in RESTART_KEYS),
    )


@dataclass(frozen=True, slots=True)
class ReloadResult:
    """The outcome of one reload: on error `config` is the old one and `diff` is None."""

    ok: bool
    config: Config
    diff: ConfigDiff | None
    problems: tuple[str, ...] = ()


class Reloader:
    """Holds the running Config and replaces it from its file on `reload()`.

    `counts` counts reload outcomes by result ("ok", "error") for the
    `config_reloads_total{result}` metric.
    """

    __slots__ = ("config", "counts", "env", "path")

    def __init__(self, path: str | os.PathLike[str], env: Mapping[str, str] | None = None,
                 *, config: Config | None = None) -> None:
        """Load `path` (unless the running `config` is given). Raises ConfigError."""
        self.path = Path(path)
        #: None means os.environ as it is at each reload.
        self.env = env
        self.config = config if config is not None else load_config(self.path, env)
        self.counts: dict[str, int] = {"ok": 0, "error": 0}

    def reload(self) -> ReloadResult:
        """Read the file again; never raises for a bad config (the old one stays)."""
        try:
            new = load_config(self.path, self.env)
        except ConfigError as exc:
            self.counts["error"] += 1
            return ReloadResult(False, self.config, None, tuple(exc.problems))
        diff = diff_configs(self.config, new)
        self.config = new
        self.counts["ok"] += 1
        return ReloadResult(True, new, diff)
