"""The TOML writer: what it writes reads back the same with tomllib."""

from __future__ import annotations

import tomllib

import pytest

from router.tomlwrite import toml_value


def test_values_read_back_the_same() -> None:
    values = {"b": True, "i": 7, "f": 0.004, "s": 'a "quoted" é\\n', "t": {"x": 1, "y": "z"}, "a": [1, "two", [3]]}
    text = "\n".join(f"{k} = {toml_value(v)}" for k, v in values.items())
    assert tomllib.loads(text) == values


def test_an_unwritable_value_is_named() -> None:
    with pytest.raises(TypeError, match="None"):
        toml_value(None)
