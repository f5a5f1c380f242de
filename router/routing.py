"""Least-cost routing: longest-prefix match with filters, candidates ordered by cost.

Theory of operation
-------------------
A route says "destinations starting with ``prefix`` go to these carriers", optionally
only for some source numbers (``sources``: prefixes of the sender) and some message tags
(``tags``: every configured key must equal the message's value). The table answers two
questions per message, both on the hot path:

1. *Which route?* The longest route prefix whose filters match; a route whose filters
   do not match is skipped and a shorter prefix may then apply. Several routes with the
   same prefix are ranked by specificity (see :func:`_specificity`), config order
   among equals.

2. *Which carriers, in what order?* A candidate's cost per segment is the route's
   ``cost`` when given, else the longest matching prefix of that carrier's rate deck for
   this destination; no price at all sorts after every priced carrier; then config
   order.

One index holds every route prefix and every rate-deck prefix. Only the prefix lengths
that occur are walked, longest first, and the walk stops at the first hit ``P``: a few
dict probes whatever the table size. Everything else is a function of ``P`` alone,
because every route or deck prefix of the destination is a prefix of ``P``: the routes
that may apply (``P``'s and its ancestors', down to the first unfiltered one) and ``E``,
the longest deck prefix among them. Every carrier's own deck match for the destination
is its deck match for ``E``, so the candidate order is cached per ``(route, E)``; a route
whose carriers all have route costs has one order, computed at build time. Each ``P``
is resolved on first use and kept (:class:`_Node`): memory is bounded by the table, not
by traffic, and a reload does not pay for prefixes nobody sends to. When ``P`` has a
single unfiltered route, the decision is the stored candidate tuple; otherwise the
filters are checked per message.

Health and capacity are not the table's business: :meth:`RoutingTable.decide` asks a
``usable(carrier) -> reason | None`` callback and records why each skipped carrier was
skipped, for the MDR and for ``status``.

Failover (:func:`next_candidate`) walks the same order. The caller fails over only on
transient errors: a permanent error (invalid destination, message too long, ...) would be
refused by every carrier alike and ends the message as REJECTED instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = [
    "Candidate",
    "Decision",
    "Route",
    "RoutingConfigError",
    "RoutingTable",
    "UsableFn",
    "next_candidate",
]

#: ``usable(carrier_name)`` → None when the carrier can take traffic now, else a short
#: reason ("down", "circuit_open", "at_capacity", "throttled", ...).
UsableFn = Callable[[str], "str | None"]


class RoutingConfigError(ValueError):
    """A route or rate deck is invalid; ``field`` names the offending key."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


class Candidate:
    """One carrier a route may use, with its cost per segment (None: unpriced)."""

    __slots__ = ("name", "cost")

    def __init__(self, name: str, cost: float | None) -> None:
        self.name = name
        self.cost = cost

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Candidate):
            return NotImplemented
        return self.name == other.name and self.cost == other.cost

    def __hash__(self) -> int:
        return hash((self.name, self.cost))

    def __repr__(self) -> str:
        return f"Candidate({self.name!r}, {self.cost!r})"


class Decision:
    """The outcome of routing one message.

    ``route`` is the route's label (its prefix, ``*`` for the catch-all, plus its filters);
    ``candidates`` every carrier of the route in cost order; ``usable`` those the
    ``usable`` callback accepted, same order; ``skipped`` ``(name, reason)`` for the rest.
    """

    __slots__ = ("route", "candidates", "usable", "skipped")

    def __init__(
        self,
        route: str,
        candidates: tuple[Candidate, ...],
        usable: tuple[Candidate, ...],
        skipped: tuple[tuple[str, str], ...],
    ) -> None:
        self.route = route
        self.candidates = candidates
        self.usable = usable
        self.skipped = skipped

    @property
    def best(self) -> Candidate | None:
        """The cheapest usable candidate, or None when every one was skipped."""
        return self.usable[0] if self.usable else None

    def __repr__(self) -> str:
        return (
            f"Decision(route={self.route!r}, candidates={self.candidates!r}, "
            f"usable={self.usable!r}, skipped={self.skipped!r})"
        )


