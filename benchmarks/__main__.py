"""`python -m benchmarks`: run every benchmark, then one table of their RESULT lines.

Each benchmark runs in its own process (so one's memory and threads don't colour the
next) and prints its own table; this runner collects the `RESULT name=value unit` lines
and prints them together at the end. `python -m benchmarks codec core` runs a subset.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time

#: In the order they build on each other.
ALL = ("codec", "text", "core", "binds", "pipeline")

RESULT = re.compile(r"^RESULT (\w+)=(\S+) ?(.*)$")


def main(argv: list[str] | None = None) -> int:
    names = list(argv if argv is not None else sys.argv[1:]) or list(ALL)
    unknown = [n for n in names if n not in ALL]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(ALL)}", file=sys.stderr)
        return 2
    rows: list[tuple[str, str, str, str]] = []
    failed: list[str] = []
    for name in names:
        print(f"\n=== benchmarks.{name} ===", flush=True)
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", f"benchmarks.{name}"], stdout=subprocess.PIPE, text=True,
        )
        sys.stdout.write(proc.stdout)
        if proc.returncode != 0:
            failed.append(name)
        for line in proc.stdout.splitlines():
            m = RESULT.match(line.strip())
            if m:
                rows.append((name, m.group(1), m.group(2), m.group(3)))
        print(f"({name}: {time.perf_counter() - started:.1f} s, exit {proc.returncode})")
    print("\n=== all figures ===")
    widths = [max([len(r[i]) for r in rows] + [len(h)]) for i, h in enumerate(("bench", "figure", "value", "unit"))]
    header = ("bench", "figure", "value", "unit")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
