"""Reading `[[routes]]` entries and the number prefixes shared with limits and programs."""

from __future__ import annotations

from collections.abc import Collection
from functools import partial
from types import MappingProxyType
from typing import Any, Final

from router.config_fields import Problems, Table, describe
from router.config_schema import RouteCarrier, RouteConfig

#: An alphanumeric sender is at most 11 characters (GSM 03.40 TP-OA, 11 septets).
MAX_ALPHANUMERIC: Final = 11


def sender_prefix(problems: Problems, path: str, value: str) -> str | None:
    """A source number prefix ("+" dropped) or an alphanumeric sender; None after a problem."""
    text = value.strip()
    digits = text.removeprefix("+")
    if digits.isdigit() and digits.isascii():
        return digits
    # A letter is required: "1-800" is a mistyped number, not a sender name.
    if (len(text) <= MAX_ALPHANUMERIC and text.isprintable() and not text.startswith("+")
            and any(c.isalpha() for c in text)):
        return text
    problems.add(path, "must be digits (a number prefix) or an alphanumeric sender (a letter, "
                       f'at most {MAX_ALPHANUMERIC} characters), got "{value}"')
    return None


def _prefix(t: Table) -> str | None:
    prefix: str | None = t.string("prefix")
    if prefix is None:
        return None
    digits = prefix.strip().removeprefix("+")
    if digits == "" or digits.isdigit() and digits.isascii():
        return digits
    t.problem("prefix", f'must be digits ("" for the default route), got "{prefix}"')
    return None


def _route_carrier(
    item: Any, path: str, problems: Problems, known: Collection[str]
) -> RouteCarrier | None:
    """One element of a route's `carriers`: "name" or { name = "...", cost = 0.004 }."""
    if isinstance(item, str):
        name, cost, name_path = item, None, path
    elif isinstance(item, dict):
        entry = Table(item, path, problems)
        name = entry.string("name")
        cost = entry.number("cost", None, low=0)
        entry.finish()
        name_path = entry.key("name")
    else:
        problems.add(path, f"must be a carrier name or {{ name, cost }}, got {describe(item)}")
        return None
    if name is None:
        return None
    if name not in known:
        problems.add(name_path, f'no carrier "{name}"')
        return None
    return RouteCarrier(name, cost)


def _carriers(t: Table, known: Collection[str]) -> tuple[RouteCarrier, ...]:
    items = t.raw("carriers")
    if not isinstance(items, list) or not items:
        shown = "nothing" if items is None else describe(items)
        t.problem("carriers", f"must be a non-empty array of carriers, got {shown}")
        return ()
    carriers: list[RouteCarrier] = []
    for i, item in enumerate(items):
        carrier = _route_carrier(item, f"{t.key('carriers')}[{i}]", t.problems, known)
        if carrier is None:
            continue
        if any(c.name == carrier.name for c in carriers):
            t.problems.add(f"{t.key('carriers')}[{i}]", f'carrier "{carrier.name}" is listed twice')
            continue
        carriers.append(carrier)
    return tuple(carriers)


def _tags(t: Table) -> dict[str, str]:
    sub = t.table("tags")
    if sub is None:
        return {}
    tags: dict[str, str] = {}
    for key in sub.data:
        value = sub.string(key)
        if value is not None:
            tags[key] = value
    return tags


def read_routes(tables: list[Table], root: Table, known: Collection[str]) -> tuple[RouteConfig, ...]:
    """The routes in `tables`; carriers must be among `known`; problems go to the tables."""
    if not tables and root.data.get("routes", []) == []:
        root.problem("routes", "at least one [[routes]] entry is required")
    routes: list[RouteConfig] = []
    first: dict[tuple[object, ...], int] = {}
    for index, t in enumerate(tables):
        prefix, carriers = _prefix(t), _carriers(t, known)
        sources = t.strings("sources", (), partial(sender_prefix, t.problems))
        tags = _tags(t)
        t.finish()
        identity = (prefix, frozenset(sources), frozenset(tags.items()))
        if prefix is not None and identity in first:
            t.problems.add(t.path, f"duplicate of routes[{first[identity]}] "
                                   "(same prefix, sources and tags)")
        first.setdefault(identity, index)
        if prefix is not None and carriers:
            routes.append(RouteConfig(prefix, carriers, tuple(sources), MappingProxyType(tags)))
    return tuple(routes)
