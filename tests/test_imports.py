"""The protocol core stays sans-IO: only the asyncio edge files may import asyncio."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SMPP_DIR = Path(__file__).resolve().parent.parent / "adapters" / "smpp"
#: The asyncio edge files. bind.py is the asyncio protocol of one bind (see its docstring);
#: adding a file here is a design decision: the codec and the session must never be on it.
ASYNC_EDGES = {"esme.py", "smsc.py", "bind.py"}
#: Event loops and sockets belong to the edge; the core gets bytes and `now` passed in.
FORBIDDEN = {"asyncio", "uvloop", "socket", "selectors"}


def imported_modules(source: str) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def sans_io_files() -> list[Path]:
    return sorted(p for p in SMPP_DIR.rglob("*.py") if p.name not in ASYNC_EDGES)


def test_the_check_sees_imports() -> None:
    source = "import asyncio.events\nfrom socket import socket\nfrom . import x\nfrom .pdu import y"
    assert imported_modules(source) == {"asyncio", "socket"}


@pytest.mark.parametrize("path", sans_io_files(), ids=lambda p: p.name)
def test_no_event_loop_or_socket_imports(path: Path) -> None:
    bad = imported_modules(path.read_text(encoding="utf-8")) & FORBIDDEN
    assert not bad, "%s imports %s; only %s may" % (path.name, sorted(bad), sorted(ASYNC_EDGES))


def test_codec_and_session_are_checked() -> None:
    names = {p.name for p in sans_io_files()}
    assert {"pdu.py", "constants.py", "errors.py", "codec.py", "framer.py", "session.py"} <= names
