"""Address classification: what an upstream's `from` and `to` strings are on the wire.

`to` is always E.164 (country code first, `+` optional): national formats are not guessed,
because the international prefix (00, 011, ...) differs by country (SMPP-NOTES "Addresses").
`from` is a short code, an E.164 number or an alphanumeric sender; each kind has a default
TON/NPI that a carrier's `ton_npi` setting may override.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

from router.gsm import TextError, encode_septets

#: Sender kinds, also the keys of a carrier's `ton_npi` overrides (DESIGN.md config).
E164 = "e164"
SHORT_CODE = "short_code"
ALPHANUMERIC = "alphanumeric"
KINDS = (E164, SHORT_CODE, ALPHANUMERIC)

#: SMPP 3.4 §5.2.5 addr_ton: 1 international, 3 network specific, 5 alphanumeric.
TON_INTERNATIONAL = 1
TON_NETWORK_SPECIFIC = 3
TON_ALPHANUMERIC = 5
#: SMPP 3.4 §5.2.6 addr_npi: 0 unknown, 1 ISDN (E.163/E.164).
NPI_UNKNOWN = 0
NPI_ISDN = 1

#: Default (TON, NPI) per sender kind (DESIGN.md "Numbers").
DEFAULT_TON_NPI: Mapping[str, tuple[int, int]] = {
    E164: (TON_INTERNATIONAL, NPI_ISDN),
    SHORT_CODE: (TON_NETWORK_SPECIFIC, NPI_UNKNOWN),
    ALPHANUMERIC: (TON_ALPHANUMERIC, NPI_UNKNOWN),
}

#: E.164 allows at most 15 digits; fewer than 5 is no international number.
E164_MIN_DIGITS = 5
E164_MAX_DIGITS = 15
SHORT_CODE_DIGITS = range(3, 9)
#: An alphanumeric originator is at most 11 GSM septets (3GPP TS 23.040 §9.1.2.5, TP-OA).
ALPHANUMERIC_MAX_SEPTETS = 11


class NumberError(ValueError):
    """An address that cannot be used; the message names the field and says why."""


class Address:
    """One classified address: `addr` is the wire text (digits without `+`, or the name)."""

    __slots__ = ("addr", "kind", "ton", "npi")

    def __init__(self, addr: str, kind: str, ton: int, npi: int) -> None:
        self.addr = addr
        self.kind = kind
        self.ton = ton
        self.npi = npi

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Address):
            return NotImplemented
        return (self.addr, self.kind, self.ton, self.npi) == (
            other.addr,
            other.kind,
            other.ton,
            other.npi,
        )

    def __hash__(self) -> int:
        return hash((self.addr, self.kind, self.ton, self.npi))

    def __repr__(self) -> str:
        return f"Address({self.addr!r}, {self.kind!r}, ton={self.ton}, npi={self.npi})"


def _quote(s: str, limit: int = 40) -> str:
    """The address in double quotes for a message, cut so a huge input can't bloat a reply."""
    return f'"{s}"' if len(s) <= limit else f'"{s[: limit - 3]}..."'


def _is_digits(s: str) -> bool:
    # str.isdigit alone accepts "²" and Arabic-Indic digits; the wire wants ASCII.
    return s.isascii() and s.isdigit()


def normalize_destination(s: str, field: str = "to") -> str:
    """The E.164 digits of a destination (`+` stripped).

    Raises NumberError for anything but 5–15 ASCII digits after an optional `+`, and for a
    leading 0 (a national or international-prefix format, which is not guessed).
    """
    if type(s) is not str:
        raise NumberError(f"{field} must be a string, got {type(s).__name__}")
    digits = s[1:] if s[:1] == "+" else s
    if not _is_digits(digits):
        what = "is empty" if not digits else "has non-digits"
        raise NumberError(f'{field} {_quote(s)} {what}')
    if not E164_MIN_DIGITS <= len(digits) <= E164_MAX_DIGITS:
        raise NumberError(
            f'{field} {_quote(s)} has {len(digits)} digits, E.164 needs '
            f"{E164_MIN_DIGITS} to {E164_MAX_DIGITS}"
        )
    if digits[0] == "0":
        raise NumberError(f'{field} {_quote(s)} starts with 0: give the country code first (E.164)')
    return digits


def classify_source(s: str, field: str = "from") -> Address:
    """Classify a sender as short code, E.164 number or alphanumeric name.

    Results are cached (a router sends from a few thousand senders at most): treat the
    returned Address as read-only. Raises NumberError for a non-string or empty sender,
    more than 15 digits, a `+` followed by non-digits, or a name that is not at most 11
    GSM 03.38 septets.
    """
    if type(s) is not str:
        raise NumberError(f"{field} must be a string, got {type(s).__name__}")
    return _classify(s, field)


@lru_cache(maxsize=16_384)
def _classify(s: str, field: str) -> Address:
    if _is_digits(s):
        if len(s) in SHORT_CODE_DIGITS:
            return Address(s, SHORT_CODE, TON_NETWORK_SPECIFIC, NPI_UNKNOWN)
        return Address(_e164_source(s, s, field), E164, TON_INTERNATIONAL, NPI_ISDN)
    if s[:1] == "+":
        if not _is_digits(s[1:]):
            what = "no digits" if len(s) == 1 else "non-digits"
            raise NumberError(f"{field} {_quote(s)} starts with + but has {what}")
        return Address(_e164_source(s[1:], s, field), E164, TON_INTERNATIONAL, NPI_ISDN)
    return Address(_alphanumeric(s, field), ALPHANUMERIC, TON_ALPHANUMERIC, NPI_UNKNOWN)


def _e164_source(digits: str, s: str, field: str) -> str:
    if len(digits) > E164_MAX_DIGITS:
        raise NumberError(
            f'{field} {_quote(s)} has {len(digits)} digits, E.164 allows at most {E164_MAX_DIGITS}'
        )
    return digits


def _alphanumeric(s: str, field: str) -> str:
    if not s:
        raise NumberError(f"{field} is empty")
    limit = ALPHANUMERIC_MAX_SEPTETS
    if len(s) > limit:
        raise NumberError(
            f"{field} {_quote(s)} is {len(s)} characters, an alphanumeric sender allows {limit}"
        )
    if s.strip() != s:
        raise NumberError(f"{field} {_quote(s)} has leading or trailing whitespace")
    try:
        septets = len(encode_septets(s))  # an extension character counts two
    except TextError:
        raise NumberError(
            f"{field} {_quote(s)} has characters outside the GSM 03.38 alphabet"
        ) from None
    if septets > limit:
        raise NumberError(
            f"{field} {_quote(s)} is {septets} GSM septets (extension characters count two), "
            f"an alphanumeric sender allows {limit}"
        )
    return s


def address_for_carrier(addr: Address, overrides: Mapping[str, tuple[int, int]]) -> Address:
    """The address with a carrier's `ton_npi` override for its kind applied, if any.

    Returns `addr` itself when the carrier keeps the default. Raises NumberError when an
    override is not a (TON, NPI) pair of octets.
    """
    pair = overrides.get(addr.kind)
    if pair is None:
        return addr
    try:
        ton, npi = pair
    except (TypeError, ValueError):
        raise NumberError(f"ton_npi.{addr.kind} must be [ton, npi], got {pair!r}") from None
    for name, value in (("ton", ton), ("npi", npi)):
        if type(value) is not int or not 0 <= value <= 255:
            raise NumberError(f"ton_npi.{addr.kind} {name} must be 0-255, got {value!r}")
    if (ton, npi) == (addr.ton, addr.npi):
        return addr
    return Address(addr.addr, addr.kind, ton, npi)
