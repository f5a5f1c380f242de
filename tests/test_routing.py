"""Routing table: longest prefix with filters, cost order, skips, failover order."""

from __future__ import annotations

import random
from types import SimpleNamespace as NS

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.routing import (
    Candidate,
    RoutingConfigError,
    RoutingTable,
    next_candidate,
)


def route(prefix, *carriers, sources=(), tags=None):
    """carriers: names (deck-priced) or (name, cost) pairs."""
    items = [
        NS(name=c, cost=None) if isinstance(c, str) else NS(name=c[0], cost=c[1])
        for c in carriers
    ]
    return NS(prefix=prefix, carriers=items, sources=list(sources), tags=dict(tags or {}))


def all_usable(name):
    return None


def names(cands):
    return [c.name for c in cands]


# -- which route -------------------------------------------------------------------------

FILTER_TABLE = RoutingTable.build(
    [
        route("", ("world", 1.0)),
        route("1", ("us", 0.01)),
        route("1212", ("nyc-otp", 0.02), tags={"campaign": "otp"}),
        route("1212", ("nyc-shortcode", 0.02), sources=["1800"]),
        route("1212", ("nyc-both", 0.02), sources=["1800"], tags={"campaign": "otp"}),
        route("1212", ("nyc-long-src", 0.02), sources=["1800555"]),
        route("44", ("uk-a", 0.03)),
        route("44", ("uk-b", 0.03), tags={"a": "1", "b": "2"}),
        route("44", ("uk-c", 0.03), tags={"a": "1"}, sources=["33"]),
        route("447", ("uk-mobile-mkt", 0.02), tags={"campaign": "mkt"}),
    ],
    {},
)


@pytest.mark.parametrize(
    ("dest", "source", "tags", "expected"),
    [
        # Longest prefix, no filters involved.
        ("12125550100", "15550001111", None, "us"),
        ("33612345678", "15550001111", None, "world"),
        # A longer filtered route that does not match is skipped: the shorter applies.
        ("12125550100", "15550001111", {"campaign": "mkt"}, "us"),
        ("447700900000", "15550001111", {"campaign": "otp"}, "uk-a"),
        ("447700900000", "15550001111", None, "uk-a"),
        # ... and applies when its filter matches.
        ("447700900000", "15550001111", {"campaign": "mkt"}, "uk-mobile-mkt"),
        ("12125550100", "15550001111", {"campaign": "otp"}, "nyc-otp"),
        ("12125550100", "18001234567", None, "nyc-shortcode"),
        # Same prefix: the most specific matching route wins.
        ("12125550100", "18001234567", {"campaign": "otp"}, "nyc-both"),
        ("12125550100", "18005551234", None, "nyc-long-src"),
        # Two constraints each; the matching source prefix breaks the tie.
        ("447700900000", "33100", {"a": "1", "b": "2"}, "uk-c"),
        ("447700900000", "15550001111", {"a": "1", "b": "2"}, "uk-b"),
        ("447700900000", "33100", {"a": "1"}, "uk-c"),
        ("447700900000", "15550001111", {"a": "1"}, "uk-a"),
        # A tag must equal, not merely exist.
        ("447700900000", "15550001111", {"a": "1", "b": "3"}, "uk-a"),
    ],
)
def test_longest_prefix_with_filters(dest, source, tags, expected):
    decision = FILTER_TABLE.decide(dest, source, tags, all_usable)
    assert decision is not None
    assert names(decision.candidates) == [expected]
    assert FILTER_TABLE.lookup(dest, source, tags).carriers[0][0] == expected


def test_route_label_names_prefix_and_filters():
    labels = [
        ("33612345678", "1", None, "*"),
        ("12125550100", "1", None, "1"),
        ("12125550100", "18001234567", {"campaign": "otp"}, "1212 sources=1800 tags=campaign:otp"),
    ]
    for dest, source, tags, label in labels:
        assert FILTER_TABLE.decide(dest, source, tags, all_usable).route == label


def test_no_route_returns_none():
    table = RoutingTable.build([route("44", ("uk", 0.01)), route("1", ("us", 0.01), sources=["1800"])], {})
    assert table.decide("33612345678", "1", None, all_usable) is None
    assert table.decide("12125550100", "1555", None, all_usable) is None  # filter fails, no shorter
    assert table.lookup("33612345678", "1", None) is None
    assert table.candidates_for("33612345678", "1", None) is None


