"""Compliance put to work: the dispatcher's opt-out check, queues purged, auto-replies.

A real Dispatcher and ConsentDesk over fake pools and an in-memory store, with a manual
clock: keywords as MOs, the refusal and its audit MDR, the queued message dropped when
the STOP arrives, replies through the throttle, no reply loops.
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import pytest

from adapters.smpp.constants import status_name
from adapters.smpp.outbound import build_submit_pdus
from router.compliance import ALL, Compliance, ConsentRecord
from router.config import parse_config
from router.consent import REPLY_HOLDOFF_S, ConsentDesk
from router.dispatch import Dispatcher, OptedOut
from router.mo import InboundMessage
from router.model import QUEUED, REJECTED, SENDING, Message
from router.optout import OptOutList
from router.requests import ConsentRequest, RequestError, parse_submit

T0 = 1_800_000_000.0
PHONE = "447700900123"
ALERTS_A, ALERTS_B = "12025550100", "18005550100"  # one program, one scope
LONE = "15005550006"  # in no program: its own scope
OTHER = "15005550007"

CONFIG = f"""
[router]
socket = "unix:///tmp/x.sock"
state_dir = "var"

[[carriers]]
name = "acme"
host = "127.0.0.1"
port = 1
system_id = "a"
password = "p"

[[routes]]
prefix = "4"
carriers = [{{ name = "acme", cost = 0.01 }}]

[[routes]]
prefix = "1"
carriers = [{{ name = "acme", cost = 0.01 }}]

[limits]
default_mps = @MPS@
burst = @BURST@

