"""Carrier message ids: normalisation and matching between responses and receipts.

Theory of operation
-------------------
A carrier names a message twice: in the submit_sm_resp (``message_id``) and in the
receipt (``receipted_message_id`` TLV or the text's ``id:``). The two spellings often
differ: hex in one and decimal in the other, leading zeros stripped on one side, case
changed. A carrier's ``message_id_format`` says how they relate:

``same``
    the same id; case and the leading zeros of a hex/decimal id are ignored.
``hex``
    the receipt spells the response's decimal id in hex (response ``255``, receipt ``FF``).
``dec``
    the receipt spells the response's hex id in decimal (response ``FF``, receipt ``255``).
``auto``
    one of the three, learned from the traffic (below).

Correlation is a dict lookup, never a scan. Each rule turns an id into a *key*, a string
tagged with the rule (``"same:ff"``, ``"hex:255"``), so keys of different rules never
collide. The correlator indexes a submitted part under every key of
``IdMatcher.keys_for_response(resp_id)`` and looks a receipt up under
``IdMatcher.keys_for_receipt(receipt_id)``, in that order, taking the first hit::

    keys = matcher.keys_for_response(resp_id)
    for key in keys: index[(carrier, key)] = part      # store `keys` with the part
    ...
    for key in matcher.keys_for_receipt(receipt_id):
        part = index.get((carrier, key))
        if part is not None: matcher.observe_match(part.resp_id, receipt_id); break

Keys are exact strings, so a prefix never matches (``12345`` is not ``123456``). Distinct
ids may share a key by design (``0123`` and ``123`` under ``same``); the index must allow
for that. Remove a part under the keys it was *indexed* with: once ``auto`` has learned,
``keys_for_response`` answers differently for the same id.

Which ids a rule can read: a *numeric* id is 1–31 hex digits (an all-digit id is readable
both as decimal and as hex — the ambiguity ``auto`` must respect). Ids with ``-``, with 32
or more characters (UUIDs, hashes) or with other characters are *opaque*: only case-folded,
never converted, so they only ever match under ``same``. ``hex`` and ``dec`` fall back to
``same`` for an id they cannot read (a ``hex`` carrier whose response has letters is
matched as ``same`` rather than never).

Learning (``auto``)
-------------------
Until it has learned, ``auto`` indexes every readable key and looks receipts up under
``same`` first, then ``hex``, then ``dec``. Each confirmed pair is fed back with
``observe_match(resp_id, receipt_id)``. A pair *votes* for a rule when it matches under
that rule only and it is unambiguous: at least one side is not all digits. Two all-digit
ids never vote: receipt ``10`` may be response ``10`` (same) or response ``16`` (hex), and
whichever the lookup found first proves nothing — a receipt that arrived before its own
response would teach the wrong rule. A rule is learned when its votes lead every other
rule's by ``confirmations`` (default 2), so one wrong match cannot decide; from then on
only that rule is applied (with the ``same`` fallback of an explicit rule), ``learned``
names it and ``on_learned(rule)`` is called once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

#: The longest id accepted: receipted_message_id is a C-octet string of up to 65 octets
#: (§5.3.2.12); carriers send 65 characters in the text form too.
MAX_ID_LEN: Final = 65

RULES: Final = ("same", "hex", "dec")
FORMATS: Final = (*RULES, "auto")

# Id shapes. Numeric ids are 1–31 hex digits; 32+ is a UUID without dashes or a hash.
_OPAQUE: Final = 0
_DIGITS: Final = 1  # readable both as decimal and as hex
_HEX: Final = 2  # hex digits with at least one letter
_HEX_CHARS: Final = frozenset("0123456789abcdefABCDEF")


class MessageIdError(ValueError):
    """A message id that cannot be normalised; the message names the field and why."""


def _checked(id: str) -> str:
    if not isinstance(id, str):
        raise MessageIdError(f"message_id: expected str, got {type(id).__name__}")
    stripped = id.strip()
    if not stripped:
        raise MessageIdError("message_id: empty")
    if len(stripped) > MAX_ID_LEN:
        raise MessageIdError(
            f"message_id: {len(stripped)} characters, more than {MAX_ID_LEN}: {stripped[:70]!r}"
        )
    return stripped


def _shape(id: str) -> int:
    # str methods and a set test: ~3x faster than a regex fullmatch for ids this short.
    if len(id) < 32 and id.isascii():
        if id.isdigit():
            return _DIGITS
        if _HEX_CHARS.issuperset(id):
            return _HEX
    return _OPAQUE


def _same(id: str, shape: int) -> str:
    if shape == _OPAQUE:
        return id.lower()
    return id.lstrip("0").lower() or "0"


def _value(id: str, shape: int, base: int) -> str | None:
    """The id's value in decimal digits when it reads in ``base``, else None."""
    if shape == _DIGITS or (shape == _HEX and base == 16):
        return str(int(id, base))
    return None


def normalize(id: str, rule: str) -> str:
    """The canonical spelling of one id read under ``rule``.

    ``same`` case-folds, and strips leading zeros from a numeric id; ``hex`` reads the id as
    a hex number and ``dec`` as a decimal one, both giving the value in decimal digits. So a
    response id and a receipt id match under a carrier format when
    ``normalize(resp, a) == normalize(receipt, b)`` for that format's readings:
    ``same``: (same, same); ``hex``: (dec, hex); ``dec``: (hex, dec).

    Raises:
        MessageIdError: the id is empty, longer than ``MAX_ID_LEN``, or not readable under
            ``rule`` (letters read as ``dec``, an opaque id read as a number).
        ValueError: ``rule`` is not one of ``RULES``.
    """
    id = _checked(id)
    shape = _shape(id)
    if rule == "same":
        return _same(id, shape)
    if rule not in ("hex", "dec"):
        raise ValueError(f"rule: {rule!r} is not one of {', '.join(RULES)}")
    value = _value(id, shape, 16 if rule == "hex" else 10)
    if value is None:
        raise MessageIdError(f"message_id: {id!r} is not a {rule} number")
    return value


