"""Compliance at the edge: keywords on inbound messages, scopes, and the submit check.

A recipient who texts STOP to one of our numbers must get no more messages from it
(or from any number of the same program), an opt-out confirmation, and nothing else;
STOPALL stops every sender this router serves. START / UNSTOP re-subscribes the scope
the keyword was sent to, and only that one, even after a STOPALL: the recipient asked
that sender for messages again (CTIA messaging principles, opt-in after opt-out).

Scopes: a program (`[[compliance.programs]]`) is one scope named after the program;
a sender in no program is its own scope. :data:`router.optout.ALL` ("*") is every scope.

Everything here is pure: the caller passes `now`, persists the returned
:class:`ConsentRecord` objects, and sends the replies. The opt-out list is changed in
memory as decisions are made; the store's records rebuild it at start
(:meth:`OptOutList.load`).
"""

from __future__ import annotations

import unicodedata
from typing import Any

from router.config_schema import ComplianceConfig
from router.numbers import normalize_destination
from router.optout import ALL, OptOutList

__all__ = [
    "ACTIONS", "ALL", "AUTO_REPLY_TAG", "CONSENT_FIELDS", "HELP", "KINDS", "OPT_IN", "OPT_OUT",
    "OPT_OUT_ALL", "OPT_OUT_ALL_KEYWORDS", "Action", "Compliance", "ComplianceStats",
    "ConsentRecord", "keyword_text",
]

#: Action kinds. The first three are also the `action` of a consent record.
OPT_OUT = "opt_out"
OPT_OUT_ALL = "opt_out_all"
OPT_IN = "opt_in"
HELP = "help"
KINDS = (OPT_OUT, OPT_OUT_ALL, OPT_IN, HELP)
ACTIONS = (OPT_OUT, OPT_OUT_ALL, OPT_IN)

#: Opt-out keywords that stop every scope rather than the one they were sent to.
OPT_OUT_ALL_KEYWORDS = frozenset({"STOPALL"})

#: The tag an auto-reply carries, and its value per kind (DESIGN.md `[compliance]`).
AUTO_REPLY_TAG = "auto_reply"
_TAG_VALUE = {OPT_OUT: "stop", OPT_OUT_ALL: "stop", OPT_IN: "start", HELP: "help"}

#: Consent record fields, in export order (`smpp-router consent`).
CONSENT_FIELDS = ("recipient", "scope", "action", "keyword", "source", "at", "carrier", "mo_id")

#: `source` of records made from an inbound keyword, and of socket ops that name none.
SOURCE_SMS = "sms"
SOURCE_API = "api"


def keyword_text(text: str) -> str:
    """`text` as a keyword candidate: trimmed, trailing punctuation dropped, upper case.

    Inner runs of white space become one space, so a configured "STOP ALL" matches
    "stop  all". Leading punctuation stays: "?STOP" is not a keyword.
    """
    end = len(text)
    while end and (text[end - 1].isspace() or unicodedata.category(text[end - 1])[0] == "P"):
        end -= 1
    return " ".join(text[:end].split()).upper()


class ConsentRecord:
    """One opt-out / opt-in event, as stored and exported (fields: :data:`CONSENT_FIELDS`).

    `scope` is a program name, a sender, or "*" for every scope; `action` one of
    :data:`ACTIONS`; `keyword` the matched keyword (None for socket ops); `at` is the
    `now` of the decision (formatting it is the store's job); `carrier` and `mo_id`
    name the inbound message the keyword came in, filled in by the caller.
    """

    __slots__ = CONSENT_FIELDS

    def __init__(
        self, recipient: str, scope: str, action: str, keyword: str | None, source: str,
        at: float, carrier: str | None = None, mo_id: str | None = None,
    ) -> None:
        self.recipient = recipient
        self.scope = scope
        self.action = action
        self.keyword = keyword
        self.source = source
        self.at = at
        self.carrier = carrier
        self.mo_id = mo_id

    def as_dict(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in CONSENT_FIELDS}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ConsentRecord):
            return NotImplemented
        return self.as_dict() == other.as_dict()

    __hash__ = None  # type: ignore[assignment]  # mutable: the caller fills carrier, mo_id

    def __repr__(self) -> str:
        return "ConsentRecord(" + ", ".join(f"{f}={getattr(self, f)!r}" for f in CONSENT_FIELDS) + ")"