@pytest.mark.parametrize("dest", ["+4471", "", "44 71", "٤٤٧"])
def test_bad_destination_names_the_field(dest):
    with pytest.raises(ValueError, match="dest"):
        FILTER_TABLE.decide(dest, "1", None, all_usable)


# -- cost order --------------------------------------------------------------------------

RATES = {
    "a": {"1": 0.0050, "1212": 0.0030, "1212999": 0.0100},
    "b": {"1": 0.0040, "1213": 0.0020},
    "c": {"44": 0.0010},  # nothing for +1: unpriced there
}


@pytest.mark.parametrize(
    ("dest", "expected"),
    [
        # Deck LPM per destination decides the order.
        ("13125550100", [("b", 0.0040), ("a", 0.0050), ("c", None), ("d", 0.0045)]),
        ("12125550100", [("a", 0.0030), ("b", 0.0040), ("c", None), ("d", 0.0045)]),
        ("12125550100", [("a", 0.0030), ("b", 0.0040), ("c", None), ("d", 0.0045)]),  # cached
        ("12135550100", [("b", 0.0020), ("a", 0.0050), ("c", None), ("d", 0.0045)]),
        ("12129991234", [("b", 0.0040), ("a", 0.0100), ("c", None), ("d", 0.0045)]),
    ],
)
def test_cost_order_from_decks_and_route_costs(dest, expected):
    table = RoutingTable.build([route("1", "a", "b", "c", ("d", 0.0045))], RATES)
    got = table.candidates_for(dest, "1", None)
    # Sort expectation by the documented rule: priced by cost, unpriced last, config order.
    want = sorted(expected, key=lambda nc: (nc[1] is None, nc[1] or 0))
    assert [(c.name, c.cost) for c in got] == want


def test_route_cost_overrides_deck_and_ties_keep_config_order():
    table = RoutingTable.build(
        [route("1", ("x", 0.002), "a", ("y", 0.002), ("z", 0.001))],
        {"a": {"1": 0.002}, "x": {"1": 0.0001}},
    )
    got = table.candidates_for("12125550100", "1", None)
    assert [(c.name, c.cost) for c in got] == [("z", 0.001), ("x", 0.002), ("a", 0.002), ("y", 0.002)]


def test_unpriced_carriers_sort_last_in_config_order():
    table = RoutingTable.build([route("", "n1", ("p", 9.0), "n2")], {})
    assert [(c.name, c.cost) for c in table.candidates_for("1", "1", None)] == [
        ("p", 9.0), ("n1", None), ("n2", None),
    ]


# -- skipping unusable carriers ----------------------------------------------------------


def test_skips_unusable_with_reasons_in_cost_order():
    table = RoutingTable.build([route("1", ("a", 1), ("b", 2), ("c", 3), ("d", 4))], {})
    reasons = {"a": "down", "c": "circuit_open"}
    decision = table.decide("1555", "1", None, reasons.get)
    assert names(decision.candidates) == ["a", "b", "c", "d"]
    assert names(decision.usable) == ["b", "d"]
    assert decision.skipped == (("a", "down"), ("c", "circuit_open"))
    assert decision.best == Candidate("b", 2.0)


def test_all_skipped_still_decides_so_the_message_can_wait():
    table = RoutingTable.build([route("1", ("a", 1), ("b", 2))], {})
    decision = table.decide("1555", "1", None, lambda n: "at_capacity")
    assert decision is not None and decision.usable == () and decision.best is None
    assert decision.skipped == (("a", "at_capacity"), ("b", "at_capacity"))


# -- failover ----------------------------------------------------------------------------


def test_failover_walks_cost_order_then_returns_to_tried_only_when_needed():
    table = RoutingTable.build([route("1", ("a", 1), ("b", 2), ("c", 3))], {})
    decision = table.decide("1555", "1", None, all_usable)
    down: set[str] = set()

    def usable(name):
        return "down" if name in down else None

    assert next_candidate(decision, ["a"], usable).name == "b"  # transient on a → b
    down.add("c")
    assert next_candidate(decision, ["a", "b"], usable).name == "a"  # none new usable: oldest try
    assert next_candidate(decision, ["a", "b", "a"], usable).name == "b"
    down.update({"a", "b"})
    assert next_candidate(decision, ["a", "b"], usable) is None  # wait, keep last error
    down.clear()
    assert next_candidate(decision, ["a", "b"], usable).name == "c"  # a fresh one before a tried one


