"""Sample the daemon with py-spy while it is under load, and rank functions by self time.

py-spy attaches to another process without changing it (``--nonblocking`` does not
even pause it to read its stacks), so the daemon is profiled as it runs.  The raw
("collapsed") output has one line per distinct stack, ``frame;frame;...;leaf count``;
a function's self time is the share of samples in which it is the leaf.
"""

from __future__ import annotations

import re
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

__all__ = ["Profile", "py_spy", "self_time", "start_recording"]

#: py-spy's frame label: ``function (path/to/file.py:line)``; the line is dropped so
#: that one function's samples add up.
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^():]+)(?::\d+)?\)$")


def py_spy() -> str | None:
    """The py-spy next to this interpreter, else on PATH, else None."""
    local = Path(sys.executable).with_name("py-spy")
    return str(local) if local.exists() else shutil.which("py-spy")


def start_recording(exe: str, pid: int, seconds: float, output: Path, rate: int = 250) -> subprocess.Popen[bytes]:
    """Start ``py-spy record`` on ``pid`` for ``seconds``, writing collapsed stacks to ``output``."""
    cmd = [
        exe, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))), "--rate", str(rate),
        "--format", "raw", "--nonblocking", "--output", str(output),
    ]
    if os.environ.get("PROFILE_GIL"):
        # Only the thread holding the GIL: Python CPU, without time spent waiting for it.
        cmd.append("--gil")
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _short(label: str) -> str:
    m = _FRAME.match(label)
    if m is None:
        return label
    path = m.group("file")
    for marker in ("/router/", "/adapters/", "/site-packages/", "/lib/python3"):
        if marker in path:
            path = path[path.rindex(marker) + 1:]
            break
    return f"{m.group('func')} ({path})"


class Profile:
    """Samples of one py-spy run, ranked three ways (each list most first).

    ``functions``: self samples per function (the leaf frame, where the CPU was);
    ``modules``: the same summed per source file, which is how the cost splits into
    framing, validation, store, routing, scheduling, rendering, codec and session;
    ``inclusive``: samples in which a function is anywhere on the stack.
    """

    __slots__ = ("functions", "inclusive", "modules", "total")

    def __init__(self, total: int, functions: list[tuple[str, int]], modules: list[tuple[str, int]],
                 inclusive: list[tuple[str, int]]) -> None:
        self.total = total
        self.functions = functions
        self.modules = modules
        self.inclusive = inclusive


def _module(function: str) -> str:
    return function[function.rfind("(") + 1:-1] if function.endswith(")") else function


def self_time(collapsed: str) -> Profile:
    """Rank py-spy raw output by self time, per function and per module, and by inclusive time.

    Raises ValueError on a line that is not ``stack count``.
    """
    leaves: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        if not line.strip():
            continue
        stack, sep, count = line.rpartition(" ")
        if not sep or not count.isdigit():
            raise ValueError(f"py-spy output: not 'stack count': {line[:80]!r}")
        n = int(count)
        total += n
        # A sample caught outside any Python frame (thread start-up, native code) has no stack.
        frames = [_short(f) for f in stack.split(";")] if stack.strip() else ["(no Python frame)"]
        leaves[frames[-1]] += n
        for f in set(frames):
            inclusive[f] += n
    modules: Counter[str] = Counter()
    for function, n in leaves.items():
        modules[_module(function)] += n
    return Profile(total, leaves.most_common(), modules.most_common(), inclusive.most_common())
