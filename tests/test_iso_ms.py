"""iso_ms renders exactly what datetime's isoformat gives, rounding edges included."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.model import iso_ms


def reference(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.mark.parametrize("ts", [
    0.0, 1.0, 0.0004995, 0.9999995, 0.9999996, 59.9995, 1_764_720_000.9999996,
    1_764_720_000.0004995, 1_764_720_059.9999999, 1e9 + 0.5, 4_102_444_800.0,
])
def test_edges_match_datetime(ts: float) -> None:
    assert iso_ms(ts) == reference(ts)


@settings(max_examples=300)
@given(st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False))
def test_any_time_matches_datetime(ts: float) -> None:
    assert iso_ms(ts) == reference(ts)


def test_consecutive_calls_across_a_second_boundary() -> None:
    assert [iso_ms(t) for t in (10.998, 10.999, 11.0, 10.5)] == [
        "1970-01-01T00:00:10.998Z", "1970-01-01T00:00:10.999Z", "1970-01-01T00:00:11.000Z",
        "1970-01-01T00:00:10.500Z",
    ]
    assert iso_ms(None) is None
