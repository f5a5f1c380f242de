"""Loading the config: defaults, ${VAR} expansion, paths, the example file, check-config."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from router.config import (
    ConfigError,
    check_config_main,
    load_config,
    parse_config,
    parse_socket_url,
)
from router.config_schema import HealthConfig

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "config" / "router.toml"
EXAMPLE_ENV = {
    "ROUTER_TOKEN": "s3cret-token",
    "ACME_SMPP_PASSWORD": "acmepw1",
    "GLOBEX_SMPP_PASSWORD": "globexpw",
    "INITECH_SMPP_PASSWORD": "ini",
}

#: The smallest useful config: two carriers, one route. Other test modules import it.
MINIMAL = """
[[carriers]]
name = "acme"
host = "127.0.0.1"
port = 2775
system_id = "acme"
password = "secret"

[[carriers]]
name = "globex"
host = "127.0.0.1"
port = 2776
system_id = "globex"
password = "secret2"

[[routes]]
prefix = "1"
carriers = [ { name = "acme", cost = 0.004 }, "globex" ]
"""


def parse(text: str, tmp_path: Path, env: dict[str, str] | None = None):
    return parse_config(text, base_dir=tmp_path, env=env or {})


def test_minimal_config_gets_every_default(tmp_path: Path) -> None:
    config = parse(MINIMAL, tmp_path)
    r = config.router
    assert (r.socket, r.metrics, r.token) == ("unix:///tmp/smpp-router.sock", "127.0.0.1:9464", None)
    assert r.state_dir == tmp_path / "var"
    assert (r.default_validity_s, r.max_segments, r.queue_high_water, r.mdr_retention_days) == (
        86400, 10, 1_000_000, 30)
    assert config.mqtt is None and config.path is None
    acme = config.carrier("acme")
    assert dict(acme.binds) == {"transceiver": 1}
    assert (acme.tps, acme.window, acme.tls, acme.system_type) == (100.0, 64, False, "")
    assert (acme.message_id_format, acme.dc0_charset, acme.concat) == ("auto", "gsm7", "udh8")
    assert acme.rate_deck is None and dict(acme.rates) == {}
    assert (acme.retry_in_doubt, acme.receipts_on_esm_class_zero, acme.receipt_first_part_only) == (
        False, False, False)
    assert acme.receipt_timeout_s == 172800 and acme.throttle_failover_s == 30
    assert dict(acme.status_map) == {} and dict(acme.status_classes) == {} and dict(acme.ton_npi) == {}
    assert (acme.enquire_link_s, acme.response_timeout_s, acme.bind_timeout_s) == (30, 30, 10)
    assert (acme.reconnect_max_s, acme.stale_session_s, acme.max_pdu_bytes) == (60, 90, 73728)
    assert acme.health == HealthConfig(0.5, 30, 20, 15, 3)
    route = config.routes[0]
    assert route.prefix == "1" and route.sources == () and dict(route.tags) == {}
    assert [(c.name, c.cost) for c in route.carriers] == [("acme", 0.004), ("globex", None)]
    c = config.compliance
    assert c.opt_out_keywords == ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT")
    assert c.opt_in_keywords == ("START", "UNSTOP") and c.help_keywords == ("HELP", "INFO")
    assert c.programs == ()
    limits = config.limits
    assert (limits.default_mps, limits.burst, limits.destination_mps, limits.numbers) == (1.0, 1, 0.0, ())


def test_config_objects_are_immutable(tmp_path: Path) -> None:
    config = parse(MINIMAL, tmp_path)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.carrier("acme").tps = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.carrier("acme").binds["receiver"] = 1  # type: ignore[index]
    with pytest.raises(KeyError):
        config.carrier("nobody")
    # The name index follows the carriers through dataclasses.replace.
    fewer = dataclasses.replace(config, carriers=config.carriers[:1])
    assert fewer.carrier("acme") is config.carrier("acme") and fewer == fewer
    with pytest.raises(KeyError):
        fewer.carrier("globex")


def test_secrets_stay_out_of_repr(tmp_path: Path) -> None:
    text = '[router]\ntoken = "tok-123456"\n[mqtt]\nurl = "mqtt://user:mqttpw@127.0.0.1:1883"\n' + MINIMAL
    config = parse(text.replace('"secret"', '"Zq9pw"'), tmp_path)
    shown = repr(config)
    assert config.router.token == "tok-123456" and config.carrier("acme").password == "Zq9pw"
    for secret in ("tok-123456", "Zq9pw", "mqttpw"):
        assert secret not in shown
    assert "mqtt://user:***@127.0.0.1:1883" in shown


def test_env_expansion_in_any_string(tmp_path: Path) -> None:
    text = MINIMAL.replace('host = "127.0.0.1"\nport = 2775', 'host = "${ACME_HOST}"\nport = 2775', 1)
    text = text.replace('password = "secret"', 'password = "${PW}$X"', 1)
    text = '[router]\nsocket = "unix://${RUN}/r-${N}.sock"\n' + text
    env = {"ACME_HOST": "smpp.acme.example", "PW": "pw", "RUN": "/run/sr", "N": "1"}
    config = parse(text, tmp_path, env)
    assert config.carrier("acme").host == "smpp.acme.example"
    assert config.carrier("acme").password == "pw$X"  # only ${NAME} is a reference
    assert config.router.socket == "unix:///run/sr/r-1.sock"


def test_missing_env_var_names_key_and_variable_once(tmp_path: Path) -> None:
    text = MINIMAL.replace('password = "secret2"', 'password = "${GLOBEX_SMPP_PASSWORD}"')
    with pytest.raises(ConfigError) as err:
        parse(text, tmp_path)
    # Not also "too long": the unexpanded reference is not judged as a password.
    assert err.value.problems == [
        "carriers[1].password: environment variable GLOBEX_SMPP_PASSWORD is not set"]


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path, monkeypatch) -> None:
    folder = tmp_path / "etc"
    (folder / "rates").mkdir(parents=True)
    (folder / "rates" / "acme.csv").write_text("44,0.03\n")
    text = '[router]\nstate_dir = "../state/router"\n' + MINIMAL.replace(
        'password = "secret"\n', 'password = "secret"\nrate_deck = "rates/acme.csv"\n', 1)
    (folder / "router.toml").write_text(text)
    monkeypatch.chdir(tmp_path)  # a relative config path, a cwd elsewhere
    config = load_config("etc/router.toml", env={})
    assert config.path == folder / "router.toml"
    assert config.router.state_dir == tmp_path / "state" / "router"
    assert config.carrier("acme").rate_deck == folder / "rates" / "acme.csv"
    assert dict(config.carrier("acme").rates) == {"44": 0.03}


def test_absolute_state_dir_is_kept(tmp_path: Path) -> None:
    config = parse('[router]\nstate_dir = "/var/lib/smpp-router"\n' + MINIMAL, tmp_path)
    assert config.router.state_dir == Path("/var/lib/smpp-router")


def test_full_carrier_profile_is_read(tmp_path: Path) -> None:
    extra = """binds = { transmitter = 2, receiver = 1, transceiver = 0 }
