"""Compliance decisions: keywords, scopes, STOPALL, replies, records, counters."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.compliance import (
    ALL,
    AUTO_REPLY_TAG,
    CONSENT_FIELDS,
    HELP,
    OPT_IN,
    OPT_OUT,
    OPT_OUT_ALL,
    Action,
    Compliance,
    ConsentRecord,
    keyword_text,
)
from router.config_schema import ComplianceConfig, ProgramConfig
from router.numbers import NumberError
from router.optout import OptOutList

ALERTS = ProgramConfig(
    name="acme-alerts", senders=("12025550100", "18005550100", "ACME"),
    opt_out_reply="ACME Alerts: unsubscribed.", opt_in_reply="ACME Alerts: subscribed again.",
    help_reply="ACME Alerts: help at acme.example.",
)
BILLING = ProgramConfig(
    name="acme-billing", senders=("12025550199",), opt_out_reply="Billing: bye.",
    opt_in_reply="Billing: welcome back.", help_reply="Billing: call us.",
)
CONFIG = ComplianceConfig(programs=(ALERTS, BILLING))
PHONE = "447700900123"
LONE = "15005550006"  # a sender in no program: its own scope
NOW = 1_700_000_000.0


@pytest.fixture
def comp() -> Compliance:
    return Compliance(CONFIG, OptOutList())


def mo(comp: Compliance, text: str, to: str = "12025550100", **kw: Any) -> Action | None:
    """`text` from PHONE to our number `to`."""
    return comp.on_inbound(text, sender_of_reply=to, recipient=PHONE, now=NOW, **kw)


def act(comp: Compliance, text: str, to: str = "12025550100", **kw: Any) -> Action:
    """Like mo(), for a text that must be a keyword."""
    action = mo(comp, text, to, **kw)
    assert action is not None, text
    return action


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("stop", (OPT_OUT, "STOP")),
        (" Stop ", (OPT_OUT, "STOP")),
        ("STOP.", (OPT_OUT, "STOP")),
        ("Stop!!", (OPT_OUT, "STOP")),
        ("stop !", (OPT_OUT, "STOP")),
        ("Stop\n", (OPT_OUT, "STOP")),
        ("UNSUBSCRIBE", (OPT_OUT, "UNSUBSCRIBE")),
        ("cancel", (OPT_OUT, "CANCEL")),
        ("end", (OPT_OUT, "END")),
        ("Quit?", (OPT_OUT, "QUIT")),
        ("STOPALL", (OPT_OUT_ALL, "STOPALL")),
        ("stopall.", (OPT_OUT_ALL, "STOPALL")),
        ("UNSTOP", (OPT_IN, "UNSTOP")),
        ("start", (OPT_IN, "START")),
        ("help", (HELP, "HELP")),
        ("Info?", (HELP, "INFO")),
        ("stop please", None),
        ("stop sending me ads", None),
        ("please stop", None),
        ("?stop", None),
        ("stopp", None),
        ("stop all", None),
        ("", None),
        ("!!!", None),
    ],
)
def test_keyword_table(comp: Compliance, text: str, expected: tuple[str, str] | None) -> None:
    assert comp.keyword(text) == expected


def test_unicode_trailing_punctuation_is_ignored() -> None:
    assert keyword_text("Stop！") == "STOP"  # full-width exclamation mark
    assert keyword_text("stop。") == "STOP"


def test_keyword_lists_are_configurable() -> None:
    config = ComplianceConfig(opt_out_keywords=("ARRET", "STOP ALL"), opt_in_keywords=("OUI",),
                              help_keywords=("AIDE",))
    comp = Compliance(config, OptOutList())
    assert comp.keyword("arret!") == (OPT_OUT, "ARRET")
    assert comp.keyword("stop   all") == (OPT_OUT, "STOP ALL")
    assert comp.keyword("oui") == (OPT_IN, "OUI")
    assert comp.keyword("aide") == (HELP, "AIDE")
    assert comp.keyword("stop") is None
    reply = comp.on_inbound("arret", sender_of_reply=LONE, recipient=PHONE, now=NOW)
    assert reply is not None and "Reply OUI" in (reply.reply_text or "")


def test_scope_is_the_program_or_the_sender(comp: Compliance) -> None:
    assert comp.scope_for("12025550100") == "acme-alerts"
    assert comp.scope_for("+18005550100") == "acme-alerts"
    assert comp.scope_for("ACME") == "acme-alerts"
    assert comp.scope_for("12025550199") == "acme-billing"
    assert comp.scope_for(LONE) == LONE
    assert comp.scope_for("+" + LONE) == LONE
    assert comp.scope_for("Acme") == "Acme", "alphanumeric senders are case-sensitive"


def test_stop_to_one_program_number_blocks_the_whole_program(comp: Compliance) -> None:
    action = mo(comp, "STOP", to="18005550100")
    assert action is not None and action.kind == OPT_OUT and action.scope == "acme-alerts"
    for sender in ("12025550100", "18005550100", "ACME"):
        assert comp.is_opted_out(sender, PHONE)
    assert not comp.is_opted_out("12025550199", PHONE), "another program"
    assert not comp.is_opted_out(LONE, PHONE), "a sender in no program"
    assert not comp.is_opted_out("12025550100", "447700900124"), "another recipient"


def test_stop_to_a_lone_sender_blocks_only_that_sender(comp: Compliance) -> None:
    mo(comp, "stop", to="+" + LONE)
    assert comp.is_opted_out(LONE, PHONE)
    assert not comp.is_opted_out("15005550007", PHONE)
    assert not comp.is_opted_out("12025550100", PHONE)


def test_stopall_blocks_every_scope(comp: Compliance) -> None:
    action = mo(comp, "STOPALL", to=LONE)
    assert action is not None and action.kind == OPT_OUT_ALL
    assert [r.scope for r in action.records] == [ALL]
    for sender in ("12025550100", "12025550199", LONE, "19995550000", "OTHERBRAND"):
        assert comp.is_opted_out(sender, PHONE)


def test_start_reenables_only_the_scope_it_was_sent_to(comp: Compliance) -> None:
    mo(comp, "STOP", to="12025550100")
    mo(comp, "STOP", to="12025550199")
    action = mo(comp, "start", to="ACME")
    assert action is not None and action.kind == OPT_IN and action.scope == "acme-alerts"
    assert not comp.is_opted_out("12025550100", PHONE)
    assert comp.is_opted_out("12025550199", PHONE)


def test_start_after_stopall_resubscribes_that_scope_only(comp: Compliance) -> None:
    mo(comp, "STOPALL", to="12025550100")
    mo(comp, "UNSTOP", to="18005550100")
    assert not comp.is_opted_out("12025550100", PHONE), "the program START was sent to"
    assert comp.is_opted_out("12025550199", PHONE), "every other program stays stopped"
    assert comp.is_opted_out(LONE, PHONE), "and every lone sender"
    mo(comp, "STOPALL", to=LONE)
    assert comp.is_opted_out("12025550100", PHONE), "a new STOPALL stops that scope again"


def test_replies_come_from_the_program_or_defaults(comp: Compliance) -> None:
    cases = [("STOP", "ACME Alerts: unsubscribed."), ("START", "ACME Alerts: subscribed again."),
             ("HELP", "ACME Alerts: help at acme.example."), ("STOPALL", "ACME Alerts: unsubscribed.")]
    for text, reply in cases:
        action = mo(comp, text, to="ACME")
        assert action is not None and action.reply_text == reply
        assert action.reply_from == "ACME" and action.reply_to == PHONE
    lone = {text: act(comp, text, to=LONE).reply_text or ""
            for text in ("STOP", "START", "HELP", "STOPALL")}
    assert "unsubscribed" in lone["STOP"] and "Reply START" in lone["STOP"]
    assert "subscribed again" in lone["START"]
    assert "Reply STOP" in lone["HELP"]
    assert "all our senders" in lone["STOPALL"]


def test_auto_reply_tags(comp: Compliance) -> None:
    tags = {t: act(comp, t).auto_reply_tag for t in ("STOP", "STOPALL", "START", "HELP")}
    assert tags == {"STOP": "stop", "STOPALL": "stop", "START": "start", "HELP": "help"}
    assert AUTO_REPLY_TAG == "auto_reply"


def test_help_changes_nothing_and_records_nothing(comp: Compliance) -> None:
    mo(comp, "STOP")
    action = mo(comp, "HELP")
    assert action is not None and action.records == () and action.reply_text
    assert comp.is_opted_out("12025550100", PHONE), "HELP from an opted-out recipient is answered"
    assert comp.stats.opt_outs_total == 1 and comp.stats.opt_ins_total == 0


def test_records_of_an_inbound_keyword(comp: Compliance) -> None:
    action = mo(comp, "Stop!", to="+18005550100", carrier="acme", mo_id="mo-17")
    assert action is not None
    (rec,) = action.records
    assert rec.as_dict() == {
        "recipient": PHONE, "scope": "acme-alerts", "action": OPT_OUT, "keyword": "STOP",
        "source": "sms", "at": NOW, "carrier": "acme", "mo_id": "mo-17",
    }
    assert tuple(rec.as_dict()) == CONSENT_FIELDS


def test_no_reply_to_an_auto_reply_but_its_stop_is_honoured(comp: Compliance) -> None:
    action = mo(comp, "STOP", auto_reply=True)
    assert action is not None and action.reply_text is None and len(action.records) == 1
    assert comp.is_opted_out("12025550100", PHONE)


def test_a_receipt_is_never_a_keyword(comp: Compliance) -> None:
    assert mo(comp, "STOP", receipt=True) is None
    assert not comp.is_opted_out("12025550100", PHONE)
    assert comp.stats.opt_outs_total == 0


def test_plain_messages_and_binary_mos_are_ignored(comp: Compliance) -> None:
    assert mo(comp, "stop sending me ads") is None
    assert comp.on_inbound(None, sender_of_reply="12025550100", recipient=PHONE, now=NOW) is None
    assert len(comp.optouts) == 0


def test_a_bad_mo_source_is_refused_naming_the_field(comp: Compliance) -> None:
    with pytest.raises(NumberError, match="recipient"):
        comp.on_inbound("STOP", sender_of_reply="12025550100", recipient="07700900123", now=NOW)
    assert len(comp.optouts) == 0


def test_socket_ops_record_with_the_resolved_scope(comp: Compliance) -> None:
    rec = comp.record("opt_out", "+" + PHONE, "18005550100", "web-form", NOW)
    assert rec == ConsentRecord(PHONE, "acme-alerts", OPT_OUT, None, "web-form", NOW)
    assert comp.is_opted_out("ACME", PHONE)
    assert comp.consent_status("acme-alerts", PHONE) == "acme-alerts"
    rec = comp.record("opt_in", PHONE, "acme-alerts", None, NOW + 1)
    assert rec.source == "api" and rec.action == OPT_IN and rec.scope == "acme-alerts"
    assert comp.consent_status("12025550100", PHONE) is None


def test_socket_opt_out_of_every_scope(comp: Compliance) -> None:
    rec = comp.record("opt_out", PHONE, ALL, "crm", NOW)
    assert rec.action == OPT_OUT_ALL and rec.scope == ALL
    assert comp.consent_status(LONE, PHONE) == ALL
    comp.record("opt_in", PHONE, ALL, "crm", NOW)
    assert comp.consent_status(LONE, PHONE) is None


def test_record_refuses_unknown_actions_and_numbers(comp: Compliance) -> None:
    with pytest.raises(ValueError, match="action"):
        comp.record("delete", PHONE, LONE, None, NOW)
    with pytest.raises(NumberError, match="recipient"):
        comp.record("opt_out", "12ab", LONE, None, NOW)


def test_stats_count_events_and_refusals(comp: Compliance) -> None:
    mo(comp, "STOP")
    mo(comp, "STOP")
    mo(comp, "STOPALL")
    mo(comp, "START")
    comp.record("opt_in", PHONE, LONE, None, NOW)
    assert comp.is_opted_out(LONE, PHONE) is False
    assert comp.is_opted_out("12025550199", PHONE) is True
    assert comp.is_opted_out("12025550199", PHONE) is True
    comp.consent_status("12025550199", PHONE)  # a status query is no refusal
    assert comp.stats.as_dict() == {
        "opt_outs_total": 3, "opt_ins_total": 2, "refused_opted_out_total": 2,
    }


def test_a_config_reload_keeps_the_list_and_the_counters(comp: Compliance) -> None:
    mo(comp, "STOP", to="12025550199")
    moved = ProgramConfig(name="billing-2", senders=("12025550199",), opt_out_reply="x",
                          opt_in_reply="y", help_reply="z")
    reloaded = Compliance(ComplianceConfig(programs=(moved,)), comp.optouts, comp.stats)
    assert reloaded.stats.opt_outs_total == 1
    # The opt-out was of the old program's scope; a renamed program starts clean.
    assert comp.is_opted_out("12025550199", PHONE)
    assert not reloaded.is_opted_out("12025550199", PHONE)


def test_a_reloaded_list_answers_the_same(comp: Compliance) -> None:
    mo(comp, "STOP", to=LONE)
    mo(comp, "STOPALL", to="ACME")
    mo(comp, "START", to="12025550199")
    reloaded = Compliance(CONFIG, OptOutList.load(comp.optouts, comp.optouts.resubscribed()))
    for sender in (LONE, "ACME", "12025550199", "19995550000"):
        assert reloaded.is_opted_out(sender, PHONE) == comp.is_opted_out(sender, PHONE)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_any_text_is_either_exactly_a_keyword_or_ignored(text: str) -> None:
    comp = Compliance(CONFIG, OptOutList())
    found = comp.keyword(text)
    if found is not None:
        _, word = found
        assert word == keyword_text(text)
        assert text.upper().lstrip().startswith(word.split()[0])
    assert comp.on_inbound(text, sender_of_reply=LONE, recipient=PHONE, now=NOW, receipt=True) is None
