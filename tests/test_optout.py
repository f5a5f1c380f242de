"""The opt-out list: exact answers under any mix of changes, STOPALL, loading."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from router import optout
from router.optout import ALL, OptOutError, OptOutList, _HashBlocks


def test_a_new_list_blocks_nobody() -> None:
    lst = OptOutList()
    assert not lst.is_opted_out("acme", "12025550100")
    assert lst.blocked_by("acme", "12025550100") is None
    assert len(lst) == 0


def test_opt_out_is_per_scope() -> None:
    lst = OptOutList()
    assert lst.opt_out("acme", "12025550100")
    assert lst.is_opted_out("acme", "12025550100")
    assert lst.blocked_by("acme", "12025550100") == "acme"
    assert not lst.is_opted_out("globex", "12025550100")
    assert not lst.is_opted_out("acme", "12025550101")
    assert not lst.opt_out("acme", "12025550100"), "a second STOP changes nothing"
    assert len(lst) == 1


def test_plus_prefix_is_the_same_recipient() -> None:
    lst = OptOutList()
    lst.opt_out("acme", "+447700900123")
    assert lst.is_opted_out("acme", "447700900123")
    assert lst.is_opted_out("acme", "+447700900123")


def test_stopall_blocks_every_scope_even_unseen_ones() -> None:
    lst = OptOutList()
    lst.opt_out(ALL, "12025550100")
    for scope in ("acme", "18005550100", "a-scope-never-seen"):
        assert lst.blocked_by(scope, "12025550100") == ALL
    assert not lst.is_opted_out("acme", "12025550199")


def test_start_after_stopall_reenables_only_that_scope() -> None:
    lst = OptOutList()
    lst.opt_out("acme", "12025550100")
    lst.opt_out(ALL, "12025550100")
    assert lst.opt_in("acme", "12025550100")
    assert not lst.is_opted_out("acme", "12025550100")
    assert lst.is_opted_out("globex", "12025550100")
    assert list(lst.resubscribed()) == [("acme", "12025550100")]
    # STOP again in that scope undoes the re-subscription...
    assert lst.opt_out("acme", "12025550100")
    assert lst.is_opted_out("acme", "12025550100")
    assert list(lst.resubscribed()) == []


def test_a_new_stopall_clears_earlier_resubscriptions() -> None:
    lst = OptOutList()
    lst.opt_out(ALL, "12025550100")
    lst.opt_in("acme", "12025550100")
    assert lst.opt_out(ALL, "12025550100"), "the resubscription was dropped: a change"
    assert lst.is_opted_out("acme", "12025550100")


def test_opt_in_to_all_undoes_stopall_but_not_scope_stops() -> None:
    lst = OptOutList()
    lst.opt_out("acme", "12025550100")
    lst.opt_out(ALL, "12025550100")
    assert lst.opt_in(ALL, "12025550100")
    assert not lst.is_opted_out("globex", "12025550100")
    assert lst.is_opted_out("acme", "12025550100")
    assert not lst.opt_in(ALL, "12025550100")


def test_opt_in_without_opt_out_changes_nothing() -> None:
    lst = OptOutList()
    assert not lst.opt_in("acme", "12025550100")
    assert list(lst.resubscribed()) == []


@pytest.mark.parametrize(
    "recipient", ["", "+", "0447700900123", "1234567890123456", "12 34", "1_234", "١٢٣٤٥", None, 5.0]
)
def test_bad_recipients_are_refused_naming_the_field(recipient: object) -> None:
    with pytest.raises(OptOutError, match="recipient"):
        OptOutList().opt_out("acme", recipient)  # type: ignore[arg-type]


@pytest.mark.parametrize("recipient", ["", "abc", "-5", "0", "1" * 16, None])
def test_lookups_refuse_what_is_no_number(recipient: object) -> None:
    with pytest.raises(OptOutError, match="recipient"):
        OptOutList().is_opted_out("acme", recipient)  # type: ignore[arg-type]


@pytest.mark.parametrize("scope", ["", None, 7])
def test_bad_scopes_are_refused_naming_the_field(scope: object) -> None:
    with pytest.raises(OptOutError, match="scope"):
        OptOutList().opt_out(scope, "12025550100")  # type: ignore[arg-type]


def test_load_from_records_and_iterate_back() -> None:
    rows = [("acme", "12025550100"), ("acme", "12025550101"), ("globex", "12025550100"),
            (ALL, "447700900123"), ("acme", "+12025550100")]  # a duplicate, "+" form
    lst = OptOutList.load(iter(rows), resubscribed=[("acme", "447700900123")])
    assert len(lst) == 4
    assert sorted(lst) == sorted(
        [("*", "447700900123"), ("acme", "12025550100"), ("acme", "12025550101"),
         ("globex", "12025550100")]
    )
    assert lst.is_opted_out("globex", "447700900123")
    assert not lst.is_opted_out("acme", "447700900123")
    assert lst.is_opted_out("acme", "12025550101")


def test_load_names_the_bad_row_field() -> None:
    with pytest.raises(OptOutError, match="recipient"):
        OptOutList.load([("acme", "12025550100"), ("acme", "not-a-number")])
    with pytest.raises(OptOutError, match="scope"):
        OptOutList.load([("", "12025550100")])


def test_load_accepts_integer_recipients() -> None:
    lst = OptOutList.load([("acme", 12025550100)])  # type: ignore[list-item]
    assert lst.is_opted_out("acme", "12025550100")


def test_100k_entries_answer_exactly() -> None:
    rng = random.Random(7)
    members = {(rng.choice("abc"), str(rng.randrange(10**9, 10**12))) for _ in range(100_000)}
    lst = OptOutList.load(sorted(members))
    assert len(lst) == len(members)
    assert all(lst.is_opted_out(s, r) for s, r in members)
    strangers = [(rng.choice("abc"), str(rng.randrange(10**9, 10**12))) for _ in range(20_000)]
    assert all(lst.is_opted_out(s, r) == ((s, r) in members) for s, r in strangers)
    assert set(lst) == members
    # Grown one by one past the loaded size: blocks split, the filter is rebuilt.
    for s, r in strangers:
        lst.opt_out(s, r)
    members.update(strangers)
    assert len(lst) == len(members)
    assert all(lst.is_opted_out(s, r) for s, r in members)


def test_memory_stays_compact() -> None:
    rng = random.Random(3)
    lst = OptOutList.load(("s", str(rng.randrange(10**10, 10**12))) for _ in range(200_000))
    assert lst.nbytes() / len(lst) < 20, "the benchmark goal is <= 20 MB per million"


def test_blocks_split_and_stay_sorted() -> None:
    table = _HashBlocks()
    rng = random.Random(5)
    values = {rng.getrandbits(64) for _ in range(5_000)}
    for v in values:
        table.add(v)
    assert len(table.blocks) > 16
    for j, block in enumerate(table.blocks):
        assert list(block) == sorted(block)
        assert all(v >> table.shift == j for v in block)
    assert set(table) == values and table.size == len(values)


RECIPIENTS = st.sampled_from([str(12025550100 + i) for i in range(12)] + ["447700900123"])
SCOPES = st.sampled_from(["acme", "globex", "18005550100", ALL])


class AgainstPythonSets(RuleBasedStateMachine):
    """The compact list against the obvious model: sets of pairs plus resubscriptions."""

    def __init__(self) -> None:
        super().__init__()
        self.lst = OptOutList()
        self.out: set[tuple[str, str]] = set()
        self.resub: set[tuple[str, str]] = set()

    @rule(scope=SCOPES, recipient=RECIPIENTS)
    def opt_out(self, scope: str, recipient: str) -> None:
        self.lst.opt_out(scope, recipient)
        self.out.add((scope, recipient))
        if scope == ALL:
            self.resub = {p for p in self.resub if p[1] != recipient}
        else:
            self.resub.discard((scope, recipient))

    @rule(scope=SCOPES, recipient=RECIPIENTS)
    def opt_in(self, scope: str, recipient: str) -> None:
        self.lst.opt_in(scope, recipient)
        self.out.discard((scope, recipient))
        if scope == ALL:
            self.resub = {p for p in self.resub if p[1] != recipient}
        elif (ALL, recipient) in self.out:
            self.resub.add((scope, recipient))

    @rule()
    def reload(self) -> None:
        self.lst = OptOutList.load(sorted(self.lst), resubscribed=self.lst.resubscribed())

    @invariant()
    def answers_match(self) -> None:
        assert len(self.lst) == len(self.out)
        for scope in ("acme", "globex", "18005550100", "unseen"):
            for i in range(12):
                r = str(12025550100 + i)
                expected = (scope, r) in self.out or (
                    (ALL, r) in self.out and (scope, r) not in self.resub)
                assert self.lst.is_opted_out(scope, r) == expected, (scope, r)


AgainstPythonSets.TestCase.settings = settings(max_examples=60, stateful_step_count=30,
                                               deadline=None)
TestAgainstPythonSets = AgainstPythonSets.TestCase


@settings(max_examples=40, deadline=None)
@given(st.sets(st.integers(1, 10**15 - 1), max_size=3000), st.integers(0, 2**64 - 1))
def test_small_blocks_and_filter_against_a_set(values: set[int], seed: int) -> None:
    """Tiny block and filter sizes force many splits and rebuilds; answers stay exact."""
    saved = optout._SPLIT_AVG, optout._FILTER_MIN_BITS
    optout._SPLIT_AVG, optout._FILTER_MIN_BITS = 2, 8
    try:
        lst = OptOutList()
        rng = random.Random(seed)
        kept: set[int] = set()
        for v in values:
            lst.opt_out("s", str(v))
            kept.add(v)
            if rng.random() < 0.3:
                gone = rng.choice(sorted(kept))
                lst.opt_in("s", str(gone))
                kept.discard(gone)
        assert {int(r) for _, r in lst} == kept
        for v in list(values)[:500]:
            assert lst.is_opted_out("s", str(v)) == (v in kept)
    finally:
        optout._SPLIT_AVG, optout._FILTER_MIN_BITS = saved
