"""Receipt correlation: matching by (carrier, normalised id), MDR rules, multipart, in doubt.

The send path is played by hand (`send` / `accept` do what router/dispatch.py does to a
message) and the clock is a number: nothing here sleeps.
"""

from __future__ import annotations

from typing import Any

import pytest

from adapters.smpp.receipt import Receipt
from router.config import CarrierConfig
from router.correlator import Correlator
from router.model import (
    DELIVERED,
    EXPIRED,
    SENDING,
    SUBMITTED,
    UNDELIVERABLE,
    UNKNOWN,
    Attempt,
    Message,
)

T0 = 1_800_000_000.0
SRC = "12025550100"
DST = "4915112345678"


def carrier(name: str, **kw: Any) -> CarrierConfig:
    return CarrierConfig(name=name, host="127.0.0.1", port=2775, system_id=name, **kw)


def correlator(*carriers: CarrierConfig, **kw: Any) -> Correlator:
    cfgs = carriers or (carrier("acme", message_id_format="same"),)
    return Correlator({c.name: c for c in cfgs}, **kw)


def send(msg_id: str, carrier_name: str = "acme", parts: int = 1, *, dlr: bool = True,
         source: str = SRC, dest: str = DST) -> Message:
    """A message on the wire: what the dispatcher leaves before the responses come."""
    msg = Message(msg_id, source, dest, dlr=dlr, accepted_at=T0, segments=parts)
    msg.carrier = carrier_name
    msg.status = SENDING
    msg.parts_sent = parts
    msg.part_status = ["PENDING"] * parts
    msg.carrier_ids = [None] * parts
    return msg


def accept(c: Correlator, msg: Message, part: int, cid: str, now: float) -> list[Message]:
    """The dispatcher records the accepted part, then the daemon tells the correlator."""
    msg.carrier_ids[part] = cid
    msg.part_status[part] = SUBMITTED
    if all(s == SUBMITTED for s in msg.part_status):
        msg.submitted_at = now
        msg.status = SUBMITTED
        if not msg.dlr:
            msg.done_at = now
    return c.on_accepted(msg, part, now)


def go_in_doubt(msg: Message, part: int, now: float) -> None:
    """No response for `part`: the dispatcher's UNKNOWN / in_doubt."""
    msg.part_status[part] = UNKNOWN
    if "PENDING" not in msg.part_status:
        msg.status = UNKNOWN
        msg.error = "in_doubt"
        msg.done_at = now


def receipt(rid: str, stat: str = "DELIVRD", err: str | None = "000", *, source: str = DST,
            dest: str = SRC, **kw: Any) -> Receipt:
    """A receipt as the carrier sends it: from the recipient back to the sender."""
    return Receipt(message_id=rid, stat=stat, err=err, source_addr=source, destination_addr=dest, **kw)


def submitted(c: Correlator, msg_id: str, cid: str, now: float = T0, **kw: Any) -> Message:
    msg = send(msg_id, **kw)
    accept(c, msg, 0, cid, now)
    return msg


# -- matching ---------------------------------------------------------------------------


def test_a_receipt_finishes_its_message_with_the_mdr_fields() -> None:
    c = correlator()
    msg = submitted(c, "m1", "1234")
    res = c.on_receipt("acme", receipt("1234"), T0 + 5)
    assert (res.outcome, res.msg, res.changed, res.status, res.stale) == (
        "matched", msg, True, DELIVERED, False)
    assert (msg.status, msg.dlr_stat, msg.error, msg.error_code, msg.done_at) == (
        DELIVERED, "DELIVRD", None, None, T0 + 5)
    assert msg.part_status == [DELIVERED]
    assert c.stats["matched"] == 1


def test_a_failed_receipt_gives_error_code_from_digits_and_error_from_a_word() -> None:
    c = correlator()
    m1 = submitted(c, "m1", "1")
    m2 = submitted(c, "m2", "2")
    c.on_receipt("acme", receipt("1", "UNDELIV", "0042"), T0 + 1)
    c.on_receipt("acme", receipt("2", "REJECTD", "BLOCKED"), T0 + 1)
    assert (m1.status, m1.dlr_stat, m1.error, m1.error_code) == (UNDELIVERABLE, "UNDELIV", None, 42)
    assert (m2.status, m2.dlr_stat, m2.error, m2.error_code) == (UNDELIVERABLE, "REJECTD", "BLOCKED", None)


