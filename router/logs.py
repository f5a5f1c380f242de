"""Structured logs: JSON lines on stderr by default, a readable console form on request.

One event per state change (bind up/down, circuit, failover, reload), never one per
message at INFO. Secrets are redacted by key wherever they could appear.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

SECRET_KEYS = frozenset({"password", "token", "secret", "passwd"})
FORMATS = ("json", "console")


def _redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in event:
        if key.lower() in SECRET_KEYS and event[key]:
            event[key] = "***"
    return event


def configure(fmt: str = "json", level: str = "info") -> None:
    """Set up structlog for the process; call once at start.

    Raises ValueError for an unknown format or level.
    """
    if fmt not in FORMATS:
        raise ValueError(f"log-format: must be one of {', '.join(FORMATS)}, got {fmt!r}")
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"log-level: unknown level {level!r}")
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