tps = 12.5
status_map = { buffred = "submitted", NOROUTE = "UNDELIVERABLE" }
status_classes = { "0x0401" = "permanent", "1089" = "transient" }
ton_npi = { short_code = [3, 1], alphanumeric = [5, 0] }
health = { error_rate = 0.25, probes = 5 }
"""
    text = MINIMAL.replace('password = "secret"\n', 'password = "secret"\n' + extra, 1)
    acme = parse(text, tmp_path).carrier("acme")
    assert dict(acme.binds) == {"transmitter": 2, "receiver": 1}  # zero counts dropped
    assert acme.tps == 12.5
    assert dict(acme.status_map) == {"BUFFRED": "SUBMITTED", "NOROUTE": "UNDELIVERABLE"}
    assert dict(acme.status_classes) == {0x401: "permanent", 1089: "transient"}
    assert dict(acme.ton_npi) == {"short_code": (3, 1), "alphanumeric": (5, 0)}
    assert acme.health == HealthConfig(error_rate=0.25, probes=5)


def test_routes_limits_and_programs(tmp_path: Path) -> None:
    text = MINIMAL + """
[[routes]]
prefix = ""
carriers = ["globex"]

[[routes]]
prefix = "+1"
carriers = ["globex"]
sources = ["+1800", "ACME"]
tags = { campaign = "otp" }

[[compliance.programs]]
name = "alerts"
senders = ["+12025550100", "ACME"]
help_reply = "Alerts: help at example.com"

