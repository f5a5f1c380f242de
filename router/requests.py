"""Validation of internal-socket request maps into typed requests.

The socket hands over a decoded msgpack map; these functions either return a typed request
or raise `RequestError(code, message)` with the DESIGN.md error code and a message that
names the field (`priority must be 0 or 1, got 5`). Types are checked exactly (`type(x) is
int`), so `True` is no priority and `1` is no `dlr`.

`parse_submit` runs once per accepted message: it reads each key once, checks types with
identity tests, and leaves the work that costs (encoding choice, segment count) to
`router.text.measure`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from router.numbers import Address, NumberError, classify_source, normalize_destination
from router.text import TextError, measure, measure_binary

_N = TypeVar("_N")

# Error codes (DESIGN.md "Internal socket protocol").
INVALID_REQUEST = "invalid_request"
INVALID_NUMBER = "invalid_number"
NO_ROUTE = "no_route"
TOO_LONG = "too_long"
OVERLOADED = "overloaded"
OPTED_OUT = "opted_out"
UNAUTHORIZED = "unauthorized"
UNKNOWN_ID = "unknown_id"
INTERNAL = "internal"

#: Every op of interface v1; `auth` and `ping` are answered by the socket server itself.
OPS = frozenset(
    {
        "auth",
        "submit",
        "submit_many",
        "status",
        "subscribe",
        "stats",
        "ping",
        "opt_out",
        "opt_in",
        "consent_status",
    }
)
#: Events a subscriber may ask for.
EVENTS = frozenset({"mdr", "mo"})

#: Bounds that keep one request's memory and the MDR small.
MAX_TAGS = 16
MAX_TAG_KEY = 64
MAX_TAG_VALUE = 256
MAX_CLIENT_REF = 256
MAX_CONSENT_SOURCE = 256
MAX_SCOPE = 64
MAX_BATCH = 10_000
#: Carriers cap validity far lower; a year keeps every deadline computable.
MAX_VALIDITY_S = 366 * 86400

#: Keys every request may carry besides its own.
_ENVELOPE = frozenset({"op", "ref"})
_SUBMIT_ITEM_KEYS = frozenset(
    {
        "from",
        "to",
        "text",
        "data",
        "data_coding",
        "dlr",
        "priority",
        "validity_s",
        "client_ref",
        "tags",
    }
)
_SUBMIT_KEYS = _SUBMIT_ITEM_KEYS | _ENVELOPE


class RequestError(Exception):
    """A request refused with a DESIGN.md error code and a message naming the field."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    def reply(self) -> dict[str, Any]:
        """The `{ok: false, error, message}` reply map (without `ref`)."""
        return error_reply(self.code, self.message)


def error_reply(code: str, message: str) -> dict[str, Any]:
    """A refusal as the socket sends it (the server adds `ref`)."""
    return {"ok": False, "error": code, "message": message}


class SubmitRequest:
    """One validated message, its encoding chosen and its on-air segments counted."""

    __slots__ = (
        "source",
        "dest",
        "text",
        "data",
        "data_coding",
        "dlr",
        "priority",
        "validity_s",
        "client_ref",
        "tags",
        "encoding",
        "segments",
    )

    def __init__(
        self,
        source: Address,
        dest: str,
        text: str | None,
        data: bytes | None,
        data_coding: int | None,
        dlr: bool,
        priority: int,
        validity_s: int,
        client_ref: str | None,
        tags: dict[str, str],
        encoding: str,
        segments: int,
    ) -> None:
        self.source = source
        self.dest = dest
        self.text = text
        self.data = data
        self.data_coding = data_coding
        self.dlr = dlr
        self.priority = priority
        self.validity_s = validity_s
        self.client_ref = client_ref
        self.tags = tags
        self.encoding = encoding
        self.segments = segments

    def __repr__(self) -> str:
        return (
            f"SubmitRequest({self.source.addr!r} -> {self.dest!r}, {self.encoding}, "
            f"{self.segments} segment(s), priority={self.priority})"
        )


class ConsentRequest:
    """An `opt_out` / `opt_in` / `consent_status` request.

    `scope` is the sender's digits (`+` stripped) or its name, or a program name;
    `recipient` is E.164 digits; `source` says where the consent came from.
    """

    __slots__ = ("scope", "recipient", "source")

    def __init__(self, scope: str, recipient: str, source: str | None) -> None:
        self.scope = scope
        self.recipient = recipient
        self.source = source

    def __repr__(self) -> str:
        return f"ConsentRequest({self.scope!r}, {self.recipient!r}, source={self.source!r})"


def parse_op(m: dict[str, Any]) -> str:
    """The request's `op`. Raises RequestError when it is missing, not a string or unknown."""
    op = m.get("op")
    if type(op) is not str:
        if op is None:
            raise RequestError(INVALID_REQUEST, "op is missing")
        raise RequestError(INVALID_REQUEST, f"op must be a string, got {_tname(op)}")
    if op not in OPS:
        raise RequestError(INVALID_REQUEST, f'op "{op}" is unknown')
    return op


