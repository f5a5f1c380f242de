"""Carrier rate decks: CSV files of `prefix,cost` (cost per SMS segment).

Read the way carriers publish them: an optional header row (a first row with neither a
numeric prefix nor a numeric cost), blank lines, `#` comments, spaces around fields, quoted fields, and a
leading `+` on prefixes are all accepted. A prefix listed twice with the same cost is
tolerated (decks are often concatenated); with two different costs it is an error,
since which one applies would be a guess.

Decks run to tens of thousands of rows, so rows without quotes are split with
`str.split` and only quoted rows go through the csv module.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Final

#: Bad rows reported per file; a wrong file would otherwise print thousands of lines.
MAX_PROBLEMS: Final = 10


class RateDeckError(Exception):
    """A rate deck that cannot be used; `problems` are lines like `line 12: cost "abc" ...`."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def _fields(line: str) -> list[str]:
    if '"' in line:
        return next(csv.reader((line,), skipinitialspace=True))
    return line.split(",")


def _cost(text: str) -> float | None:
    try:
        cost = float(text)
    except ValueError:
        return None
    return cost


def parse_rate_deck(lines: Iterable[str]) -> Mapping[str, float]:
    """Prefix → cost from the lines of a deck.

    Raises RateDeckError listing the bad rows (`line N: ...`, 1-based), at most
    MAX_PROBLEMS of them plus a count of the rest.
    """
    rates: dict[str, float] = {}
    first_line: dict[str, int] = {}
    problems: list[str] = []
    seen_row = False
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line[0] == "#":
            continue
        fields = _fields(line)
        header, seen_row = not seen_row, True
        if len(fields) != 2:
            problems.append(f"line {number}: expected 2 columns (prefix,cost), got {len(fields)}")
            continue
        prefix, cost_text = fields[0].strip().removeprefix("+"), fields[1].strip()
        cost = _cost(cost_text)
        if header and cost is None and not prefix.isdigit():
            continue  # a header row such as "prefix,cost" or "Dial code,Rate"
        problem = _check_row(prefix, cost, cost_text)
        if problem is None and prefix in rates and rates[prefix] != cost:
            problem = f"prefix {prefix} listed again with cost {cost_text} (line {first_line[prefix]})"
        if problem is not None:
            problems.append(f"line {number}: {problem}")
            continue
        assert cost is not None
        if prefix not in rates:
            rates[prefix] = cost
            first_line[prefix] = number
    if problems:
        extra = len(problems) - MAX_PROBLEMS
        shown = problems[:MAX_PROBLEMS]
        if extra > 0:
            shown.append(f"... and {extra} more bad rows")
        raise RateDeckError(shown)
    return MappingProxyType(rates)


def _check_row(prefix: str, cost: float | None, cost_text: str) -> str | None:
    if not prefix.isdigit() or not prefix.isascii():
        return f'prefix "{prefix}" is not digits'
    if cost is None:
        return f'cost "{cost_text}" is not a number'
    if not math.isfinite(cost) or cost < 0:
        return f'cost "{cost_text}" must be a number >= 0'
    return None


def load_rate_deck(path: Path) -> Mapping[str, float]:
    """Prefix → cost from the deck at `path` (UTF-8, a BOM tolerated).

    Raises OSError when the file cannot be read, RateDeckError for bad rows.
    """
    with path.open(encoding="utf-8-sig", newline="") as file:
        return parse_rate_deck(file)


def longest_prefix_cost(rates: Mapping[str, float], number: str) -> float | None:
    """The cost of the longest prefix of `number` in `rates`, or None if none matches."""
    for end in range(len(number), 0, -1):
        cost = rates.get(number[:end])
        if cost is not None:
            return cost
    return None
