"""Property: whatever order responses and receipts come in, each record ends as its receipts say.

N messages of 1–3 parts; each part gets one final receipt, maybe repeated, maybe an
intermediate before or after it, maybe an UNKNOWN one that the final receipt must win
over. All of it — the parts' acceptances included — is shuffled into one stream.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from router.model import DELIVERED, EXPIRED, FINAL, UNDELIVERABLE, aggregate_parts
from tests.test_correlator import T0, accept, carrier, correlator, receipt, send

FINAL_WORDS = {"DELIVRD": DELIVERED, "UNDELIV": UNDELIVERABLE, "EXPIRED": EXPIRED, "REJECTD": UNDELIVERABLE}
SPELL = {  # format → (response id, receipt id) for the number n
    "same": lambda n: (f"0{n}", str(n)),
    "hex": lambda n: (str(n), format(n, "X")),
    "dec": lambda n: (format(n, "x"), str(n)),
}

part_plan = st.fixed_dictionaries({
    "final": st.sampled_from(sorted(FINAL_WORDS)),
    "copies": st.integers(1, 2),
    "intermediate": st.booleans(),
    "unknown": st.booleans(),
})
plans = st.lists(st.lists(part_plan, min_size=1, max_size=3), min_size=1, max_size=4)


@settings(max_examples=60, deadline=None)
@given(fmt=st.sampled_from(sorted(SPELL)), plan=plans, data=st.data())
def test_any_interleaving_ends_in_the_status_the_receipts_imply(
    fmt: str, plan: list[list[dict[str, Any]]], data: st.DataObject
) -> None:
    c = correlator(carrier("acme", message_id_format=fmt), hold_s=3600.0)
    msgs = [send(f"m{k}", parts=len(parts)) for k, parts in enumerate(plan)]
    events: list[tuple[Any, ...]] = []
    n = 1000
    ids: dict[tuple[int, int], tuple[str, str]] = {}
    for k, parts in enumerate(plan):
        for i, p in enumerate(parts):
            n += 7
            ids[(k, i)] = SPELL[fmt](n)
            rid = ids[(k, i)][1]
            events.append(("accept", k, i))
            err = f"{k}{i}1"
            events += [("receipt", rid, p["final"], err)] * p["copies"]
            if p["intermediate"]:
                events.append(("receipt", rid, "ENROUTE", "000"))
            if p["unknown"]:
                events.append(("receipt", rid, "UNKNOWN", "000"))
    order = data.draw(st.permutations(events))
    now = T0
    for event in order:
        now += 0.01
        if event[0] == "accept":
            _, k, i = event
            accept(c, msgs[k], i, ids[(k, i)][0], now)
        else:
            _, rid, word, err = event
            res = c.on_receipt("acme", receipt(rid, word, err), now)
            assert res.outcome in ("matched", "duplicate", "held", "deferred")

    for k, parts in enumerate(plan):
        msg = msgs[k]
        expected_parts = [FINAL_WORDS[p["final"]] for p in parts]
        assert msg.part_status == expected_parts, (k, msg.part_status)
        status = aggregate_parts(expected_parts)
        assert msg.status == status and status in FINAL
        decider = 0 if status == DELIVERED else expected_parts.index(status)
        assert msg.dlr_stat == parts[decider]["final"]
        if status == DELIVERED:
            assert (msg.error, msg.error_code) == (None, None)
        else:
            assert (msg.error, msg.error_code) == (None, int(f"{k}{decider}1"))
    stats = c.stats
    assert stats["held_size"] == 0 and stats["orphans"] == 0
    assert stats["matched"] + stats["duplicates"] + stats["deferred"] >= len(order) - sum(map(len, plan))