def test_failover_rechecks_health():
    table = RoutingTable.build([route("1", ("a", 1), ("b", 2), ("c", 3))], {})
    decision = table.decide("1555", "1", None, lambda n: "down" if n == "b" else None)
    assert decision.skipped == (("b", "down"),)
    # b came back since the decision: it is next in cost order.
    assert next_candidate(decision, ["a"], all_usable).name == "b"


# -- validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("routes", "rates", "field"),
    [
        ([route("+1", ("a", 1))], {}, "routes[0].prefix"),
        ([NS(prefix=1, carriers=[NS(name="a", cost=1)], sources=[], tags={})], {}, "routes[0].prefix"),
        ([route("1", ("a", 1)), route("2")], {}, "routes[1].carriers"),
        ([route("1", ("a", -1))], {}, "routes[0].carriers[0].cost"),
        ([route("1", ("a", float("nan")))], {}, "routes[0].carriers[0].cost"),
        ([route("1", ("a", True))], {}, "routes[0].carriers[0].cost"),
        ([route("1", ("a", 1), ("a", 2))], {}, "routes[0].carriers[1].name"),
        ([route("1", ("", 1))], {}, "routes[0].carriers[0].name"),
        ([NS(prefix="1", carriers=[NS(name="a", cost=1)], sources="1800", tags={})], {}, "routes[0].sources"),
        ([route("1", ("a", 1), sources=[""])], {}, "routes[0].sources"),
        ([route("1", ("a", 1), tags={"k": 1})], {}, "routes[0].tags"),
        ([route("1", ("a", 1)), route("1", ("b", 1))], {}, "routes[1]"),
        ([route("1", ("a", 1))], {"a": {"1x": 0.1}}, "rates[a]['1x']"),
        ([route("1", ("a", 1))], {"a": {"1": -0.1}}, "rates[a]['1']"),
        ([route("1", ("a", 1))], {"a": [("1", 0.1)]}, "rates[a]"),
    ],
)
def test_bad_config_names_the_field(routes, rates, field):
    with pytest.raises(RoutingConfigError) as err:
        RoutingTable.build(routes, rates)
    assert err.value.field == field
    assert str(err.value).startswith(field + ": ")


# -- a big table -------------------------------------------------------------------------


def _naive_route(routes, dest, source, tags):
    """Reference: scan every route; longest prefix, then specificity, then order."""
    best = None
    for order, r in enumerate(routes):
        if not dest.startswith(r.prefix):
            continue
        if r.sources and not any(source.startswith(s) for s in r.sources):
            continue
        if any((tags or {}).get(k) != v for k, v in r.tags.items()):
            continue
        matched = max((len(s) for s in r.sources if source.startswith(s)), default=0)
        key = (len(r.prefix), len(r.tags) + bool(r.sources), matched, -order)
        if best is None or key > best[0]:
            best = (key, r)
    return None if best is None else best[1]


def _indexed_naive_route(index, dest, source, tags):
    """The same reference over every prefix length of ``dest``, through a prefix index."""
    for n in range(len(dest), -1, -1):
        found = _naive_route(index.get(dest[:n], ()), dest, source, tags)
        if found is not None:
            return found
    return None