class Route:
    """A validated route as the table holds it (what :meth:`RoutingTable.lookup` returns)."""

    __slots__ = (
        "prefix", "label", "sources", "tags", "order", "carriers",
        "filtered", "static", "cache",
    )

    def __init__(
        self,
        prefix: str,
        sources: tuple[str, ...],
        tags: tuple[tuple[str, str], ...],
        order: int,
        carriers: tuple[tuple[str, float | None], ...],
    ) -> None:
        self.prefix = prefix
        self.sources = sources
        self.tags = tags
        self.order = order
        #: (name, route cost or None) in config order.
        self.carriers = carriers
        self.filtered = bool(sources or tags)
        self.label = _label(prefix, sources, tags)
        #: The candidate order when every carrier has a route cost, else None.
        self.static: tuple[Candidate, ...] | None = None
        #: Deck-priced orders keyed by the destination's longest union deck prefix.
        self.cache: dict[str | None, tuple[Candidate, ...]] = {}

    def matches(self, source: str, tags: Mapping[str, str] | None) -> bool:
        """True when both filters (where given) accept this source and these tags."""
        if self.sources and not source.startswith(self.sources):
            return False
        if self.tags:
            if not tags:
                return False
            for key, value in self.tags:
                if tags.get(key) != value:
                    return False
        return True

    def __repr__(self) -> str:
        return f"Route({self.label!r}, carriers={[c for c, _ in self.carriers]!r})"


def _label(prefix: str, sources: tuple[str, ...], tags: tuple[tuple[str, str], ...]) -> str:
    parts = [prefix or "*"]
    if sources:
        parts.append("sources=" + ",".join(sources))
    if tags:
        parts.append("tags=" + ",".join(f"{k}:{v}" for k, v in tags))
    return " ".join(parts)


def _specificity(route: Route, source: str) -> tuple[int, int, int]:
    """Rank of a matching route among routes with the same prefix (higher wins).

    Each constraint counts one (every tag key, and the source filter); then the longer
    matching source prefix; then config order (earlier wins).
    """
    matched = max((len(s) for s in route.sources if source.startswith(s)), default=0)
    return (len(route.tags) + (1 if route.sources else 0), matched, -route.order)


class _Deck:
    """One carrier's rate deck: prefix → cost per segment, longest match first."""

    __slots__ = ("costs", "lengths")

    def __init__(self, costs: dict[str, float]) -> None:
        self.costs = costs
        self.lengths = tuple(sorted({len(p) for p in costs}, reverse=True))

    def price(self, number: str) -> float | None:
        get = self.costs.get
        n = len(number)
        for length in self.lengths:
            if length <= n:
                cost = get(number[:length])
                if cost is not None:
                    return cost
        return None


def _sorted_candidates(priced: list[tuple[str, float | None]]) -> tuple[Candidate, ...]:
    # sorted() is stable, so equal costs keep config order.
    ranked = sorted(priced, key=lambda nc: (nc[1] is None, nc[1] or 0.0))
    return tuple([Candidate(name, cost) for name, cost in ranked])


class _Node:
    """What every destination whose longest known prefix is one given prefix shares.

    Every route and deck prefix of such a destination is a prefix of that one, so the
    applicable routes and the deck-order key are fixed per node. Plain case: one
    unfiltered route at the longest route prefix — its candidates are stored outright.
    Otherwise ``groups`` (routes by prefix, longest first, down to the first group with
    an unfiltered route) are evaluated per message against its source and tags.
    """

    __slots__ = ("route", "candidates", "groups", "key")

    def __init__(
        self,
        route: Route | None,
        candidates: tuple[Candidate, ...],
        groups: tuple[tuple[Route, ...], ...],
        key: str | None,
    ) -> None:
        self.route = route
        self.candidates = candidates
        self.groups = groups
        self.key = key


