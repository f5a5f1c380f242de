"""Delivery receipt outcome → MDR status.

A receipt says how a message ended in one of two ways: a ``stat:`` word in its text
(``DELIVRD``, ``UNDELIV``, ... — the SMPP 3.4 Appendix B words plus whatever carriers
invented) or a ``message_state`` TLV (§5.2.28). Both are mapped here to the MDR statuses of
DESIGN.md. Words the table does not know map to UNKNOWN; the caller keeps the raw word in
the MDR's ``dlr_stat``, so nothing is lost.

A carrier's ``status_map`` overrides the word table. It also applies to ``message_state``:
each state is looked up by its Appendix B word first (state 2 → ``DELIVRD``, 6 →
``ACCEPTD``, ...), so ``{ACCEPTD = "DELIVERED"}`` means the same whether the carrier sends
the word or the TLV.

Intermediate outcomes (ENROUTE, ACCEPTD, BUFFRED, ...) map to SUBMITTED: the part stays
open and a later final receipt closes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from router.status import (
    ALL,
    DELIVERED,
    EXPIRED,
    FAILED,
    FINAL,
    REJECTED,
    SUBMITTED,
    UNDELIVERABLE,
    UNKNOWN,
)

#: Statuses a receipt can lead to. QUEUED and SENDING describe our side of the wire: a
#: receipt saying so would be meaningless, so a status_map naming them is refused.
RECEIPT_STATUSES: Final = frozenset(
    {SUBMITTED, DELIVERED, UNDELIVERABLE, EXPIRED, REJECTED, FAILED, UNKNOWN}
)

#: stat words → MDR status (DESIGN.md "MDR fields"). Appendix B's seven words plus the
#: ones carriers are known to send (ENROUTE, FAILED, BUFFRED and its misspelling, ACKED).
DEFAULT_STAT_MAP: Final[Mapping[str, str]] = MappingProxyType(
    {
        "DELIVRD": DELIVERED,
        "EXPIRED": EXPIRED,
        "UNDELIV": UNDELIVERABLE,
        "REJECTD": UNDELIVERABLE,
        "DELETED": UNDELIVERABLE,
        "FAILED": UNDELIVERABLE,
        "ACCEPTD": SUBMITTED,
        "ENROUTE": SUBMITTED,
        "BUFFRED": SUBMITTED,
        "BUFFERD": SUBMITTED,
        "ACKED": SUBMITTED,
        "UNKNOWN": UNKNOWN,
    }
)

#: message_state (§5.2.28) → its Appendix B word, the key status_map overrides use.
#: 0 SCHEDULED and 9 SKIPPED are SMPP 5.0 additions that 3.4 carriers send anyway.
STATE_WORDS: Final[Mapping[int, str]] = MappingProxyType(
    {
        0: "SCHEDULED",
        1: "ENROUTE",
        2: "DELIVRD",
        3: "EXPIRED",
        4: "DELETED",
        5: "UNDELIV",
        6: "ACCEPTD",
        7: "UNKNOWN",
        8: "REJECTD",
        9: "SKIPPED",
    }
)

#: message_state (§5.2.28) → MDR status; any other value is UNKNOWN.
DEFAULT_STATE_MAP: Final[Mapping[int, str]] = MappingProxyType(
    {
        1: SUBMITTED,  # ENROUTE
        2: DELIVERED,
        3: EXPIRED,
        4: UNDELIVERABLE,  # DELETED
        5: UNDELIVERABLE,
        6: SUBMITTED,  # ACCEPTED
        7: UNKNOWN,
        8: UNDELIVERABLE,  # REJECTED
    }
)


class StatusTable:
    """One carrier's receipt outcome table: the defaults with its ``status_map`` on top.

    Built once per carrier at config load; lookups are a dict ``get`` each.

    Raises:
        ValueError: an override key is empty or not a string, or its value is not one of
            ``RECEIPT_STATUSES``; the message names the offending key.
    """

    __slots__ = ("_words", "_states")

    def __init__(self, overrides: Mapping[str, str] = MappingProxyType({})) -> None:
        words = dict(DEFAULT_STAT_MAP)
        overridden: set[str] = set()
        for key, value in overrides.items():
            if not isinstance(key, str) or not key.strip():
                raise ValueError(f"status_map: key {key!r} is not a receipt stat word")
            status = value.strip().upper() if isinstance(value, str) else value
            if status not in RECEIPT_STATUSES:
                raise ValueError(
                    f"status_map.{key}: {value!r} is not a receipt status "
                    f"(one of {', '.join(sorted(RECEIPT_STATUSES))})"
                )
            word = key.strip().upper()
            words[word] = status
            overridden.add(word)
        self._words: dict[str, str] = words
        # Resolved once: an override of a state's word wins over the state's default.
        states = dict(DEFAULT_STATE_MAP)
        for state, word in STATE_WORDS.items():
            if word in overridden:
                states[state] = words[word]
        self._states: dict[int, str] = states

    def for_word(self, word: str) -> str:
        """The MDR status for a receipt's ``stat:`` word (any case); UNKNOWN if unknown."""
        status = self._words.get(word)
        if status is None:
            status = self._words.get(word.strip().upper(), UNKNOWN)
        return status

    def for_state(self, message_state: int) -> str:
        """The MDR status for a ``message_state`` value; UNKNOWN outside the table."""
        return self._states.get(message_state, UNKNOWN)

    @staticmethod
    def is_final(status: str) -> bool:
        """Whether ``status`` ends a part (SUBMITTED, QUEUED and SENDING do not).

        Raises:
            ValueError: ``status`` is not an MDR status name.
        """
        if status in FINAL:
            return True
        if status in ALL:
            return False
        raise ValueError(f"status: {status!r} is not an MDR status")

