"""Hot reload: what a config edit changes, and a bad edit leaving the old config running."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from router.config import ConfigError, parse_config
from router.reload import ConfigDiff, Reloader, diff_configs
from tests.test_config import MINIMAL


def config_from(text: str, tmp_path: Path):
    return parse_config(text, base_dir=tmp_path, env={})


def edit_carrier0(line: str) -> str:
    """MINIMAL with one line replaced or added in the first carrier."""
    key = line.split("=")[0].strip() + " ="
    head, sep, rest = MINIMAL.partition("[[carriers]]\nname = \"globex\"")
    lines = head.splitlines(keepends=True)
    same = [i for i, old in enumerate(lines) if old.startswith(key)]
    if same:
        lines[same[0]] = line + "\n"
    else:
        lines.insert(len(lines) - 1, line + "\n")
    return "".join(lines) + sep + rest


def diff(new_text: str, tmp_path: Path, old_text: str = MINIMAL) -> ConfigDiff:
    return diff_configs(config_from(old_text, tmp_path), config_from(new_text, tmp_path))


def test_nothing_changed(tmp_path: Path) -> None:
    d = diff(MINIMAL, tmp_path)
    assert d == ConfigDiff() and not d.changed
    assert d.summary()["changed"] is False


@pytest.mark.parametrize("line, key", [
    ('host = "10.0.0.9"', "host"),
    ("port = 2999", "port"),
    ('system_id = "acme2"', "system_id"),
    ('password = "rotated"', "password"),
    ('system_type = "VMA"', "system_type"),
    ("binds = { transmitter = 1, receiver = 1 }", "binds"),
    ("tls = true", "tls"),
])
def test_bind_parameters_need_a_rebind(line: str, key: str, tmp_path: Path) -> None:
    d = diff(edit_carrier0(line), tmp_path)
    assert d.carriers_rebind == ("acme",) and d.carriers_in_place == ()
    assert d.carrier_keys["acme"] == (key,)
    assert not d.routes_changed and d.router_changed == ()


@pytest.mark.parametrize("line, key", [
    ("tps = 20", "tps"),
    ("window = 8", "window"),
    ('concat = "sar"', "concat"),
    ('status_map = { ACKED = "SUBMITTED" }', "status_map"),
    ("health = { probes = 9 }", "health"),
])
def test_live_keys_apply_in_place(line: str, key: str, tmp_path: Path) -> None:
    d = diff(edit_carrier0(line), tmp_path)
    assert d.carriers_in_place == ("acme",) and d.carriers_rebind == ()
    assert d.carrier_keys["acme"] == (key,)


def test_changed_rates_apply_in_place(tmp_path: Path) -> None:
    deck = tmp_path / "acme.csv"
    deck.write_text("44,0.03\n")
    text = edit_carrier0('rate_deck = "acme.csv"')
    old = config_from(text, tmp_path)
    deck.write_text("44,0.02\n")  # same file name, new prices
    d = diff_configs(old, config_from(text, tmp_path))
    assert d.carriers_in_place == ("acme",) and d.carrier_keys["acme"] == ("rates",)


def test_rebind_wins_over_in_place(tmp_path: Path) -> None:
    text = edit_carrier0("tps = 20").replace("port = 2775", "port = 2999")
    d = diff(text, tmp_path)
    assert d.carriers_rebind == ("acme",) and d.carriers_in_place == ()
    assert d.carrier_keys["acme"] == ("port", "tps")


def test_carriers_added_and_removed(tmp_path: Path) -> None:
    globex = MINIMAL.index("[[carriers]]\nname = \"globex\"")
    routes = MINIMAL.index("[[routes]]")
    without_globex = MINIMAL[:globex] + MINIMAL[routes:].replace(', "globex" ]', " ]")
    added = diff(MINIMAL, tmp_path, old_text=without_globex)
    assert added.carriers_added == ("globex",) and added.carriers_removed == ()
    assert added.routes_changed
    removed = diff(without_globex, tmp_path)
    assert removed.carriers_removed == ("globex",) and removed.carriers_added == ()


def test_routes_limits_compliance_mqtt(tmp_path: Path) -> None:
    assert diff(MINIMAL.replace("cost = 0.004", "cost = 0.005"), tmp_path).routes_changed
    d = diff(MINIMAL + "[limits]\ndefault_mps = 5\n", tmp_path)
    assert d.limits_changed and not d.routes_changed and not d.compliance_changed
    d = diff(MINIMAL + '[compliance]\nhelp_keywords = ["AIDE"]\n', tmp_path)
    assert d.compliance_changed and not d.limits_changed
    d = diff(MINIMAL + '[mqtt]\nurl = "mqtt://127.0.0.1"\n', tmp_path)
    assert d.mqtt_changed and d.restart_required == ()


def test_router_keys_and_restart_required(tmp_path: Path) -> None:
    text = '[router]\nsocket = "unix:///run/other.sock"\nstate_dir = "elsewhere"\nmax_segments = 4\n' + MINIMAL
    d = diff(text, tmp_path)
    assert d.router_changed == ("socket", "state_dir", "max_segments")
    assert d.restart_required == ("router.socket", "router.state_dir")
    d = diff('[router]\ntoken = "new"\n' + MINIMAL, tmp_path)
    assert d.router_changed == ("token",) and d.restart_required == ()


def test_summary_names_keys_never_values(tmp_path: Path) -> None:
    text = '[router]\ntoken = "Tk-77x"\n' + edit_carrier0('password = "Pw-91q"')
    summary = diff(text, tmp_path).summary()
    shown = json.dumps(summary)  # also proves it is JSON-friendly
    assert "Pw-91q" not in shown and "Tk-77x" not in shown
    assert summary["carrier_keys"] == {"acme": ["password"]}
    assert summary["carriers_rebind"] == ["acme"] and summary["router_changed"] == ["token"]


def test_reloader_applies_a_good_edit_and_counts(tmp_path: Path) -> None:
    path = tmp_path / "router.toml"
    path.write_text(MINIMAL)
    reloader = Reloader(path, env={})
    first = reloader.config
    path.write_text(edit_carrier0("tps = 20"))
    result = reloader.reload()
    assert result.ok and result.problems == ()
    assert result.diff is not None and result.diff.carriers_in_place == ("acme",)
    assert reloader.config is result.config and result.config.carrier("acme").tps == 20
    assert first.carrier("acme").tps == 100  # the old object is untouched
    assert reloader.counts == {"ok": 1, "error": 0}


def test_reloader_keeps_the_old_config_on_a_bad_edit(tmp_path: Path) -> None:
    path = tmp_path / "router.toml"
    path.write_text(MINIMAL)
    reloader = Reloader(path, env={})
    running = reloader.config
    path.write_text(edit_carrier0("tps = -5"))
    result = reloader.reload()
    assert not result.ok and result.diff is None
    assert result.problems == ("carriers[0].tps: must be > 0, got -5",)
    assert result.config is running and reloader.config is running
    path.write_text("[router\n")  # not even TOML
    assert not reloader.reload().ok
    path.unlink()  # and gone
    assert not reloader.reload().ok
    assert reloader.config is running
    assert reloader.counts == {"ok": 0, "error": 3}
    path.write_text(MINIMAL)  # fixed: no change from what runs
    result = reloader.reload()
    assert result.ok and result.diff is not None and not result.diff.changed
    assert reloader.counts == {"ok": 1, "error": 3}


def test_reloader_reads_env_at_each_reload(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "router.toml"
    path.write_text(edit_carrier0('password = "${ACME_PW}"'))
    monkeypatch.setenv("ACME_PW", "one")
    reloader = Reloader(path)
    monkeypatch.setenv("ACME_PW", "two")
    result = reloader.reload()
    assert result.ok and result.diff is not None and result.diff.carriers_rebind == ("acme",)
    assert reloader.config.carrier("acme").password == "two"


def test_reloader_refuses_a_bad_initial_config(tmp_path: Path) -> None:
    path = tmp_path / "router.toml"
    path.write_text(edit_carrier0("tps = -5"))
    with pytest.raises(ConfigError):
        Reloader(path, env={})
    running = config_from(MINIMAL, tmp_path)
    assert Reloader(path, env={}, config=running).config is running