def test_network_error_code_tlv_gives_the_code_when_err_is_missing() -> None:
    c = correlator()
    msg = submitted(c, "m1", "1")
    c.on_receipt("acme", receipt("1", None, None, message_state=5,
                                 network_error_code=b"\x03\x00\x0b"), T0 + 1)
    assert (msg.status, msg.dlr_stat, msg.error_code) == (UNDELIVERABLE, "UNDELIV", 11)


def test_receipt_before_response_is_held_then_matched_on_accept() -> None:
    c = correlator()
    msg = send("m1")
    res = c.on_receipt("acme", receipt("77"), T0)
    assert (res.outcome, res.msg, res.status) == ("held", None, DELIVERED)
    assert c.stats["held_size"] == 1
    assert accept(c, msg, 0, "77", T0 + 1) == [msg]
    assert msg.status == DELIVERED and msg.done_at == T0 + 1
    assert c.stats["held_size"] == 0 and c.stats["matched"] == 1


def test_held_intermediate_then_final_apply_in_arrival_order() -> None:
    c = correlator()
    msg = send("m1")
    c.on_receipt("acme", receipt("77", "ENROUTE"), T0)
    c.on_receipt("acme", receipt("77", "DELIVRD"), T0 + 0.1)
    accept(c, msg, 0, "77", T0 + 1)
    assert (msg.status, msg.dlr_stat) == (DELIVERED, "DELIVRD")


def test_receipts_match_whichever_bind_they_arrive_on() -> None:
    # Sent on transceiver-0; the carrier answers on its receiver bind. The correlator is
    # told the carrier only, so the match cannot depend on the bind.
    c = correlator()
    msg = send("m1")
    msg.attempts.append(Attempt("acme", "transceiver-0", 1, T0, "ESME_ROK", None, "abc"))
    accept(c, msg, 0, "abc", T0)
    res = c.on_receipt("acme", receipt("ABC"), T0 + 1)
    assert (res.outcome, res.msg, msg.status) == ("matched", msg, DELIVERED)


def test_two_carriers_with_the_same_id_never_collide() -> None:
    c = correlator(carrier("acme", message_id_format="same"), carrier("globex", message_id_format="same"))
    a = submitted(c, "a", "1000", carrier_name="acme")
    g = submitted(c, "g", "1000", carrier_name="globex")
    assert c.on_receipt("globex", receipt("1000", "UNDELIV"), T0 + 1).msg is g
    assert (a.status, g.status) == (SUBMITTED, UNDELIVERABLE)
    assert c.on_receipt("acme", receipt("1000"), T0 + 2).msg is a
    assert a.status == DELIVERED


def test_a_prefix_never_matches() -> None:
    c = correlator()
    msg = submitted(c, "m1", "123456")
    for rid in ("12345", "1234567", "23456"):
        assert c.on_receipt("acme", receipt(rid), T0 + 1).outcome == "held"
    assert msg.status == SUBMITTED


@pytest.mark.parametrize(("fmt", "resp", "rid"), [
    ("hex", "255", "FF"),
    ("hex", "255", "00ff"),
    ("dec", "FF", "255"),
    ("dec", "00fF", "0255"),
    ("same", "00AbC1", "abc1"),
    ("auto", "255", "ff"),
    ("auto", "A1B2", "41394"),
    ("auto", "0042", "42"),
])
def test_id_formats(fmt: str, resp: str, rid: str) -> None:
    c = correlator(carrier("acme", message_id_format=fmt))
    msg = submitted(c, "m1", resp)
    res = c.on_receipt("acme", receipt(rid), T0 + 1)
    assert (res.outcome, res.msg) == ("matched", msg)
    assert msg.status == DELIVERED


def test_hex_format_does_not_match_the_same_spelling_of_a_different_number() -> None:
    c = correlator(carrier("acme", message_id_format="hex"))
    ten = submitted(c, "ten", "10")
    sixteen = submitted(c, "sixteen", "16")
    assert c.on_receipt("acme", receipt("10"), T0 + 1).msg is sixteen  # 0x10 = 16
    assert ten.status == SUBMITTED


def test_auto_learns_from_matches_and_reports_it() -> None:
    c = correlator(carrier("acme", message_id_format="auto"))
    assert c.learned("acme") is None
    for n, resp in enumerate(("255", "4096", "65535")):
        submitted(c, f"m{n}", resp)
        c.on_receipt("acme", receipt(format(int(resp), "X")), T0 + 1)
    assert c.learned("acme") == "hex"
    assert c.learned("nobody") is None