def test_50k_prefix_table_spot_checks():
    rng = random.Random(7)
    routes, seen = [], set()
    while len(routes) < 50_000:
        prefix = str(rng.randint(1, 9)) + "".join(rng.choices("0123456789", k=rng.randint(0, 6)))
        roll = rng.random()
        sources = ["1800"] if roll < 0.05 else []
        tags = {"campaign": "otp"} if 0.05 <= roll < 0.1 else {}
        key = (prefix, tuple(sources), tuple(tags))
        if key in seen:
            continue
        seen.add(key)
        routes.append(route(prefix, (f"c{len(routes)}", 0.01), "deck", sources=sources, tags=tags))
    # A deck whose prefixes interleave with the routes': the table indexes both.
    deck = {
        str(rng.randint(1, 9)) + "".join(rng.choices("0123456789", k=rng.randint(0, 6))): rng.random()
        for _ in range(50_000)
    }
    table = RoutingTable.build(routes, {"deck": deck})
    index: dict[str, list] = {}
    for r in routes:
        index.setdefault(r.prefix, []).append(r)
    for _ in range(2_000):
        dest = "".join(rng.choices("0123456789", k=rng.randint(8, 13)))
        source = rng.choice(["18005550100", "447700900000"])
        tags = rng.choice([None, {"campaign": "otp"}, {"campaign": "mkt"}])
        want = _indexed_naive_route(index, dest, source, tags)
        got = table.decide(dest, source, tags, all_usable)
        if want is None:
            assert got is None, dest
            continue
        matches = [dest[:n] for n in range(len(dest) + 1) if dest[:n] in deck]
        deck_cost = deck[matches[-1]] if matches else None
        want_cands = sorted(
            [(want.carriers[0].name, 0.01), ("deck", deck_cost)],
            key=lambda nc: (nc[1] is None, nc[1] or 0.0),
        )
        assert [(c.name, c.cost) for c in got.candidates] == want_cands, (dest, source, tags)


# -- properties --------------------------------------------------------------------------

CARRIERS = ["a", "b", "c", "d", "e"]
REASONS = st.sampled_from([None, None, "down", "circuit_open", "at_capacity", "throttled"])


@st.composite
def tables(draw):
    decks = {
        name: draw(
            st.dictionaries(
                st.text("0123456789", min_size=0, max_size=4),
                st.floats(0, 1, allow_nan=False),
                max_size=6,
            )
        )
        for name in CARRIERS
    }
    routes, seen = [], set()
    for prefix in draw(st.lists(st.text("0123456789", max_size=3), min_size=1, max_size=8)):
        chosen = draw(st.lists(st.sampled_from(CARRIERS), min_size=1, max_size=5, unique=True))
        costs = [draw(st.none() | st.floats(0, 1, allow_nan=False)) for _ in chosen]
        sources = draw(st.sampled_from([(), ("1",), ("12", "3")]))
        tags = draw(st.sampled_from([{}, {"k": "a"}, {"k": "a", "j": "b"}]))
        key = (prefix, sources, tuple(tags))
        if key not in seen:
            seen.add(key)
            routes.append(route(prefix, *zip(chosen, costs), sources=sources, tags=tags))
    return RoutingTable.build(routes, decks), decks, routes


@settings(max_examples=150, deadline=None)
@given(
    tables(),
    st.text("0123456789", min_size=1, max_size=8),
    st.sampled_from(["1", "12", "35", "4"]),
    st.sampled_from([None, {}, {"k": "a"}, {"k": "a", "j": "b"}, {"k": "b"}]),
    st.fixed_dictionaries({n: REASONS for n in CARRIERS}),
)
def test_decide_respects_usable_and_cost_order(built, dest, source, tags, reasons):
    table, decks, routes = built
    decision = table.decide(dest, source, tags, reasons.get)
    want = _naive_route(routes, dest, source, tags)
    if want is None:
        assert decision is None
        return
    # Never a candidate the callback rejected; every rejection recorded with its reason.
    assert all(reasons[c.name] is None for c in decision.usable)
    assert decision.skipped == tuple((c.name, reasons[c.name]) for c in decision.candidates if reasons[c.name])
    assert names(decision.usable) == [c.name for c in decision.candidates if reasons[c.name] is None]
    # Costs: route cost, else the deck's longest prefix for this destination.
    for item in want.carriers:
        cand = next(c for c in decision.candidates if c.name == item.name)
        if item.cost is not None:
            assert cand.cost == item.cost
        else:
            matches = [p for p in decks[item.name] if dest.startswith(p)]
            assert cand.cost == (decks[item.name][max(matches, key=len)] if matches else None)
    keys = [(c.cost is None, c.cost or 0.0) for c in decision.candidates]
    assert keys == sorted(keys)
    order = [item.name for item in want.carriers]
    for x, y in zip(decision.candidates, decision.candidates[1:]):
        if (x.cost is None, x.cost or 0.0) == (y.cost is None, y.cost or 0.0):
            assert order.index(x.name) < order.index(y.name)
