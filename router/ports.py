"""The interfaces the core expects from its edges.

The daemon is built against these, so a store for several instances (Redis) is another
adapter, not a rewrite.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterator
from typing import Any, Protocol

from router.model import Message


class Store(Protocol):
    """The durable record of every message.

    Writes are group-committed: `save` marks a message dirty and returns at once; `durable()`
    is an awaitable that resolves when everything saved so far is committed. A message saved
    several times before a commit is written once, in its newest state.
    """

    def next_id(self) -> str:
        """A new router id, unique in this store."""
        ...

    def save(self, msg: Message) -> None:
        """Mark `msg` for the next group commit (insert the first time, update later)."""
        ...

    def durable(self) -> Awaitable[None]:
        """Resolves when every message saved so far is committed; raises StoreError if not."""
        ...

    def load_live(self) -> list[Message]:
        """The messages the router must pick up at start (unfinished, or in doubt)."""
        ...

    def get_mdr(self, id: str) -> dict[str, Any] | None:
        """The stored MDR for a router id, or None."""
        ...

    def iter_mdrs(self, since: float | None = None, status: str | None = None) -> Iterator[dict[str, Any]]:
        """Every MDR accepted at or after `since` (epoch s) with that status, in id order."""
        ...

    def prune(self, done_before: float) -> Awaitable[int]:
        """Delete final MDRs finished before `done_before`; resolves to how many went."""
        ...

    async def close(self) -> None:
        """Commit what is pending and close."""
        ...


class StoreError(Exception):
    """The store could not commit; what was acknowledged before is still durable."""