def test_an_unreadable_receipt_id_is_refused_not_raised() -> None:
    c = correlator()
    res = c.on_receipt("acme", receipt("x" * 70), T0)
    assert res.outcome == "bad_id" and c.stats["bad_ids"] == 1
    assert c.on_receipt("nobody", receipt("1"), T0).outcome == "unknown_carrier"


def test_accept_for_a_part_without_id_or_an_unknown_carrier_names_the_field() -> None:
    c = correlator()
    msg = send("m1")
    with pytest.raises(ValueError, match=r"carrier_ids\[0\]"):
        c.on_accepted(msg, 0, T0)
    msg.carrier = "nobody"
    msg.carrier_ids[0] = "1"
    with pytest.raises(ValueError, match="carrier: 'nobody'"):
        c.on_accepted(msg, 0, T0)


def test_status_map_overrides_the_word_table() -> None:
    c = correlator(carrier("acme", message_id_format="same",
                           status_map={"BUFFRED": "UNDELIVERABLE", "ACCEPTD": "DELIVERED"}))
    m1 = submitted(c, "m1", "1")
    m2 = submitted(c, "m2", "2")
    c.on_receipt("acme", receipt("1", "BUFFRED"), T0 + 1)
    c.on_receipt("acme", receipt("2", None, message_state=6), T0 + 1)  # ACCEPTED state
    assert (m1.status, m1.dlr_stat) == (UNDELIVERABLE, "BUFFRED")
    assert (m2.status, m2.dlr_stat) == (DELIVERED, "ACCEPTD")


def test_set_carriers_keeps_what_auto_learned_and_applies_new_tables() -> None:
    c = correlator(carrier("acme", message_id_format="auto"))
    for n, resp in enumerate(("255", "4096", "65535")):
        submitted(c, f"m{n}", resp)
        c.on_receipt("acme", receipt(format(int(resp), "X")), T0 + 1)
    msg = submitted(c, "late", "7")
    c.set_carriers({"acme": carrier("acme", status_map={"ENROUTE": "EXPIRED"})})
    assert c.learned("acme") == "hex"
    c.on_receipt("acme", receipt("7", "ENROUTE"), T0 + 2)
    assert msg.status == EXPIRED
    with pytest.raises(ValueError, match="carriers.acme.message_id_format"):
        c.set_carriers({"acme": carrier("acme", message_id_format="octal")})


# -- duplicates and order ----------------------------------------------------------------


def test_duplicates_change_nothing() -> None:
    c = correlator()
    msg = submitted(c, "m1", "1")
    c.on_receipt("acme", receipt("1"), T0 + 1)
    res = c.on_receipt("acme", receipt("1"), T0 + 9)
    assert (res.outcome, res.changed, res.msg) == ("duplicate", False, msg)
    assert msg.done_at == T0 + 1
    assert c.stats["duplicates"] == 1 and c.stats["matched"] == 1


def test_an_intermediate_updates_dlr_stat_without_finishing() -> None:
    c = correlator()
    msg = submitted(c, "m1", "1")
    res = c.on_receipt("acme", receipt("1", "ENROUTE"), T0 + 1)
    assert (res.changed, res.status, msg.status, msg.dlr_stat, msg.done_at) == (
        True, SUBMITTED, SUBMITTED, "ENROUTE", None)
    assert c.on_receipt("acme", receipt("1", "ENROUTE"), T0 + 2).outcome == "duplicate"
    assert c.on_receipt("acme", receipt("1", "ACCEPTD"), T0 + 3).changed
    assert msg.dlr_stat == "ACCEPTD"


def test_a_late_intermediate_never_overwrites_a_final_state() -> None:
    c = correlator()
    msg = submitted(c, "m1", "1")
    c.on_receipt("acme", receipt("1", "UNDELIV", "001"), T0 + 1)
    res = c.on_receipt("acme", receipt("1", "ENROUTE"), T0 + 2)
    assert (res.outcome, res.changed, res.stale) == ("matched", False, True)
    assert (msg.status, msg.dlr_stat, msg.error_code) == (UNDELIVERABLE, "UNDELIV", 1)


def test_a_final_state_is_not_overwritten_by_another_final_one() -> None:
    c = correlator()
    msg = submitted(c, "m1", "1")
    c.on_receipt("acme", receipt("1", "DELIVRD"), T0 + 1)
    assert not c.on_receipt("acme", receipt("1", "EXPIRED"), T0 + 2).changed
    assert msg.status == DELIVERED


