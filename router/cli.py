"""The `smpp-router` command line (DESIGN.md, "CLI").

argparse builds the namespace; each verb is a small function that wires the pieces from
`router` and `adapters` and returns the exit status. Heavy imports happen inside the verbs
so `smpp-router --help` and `check-config` stay quick.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

Verb = Callable[[argparse.Namespace], int]


def _check_config(args: argparse.Namespace) -> int:
    from router.config import check_config_main

    return check_config_main(args.config)


def _run(args: argparse.Namespace) -> int:
    from router import app, logs

    logs.configure(args.log_format, args.log_level)
    return app.run(args.config)


def _load(path: str) -> Any:
    """The config, or exit 1 with its problems on stderr."""
    from router.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        raise SystemExit(1) from None


def _connect(config: Any) -> Any:
    from adapters.client import Client

    try:
        return Client.connect(config.router.socket, config.router.token, timeout=30.0)
    except OSError as exc:
        print(f"router.socket: cannot reach the router at {config.router.socket}: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


def _send(args: argparse.Namespace) -> int:
    config = _load(args.config)
    with _connect(config) as client:
        reply = client.submit(args.from_, args.to, text=args.text, dlr=not args.no_dlr, priority=args.priority)
    reply.pop("ref", None)
    print(json.dumps(reply, ensure_ascii=False))
    return 0 if reply.get("ok") else 1


def _status(args: argparse.Namespace) -> int:
    from router.status_table import render_stats

    config = _load(args.config)
    with _connect(config) as client:
        reply = client.stats()
    if not reply.get("ok"):
        print(json.dumps(reply, ensure_ascii=False), file=sys.stderr)
        return 1
    reply.pop("ref", None)
    if args.json:
        print(json.dumps(reply, ensure_ascii=False, indent=2))
    else:
        print(render_stats(reply))
    return 0


def _mdr(args: argparse.Namespace) -> int:
    from adapters.store.sqlite import iter_mdrs, open_readonly
    from router.export import write_records
    from router.model import parse_iso
    from router.ports import StoreError
    from router.status import ALL

    config = _load(args.config)
    since = None
    if args.since is not None:
        try:
            since = parse_iso(args.since)
        except ValueError as exc:
            print(f"--since: {exc}", file=sys.stderr)
            return 1
    if args.status is not None and args.status.upper() not in ALL:
        print(f"--status: must be one of {', '.join(sorted(ALL))}, got {args.status!r}", file=sys.stderr)
        return 1
    try:
        conn = open_readonly(config.router.state_dir)
    except StoreError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    try:
        status = args.status.upper() if args.status else None
        write_records(iter_mdrs(conn, since, status), sys.stdout, args.format)
    finally:
        conn.close()
    return 0


def _demo(args: argparse.Namespace) -> int:
    from adapters import demo

    # The defaults live in adapters.demo; only the flags given are passed on.
    given = {"--messages": args.messages, "--state-dir": args.state_dir, "--rate": args.rate}
    return demo.main([x for flag, value in given.items() if value is not None for x in (flag, str(value))])


def _consent(args: argparse.Namespace) -> int:
    from adapters.store.sqlite import iter_consent, open_readonly
    from router.compliance import CONSENT_FIELDS
    from router.export import write_records
    from router.model import iso_ms, parse_iso
    from router.numbers import NumberError, normalize_destination
    from router.ports import StoreError

    config = _load(args.config)
    since = number = None
    try:
        if args.since is not None:
            since = parse_iso(args.since)
    except ValueError as exc:
        print(f"--since: {exc}", file=sys.stderr)
        return 1
    try:
        if args.number is not None:
            number = normalize_destination(args.number, "--number")
    except NumberError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    try:
        conn = open_readonly(config.router.state_dir)
    except StoreError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    try:
        records = ({**r, "at": iso_ms(r["at"])} for r in iter_consent(conn, since, number))
        write_records(records, sys.stdout, args.format, CONSENT_FIELDS)
    finally:
        conn.close()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smpp-router", description="SMPP 3.4 carrier edge router.")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")

    def verb(name: str, func: Verb, help: str, *, config: bool = True) -> argparse.ArgumentParser:
        p = verbs.add_parser(name, help=help, description=help)
        if config:
            p.add_argument("-c", "--config", required=True, metavar="FILE", help="router.toml")
        p.set_defaults(func=func)
        return p

    p = verb("run", _run, "run the daemon in the foreground (SIGTERM drains and exits, SIGHUP reloads)")
    p.add_argument("--log-format", choices=("json", "console"), default="json")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))

    verb("check-config", _check_config, "validate a config file: exit 0, or 1 with one line per problem")

    p = verb("send", _send, "submit one message through the router's socket and print the reply")
    p.add_argument("--from", dest="from_", required=True, metavar="N")
    p.add_argument("--to", required=True, metavar="N")
    p.add_argument("--text", required=True, metavar="T")
    p.add_argument("--priority", type=int, choices=(0, 1), default=0)
    p.add_argument("--no-dlr", action="store_true", help="ask for no delivery receipt")

    p = verb("status", _status, "carriers, binds, health, queues and rates of the running router")
    p.add_argument("--json", action="store_true", help="print the stats reply as JSON")

    p = verb("mdr", _mdr, "export message detail records from the store (works while the daemon runs)")
    p.add_argument("--since", metavar="ISO", help="only MDRs accepted at or after this time")
    p.add_argument("--status", metavar="S", help="only MDRs with this status")
    p.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")

    p = verb("consent", _consent, "export opt-out / opt-in records from the store (works while the daemon runs)")
    p.add_argument("--number", metavar="N", help="only this recipient's records (E.164)")
    p.add_argument("--since", metavar="ISO", help="only records made at or after this time")
    p.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")

    p = verb("demo", _demo, "the main job on embedded defaults: simulated carriers, traffic, a carrier killed, a summary",
             config=False)
    p.add_argument("--messages", type=int, metavar="N", help="requests to push [500, about a minute]")
    p.add_argument("--state-dir", metavar="DIR", help="config, store, logs and mdr.jsonl [a new temp dir]")
    p.add_argument("--rate", type=float, metavar="R", help="requests per second [12]")

    _add_carrier_sim(verbs)
    return parser


def _add_carrier_sim(verbs: Any) -> None:
    """The simulated carrier's flags live with the simulator; parsed there."""
    p = verbs.add_parser(
        "carrier-sim", help="run a simulated carrier SMSC (for tests and trials)", add_help=False,
    )
    p.add_argument("sim_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=_carrier_sim)


def _carrier_sim(args: argparse.Namespace) -> int:
    from adapters import carrier_sim

    return int(carrier_sim.main(args.sim_args) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["carrier-sim"]:
        # The simulator parses its own flags (argparse's REMAINDER drops a leading option).
        from adapters import carrier_sim

        return int(carrier_sim.main(args_list[1:]) or 0)
    parser = build_parser()
    args = parser.parse_args(args_list)
    verb: Verb | None = getattr(args, "func", None)
    if verb is None:
        parser.print_help()
        return 0 if args.verb is None else 2
    try:
        return verb(args)
    except BrokenPipeError:
        # `smpp-router mdr ... | head`: the reader left; that is not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