[compliance]
[[compliance.programs]]
name = "alerts"
senders = ["{ALERTS_A}", "{ALERTS_B}"]
opt_out_reply = "Alerts: unsubscribed."
opt_in_reply = "Alerts: welcome back."
help_reply = "Alerts: help at example.com."
"""


class FakePool:
    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list[Message] = []

    def available_at(self, n: int, now: float) -> float:
        return now

    def submit(self, token: Any, pdus: list[Any], now: float, ready: Any = None) -> None:
        self.sent.append(token)


class MemStore:
    """Messages and consent records; `last_consent` as the SQLite store answers it."""

    def __init__(self) -> None:
        self.n = 0
        self.rows: dict[str, Message] = {}
        self.consent: list[ConsentRecord] = []

    def next_id(self) -> str:
        self.n += 1
        return str(self.n)

    def save(self, msg: Message) -> None:
        self.rows[msg.id] = msg

    def durable(self) -> Any:
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut

    def save_consent(self, record: ConsentRecord) -> None:
        self.consent.append(record)

    def last_consent(self, recipient: str, scopes: Any) -> dict[str, Any] | None:
        scopes = set(scopes)
        for rec in reversed(self.consent):
            if rec.recipient == recipient and rec.scope in scopes:
                return rec.as_dict()
        return None


class Counts:
    def __init__(self) -> None:
        self.c: dict[str, int] = {}

    def _inc(self, key: str, n: int = 1) -> None:
        self.c[key] = self.c.get(key, 0) + n

    def submitted(self, carrier: str, n: int = 1) -> None:
        self._inc("submitted", n)

    def submit_resp(self, carrier: str, command_status: int) -> None:
        pass

    def submit_latency(self, seconds: float) -> None:
        pass

    def mdr(self, status: str) -> None:
        self._inc(f"mdr:{status}")

    def failover(self, from_carrier: str, to_carrier: str) -> None:
        pass

    def refused_opted_out(self, n: int = 1) -> None:
        self._inc("refused_opted_out", n)

    def opt_out(self, n: int = 1) -> None:
        self._inc("opt_out", n)

    def opt_in(self, n: int = 1) -> None:
        self._inc("opt_in", n)


class Rig:
    def __init__(self, mps: float = 1000.0, optouts: OptOutList | None = None) -> None:
        self.config = parse_config(CONFIG.replace("@MPS@", repr(float(mps))).replace("@BURST@", str(1 if mps < 10 else 1000)), base_dir=Path("/tmp"), env={})
        self.store = MemStore()
        self.pool = FakePool("acme")
        self.counts = Counts()
        self.timer: float | None = None
        self.d = Dispatcher(
            self.config, self.store, {"acme": self.pool}, build_pdus=build_submit_pdus,
            status_name=status_name, arm_timer=self._arm, now=T0, observer=self.counts,
        )
        self.d.health["acme"].bind_up("transceiver-0", True, T0)
        self.comp = Compliance(self.config.compliance, optouts or OptOutList())
        self.desk = ConsentDesk(self.comp, self.config.compliance, self.d, self.store,
                                observer=self.counts)
        self.mo_ids = 0

    def _arm(self, due: float | None) -> None:
        self.timer = due

    def submit(self, src: str = ALERTS_A, to: str = PHONE, text: str = "hello",
               now: float = T0, **extra: Any) -> Message:
        req = parse_submit({"from": src, "to": to, "text": text, **extra},
                           max_segments=10, default_validity_s=3600)
        return self.d.accept(req, now)

    def mo(self, text: str, to: str = ALERTS_A, frm: str = PHONE, now: float = T0,
           auto_reply: bool = False) -> InboundMessage:
        m = InboundMessage(frm, to, "acme", text=text, data=None, data_coding=0, received_at=now)
        self.mo_ids += 1
        m.id = str(self.mo_ids)
        self.desk.on_mo(m, now, auto_reply=auto_reply)
        return m

    def replies(self) -> list[Message]:
        return [m for m in self.store.rows.values() if m.tags and "auto_reply" in m.tags]

    def drain(self) -> None:
        """Pump at each due time until nothing waits (bounded: a test queues a few)."""
        for _ in range(50):
            if self.timer is None:
                return
            self.d.pump(self.timer)
        raise AssertionError("the queue did not drain")

    def sent_to(self, to: str = PHONE) -> list[Message]:
        return [m for m in self.pool.sent if m.dest == to]


# -- the keyword table --------------------------------------------------------------------


@pytest.mark.parametrize("text,keyword,action,tag", [
    ("STOP", "STOP", "opt_out", "stop"),
    ("stop", "STOP", "opt_out", "stop"),
    (" Stop! ", "STOP", "opt_out", "stop"),
    ("unsubscribe", "UNSUBSCRIBE", "opt_out", "stop"),
    ("Cancel", "CANCEL", "opt_out", "stop"),
    ("end.", "END", "opt_out", "stop"),
    ("QUIT", "QUIT", "opt_out", "stop"),
    ("stopall", "STOPALL", "opt_out_all", "stop"),
    ("START", "START", "opt_in", "start"),
    ("unstop", "UNSTOP", "opt_in", "start"),
    ("help", "HELP", "help", "help"),
    ("Info?", "INFO", "help", "help"),
])
async def test_keyword_table_sets_the_mo_fields_and_sends_the_tagged_reply(
    text: str, keyword: str, action: str, tag: str,
) -> None:
    rig = Rig()
    mo = rig.mo(text)
    assert (mo.keyword, mo.action) == (keyword, action)
    event = mo.to_event()
    assert (event["keyword"], event["action"]) == (keyword, action)
    (reply,) = rig.replies()
    assert reply.tags == {"auto_reply": tag}
    assert (reply.source, reply.dest, reply.priority) == (ALERTS_A, PHONE, 1)
    assert reply.status == SENDING and reply in rig.pool.sent
    expected = {"stop": "Alerts: unsubscribed.", "start": "Alerts: welcome back.",
                "help": "Alerts: help at example.com."}[tag]
    assert reply.text == expected


@pytest.mark.parametrize("text", ["stop it", "please STOP", "?STOP", "STOPP", "", "hello"])
async def test_other_texts_are_no_keyword_and_change_nothing(text: str) -> None:
    rig = Rig()
    mo = rig.mo(text)
    assert (mo.keyword, mo.action) == (None, None)
    assert "keyword" not in mo.to_event()
    assert rig.replies() == [] and rig.store.consent == [] and len(rig.comp.optouts) == 0


async def test_a_sender_in_no_program_gets_the_default_reply() -> None:
    rig = Rig()
    rig.mo("STOP", to=LONE)
    (reply,) = rig.replies()
    assert reply.source == LONE
    assert reply.text == "You are unsubscribed and will get no more messages. Reply START to resubscribe."


# -- enforcement --------------------------------------------------------------------------


async def test_submit_after_stop_is_refused_with_the_id_of_a_rejected_audit_mdr() -> None:
    rig = Rig()
    rig.mo("STOP")
    with pytest.raises(OptedOut) as info:
        rig.submit(client_ref="c-1", tags={"campaign": "x"})
    exc = info.value
    assert exc.code == "opted_out" and PHONE in exc.message and ALERTS_A in exc.message
    reply = exc.reply()
    assert reply["ok"] is False and reply["error"] == "opted_out" and reply["id"] == exc.id
    audit = rig.store.rows[exc.id]
    assert (audit.status, audit.error, audit.carrier) == (REJECTED, "opted_out", None)
    assert audit.client_ref == "c-1" and audit.tags == {"campaign": "x"}
    assert audit.to_mdr()["done_at"] is not None
    assert rig.counts.c["refused_opted_out"] == 1 and rig.comp.stats.refused_opted_out_total == 1
    assert audit not in rig.pool.sent


async def test_program_scope_covers_every_sender_of_the_program_and_no_other() -> None:
    rig = Rig()
    rig.mo("STOP", to=ALERTS_A)
    for src in (ALERTS_A, ALERTS_B, "+" + ALERTS_B):
        with pytest.raises(OptedOut):
            rig.submit(src=src)
    assert rig.submit(src=LONE).status == SENDING
    assert rig.submit(src=ALERTS_A, to="447700900999").status == SENDING  # another recipient


async def test_per_number_scope_covers_that_number_only() -> None:
    rig = Rig()
    rig.mo("STOP", to=LONE)
    with pytest.raises(OptedOut):
        rig.submit(src=LONE)
    assert rig.submit(src=OTHER).status == SENDING
    assert rig.submit(src=ALERTS_A).status == SENDING


async def test_stopall_stops_every_scope_and_start_reopens_only_its_own() -> None:
    rig = Rig()
    mo = rig.mo("STOPALL", to=LONE)
    assert mo.action == "opt_out_all"
    assert [(r.scope, r.action) for r in rig.store.consent] == [(ALL, "opt_out_all")]
    for src in (LONE, OTHER, ALERTS_A, "ACME"):
        with pytest.raises(OptedOut):
            rig.submit(src=src)
    rig.mo("START", to=ALERTS_B, now=T0 + 1)
    assert rig.submit(src=ALERTS_A, now=T0 + 2).status == SENDING  # the program is back
    with pytest.raises(OptedOut):
        rig.submit(src=LONE, now=T0 + 2)


async def test_start_re_enables_sending() -> None:
    rig = Rig()
    rig.mo("STOP")
    with pytest.raises(OptedOut):
        rig.submit()
    rig.mo("START", now=T0 + 5)
    msg = rig.submit(now=T0 + 6)
    assert msg.status == SENDING and msg in rig.pool.sent
    assert [r.action for r in rig.store.consent] == ["opt_out", "opt_in"]
    assert (rig.counts.c["opt_out"], rig.counts.c["opt_in"]) == (1, 1)


async def test_upstream_may_not_tag_its_own_messages_as_auto_replies() -> None:
    rig = Rig()
    with pytest.raises(RequestError) as info:
        rig.submit(tags={"auto_reply": "stop"})
    assert info.value.code == "invalid_request" and "tags.auto_reply" in info.value.message


# -- queued messages ----------------------------------------------------------------------


async def test_a_queued_message_is_dropped_when_its_stop_arrives() -> None:
    rig = Rig(mps=1)
    first = rig.submit(text="one")  # takes the number's only slot this second
    queued = rig.submit(text="two")
    other = rig.submit(text="to someone else", to="447700900999")
    assert first.status == SENDING and queued.status == QUEUED and other.status == QUEUED
    rig.mo("STOP", now=T0 + 0.1)
    assert (queued.status, queued.error) == (REJECTED, "opted_out")
    assert queued.done_at == T0 + 0.1 and len(rig.d.scheduler) == 2  # other + the reply
    rig.drain()
    assert queued not in rig.pool.sent and other in rig.pool.sent
    assert rig.sent_to(PHONE) == [first, *rig.replies()]


async def test_a_message_past_the_eager_bound_is_stopped_as_it_leaves_the_queue(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("router.dispatch.EAGER_DROP_MAX", 0)
    rig = Rig(mps=1)
    rig.submit(text="one")
    queued = rig.submit(text="two")
    rig.mo("STOP", now=T0 + 0.1)
    assert queued.status == QUEUED  # the queue was not walked
    rig.drain()
    assert (queued.status, queued.error) == (REJECTED, "opted_out")
    assert queued not in rig.pool.sent


async def test_messages_resumed_after_a_restart_are_checked_against_the_list() -> None:
    optouts = OptOutList.load([("alerts", PHONE)])
    rig = Rig(optouts=optouts)
    old = Message("77", ALERTS_A, PHONE, text="from the last run", accepted_at=T0 - 60,
                  expires_at=T0 + 3600)
    rig.d.resume([old], T0)
    assert (old.status, old.error) == (REJECTED, "opted_out") and old not in rig.pool.sent


# -- auto-replies -------------------------------------------------------------------------


async def test_the_confirmation_is_sent_once_through_the_throttle_with_its_mdr() -> None:
    rig = Rig(mps=1)
    rig.submit(to="447700900999")  # the number's slot for this second is taken
    rig.mo("STOP", now=T0 + 0.1)
    rig.mo("STOP", now=T0 + 0.2)  # the carrier delivers it again (late deliver_sm_resp)
    (reply,) = rig.replies()
    assert reply.status == QUEUED and reply not in rig.pool.sent  # waits for the limiter
    assert rig.timer is not None and rig.timer > T0 + 0.2
    rig.d.pump(rig.timer)
    assert reply.status == SENDING and rig.sent_to(PHONE) == [reply]
    mdr = reply.to_mdr()
    assert mdr["tags"] == {"auto_reply": "stop"} and mdr["from"] == ALERTS_A and mdr["to"] == PHONE
    assert rig.desk.stats["replies"] == 1 and rig.desk.stats["replies_held_off"] == 1
    # Both STOPs are on record; a STOP after the hold-off is confirmed again.
    assert [r.mo_id for r in rig.store.consent] == ["1", "2"]
    rig.mo("STOP", now=T0 + 0.2 + REPLY_HOLDOFF_S)
    assert len(rig.replies()) == 2


async def test_help_is_answered_for_a_recipient_who_never_subscribed() -> None:
    rig = Rig()
    mo = rig.mo("HELP", frm="14155550123")
    (reply,) = rig.replies()
    assert (reply.dest, reply.tags, reply.text) == ("14155550123", {"auto_reply": "help"},
                                                    "Alerts: help at example.com.")
    assert mo.action == "help" and rig.store.consent == [] and len(rig.comp.optouts) == 0


async def test_stop_is_confirmed_even_when_the_recipient_was_never_subscribed() -> None:
    rig = Rig()
    rig.mo("STOP", frm="14155550123")
    (reply,) = rig.replies()
    assert reply.dest == "14155550123" and reply in rig.pool.sent


async def test_an_opted_out_recipient_still_gets_the_confirmation_of_a_second_keyword() -> None:
    rig = Rig()
    rig.mo("STOP")
    rig.mo("HELP", now=T0 + 1)
    assert [m.tags["auto_reply"] for m in rig.sent_to(PHONE)] == ["stop", "help"]


@pytest.mark.parametrize("how", ["carrier_flag", "from_a_program_number", "from_a_number_mos_came_to"])
async def test_no_reply_to_an_auto_reply(how: str) -> None:
    rig = Rig()
    if how == "carrier_flag":
        mo = rig.mo("STOP", auto_reply=True)
        stopped = (ALERTS_A, PHONE)
    elif how == "from_a_program_number":
        mo = rig.mo("STOP", to=LONE, frm=ALERTS_B)
        stopped = (LONE, ALERTS_B)
    else:
        rig.mo("hello", to=OTHER, frm="14155550123")  # OTHER is ours: it received an MO
        mo = rig.mo("HELP", to=LONE, frm=OTHER)
        stopped = None
    assert rig.replies() == [] and mo.keyword is not None
    assert rig.desk.stats["loops_stopped"] == 1
    if stopped is not None:  # the opt-out itself is honoured
        with pytest.raises(OptedOut):
            rig.submit(src=stopped[0], to=stopped[1])


async def test_a_reply_that_cannot_be_sent_is_logged_and_the_opt_out_stands() -> None:
    rig = Rig()
    rig.mo("STOP", frm="8613800138000")  # no route to 86
    assert rig.replies() == [] and rig.desk.stats["replies_refused"] == 1
    with pytest.raises(OptedOut):
        rig.submit(to="8613800138000")


async def test_a_keyword_from_no_e164_number_passes_through_unchanged() -> None:
    rig = Rig()
    mo = rig.mo("STOP", frm="ACME")
    assert mo.keyword is None and rig.store.consent == [] and rig.replies() == []


# -- socket ops ---------------------------------------------------------------------------


async def test_socket_ops_record_consent_and_status_reports_it() -> None:
    rig = Rig()
    rec = rig.desk.record("opt_out", ConsentRequest("alerts", PHONE, "web-form"), T0)
    assert (rec.scope, rec.action, rec.keyword, rec.source) == ("alerts", "opt_out", None, "web-form")
    with pytest.raises(OptedOut):
        rig.submit(src=ALERTS_B)
    status = rig.desk.status(ConsentRequest(ALERTS_A, PHONE, None))
    assert status == {"opted_out": True, "scope": "alerts", "since": "2027-01-15T08:00:00.000Z",
                      "keyword": None, "source": "web-form"}
    rig.desk.record("opt_in", ConsentRequest(ALERTS_B, PHONE, None), T0 + 1)
    status = rig.desk.status(ConsentRequest("alerts", PHONE, None))
    assert status["opted_out"] is False and status["source"] == "api" and status["since"].endswith("01.000Z")
    assert rig.submit(src=ALERTS_A, now=T0 + 2).status == SENDING


async def test_socket_opt_out_drops_queued_messages_too() -> None:
    rig = Rig(mps=1)
    rig.submit()
    queued = rig.submit(text="second")
    rig.desk.record("opt_out", ConsentRequest("*", PHONE, None), T0)
    assert (queued.status, queued.error) == (REJECTED, "opted_out")
    assert rig.store.consent[-1].action == "opt_out_all"


async def test_status_of_a_recipient_never_seen() -> None:
    rig = Rig()
    assert rig.desk.status(ConsentRequest(LONE, PHONE, None)) == {
        "opted_out": False, "scope": LONE, "since": None, "keyword": None, "source": None,
    }


def test_timer_is_rearmed_after_a_drop() -> None:
    async def run() -> None:
        rig = Rig(mps=1)
        rig.submit()
        rig.submit(text="queued")
        assert rig.timer is not None and math.isfinite(rig.timer)
        rig.mo("STOP", now=T0 + 0.1)
        # Only the confirmation is left; the timer follows it.
        assert len(rig.d.scheduler) == 1 and rig.timer == rig.d.scheduler.next_due()

    asyncio.run(run())


async def test_a_config_reload_keeps_the_list_and_counters_and_takes_new_replies() -> None:
    rig = Rig()
    rig.mo("STOP")
    new_cfg = parse_config(CONFIG.replace("@MPS@", "1000.0").replace("@BURST@", "1000")
                           .replace("Alerts: help at example.com.", "Alerts: call 555."),
                           base_dir=Path("/tmp"), env={})
    comp = Compliance(new_cfg.compliance, rig.comp.optouts, rig.comp.stats)
    rig.desk.set_compliance(comp, new_cfg.compliance)
    assert rig.d.compliance is comp and comp.stats.opt_outs_total == 1
    with pytest.raises(OptedOut):
        rig.submit()
    rig.mo("HELP", now=T0 + 1)
    assert rig.replies()[-1].text == "Alerts: call 555."


def test_status_table_shows_the_list_size() -> None:
    from router.status_table import render_stats

    text = render_stats({"carriers": [], "queues": {}, "compliance": {
        "list_size": 12, "opt_outs_total": 14, "opt_ins_total": 2, "refused_opted_out_total": 3}})
    assert "opt-out list: 12 entries; opt-outs 14, opt-ins 2, submits refused 3" in text
