"""Every kind of config mistake is reported with its key path, all of them at once."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router.config import ConfigError, build_config, parse_config
from tests.test_config import MINIMAL

CARRIER0_END = 'password = "secret"\n'


def with_edits(top: str = "", router: str = "", carrier0: str = "", tail: str = "") -> str:
    """MINIMAL edited: lines added at the top level, in [router] and at the end; in
    carriers[0] a line replaces the one with the same key, or is added."""
    head, sep, rest = MINIMAL.partition(CARRIER0_END)
    lines = head.splitlines(keepends=True)
    for line in carrier0.splitlines(keepends=True):
        key = line.split("=")[0].strip() + " ="
        same = [i for i, old in enumerate(lines) if old.startswith(key)]
        if same:
            lines[same[0]] = line
        else:
            rest = line + rest
    text = "".join(lines) + sep + rest
    return top + ("[router]\n" + router if router else "") + text + tail


EXTRA_CARRIER = '\n[[carriers]]\nname = "{name}"\nhost = "h"\nport = 1\nsystem_id = "x"\n'

#: (edits, the exact problem expected among those reported)
CASES: list[tuple[dict[str, str], str]] = [
    # unknown keys, at every level
    ({"top": "colour = 1\n"}, "colour: unknown key"),
    ({"router": 'sockett = "x"\n'}, "router.sockett: unknown key"),
    ({"carrier0": "tpss = 5\n"}, "carriers[0].tpss: unknown key"),
    ({"carrier0": "health = { probs = 1 }\n"}, "carriers[0].health.probs: unknown key"),
    ({"carrier0": "binds = { transceiver = 1, tranceiver = 1 }\n"}, "carriers[0].binds.tranceiver: unknown key"),
    ({"tail": '[[routes]]\nprefix = "2"\ncarriers = ["acme"]\nsource = ["1"]\n'}, "routes[1].source: unknown key"),
    ({"tail": '[[routes]]\nprefix = "2"\ncarriers = [{ name = "acme", costs = 1 }]\n'},
     "routes[1].carriers[0].costs: unknown key"),
    ({"tail": "[limits]\nburts = 2\n"}, "limits.burts: unknown key"),
    ({"tail": '[mqtt]\nurl = "mqtt://h"\nqos = 1\n'}, "mqtt.qos: unknown key"),
    ({"tail": '[[compliance.programs]]\nname = "p"\nsenders = ["1"]\nreply = "x"\n'},
     "compliance.programs[0].reply: unknown key"),
    # wrong types; a boolean is never a number
    ({"carrier0": "port = true\n"}, "carriers[0].port: must be an integer, got true (boolean)"),
    ({"carrier0": "tps = true\n"}, "carriers[0].tps: must be a number, got true (boolean)"),
    ({"carrier0": 'port = "2775"\n'}, 'carriers[0].port: must be an integer, got "2775" (string)'),
    ({"carrier0": "window = 1.5\n"}, "carriers[0].window: must be an integer, got 1.5 (float)"),
    ({"carrier0": 'tls = "yes"\n'}, 'carriers[0].tls: must be true or false, got "yes" (string)'),
    ({"carrier0": "health = 5\n"}, "carriers[0].health: must be a table, got 5 (integer)"),
    ({"carrier0": "tps = nan\n"}, "carriers[0].tps: must be a finite number, got nan"),
    ({"router": "token = 5\n"}, "router.token: must be a string, got 5 (integer)"),
    # ranges
    ({"carrier0": "tps = -5\n"}, "carriers[0].tps: must be > 0, got -5"),
    ({"carrier0": "tps = 0\n"}, "carriers[0].tps: must be > 0, got 0"),
    ({"carrier0": "port = 70000\n"}, "carriers[0].port: must be <= 65535, got 70000"),
    ({"carrier0": "window = 0\n"}, "carriers[0].window: must be >= 1, got 0"),
    ({"carrier0": "max_pdu_bytes = 512\n"}, "carriers[0].max_pdu_bytes: must be >= 1024, got 512"),
    ({"carrier0": "health = { error_rate = 1.5 }\n"}, "carriers[0].health.error_rate: must be <= 1.0, got 1.5"),
    ({"carrier0": 'system_id = "a_very_long_system_id"\n'},
     "carriers[0].system_id: must be at most 15 ASCII characters (SMPP 3.4 §4.1.1), got 21"),
    ({"router": "max_segments = 0\n"}, "router.max_segments: must be >= 1, got 0"),
    ({"tail": "[limits]\ndefault_mps = 0\n"}, "limits.default_mps: must be > 0, got 0"),
    ({"tail": "[limits]\ndestination_mps = -1\n"}, "limits.destination_mps: must be >= 0, got -1"),
    ({"tail": '[[limits.numbers]]\nmatch = "1800"\nmps = -3\n'}, "limits.numbers[0].mps: must be > 0, got -3"),
    ({"tail": '[[routes]]\nprefix = "2"\ncarriers = [{ name = "acme", cost = -0.1 }]\n'},
     "routes[1].carriers[0].cost: must be >= 0, got -0.1"),
    # enums list what is allowed
    ({"carrier0": 'concat = "udh7"\n'}, 'carriers[0].concat: must be one of udh8, udh16, sar, payload; got "udh7"'),
    ({"carrier0": 'message_id_format = "HEX"\n'},
     'carriers[0].message_id_format: must be one of auto, same, hex, dec; got "HEX"'),
    ({"carrier0": 'dc0_charset = "utf8"\n'},
     'carriers[0].dc0_charset: must be one of gsm7, gsm7_packed, latin1, ascii; got "utf8"'),
    ({"carrier0": 'status_map = { DELIVRD = "GONE" }\n'},
     ("carriers[0].status_map.DELIVRD: must be one of DELIVERED, EXPIRED, UNDELIVERABLE, REJECTED, "
      'UNKNOWN, SUBMITTED; got "GONE"')),
    ({"carrier0": 'status_classes = { "0x0401" = "fatal" }\n'},
     'carriers[0].status_classes.0x0401: must be one of transient, permanent; got "fatal"'),
    ({"carrier0": 'status_classes = { "0x04zz" = "permanent" }\n'},
     'carriers[0].status_classes.0x04zz: key must be a command_status from 1 to 0xFFFFFFFF, like "0x0401" or "1025"'),
    ({"carrier0": 'status_classes = { "1_025" = "permanent" }\n'},
     ('carriers[0].status_classes.1_025: key must be a command_status from 1 to 0xFFFFFFFF, '
      'like "0x0401" or "1025"')),
    ({"carrier0": 'status_classes = { "0x0401" = "permanent", "1025" = "transient" }\n'},
     "carriers[0].status_classes.1025: command_status 0x00000401 is listed twice"),
    ({"carrier0": "ton_npi = { short_code = [3, 2] }\n"},
     ("carriers[0].ton_npi.short_code: must be [ton, npi] with ton in 0..6 (SMPP 3.4 §5.2.5) and npi one "
      "of 0, 1, 3, 4, 6, 8, 9, 10, 14, 18 (§5.2.6)")),
    ({"carrier0": "ton_npi = { national = [2, 1] }\n"}, "carriers[0].ton_npi.national: unknown key"),
    ({"carrier0": "binds = { receiver = 2 }\n"}, "carriers[0].binds: needs at least one transmitter or transceiver bind"),
    # names
    ({"tail": EXTRA_CARRIER.format(name="ac me")},
     'carriers[2].name: must match [A-Za-z0-9_-]+ (at most 64 characters), got "ac me"'),
    ({"tail": EXTRA_CARRIER.format(name="acme")}, 'carriers[2].name: duplicate carrier "acme" (also carriers[0])'),
    ({"tail": '\n[[carriers]]\nname = "x"\nport = 1\nsystem_id = "x"\n'}, "carriers[2].host: is required"),
    # routes
    ({"tail": '[[routes]]\nprefix = "2"\ncarriers = [{ name = "acme" }, { name = "globx" }]\n'},
     'routes[1].carriers[1].name: no carrier "globx"'),
    ({"tail": '[[routes]]\nprefix = "2"\ncarriers = ["globx"]\n'}, 'routes[1].carriers[0]: no carrier "globx"'),
    ({"tail": '[[routes]]\nprefix = "2"\ncarriers = ["acme", "acme"]\n'},
     'routes[1].carriers[1]: carrier "acme" is listed twice'),
    ({"tail": '[[routes]]\nprefix = "2"\ncarriers = []\n'},
     "routes[1].carriers: must be a non-empty array of carriers, got array"),
    ({"tail": '[[routes]]\nprefix = "1a"\ncarriers = ["acme"]\n'},
     'routes[1].prefix: must be digits ("" for the default route), got "1a"'),
    ({"tail": '[[routes]]\nprefix = "+1"\ncarriers = ["acme"]\n'},
     "routes[1]: duplicate of routes[0] (same prefix, sources and tags)"),
    ({"tail": '[[routes]]\nprefix = "2"\ncarriers = ["acme"]\nsources = ["1-800"]\n'},
     ('routes[1].sources[0]: must be digits (a number prefix) or an alphanumeric sender (a letter, '
      'at most 11 characters), got "1-800"')),
    ({"tail": '[[routes]]\nprefix = "2"\ncarriers = ["acme"]\ntags = { campaign = 1 }\n'},
     "routes[1].tags.campaign: must be a string, got 1 (integer)"),
    # sockets and the token
    ({"router": 'socket = "http://127.0.0.1:80"\n'},
     'router.socket: must be unix:///absolute/path or tcp://host:port, got "http://127.0.0.1:80"'),
    ({"router": 'socket = "unix://relative.sock"\n'},
     'router.socket: must be unix:///absolute/path or tcp://host:port, got "unix://relative.sock"'),
    ({"router": 'socket = "tcp://127.0.0.1"\n'},
     'router.socket: must be unix:///absolute/path or tcp://host:port, got "tcp://127.0.0.1"'),
    ({"router": 'socket = "tcp://0.0.0.0:7600"\n'},
     "router.token: is required when router.socket listens beyond loopback (tcp://0.0.0.0:7600)"),
    ({"router": 'socket = "tcp://router.internal:7600"\ntoken = ""\n'},
     "router.token: is required when router.socket listens beyond loopback (tcp://router.internal:7600)"),
    ({"router": 'metrics = "9464"\n'}, 'router.metrics: must be host:port (or "" for none), got "9464"'),
    ({"tail": '[mqtt]\nurl = "http://h"\n'}, 'mqtt.url: must be mqtt://host[:port] or mqtts://host[:port], got "http://h"'),
    ({"tail": '[mqtt]\nurl = "mqtt://h"\ntopic_prefix = "a/#"\n'},
     'mqtt.topic_prefix: must be a topic without wildcards or outer slashes, got "a/#"'),
    # environment
    ({"carrier0": 'host = "${ACME_HOST}"\n'.replace("host", "system_type")},
     "carriers[0].system_type: environment variable ACME_HOST is not set"),
    ({"tail": '[[routes]]\nprefix = "2"\ncarriers = ["acme"]\ntags = { team = "${TEAM}" }\n'},
     "routes[1].tags.team: environment variable TEAM is not set"),
    # compliance
    ({"tail": '[compliance]\nopt_in_keywords = ["START", "STOP"]\n'},
     'compliance.opt_in_keywords: "STOP" is already a keyword of another kind'),
    ({"tail": '[compliance]\nhelp_keywords = ["NEED HELP"]\n'},
     'compliance.help_keywords[0]: must be one word, got "NEED HELP"'),
    ({"tail": '[[compliance.programs]]\nname = "a"\nsenders = ["1800"]\n'
              '[[compliance.programs]]\nname = "b"\nsenders = ["+1800"]\n'},
     'compliance.programs[1].senders: "1800" is already a sender of program "a"'),
    ({"tail": '[[compliance.programs]]\nname = "a"\nsenders = ["1"]\n'
              '[[compliance.programs]]\nname = "a"\nsenders = ["2"]\n'},
     'compliance.programs[1].name: duplicate program "a"'),
    ({"tail": '[[compliance.programs]]\nname = "a"\nsenders = []\n'},
     "compliance.programs[0].senders: must name at least one sender"),
]


@pytest.mark.parametrize("edits, expected", CASES, ids=[c[1][:60] for c in CASES])
def test_each_mistake_is_named(edits: dict[str, str], expected: str, tmp_path: Path) -> None:
    text = with_edits(**edits)
    with pytest.raises(ConfigError) as err:
        parse_config(text, base_dir=tmp_path, env={})
    assert expected in err.value.problems, err.value.problems
    assert str(err.value) == "\n".join(err.value.problems)


def test_every_problem_is_collected(tmp_path: Path) -> None:
    text = with_edits(router='sockett = "x"\n', carrier0="tps = -5\nwindow = true\n",
                      tail='[[routes]]\nprefix = "9"\ncarriers = ["globx"]\n')
    with pytest.raises(ConfigError) as err:
        parse_config(text, base_dir=tmp_path, env={})
    assert err.value.problems == [
        "router.sockett: unknown key",
        "carriers[0].tps: must be > 0, got -5",
        "carriers[0].window: must be an integer, got true (boolean)",
        'routes[1].carriers[0]: no carrier "globx"',
    ]


@pytest.mark.parametrize("text, expected", [
    ("[router]\n", "carriers: at least one [[carriers]] entry is required"),
    (MINIMAL.split("[[routes]]")[0], "routes: at least one [[routes]] entry is required"),
    ("[router\n", "config: invalid TOML: "),
])
def test_empty_or_broken_files(text: str, expected: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(text, base_dir=tmp_path, env={})
    assert any(p.startswith(expected) for p in err.value.problems), err.value.problems


def test_rate_deck_problems_name_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "rates").mkdir()
    (tmp_path / "rates" / "acme.csv").write_text("prefix,cost\n44,0.03\n\n# note\n1,abc\n")
    (tmp_path / "rates" / "empty.csv").write_text("# nothing yet\n")
    text = with_edits(carrier0='rate_deck = "rates/acme.csv"\n').replace(
        'password = "secret2"\n', 'password = "secret2"\nrate_deck = "rates/empty.csv"\n')
    text += EXTRA_CARRIER.format(name="initech") + 'rate_deck = "rates/missing.csv"\n'
    with pytest.raises(ConfigError) as err:
        parse_config(text, base_dir=tmp_path, env={})
    assert err.value.problems == [
        'carriers[0].rate_deck: rates/acme.csv line 5: cost "abc" is not a number',
        "carriers[1].rate_deck: rates/empty.csv: no rates in the file",
        f"carriers[2].rate_deck: rates/missing.csv: file not found ({tmp_path}/rates/missing.csv)",
    ]


# --- whatever the document, the loader answers with a Config or a ConfigError --------------

_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
    st.text(max_size=12), st.lists(st.integers(0, 20), max_size=3),
    st.dictionaries(st.sampled_from(["name", "cost", "x", "transceiver"]), st.integers(-2, 3), max_size=2),
)
_BASE: dict[str, Any] = tomllib.loads(MINIMAL)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _paths(value, prefix + (i,))
    return found


_ALL_PATHS = _paths(_BASE) + [("router",), ("limits",), ("compliance",), ("carriers", 0, "health"),
                              ("carriers", 0, "binds"), ("carriers", 0, "ton_npi"), ("routes", 0, "tags")]


def _set(node: Any, path: tuple[Any, ...], value: Any) -> None:
    """Put `value` at `path` in the document, as far as the (already edited) tree allows."""
    for step in path[:-1]:
        if isinstance(node, dict):
            node = node.setdefault(step, {})
        elif isinstance(node, list) and isinstance(step, int) and step < len(node):
            node = node[step]
        else:
            return
    last = path[-1]
    if isinstance(node, dict) or isinstance(node, list) and isinstance(last, int) and last < len(node):
        node[last] = value


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.sampled_from(_ALL_PATHS), _VALUES), min_size=1, max_size=3))
def test_any_edit_gives_a_config_or_a_config_error(edits: list[tuple[tuple[Any, ...], Any]],
                                                   tmp_path: Path) -> None:
    data = copy.deepcopy(_BASE)
    for path, value in edits:
        _set(data, path, value)
    try:
        build_config(data, base_dir=tmp_path, env={})
    except ConfigError as exc:
        assert exc.problems and all(": " in p for p in exc.problems)