class Action:
    """What to do about an inbound keyword.

    `reply_text` goes from `reply_from` (our number the keyword was sent to) to
    `reply_to` (the recipient), tagged `{AUTO_REPLY_TAG: auto_reply_tag}`; None when
    no reply may be sent. The reply is sent even to an opted-out recipient (that is
    the confirmation), so it must not go through the opt-out check. `records` are
    the consent records to store, already applied to the opt-out list (none for HELP).
    `scope` is the scope the keyword was sent to; a STOPALL's record has scope "*".
    """

    __slots__ = ("keyword", "kind", "records", "reply_from", "reply_text", "reply_to", "scope")

    def __init__(
        self, kind: str, keyword: str, scope: str, reply_text: str | None,
        reply_from: str, reply_to: str, records: tuple[ConsentRecord, ...],
    ) -> None:
        self.kind = kind
        self.keyword = keyword
        self.scope = scope
        self.reply_text = reply_text
        self.reply_from = reply_from
        self.reply_to = reply_to
        self.records = records

    @property
    def auto_reply_tag(self) -> str:
        """The `auto_reply` tag value of the reply: stop, start or help."""
        return _TAG_VALUE[self.kind]

    def __repr__(self) -> str:
        return (f"Action({self.kind}, keyword={self.keyword!r}, scope={self.scope!r}, "
                f"reply={self.reply_text is not None}, records={len(self.records)})")


class ComplianceStats:
    """Counters for the metrics of the same names (prefix `smpp_router_`)."""

    __slots__ = ("opt_ins_total", "opt_outs_total", "refused_opted_out_total")

    def __init__(self) -> None:
        self.opt_outs_total = 0
        self.opt_ins_total = 0
        self.refused_opted_out_total = 0

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