def parse_submit(
    m: dict[str, Any], *, max_segments: int, default_validity_s: int
) -> SubmitRequest:
    """Validate a `submit` map. Raises RequestError (invalid_request, invalid_number, too_long)."""
    return _submit(m, max_segments, default_validity_s, _SUBMIT_KEYS)


def parse_submit_many(
    m: dict[str, Any], *, max_segments: int, default_validity_s: int
) -> list[SubmitRequest | RequestError]:
    """Validate a `submit_many` map: one SubmitRequest or RequestError per message, in order.

    Raises RequestError only when the batch itself is wrong (no `messages` list, too long).
    An item's error message starts with its position: `messages[3]: ...`.
    """
    _only(m, _MANY_KEYS)
    messages = _required(m, "messages")
    if type(messages) is not list:
        raise RequestError(INVALID_REQUEST, f"messages must be a list, got {_tname(messages)}")
    if len(messages) > MAX_BATCH:
        raise RequestError(
            INVALID_REQUEST, f"messages has {len(messages)} items, at most {MAX_BATCH} allowed"
        )
    out: list[SubmitRequest | RequestError] = []
    for i, item in enumerate(messages):
        try:
            if type(item) is not dict:
                raise RequestError(INVALID_REQUEST, f"must be a map, got {_tname(item)}")
            out.append(_submit(item, max_segments, default_validity_s, _SUBMIT_ITEM_KEYS))
        except RequestError as exc:
            out.append(RequestError(exc.code, f"messages[{i}]: {exc.message}"))
    return out


def parse_status(m: dict[str, Any]) -> str:
    """The router id asked for by a `status` map. Raises RequestError."""
    _only(m, _STATUS_KEYS)
    rid = _required(m, "id")
    if type(rid) is not str or not rid:
        raise RequestError(INVALID_REQUEST, f"id must be a non-empty string, got {rid!r}")
    return rid


def parse_subscribe(m: dict[str, Any]) -> frozenset[str]:
    """The events of a `subscribe` map (a non-empty subset of mdr, mo). Raises RequestError."""
    _only(m, _SUBSCRIBE_KEYS)
    events = _required(m, "events")
    if type(events) is not list or not events:
        raise RequestError(
            INVALID_REQUEST, f"events must be a non-empty list of mdr, mo; got {_short(events)}"
        )
    for e in events:
        if type(e) is not str or e not in EVENTS:
            raise RequestError(INVALID_REQUEST, f"events: {_short(e)} is not one of mdr, mo")
    return frozenset(events)


def parse_consent(m: dict[str, Any]) -> ConsentRequest:
    """Validate an `opt_out` / `opt_in` map (`from`, `to`, optional `source`).

    Raises RequestError."""
    _only(m, _CONSENT_KEYS)
    source = m.get("source")
    if source is not None and (type(source) is not str or len(source) > MAX_CONSENT_SOURCE):
        raise RequestError(
            INVALID_REQUEST,
            f"source must be a string of at most {MAX_CONSENT_SOURCE} characters, "
            f"got {_short(source)}",
        )
    return ConsentRequest(_scope(m), _destination(m), source)


def parse_consent_status(m: dict[str, Any]) -> ConsentRequest:
    """Validate a `consent_status` map (`from`, `to`). Raises RequestError."""
    _only(m, _CONSENT_STATUS_KEYS)
    return ConsentRequest(_scope(m), _destination(m), None)


_MANY_KEYS = frozenset({"messages"}) | _ENVELOPE
_STATUS_KEYS = frozenset({"id"}) | _ENVELOPE
_SUBSCRIBE_KEYS = frozenset({"events"}) | _ENVELOPE
_CONSENT_STATUS_KEYS = frozenset({"from", "to"}) | _ENVELOPE
_CONSENT_KEYS = _CONSENT_STATUS_KEYS | {"source"}


