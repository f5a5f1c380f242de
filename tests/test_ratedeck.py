"""Rate decks as carriers publish them: headers, comments, quotes, `+`, and bad rows named."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from router.ratedeck import (
    MAX_PROBLEMS,
    RateDeckError,
    load_rate_deck,
    longest_prefix_cost,
    parse_rate_deck,
)


def deck(text: str) -> dict[str, float]:
    return dict(parse_rate_deck(text.splitlines(keepends=True)))


@pytest.mark.parametrize("text", [
    "44,0.03\n1,0.004\n",
    "prefix,cost\n44,0.03\n1,0.004\n",                           # header
    "Dial Code , Rate (USD)\n44,0.03\n1,0.004\n",                # header with spaces
    '"Prefix","Rate"\n"44","0.03"\n"+1","0.004"\n',              # quoted
    '"Prefix", "Rate"\n"44", "0.03"\n"+1", "0.004"\n',           # quoted, spaced
    "# ACME deck 2024-06\n\n  44 , 0.03 \n\n# US\n+1,0.004\n",   # comments, blanks, spaces, +
    "44,0.03\r\n1,0.004\r\n",                                    # CRLF
    "44,0.03\n1,0.004\n44,0.03\n",                               # an identical repeat
])
def test_tolerated_forms(text: str) -> None:
    assert deck(text) == {"44": 0.03, "1": 0.004}


def test_zero_cost_is_allowed() -> None:
    assert deck("800,0\n") == {"800": 0.0}


@pytest.mark.parametrize("text, problem", [
    ("44,abc\n", 'line 1: cost "abc" is not a number'),
    ("prefix,cost\n44,0.03\n1,abc\n", 'line 3: cost "abc" is not a number'),
    ("44,-0.01\n", 'line 1: cost "-0.01" must be a number >= 0'),
    ("44,inf\n", 'line 1: cost "inf" must be a number >= 0'),
    ("44,0.03\n4x4,0.02\n", 'line 2: prefix "4x4" is not digits'),
    ("44,0.03\n,0.02\n", 'line 2: prefix "" is not digits'),
    ("44,0.03,GB\n", "line 1: expected 2 columns (prefix,cost), got 3"),
    ("44\n", "line 1: expected 2 columns (prefix,cost), got 1"),
    ("44,0.03\n\n# x\n44,0.04\n", "line 4: prefix 44 listed again with cost 0.04 (line 1)"),
])
def test_bad_rows_are_named_by_line(text: str, problem: str) -> None:
    with pytest.raises(RateDeckError) as err:
        deck(text)
    assert err.value.problems == [problem]


def test_a_wrong_file_reports_a_bounded_number_of_rows() -> None:
    text = "".join(f"{i},x\n" for i in range(100))
    with pytest.raises(RateDeckError) as err:
        deck(text)
    assert len(err.value.problems) == MAX_PROBLEMS + 1
    assert err.value.problems[-1] == f"... and {100 - MAX_PROBLEMS} more bad rows"


def test_load_from_file_with_bom(tmp_path: Path) -> None:
    path = tmp_path / "deck.csv"
    path.write_bytes("\ufeffprefix,cost\n49,0.07\n".encode())
    assert dict(load_rate_deck(path)) == {"49": 0.07}


def test_loaded_deck_is_read_only(tmp_path: Path) -> None:
    path = tmp_path / "deck.csv"
    path.write_text("49,0.07\n")
    rates = load_rate_deck(path)
    with pytest.raises(TypeError):
        rates["1"] = 0.1  # type: ignore[index]


def test_fifty_thousand_rows(tmp_path: Path) -> None:
    rng = random.Random(7)
    expected: dict[str, float] = {}
    while len(expected) < 50_000:
        expected[str(rng.randrange(1, 10**9))] = round(rng.uniform(0.001, 0.2), 5)
    lines = ["# big deck", "prefix,cost"]
    lines += [f"+{p},{c}" if i % 3 == 0 else f"{p},{c}" for i, (p, c) in enumerate(expected.items())]
    path = tmp_path / "big.csv"
    path.write_text("\n".join(lines) + "\n")
    assert dict(load_rate_deck(path)) == expected


def test_longest_prefix_cost() -> None:
    rates = {"1": 0.004, "1204": 0.005, "44": 0.03}
    assert longest_prefix_cost(rates, "12045550100") == 0.005
    assert longest_prefix_cost(rates, "12025550100") == 0.004
    assert longest_prefix_cost(rates, "33612345678") is None