class Compliance:
    """Keyword decisions and the submit check over one :class:`OptOutList`.

    Build a new one on a config reload, passing the same list and stats (counters of
    a Prometheus metric must not go back to zero).
    """

    __slots__ = ("_defaults", "_keywords", "_programs", "_scope_of",
                 "optouts", "stats")

    def __init__(
        self, config: ComplianceConfig, optouts: OptOutList, stats: ComplianceStats | None = None,
    ) -> None:
        self.optouts = optouts
        self.stats = ComplianceStats() if stats is None else stats
        self._keywords: dict[str, str] = {}
        for word in config.help_keywords:
            self._keywords[word] = HELP
        for word in config.opt_in_keywords:
            self._keywords[word] = OPT_IN
        for word in config.opt_out_keywords:  # opt-out wins a word listed twice
            self._keywords[word] = OPT_OUT_ALL if word in OPT_OUT_ALL_KEYWORDS else OPT_OUT
        self._programs = {p.name: p for p in config.programs}
        self._scope_of = {s: p.name for p in config.programs for s in p.senders}
        stop = (config.opt_out_keywords or ("STOP",))[0]
        start = (config.opt_in_keywords or ("START",))[0]
        self._defaults = {
            OPT_OUT: f"You are unsubscribed and will get no more messages. Reply {start} "
                     "to resubscribe.",
            OPT_OUT_ALL: "You are unsubscribed from all our senders and will get no more "
                         f"messages. Reply {start} to resubscribe to this one.",
            OPT_IN: f"You are subscribed again. Reply {stop} to unsubscribe.",
            HELP: f"Reply {stop} to unsubscribe. Msg&data rates may apply.",
        }

    def scope_for(self, sender: str) -> str:
        """The scope of messages from `sender`: its program's name, or the sender itself.

        A leading "+" is ignored, as in the config.
        """
        scope = self._scope_of.get(sender)
        if scope is not None:
            return scope
        sender = sender.removeprefix("+")
        return self._scope_of.get(sender, sender)

    def resolve_scope(self, name: str) -> str:
        """The scope a socket op's `from` names: a program name as is, "*" for every
        scope, else the scope of that sender."""
        return name if name in self._programs or name == ALL else self.scope_for(name)

    def is_opted_out(self, sender: str, recipient: str) -> bool:
        """The check on every submit: did `recipient` opt out of `sender`'s scope or of all?

        `recipient` is E.164 digits as the request parser returns them. Counts a True
        answer as a refusal. Raises OptOutError for a recipient that is no number.
        """
        if self.optouts.is_opted_out(self.scope_for(sender), recipient):
            self.stats.refused_opted_out_total += 1
            return True
        return False

    def consent_status(self, name: str, recipient: str) -> str | None:
        """For `consent_status`: the scope whose opt-out blocks `recipient` from `name`
        (a sender or program): that scope, "*" for a STOPALL, or None. Not counted.

        Raises NumberError naming `recipient` when it is not E.164.
        """
        recipient = normalize_destination(recipient, "recipient")
        return self.optouts.blocked_by(self.resolve_scope(name), recipient)

    def keyword(self, text: str) -> tuple[str, str] | None:
        """(kind, keyword) when the whole of `text` is a configured keyword, else None."""
        word = keyword_text(text)
        kind = self._keywords.get(word)
        return None if kind is None else (kind, word)

    def on_inbound(
        self, text: str | None, *, sender_of_reply: str, recipient: str, now: float,
        auto_reply: bool = False, receipt: bool = False,
        carrier: str | None = None, mo_id: str | None = None,
    ) -> Action | None:
        """Act on an inbound message (MO) whose whole text is a keyword; None otherwise.

        `sender_of_reply` is the MO's destination (our number), `recipient` its source.
        `receipt`: the message is a delivery receipt, never a keyword: None. `auto_reply`:
        the MO is itself an automatic message (an auto-reply of another system, marked so
        by the carrier or recognised by the caller); its opt-out or opt-in is still honoured,
        but no reply is made (`reply_text` None), so two robots cannot talk in a loop.
        `carrier` and `mo_id` go into the records. Raises NumberError naming `recipient`
        when it is not E.164 digits.
        """
        if receipt or not text:
            return None
        found = self.keyword(text)
        if found is None:
            return None
        kind, word = found
        recipient = normalize_destination(recipient, "recipient")
        scope = self.scope_for(sender_of_reply)
        records = self._apply(kind, recipient, scope, word, SOURCE_SMS, now, carrier, mo_id)
        reply = None if auto_reply else self._reply(kind, scope)
        return Action(kind, word, scope, reply, sender_of_reply, recipient, records)

    def record(
        self, action: str, recipient: str, scope: str, source: str | None, now: float,
    ) -> ConsentRecord:
        """An `opt_out` / `opt_in` socket op: apply it and return the record to store.

        `scope` is the op's `from` (a sender, a program name, or "*"); `source` defaults
        to "api". An opt-out of "*" is recorded as opt_out_all. Raises ValueError naming
        `action` for an unknown action, NumberError naming `recipient`.
        """
        if action not in (OPT_OUT, OPT_IN, OPT_OUT_ALL):
            raise ValueError(f"action must be one of {', '.join(ACTIONS)}, got {action!r}")
        recipient = normalize_destination(recipient, "recipient")
        scope = self.resolve_scope(scope)
        if action == OPT_OUT and scope == ALL:
            action = OPT_OUT_ALL
        (rec,) = self._apply(action, recipient, scope, None, source or SOURCE_API, now)
        return rec

    def _apply(
        self, kind: str, recipient: str, scope: str, keyword: str | None, source: str,
        now: float, carrier: str | None = None, mo_id: str | None = None,
    ) -> tuple[ConsentRecord, ...]:
        """Change the list for `kind` and return the records; HELP changes nothing."""
        if kind == HELP:
            return ()
        if kind == OPT_IN:
            self.optouts.opt_in(scope, recipient)
            self.stats.opt_ins_total += 1
        else:
            if kind == OPT_OUT_ALL:
                scope = ALL
            self.optouts.opt_out(scope, recipient)
            self.stats.opt_outs_total += 1
        return (ConsentRecord(recipient, scope, kind, keyword, source, now, carrier, mo_id),)

    def _reply(self, kind: str, scope: str) -> str:
        program = self._programs.get(scope)
        if program is None:
            return self._defaults[kind]
        if kind == HELP:
            return program.help_reply
        return program.opt_in_reply if kind == OPT_IN else program.opt_out_reply
