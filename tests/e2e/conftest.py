"""Fixtures of the whole-daemon tests: every process started here is killed on the way out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import DaemonProcess, SimProcess


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[list[DaemonProcess | SimProcess]]:
    """A list the test appends its daemons and simulators to; all are stopped afterwards."""
    started: list[DaemonProcess | SimProcess] = []
    yield started
    for proc in reversed(started):
        if isinstance(proc, DaemonProcess):
            proc.close()
        else:
            proc.stop()