def _pick(groups: tuple[tuple[Route, ...], ...], source: str, tags: Mapping[str, str] | None) -> Route | None:
    """The longest-prefix route whose filters match; the most specific within a prefix."""
    for routes in groups:
        best: Route | None = None
        best_rank: tuple[int, int, int] | None = None
        for route in routes:
            if route.matches(source, tags):
                rank = _specificity(route, source)
                if best_rank is None or rank > best_rank:
                    best, best_rank = route, rank
        if best is not None:
            return best
    return None


#: Marks a prefix absent from the index (None marks one present but not yet resolved).
_ABSENT = _Node(None, (), (), None)


class RoutingTable:
    """Routes by prefix, rate decks by carrier; immutable once built (rebuild to reload).

    Per-prefix results are resolved on first use and kept: the memory this takes is
    bounded by the number of route and deck prefixes, not by traffic.
    """

    __slots__ = (
        "routes", "_by_prefix", "_lengths", "_decks", "_union", "_union_lengths",
        "_nodes", "_node_lengths",
    )

    def __init__(self, routes: Sequence[Route], decks: Mapping[str, _Deck]) -> None:
        """Use :meth:`build`; this takes already validated parts."""
        self.routes: tuple[Route, ...] = tuple(routes)
        by_prefix: dict[str, list[Route]] = {}
        for route in self.routes:
            by_prefix.setdefault(route.prefix, []).append(route)
            if all(cost is not None for _, cost in route.carriers):
                route.static = _sorted_candidates(list(route.carriers))
        # Unfiltered last in each group (at most one: duplicates are refused), so one look
        # at the end tells whether a group always matches.
        self._by_prefix = {
            p: tuple(sorted(rs, key=lambda r: not r.filtered)) for p, rs in by_prefix.items()
        }
        self._lengths = tuple(sorted({len(p) for p in by_prefix}, reverse=True))
        self._decks = dict(decks)
        union: dict[str, None] = {}
        for deck in self._decks.values():
            union.update(dict.fromkeys(deck.costs))
        self._union = union
        self._union_lengths = tuple(sorted({len(p) for p in union}, reverse=True))
        # One index over route and deck prefixes: the longest hit decides everything.
        self._nodes: dict[str, _Node | None] = dict.fromkeys(union)
        self._nodes.update(dict.fromkeys(by_prefix))
        self._node_lengths = tuple(sorted({len(p) for p in self._nodes}, reverse=True))

    @classmethod
    def build(
        cls, routes: Sequence[Any], rates: Mapping[str, Mapping[str, float]]
    ) -> RoutingTable:
        """Validate and index ``routes`` (config order) and ``rates`` (carrier → deck).

        Each route has ``prefix`` (digits, "" = catch-all), ``carriers`` (items with
        ``name`` and ``cost`` or None), ``sources`` (source-number prefixes, empty = any)
        and ``tags`` (str → str, empty = any).

        Raises:
            RoutingConfigError: naming the field, e.g. ``routes[2].carriers[0].cost``,
                for a non-digit prefix, a negative or non-finite cost, an empty carrier
                list, a carrier listed twice in one route, a bare string where a list of
                sources belongs, or two routes with the same prefix and filters (the
                later one could never apply).
        """
        decks = {
            str(name): _Deck(_check_deck(f"rates[{name}]", deck)) for name, deck in rates.items()
        }
        checked: list[Route] = []
        seen: dict[tuple[str, frozenset[str], frozenset[tuple[str, str]]], int] = {}
        for i, raw in enumerate(routes):
            route = _check_route(f"routes[{i}]", raw, i)
            key = (route.prefix, frozenset(route.sources), frozenset(route.tags))
            if key in seen:
                raise RoutingConfigError(
                    f"routes[{i}]", f"same prefix and filters as routes[{seen[key]}]"
                )
            seen[key] = i
            checked.append(route)
        return cls(checked, decks)

    # -- the hot path ----------------------------------------------------------------

    def decide(
        self,
        dest: str,
        source: str,
        tags: Mapping[str, str] | None,
        usable: UsableFn,
    ) -> Decision | None:
        """Route one message; None when no route matches at all (→ ``no_route``).

        ``dest`` is E.164 digits without '+'. ``usable(name)`` is asked once per
        candidate; a carrier it rejects is left out of ``usable`` and recorded in
        ``skipped`` with the reason it gave.

        Raises:
            ValueError: ``dest`` is not a non-empty string of ASCII digits.
        """
        # _node() inlined: this is the per-message path.
        if not (dest.isascii() and dest.isdigit()):
            raise ValueError(f"dest: expected E.164 digits without '+', got {dest!r}")
        nodes = self._nodes
        n = len(dest)
        for length in self._node_lengths:
            if length <= n:
                prefix = dest[:length]
                node = nodes.get(prefix, _ABSENT)
                if node is not _ABSENT:
                    if node is None:
                        node = nodes[prefix] = self._resolve(prefix)
                    break
        else:
            return None
        route = node.route
        if route is not None:
            candidates = node.candidates
        else:
            route = _pick(node.groups, source, tags)
            if route is None:
                return None
            candidates = route.static or self._priced(route, node.key)
        for i, cand in enumerate(candidates):
            reason = usable(cand.name)
            if reason is not None:
                break
        else:
            return Decision(route.label, candidates, candidates, ())
        # Something is skipped: the rest is asked once each, as the first i were.
        kept = list(candidates[:i])
        skipped = [(cand.name, reason)]
        for cand in candidates[i + 1:]:
            reason = usable(cand.name)
            if reason is None:
                kept.append(cand)
            else:
                skipped.append((cand.name, reason))
        return Decision(route.label, candidates, tuple(kept), tuple(skipped))

    def lookup(self, dest: str, source: str, tags: Mapping[str, str] | None) -> Route | None:
        """The route that applies to this message, ignoring carrier health.

        Raises:
            ValueError: ``dest`` is not a non-empty string of ASCII digits.
        """
        node = self._node(dest)
        if node is None:
            return None
        return node.route or _pick(node.groups, source, tags)

    def candidates_for(
        self, dest: str, source: str, tags: Mapping[str, str] | None
    ) -> tuple[Candidate, ...] | None:
        """Every candidate of the matching route in cost order, or None without a route.

        Raises:
            ValueError: ``dest`` is not a non-empty string of ASCII digits.
        """
        node = self._node(dest)
        if node is None:
            return None
        if node.route is not None:
            return node.candidates
        route = _pick(node.groups, source, tags)
        if route is None:
            return None
        return route.static or self._priced(route, node.key)

    def _node(self, dest: str) -> _Node | None:
        """The node of the longest route or deck prefix of ``dest`` (None: no prefix)."""
        if not (dest.isascii() and dest.isdigit()):
            raise ValueError(f"dest: expected E.164 digits without '+', got {dest!r}")
        nodes = self._nodes
        get = nodes.get
        n = len(dest)
        for length in self._node_lengths:
            if length <= n:
                prefix = dest[:length]
                node = get(prefix, _ABSENT)
                if node is not _ABSENT:
                    if node is None:
                        node = nodes[prefix] = self._resolve(prefix)
                    return node
        return None

    # -- resolved once per prefix -------------------------------------------------------

    def _resolve(self, prefix: str) -> _Node:
        key = self._union_key(prefix)
        get = self._by_prefix.get
        groups: list[tuple[Route, ...]] = []
        for length in self._lengths:
            if length <= len(prefix):
                routes = get(prefix[:length])
                if routes is not None:
                    groups.append(routes)
                    if not routes[-1].filtered:
                        break  # an unfiltered route always matches: nothing shorter applies
        if groups and len(groups[0]) == 1 and not groups[0][0].filtered:
            route = groups[0][0]
            return _Node(route, route.static or self._priced(route, key), (), key)
        return _Node(None, (), tuple(groups), key)

    def _priced(self, route: Route, key: str | None) -> tuple[Candidate, ...]:
        cached = route.cache.get(key)
        if cached is None:
            cached = route.cache[key] = self._price_route(route, key)
        return cached

    def _union_key(self, number: str) -> str | None:
        """The longest prefix of ``number`` present in any rate deck (None: in none)."""
        union = self._union
        n = len(number)
        for length in self._union_lengths:
            if length <= n:
                prefix = number[:length]
                if prefix in union:
                    return prefix
        return None

    def _price_route(self, route: Route, key: str | None) -> tuple[Candidate, ...]:
        priced: list[tuple[str, float | None]] = []
        for name, cost in route.carriers:
            if cost is None and key is not None:
                deck = self._decks.get(name)
                cost = deck.price(key) if deck is not None else None
            priced.append((name, cost))
        return _sorted_candidates(priced)