[limits]
default_mps = 2
burst = 4
destination_mps = 0.5
[[limits.numbers]]
match = "+1800"
mps = 3
[[limits.numbers]]
match = "18005"
mps = 9
burst = 9
"""
    config = parse(text, tmp_path)
    assert [r.prefix for r in config.routes] == ["1", "", "1"]
    assert config.routes[2].sources == ("1800", "ACME") and dict(config.routes[2].tags) == {"campaign": "otp"}
    program = config.compliance.program_for("+12025550100")
    assert program is not None and program.senders == ("12025550100", "ACME")
    assert program.help_reply == "Alerts: help at example.com"
    assert "START" in program.opt_out_reply and "STOP" in program.opt_in_reply
    assert config.compliance.program_for("15550000") is None
    limits = config.limits
    assert limits.for_source("+18005550100") == (3.0, 4)  # first match wins, burst defaults
    assert limits.for_source("447700900000") == (2.0, 4)
    assert limits.destination_mps == 0.5


def test_keywords_are_stored_upper_case(tmp_path: Path) -> None:
    text = MINIMAL + '[compliance]\nopt_out_keywords = ["stop", " Arret "]\n'
    assert parse(text, tmp_path).compliance.opt_out_keywords == ("STOP", "ARRET")


@pytest.mark.parametrize("url, expected", [
    ("unix:///tmp/r.sock", ("unix", "/tmp/r.sock", None, None)),
    ("tcp://127.0.0.1:7600", ("tcp", None, "127.0.0.1", 7600)),
    ("tcp://[::1]:7600", ("tcp", None, "::1", 7600)),
])
def test_parse_socket_url(url: str, expected: tuple) -> None:
    assert tuple(parse_socket_url(url)) == expected


def test_loopback_tcp_socket_needs_no_token(tmp_path: Path) -> None:
    for host in ("127.0.0.1", "localhost", "[::1]"):
        config = parse(f'[router]\nsocket = "tcp://{host}:7600"\n' + MINIMAL, tmp_path)
        assert config.router.token is None
    config = parse('[router]\nsocket = "tcp://0.0.0.0:7600"\ntoken = "t"\n' + MINIMAL, tmp_path)
    assert config.router.token == "t"


def test_empty_metrics_means_no_endpoint(tmp_path: Path) -> None:
    assert parse('[router]\nmetrics = ""\n' + MINIMAL, tmp_path).router.metrics is None


def test_example_config_loads_with_its_rate_decks() -> None:
    config = load_config(EXAMPLE, env=EXAMPLE_ENV)
    assert [c.name for c in config.carriers] == ["acme", "globex", "initech"]
    assert len(config.routes) == 5
    assert config.router.token == "s3cret-token"
    assert config.router.state_dir == EXAMPLE.parent / "var"
    acme, globex = config.carrier("acme"), config.carrier("globex")
    assert acme.rates["44"] == 0.0355 and acme.rates["234"] == 0.152  # "+234" in the deck
    assert "Prefix" not in acme.rates and len(acme.rates) > 30
    assert globex.rates["4915"] == 0.0688  # quoted fields, quoted header
    assert globex.password == "globexpw" and dict(globex.binds) == {"transmitter": 2, "receiver": 1}
    assert config.carrier("initech").rates == {}
    assert config.mqtt is not None and config.mqtt.topic_prefix == "smpp-router"
    assert len(config.compliance.programs) == 2
    assert config.limits.for_source("ACME") == (10.0, 20)


def test_example_config_names_every_env_var_it_needs() -> None:
    for missing in EXAMPLE_ENV:
        env = {k: v for k, v in EXAMPLE_ENV.items() if k != missing}
        with pytest.raises(ConfigError) as err:
            load_config(EXAMPLE, env=env)
        assert len(err.value.problems) == 1 and missing in err.value.problems[0]


def test_check_config_main_ok(tmp_path: Path, capsys, monkeypatch) -> None:
    (tmp_path / "router.toml").write_text(MINIMAL)
    assert check_config_main(tmp_path / "router.toml") == 0
    out = capsys.readouterr()
    assert out.out == "ok: 2 carriers, 1 route\n" and out.err == ""
    for name, value in EXAMPLE_ENV.items():
        monkeypatch.setenv(name, value)
    assert check_config_main(EXAMPLE) == 0  # env defaults to os.environ
    assert capsys.readouterr().out == "ok: 3 carriers, 5 routes\n"


def test_check_config_main_reports_each_problem(tmp_path: Path, capsys) -> None:
    text = MINIMAL.replace("port = 2775", "port = 0").replace('"globex" ]', '"globx" ]')
    (tmp_path / "router.toml").write_text('[router]\nsockett = "x"\n' + text)
    assert check_config_main(tmp_path / "router.toml") == 1
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err.splitlines() == [
        "router.sockett: unknown key",
        "carriers[0].port: must be >= 1, got 0",
        'routes[0].carriers[1]: no carrier "globx"',
    ]


def test_check_config_main_missing_file(tmp_path: Path, capsys) -> None:
    assert check_config_main(tmp_path / "nope.toml") == 1
    assert "config file not found" in capsys.readouterr().err
