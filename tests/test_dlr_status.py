"""Receipt words and message_state → MDR status, with a carrier's overrides."""

from __future__ import annotations

import pytest

from router import status as st
from router.dlr_status import DEFAULT_STAT_MAP, STATE_WORDS, StatusTable

WORDS = [
    ("DELIVRD", st.DELIVERED),
    ("EXPIRED", st.EXPIRED),
    ("UNDELIV", st.UNDELIVERABLE),
    ("REJECTD", st.UNDELIVERABLE),
    ("DELETED", st.UNDELIVERABLE),
    ("FAILED", st.UNDELIVERABLE),
    ("ACCEPTD", st.SUBMITTED),
    ("ENROUTE", st.SUBMITTED),
    ("BUFFRED", st.SUBMITTED),
    ("BUFFERD", st.SUBMITTED),
    ("ACKED", st.SUBMITTED),
    ("UNKNOWN", st.UNKNOWN),
    ("NOROUTE", st.UNKNOWN),  # a carrier's own word: kept raw by the caller, UNKNOWN here
    ("", st.UNKNOWN),
]


@pytest.mark.parametrize(("word", "expected"), WORDS)
def test_default_words(word: str, expected: str) -> None:
    assert StatusTable().for_word(word) == expected


@pytest.mark.parametrize("word", ["delivrd", "Delivrd", " DELIVRD "])
def test_words_in_any_case_and_padding(word: str) -> None:
    assert StatusTable().for_word(word) == st.DELIVERED


STATES = [
    (0, st.UNKNOWN),  # SMPP 5.0 SCHEDULED
    (1, st.SUBMITTED),  # ENROUTE
    (2, st.DELIVERED),
    (3, st.EXPIRED),
    (4, st.UNDELIVERABLE),  # DELETED
    (5, st.UNDELIVERABLE),
    (6, st.SUBMITTED),  # ACCEPTED
    (7, st.UNKNOWN),
    (8, st.UNDELIVERABLE),  # REJECTED
    (9, st.UNKNOWN),  # SMPP 5.0 SKIPPED
    (255, st.UNKNOWN),
]


@pytest.mark.parametrize(("state", "expected"), STATES)
def test_default_states(state: int, expected: str) -> None:
    assert StatusTable().for_state(state) == expected


def test_override_changes_word_and_leaves_others() -> None:
    table = StatusTable({"buffred": "undeliverable", "NOROUTE": "UNDELIVERABLE"})
    assert table.for_word("BUFFRED") == st.UNDELIVERABLE
    assert table.for_word("NOROUTE") == st.UNDELIVERABLE
    assert table.for_word("DELIVRD") == st.DELIVERED
    assert table.for_word("BUFFERD") == st.SUBMITTED


def test_override_of_a_state_word_applies_to_the_tlv_too() -> None:
    # Some carriers send ACCEPTD as their final "handed to the handset" state.
    table = StatusTable({"ACCEPTD": "DELIVERED"})
    assert table.for_word("ACCEPTD") == st.DELIVERED
    assert table.for_state(6) == st.DELIVERED
    assert table.for_state(1) == st.SUBMITTED


def test_override_can_give_a_meaning_to_smpp5_states() -> None:
    assert StatusTable({"SKIPPED": "UNDELIVERABLE"}).for_state(9) == st.UNDELIVERABLE


def test_defaults_are_not_changed_by_an_override() -> None:
    StatusTable({"DELIVRD": "UNKNOWN"})
    assert DEFAULT_STAT_MAP["DELIVRD"] == st.DELIVERED
    assert StatusTable().for_word("DELIVRD") == st.DELIVERED


def test_every_state_word_is_a_known_word_or_smpp5() -> None:
    for state, word in STATE_WORDS.items():
        assert word in DEFAULT_STAT_MAP or state in (0, 9)


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"BUFFRED": "QUEUED"}, "status_map.BUFFRED"),
        ({"BUFFRED": "DONE"}, "status_map.BUFFRED"),
        ({"X": 3}, "status_map.X"),
        ({"": "DELIVERED"}, "status_map"),
        ({" ": "DELIVERED"}, "status_map"),
    ],
)
def test_bad_override_names_the_key(overrides: dict, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        StatusTable(overrides)


@pytest.mark.parametrize(
    ("status", "final"),
    [
        (st.QUEUED, False),
        (st.SENDING, False),
        (st.SUBMITTED, False),
        (st.DELIVERED, True),
        (st.UNDELIVERABLE, True),
        (st.EXPIRED, True),
        (st.REJECTED, True),
        (st.FAILED, True),
        (st.UNKNOWN, True),
    ],
)
def test_is_final(status: str, final: bool) -> None:
    assert StatusTable().is_final(status) is final


def test_is_final_refuses_a_non_status() -> None:
    with pytest.raises(ValueError, match="status"):
        StatusTable().is_final("DELIVRD")