def next_candidate(
    decision: Decision, tried: Sequence[str], usable: UsableFn
) -> Candidate | None:
    """The carrier to try next after a transient failure, or None when none is usable.

    Walks ``decision.candidates`` in cost order, asking ``usable`` afresh (health has
    changed since the decision): the first usable carrier not in ``tried`` wins. When
    every usable carrier was already tried, the one tried longest ago comes back (so
    retries rotate instead of hammering the cheapest). The caller keeps the last error,
    and does not fail over on permanent errors at all: those end the message REJECTED.
    """
    again: list[Candidate] = []
    for cand in decision.candidates:
        if usable(cand.name) is not None:
            continue
        if cand.name not in tried:
            return cand
        again.append(cand)
    if not again:
        return None
    last_try = {name: i for i, name in enumerate(tried)}
    return min(again, key=lambda c: last_try[c.name])


# -- validation ------------------------------------------------------------------------


def _check_cost(field: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RoutingConfigError(field, f"expected a number, got {value!r}")
    cost = float(value)
    if not math.isfinite(cost) or cost < 0:
        raise RoutingConfigError(field, f"expected a finite cost >= 0, got {value!r}")
    return cost


def _check_prefix(field: str, value: Any) -> str:
    if not isinstance(value, str) or (value and not (value.isascii() and value.isdigit())):
        raise RoutingConfigError(field, f"expected a string of digits (\"\" = any), got {value!r}")
    return value


def _check_deck(field: str, deck: Mapping[str, float]) -> dict[str, float]:
    if not isinstance(deck, Mapping):
        raise RoutingConfigError(field, f"expected a mapping prefix -> cost, got {type(deck).__name__}")
    checked: dict[str, float] = {}
    for prefix, cost in deck.items():
        key = f"{field}[{prefix!r}]"
        checked[_check_prefix(key, prefix)] = _check_cost(key, cost)
    return checked


def _check_route(field: str, raw: Any, order: int) -> Route:
    prefix = _check_prefix(f"{field}.prefix", getattr(raw, "prefix", None))
    sources = getattr(raw, "sources", None) or ()
    if isinstance(sources, str) or not all(isinstance(s, str) and s for s in sources):
        raise RoutingConfigError(f"{field}.sources", f"expected a list of non-empty prefixes, got {sources!r}")
    tags = getattr(raw, "tags", None) or {}
    if not isinstance(tags, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in tags.items()
    ):
        raise RoutingConfigError(f"{field}.tags", f"expected a map of string to string, got {tags!r}")
    carriers = getattr(raw, "carriers", None)
    if not carriers or isinstance(carriers, str):
        raise RoutingConfigError(f"{field}.carriers", "expected at least one carrier")
    checked: list[tuple[str, float | None]] = []
    for j, item in enumerate(carriers):
        name = getattr(item, "name", None)
        if not isinstance(name, str) or not name:
            raise RoutingConfigError(f"{field}.carriers[{j}].name", f"expected a carrier name, got {name!r}")
        if any(name == seen for seen, _ in checked):
            raise RoutingConfigError(f"{field}.carriers[{j}].name", f"carrier {name!r} listed twice")
        cost = getattr(item, "cost", None)
        if cost is not None:
            cost = _check_cost(f"{field}.carriers[{j}].cost", cost)
        checked.append((name, cost))
    return Route(prefix, tuple(sources), tuple(sorted(tags.items())), order, tuple(checked))