def test_an_unknown_receipt_is_settled_by_a_later_final_one() -> None:
    c = correlator()
    msg = submitted(c, "m1", "1")
    c.on_receipt("acme", receipt("1", "WHATEVER"), T0 + 1)
    assert (msg.status, msg.dlr_stat) == (UNKNOWN, "WHATEVER")
    assert c.on_receipt("acme", receipt("1", "DELIVRD"), T0 + 2).changed
    assert (msg.status, msg.dlr_stat, msg.done_at) == (DELIVERED, "DELIVRD", T0 + 2)


def test_a_receipt_for_a_message_sent_without_dlr_is_matched_stale() -> None:
    c = correlator()
    msg = submitted(c, "m1", "1", dlr=False)
    res = c.on_receipt("acme", receipt("1", "UNDELIV"), T0 + 1)
    assert (res.outcome, res.changed, res.stale, res.msg) == ("matched", False, True, msg)
    assert (msg.status, msg.dlr_stat) == (SUBMITTED, None)
    assert c.stats["stale"] == 1


# -- multipart ---------------------------------------------------------------------------


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 1, 0), (1, 2, 0)])
def test_multipart_is_final_when_every_part_is_and_a_failed_part_decides(order: tuple[int, ...]) -> None:
    c = correlator()
    msg = send("m1", parts=3)
    for i in range(3):
        accept(c, msg, i, f"10{i}", T0)
    stats = {0: ("DELIVRD", "000"), 1: ("UNDELIV", "034"), 2: ("EXPIRED", "009")}
    for n, i in enumerate(order):
        c.on_receipt("acme", receipt(f"10{i}", *stats[i]), T0 + 1 + n)
        assert (msg.status == SUBMITTED) == (n < 2)
    assert (msg.status, msg.dlr_stat, msg.error_code, msg.done_at) == (
        UNDELIVERABLE, "UNDELIV", 34, T0 + 3)
    assert msg.part_status == [DELIVERED, UNDELIVERABLE, EXPIRED]


def test_multipart_delivered_only_if_every_part_is() -> None:
    c = correlator()
    msg = send("m1", parts=2)
    accept(c, msg, 0, "1", T0)
    accept(c, msg, 1, "2", T0)
    c.on_receipt("acme", receipt("2"), T0 + 1)
    assert msg.status == SUBMITTED and msg.dlr_stat == "DELIVRD"
    c.on_receipt("acme", receipt("1"), T0 + 2)
    assert (msg.status, msg.error) == (DELIVERED, None)


def test_a_receipt_while_later_parts_await_their_response_waits_for_them() -> None:
    c = correlator()
    msg = send("m1", parts=2)
    accept(c, msg, 0, "1", T0)
    res = c.on_receipt("acme", receipt("1", "UNDELIV"), T0 + 1)
    # the send path still owns part_status: touching it now would confuse its settling
    assert (res.outcome, res.changed, msg.part_status[0]) == ("deferred", False, SUBMITTED)
    assert accept(c, msg, 1, "2", T0 + 2) == [msg]
    assert msg.part_status == [UNDELIVERABLE, SUBMITTED] and msg.status == SUBMITTED
    c.on_receipt("acme", receipt("2"), T0 + 3)
    assert msg.status == UNDELIVERABLE


def test_receipt_first_part_only_finishes_the_whole_message() -> None:
    c = correlator(carrier("acme", message_id_format="same", receipt_first_part_only=True))
    msg = send("m1", parts=3)
    for i in range(3):
        accept(c, msg, i, f"{i + 1}", T0)
    c.on_receipt("acme", receipt("1", "EXPIRED", "005"), T0 + 1)
    assert (msg.status, msg.part_status, msg.error_code) == (EXPIRED, [EXPIRED] * 3, 5)
    assert not c.on_receipt("acme", receipt("2", "DELIVRD"), T0 + 2).changed


def test_without_first_part_only_a_first_part_receipt_leaves_the_rest_open() -> None:
    c = correlator()
    msg = send("m1", parts=2)
    accept(c, msg, 0, "1", T0)
    accept(c, msg, 1, "2", T0)
    c.on_receipt("acme", receipt("1"), T0 + 1)
    assert msg.status == SUBMITTED and msg.part_status == [DELIVERED, SUBMITTED]


# -- in doubt ----------------------------------------------------------------------------


