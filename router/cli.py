"""The `smpp-router` command line.

Each verb is a small function that parses nothing itself: argparse builds the namespace,
the verb wires the pieces from `router` and `adapters` and returns the exit status.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

Verb = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="smpp-router",
        description="SMPP 3.4 carrier edge router.",
    )
    parser.add_subparsers(dest="verb", metavar="VERB")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    verb: Verb | None = getattr(args, "func", None)
    if verb is None:
        parser.print_help()
        return 0 if args.verb is None else 2
    return verb(args)


if __name__ == "__main__":
    sys.exit(main())
