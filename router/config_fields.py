"""Typed reading of parsed TOML tables, collecting every problem instead of stopping.

A `Table` wraps one TOML table and its key path (``carriers[0].health``). Its getters
check the type and range of one key, record a problem naming the key when it is wrong and
return the default so that reading goes on: a config with five mistakes reports five
lines, not the first one. `Table.finish()` reports the keys nobody asked for, which is how
typos are refused. `expand_env` replaces ``${NAME}`` in every string value beforehand.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Mapping
from typing import Any, Final, TypeVar

T = TypeVar("T")

#: Marks a key without a default: absent → "is required".
REQUIRED: Final[Any] = object()

_ENV_REF: Final = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

_TYPE_NAMES: Final = {
    bool: "boolean",
    int: "integer",
    float: "float",
    str: "string",
    list: "array",
    dict: "table",
}


class Problems:
    """The problems found so far, each one line starting with its key path.

    One problem per key unless `again` says otherwise: a missing ${VAR} in a password
    should not also be reported as a password of the wrong length.
    """

    __slots__ = ("_paths", "items")

    def __init__(self) -> None:
        self.items: list[str] = []
        self._paths: set[str] = set()

    def add(self, path: str, message: str, *, again: bool = False) -> None:
        if path in self._paths and not again:
            return
        self._paths.add(path)
        self.items.append(f"{path}: {message}")

    def __bool__(self) -> bool:
        return bool(self.items)


def describe(value: object) -> str:
    """A value as a problem message shows it: `"abc" (string)`, `true (boolean)`."""
    kind = _TYPE_NAMES.get(type(value), type(value).__name__)
    if isinstance(value, bool):
        shown = "true" if value else "false"
    elif isinstance(value, str):
        shown = f'"{value}"'
    elif isinstance(value, (list, dict)):
        return kind
    else:
        shown = str(value)
    return f"{shown} ({kind})"


def join_path(parent: str, key: str) -> str:
    return f"{parent}.{key}" if parent else key


def expand_env(value: Any, path: str, env: Mapping[str, str], problems: Problems) -> Any:
    """`value` with ``${NAME}`` in every string replaced from `env`, recursively.

    A missing variable is a problem naming the key and the variable; the reference is
    then left as written so that reading can go on.
    """
    if isinstance(value, str):
        if "${" not in value:
            return value

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in env:
                return env[name]
            problems.add(path, f"environment variable {name} is not set")
            return match.group(0)

        return _ENV_REF.sub(substitute, value)
    if isinstance(value, dict):
        return {k: expand_env(v, join_path(path, k), env, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, f"{path}[{i}]", env, problems) for i, v in enumerate(value)]
    return value


class Table:
    """One TOML table being read; every getter marks its key as known."""

    __slots__ = ("_seen", "data", "path", "problems")

    def __init__(self, data: Mapping[str, Any], path: str, problems: Problems) -> None:
        self.data = data
        self.path = path
        self.problems = problems
        self._seen: set[str] = set()

    def key(self, name: str) -> str:
        return join_path(self.path, name)

    def problem(self, name: str, message: str, *, again: bool = False) -> None:
        self.problems.add(self.key(name), message, again=again)

    def raw(self, name: str, default: Any = None) -> Any:
        """The value as parsed, unchecked (None or `default` when absent)."""
        self._seen.add(name)
        return self.data.get(name, default)

    def _typed(self, name: str, types: tuple[type, ...], what: str, default: Any) -> Any:
        self._seen.add(name)
        if name not in self.data:
            if default is REQUIRED:
                self.problem(name, "is required")
                return None
            return default
        value = self.data[name]
        # bool is an int subclass in Python; in a config file true is never a number.
        if isinstance(value, bool) and bool not in types or not isinstance(value, types):
            self.problem(name, f"must be {what}, got {describe(value)}")
            return None if default is REQUIRED else default
        return value

    def string(self, name: str, default: Any = REQUIRED) -> Any:
        return self._typed(name, (str,), "a string", default)

    def boolean(self, name: str, default: Any = REQUIRED) -> Any:
        return self._typed(name, (bool,), "true or false", default)

    def integer(self, name: str, default: Any = REQUIRED, *, low: int | None = None,
                high: int | None = None) -> Any:
        """An int within [low, high]; out of range → problem, `default` returned."""
        value = self._typed(name, (int,), "an integer", default)
        if value is None:
            return None
        return self._in_range(name, value, default, low, high)

    def number(self, name: str, default: Any = REQUIRED, *, positive: bool = False,
               low: float | None = None, high: float | None = None) -> Any:
        """A finite int or float, returned as float; `positive` means > 0."""
        value = self._typed(name, (int, float), "a number", default)
        if value is None:
            return None
        if not math.isfinite(value):
            self.problem(name, f"must be a finite number, got {value}")
            return None if default is REQUIRED else default
        if positive and value <= 0:
            self.problem(name, f"must be > 0, got {value}")
            return None if default is REQUIRED else default
        checked = self._in_range(name, value, default, low, high)
        return None if checked is None else float(checked)

    def _in_range(self, name: str, value: Any, default: Any, low: Any, high: Any) -> Any:
        if low is not None and value < low:
            self.problem(name, f"must be >= {low}, got {value}")
        elif high is not None and value > high:
            self.problem(name, f"must be <= {high}, got {value}")
        else:
            return value
        return None if default is REQUIRED else default

    def choice(self, name: str, allowed: Collection[str], default: Any = REQUIRED) -> Any:
        """One of `allowed`; anything else → problem listing the allowed values."""
        value = self.string(name, default)
        if value is None or value in allowed:
            return value
        self.problem(name, f"must be one of {', '.join(allowed)}; got \"{value}\"")
        return None if default is REQUIRED else default

    def strings(self, name: str, default: Any = REQUIRED,
                check: Callable[[str, str], str | None] | None = None) -> Any:
        """A list of strings as a tuple; `check(path, item)` returns the cleaned item or None."""
        value = self._typed(name, (list,), "an array of strings", default)
        if not isinstance(value, list):
            return value  # absent (the default or None), or a problem already recorded
        items = []
        for i, item in enumerate(value):
            path = f"{self.key(name)}[{i}]"
            if not isinstance(item, str):
                self.problems.add(path, f"must be a string, got {describe(item)}")
            elif check is None:
                items.append(item)
            elif (cleaned := check(path, item)) is not None:
                items.append(cleaned)
        return tuple(items)

    def table(self, name: str) -> Table | None:
        """The sub-table `name`, or None when absent or not a table (a problem then)."""
        value = self._typed(name, (dict,), "a table", None)
        return None if value is None else Table(value, self.key(name), self.problems)

    def tables(self, name: str) -> list[Table]:
        """The array of tables `name` (absent → empty), each with its indexed path."""
        value = self._typed(name, (list,), "an array of tables", [])
        tables = []
        for i, item in enumerate(value):
            path = f"{self.key(name)}[{i}]"
            if isinstance(item, dict):
                tables.append(Table(item, path, self.problems))
            else:
                self.problems.add(path, f"must be a table, got {describe(item)}")
        return tables

    def finish(self) -> None:
        """Report every key of the table that no getter asked for."""
        for name in self.data:
            if name not in self._seen:
                self.problem(name, "unknown key")