def _resp_key(rule: str, id: str, shape: int) -> str | None:
    """The key of a response id under a rule, or None when the rule cannot read it."""
    if rule == "same":
        return "same:" + _same(id, shape)
    value = _value(id, shape, 10 if rule == "hex" else 16)  # the response is the other base
    return None if value is None else rule + ":" + value


def _receipt_key(rule: str, id: str, shape: int) -> str | None:
    """The key of a receipt id under a rule, or None when the rule cannot read it."""
    if rule == "same":
        return "same:" + _same(id, shape)
    value = _value(id, shape, 16 if rule == "hex" else 10)
    return None if value is None else rule + ":" + value


def matching_rules(resp_id: str, receipt_id: str) -> tuple[str, ...]:
    """The rules under which a response id and a receipt id name the same message.

    Raises:
        MessageIdError: either id is empty or too long.
    """
    resp_id, receipt_id = _checked(resp_id), _checked(receipt_id)
    resp_shape, receipt_shape = _shape(resp_id), _shape(receipt_id)
    found = []
    for rule in RULES:
        key = _resp_key(rule, resp_id, resp_shape)
        if key is not None and key == _receipt_key(rule, receipt_id, receipt_shape):
            found.append(rule)
    return tuple(found)


class IdMatcher:
    """A carrier's id matching rule, given by its ``message_id_format``.

    ``learned`` is the rule in force for ``auto`` once learned (else None); for an explicit
    format it is that format. ``on_learned`` is called once with the rule ``auto`` learns.

    Raises:
        ValueError: ``fmt`` is not one of ``FORMATS`` or ``confirmations`` < 1.
    """

    __slots__ = ("fmt", "learned", "on_learned", "confirmations", "_votes")

    def __init__(
        self,
        fmt: str,
        *,
        on_learned: Callable[[str], object] | None = None,
        confirmations: int = 2,
    ) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"message_id_format: {fmt!r} is not one of {', '.join(FORMATS)}")
        if confirmations < 1:
            raise ValueError(f"confirmations: {confirmations} is less than 1")
        self.fmt = fmt
        self.learned: str | None = None if fmt == "auto" else fmt
        self.on_learned = on_learned
        self.confirmations = confirmations
        self._votes = dict.fromkeys(RULES, 0)

    def keys_for_response(self, resp_id: str) -> tuple[str, ...]:
        """The keys to index a submitted part under, for its submit_sm_resp ``message_id``.

        Raises:
            MessageIdError: the id is empty or longer than ``MAX_ID_LEN``.
        """
        resp_id = _checked(resp_id)
        shape = _shape(resp_id)
        same = "same:" + _same(resp_id, shape)
        rule = self.learned
        if rule == "same" or shape == _OPAQUE:
            return (same,)
        if rule is None:
            if shape == _HEX:  # letters: not a decimal response, so never a `hex` one
                return (same, "dec:" + str(int(resp_id, 16)))
            return (same, "hex:" + str(int(resp_id)), "dec:" + str(int(resp_id, 16)))
        key = _resp_key(rule, resp_id, shape)
        return (same,) if key is None else (key,)

    def keys_for_receipt(self, receipt_id: str) -> tuple[str, ...]:
        """The keys to look a receipt's id up under, in the order to try.

        Raises:
            MessageIdError: the id is empty or longer than ``MAX_ID_LEN``.
        """
        receipt_id = _checked(receipt_id)
        shape = _shape(receipt_id)
        same = "same:" + _same(receipt_id, shape)
        rule = self.learned
        if rule == "same" or shape == _OPAQUE:
            return (same,)
        if rule is None:
            if shape == _HEX:  # letters: not a decimal receipt, so never a `dec` one
                return (same, "hex:" + str(int(receipt_id, 16)))
            return (same, "hex:" + str(int(receipt_id, 16)), "dec:" + str(int(receipt_id)))
        key = _receipt_key(rule, receipt_id, shape)
        return (same,) if key is None else (key, same)

    def observe_match(self, resp_id: str, receipt_id: str) -> str | None:
        """Learn from a pair the correlator matched; returns the rule learned, if any now.

        Only ``auto`` learns, and only from unambiguous pairs (see the module docstring);
        after learning, further observations change nothing.

        Raises:
            MessageIdError: either id is empty or longer than ``MAX_ID_LEN``.
        """
        if self.learned is not None:
            return None
        rules = matching_rules(resp_id, receipt_id)
        if len(rules) != 1:
            return None
        if _shape(resp_id.strip()) == _DIGITS and _shape(receipt_id.strip()) == _DIGITS:
            return None  # ambiguous: see "Learning" above
        rule = rules[0]
        votes = self._votes
        votes[rule] += 1
        if votes[rule] - max(v for r, v in votes.items() if r != rule) < self.confirmations:
            return None
        self.learned = rule
        if self.on_learned is not None:
            self.on_learned(rule)
        return rule

    @property
    def votes(self) -> dict[str, int]:
        """Votes so far per rule (for status output and logs)."""
        return dict(self._votes)