def test_an_unmatched_receipt_settles_the_one_in_doubt_message_with_its_addresses() -> None:
    c = correlator()
    msg = send("m1", source="+" + SRC)
    go_in_doubt(msg, 0, T0 + 30)
    assert c.on_in_doubt(msg, T0 + 30) == []
    res = c.on_receipt("acme", receipt("555", "DELIVRD", source="+" + DST), T0 + 40)
    assert (res.outcome, res.msg, res.changed) == ("orphan_in_doubt_settled", msg, True)
    assert (msg.status, msg.error, msg.carrier_ids, msg.done_at) == (DELIVERED, None, ["555"], T0 + 40)
    assert c.stats["settled_in_doubt"] == 1
    # the id is learned: a replay is a duplicate, not another settlement
    assert c.on_receipt("acme", receipt("555"), T0 + 41).outcome == "duplicate"


def test_two_in_doubt_messages_with_the_same_addresses_are_not_guessed_between() -> None:
    c = correlator()
    m1, m2 = send("m1"), send("m2")
    for m in (m1, m2):
        go_in_doubt(m, 0, T0 + 30)
        c.on_in_doubt(m, T0 + 30)
    res = c.on_receipt("acme", receipt("555"), T0 + 40)
    assert res.outcome == "held"
    assert (m1.status, m2.status, m1.error) == (UNKNOWN, UNKNOWN, "in_doubt")


def test_an_in_doubt_message_of_another_carrier_or_number_is_not_settled() -> None:
    c = correlator(carrier("acme", message_id_format="same"), carrier("globex", message_id_format="same"))
    msg = send("m1", carrier_name="globex")
    go_in_doubt(msg, 0, T0)
    c.on_in_doubt(msg, T0)
    assert c.on_receipt("acme", receipt("5"), T0 + 1).outcome == "held"
    assert c.on_receipt("globex", receipt("6", source="491500000"), T0 + 1).outcome == "held"
    assert msg.status == UNKNOWN


def test_a_receipt_held_before_the_response_timeout_settles_the_message_going_in_doubt() -> None:
    c = correlator()
    msg = send("m1")
    c.on_receipt("acme", receipt("555", "UNDELIV", "001"), T0 + 5)
    go_in_doubt(msg, 0, T0 + 30)
    assert c.on_in_doubt(msg, T0 + 30) == [msg]
    assert (msg.status, msg.error_code, msg.carrier_ids) == (UNDELIVERABLE, 1, ["555"])
    assert c.stats["held_size"] == 0


def test_an_intermediate_receipt_learns_the_in_doubt_id_without_settling() -> None:
    c = correlator()
    msg = send("m1")
    go_in_doubt(msg, 0, T0)
    c.on_in_doubt(msg, T0)
    res = c.on_receipt("acme", receipt("9", "ENROUTE"), T0 + 1)
    assert (res.outcome, res.changed) == ("orphan_in_doubt_settled", True)
    assert (msg.status, msg.error, msg.carrier_ids) == (UNKNOWN, "in_doubt", ["9"])
    # the final receipt now matches by id
    assert c.on_receipt("acme", receipt("9"), T0 + 2).outcome == "matched"
    assert (msg.status, msg.error) == (DELIVERED, None)


def test_multipart_in_doubt_keeps_waiting_for_the_missing_part() -> None:
    c = correlator()
    msg = send("m1", parts=2)
    accept(c, msg, 0, "1", T0)
    go_in_doubt(msg, 1, T0 + 30)
    c.on_in_doubt(msg, T0 + 30)
    c.on_receipt("acme", receipt("1"), T0 + 31)
    assert (msg.status, msg.error, msg.part_status) == (UNKNOWN, "in_doubt", [DELIVERED, UNKNOWN])
    assert msg.done_at == T0 + 30
    res = c.on_receipt("acme", receipt("2"), T0 + 32)  # the other part's id, via addresses
    assert res.outcome == "orphan_in_doubt_settled"
    assert (msg.status, msg.error, msg.carrier_ids) == (DELIVERED, None, ["1", "2"])


def test_a_late_response_takes_the_message_out_of_doubt() -> None:
    c = correlator()
    msg = send("m1")
    go_in_doubt(msg, 0, T0 + 30)
    c.on_in_doubt(msg, T0 + 30)
    # the dispatcher's late settling: the part was accepted after all
    msg.status, msg.error, msg.done_at = SENDING, None, None
    accept(c, msg, 0, "42", T0 + 31)
    assert c.on_receipt("acme", receipt("999"), T0 + 32).outcome == "held"
    assert c.on_receipt("acme", receipt("42"), T0 + 33).msg is msg
    assert msg.status == DELIVERED