def _submit(
    m: dict[str, Any], max_segments: int, default_validity_s: int, allowed: frozenset[str]
) -> SubmitRequest:
    if not m.keys() <= allowed:
        _only(m, allowed)
    source = _source(m)
    dest = _destination(m)
    get = m.get
    text = get("text")
    data = get("data")
    data_coding = get("data_coding")
    if text is not None:
        if type(text) is not str:
            raise RequestError(INVALID_REQUEST, f"text must be a string, got {_tname(text)}")
        if data is not None:
            raise RequestError(INVALID_REQUEST, "give either text or data, not both")
        if data_coding is not None:
            raise RequestError(
                INVALID_REQUEST, "data_coding goes with data; a text's encoding is chosen"
            )
        try:
            encoding, segments = measure(text)
        except TextError as exc:  # a lone surrogate: only reachable from Python callers
            raise RequestError(INVALID_REQUEST, str(exc)) from None
    elif data is not None:
        if type(data) is not bytes:
            raise RequestError(INVALID_REQUEST, f"data must be bytes, got {_tname(data)}")
        if type(data_coding) is not int or not 0 <= data_coding <= 255:
            what = "is missing" if data_coding is None else f"got {data_coding!r}"
            raise RequestError(
                INVALID_REQUEST, f"data_coding must be an integer 0-255 with data, {what}"
            )
        encoding, segments = "binary", measure_binary(data)
    else:
        raise RequestError(INVALID_REQUEST, "text or data is missing")
    if segments > max_segments:
        raise RequestError(
            TOO_LONG, f"{'text' if text is not None else 'data'} is {segments} segments, "
            f"at most {max_segments} allowed"
        )
    dlr = get("dlr", True)
    if type(dlr) is not bool:
        raise RequestError(INVALID_REQUEST, f"dlr must be true or false, got {dlr!r}")
    priority = get("priority", 0)
    if type(priority) is not int or priority not in (0, 1):
        raise RequestError(INVALID_REQUEST, f"priority must be 0 or 1, got {priority!r}")
    validity_s = get("validity_s", default_validity_s)
    if type(validity_s) is not int or not 0 < validity_s <= MAX_VALIDITY_S:
        raise RequestError(
            INVALID_REQUEST,
            f"validity_s must be a positive integer up to {MAX_VALIDITY_S}, "
            f"got {_short(validity_s)}",
        )
    client_ref = get("client_ref")
    if client_ref is not None and (type(client_ref) is not str or len(client_ref) > MAX_CLIENT_REF):
        raise RequestError(
            INVALID_REQUEST,
            f"client_ref must be a string of at most {MAX_CLIENT_REF} characters, "
            f"got {_short(client_ref)}",
        )
    tags = get("tags")
    tags = {} if tags is None else _tags(tags)
    return SubmitRequest(
        source, dest, text, data, data_coding, dlr, priority, validity_s, client_ref, tags,
        encoding, segments,
    )  # fmt: skip


def _number(m: dict[str, Any], key: str, parse: Callable[[str], _N]) -> _N:
    s = _required(m, key)
    if type(s) is not str:
        raise RequestError(INVALID_REQUEST, f"{key} must be a string, got {_tname(s)}")
    try:
        return parse(s)
    except NumberError as exc:
        raise RequestError(INVALID_NUMBER, str(exc)) from None


def _source(m: dict[str, Any]) -> Address:
    return _number(m, "from", classify_source)


def _destination(m: dict[str, Any]) -> str:
    return _number(m, "to", normalize_destination)


def _scope(m: dict[str, Any]) -> str:
    """A consent scope: a sender (normalised like `from`) or a program name."""
    s = _required(m, "from")
    if type(s) is not str or not s.strip() or len(s) > MAX_SCOPE:
        raise RequestError(
            INVALID_REQUEST,
            f"from must be a sender or program name of at most {MAX_SCOPE} characters, "
            f"got {_short(s)}",
        )
    try:
        return classify_source(s).addr
    except NumberError:
        return s  # not a valid sender: a program name, as configured


def _tags(tags: Any) -> dict[str, str]:
    if type(tags) is not dict:
        raise RequestError(
            INVALID_REQUEST, f"tags must be a map of string to string, got {_tname(tags)}"
        )
    if len(tags) > MAX_TAGS:
        raise RequestError(
            INVALID_REQUEST, f"tags has {len(tags)} entries, at most {MAX_TAGS} allowed"
        )
    for k, v in tags.items():
        if type(k) is not str or not 0 < len(k) <= MAX_TAG_KEY:
            raise RequestError(
                INVALID_REQUEST,
                f"tags: key {_short(k)} must be a string of 1-{MAX_TAG_KEY} characters",
            )
        if type(v) is not str or len(v) > MAX_TAG_VALUE:
            raise RequestError(
                INVALID_REQUEST,
                f"tags.{k} must be a string of at most {MAX_TAG_VALUE} characters, got {_short(v)}",
            )
    return tags


def _required(m: dict[str, Any], key: str) -> Any:
    try:
        return m[key]
    except KeyError:
        raise RequestError(INVALID_REQUEST, f"{key} is missing") from None


def _only(m: dict[str, Any], allowed: frozenset[str]) -> None:
    for key in m:
        if key not in allowed:
            raise RequestError(INVALID_REQUEST, f'unknown key "{_short(key, quote=False)}"')


def _tname(value: Any) -> str:
    return "nil" if value is None else type(value).__name__


def _short(value: Any, limit: int = 40, *, quote: bool = True) -> str:
    """A value for an error message, cut so a huge input doesn't make a huge reply."""
    text = repr(value) if quote else str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
