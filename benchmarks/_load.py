"""The pipeline benchmark's load: who sends what, and how to find it again at the carrier.

The scenario is fixed so that runs compare: 1,000 E.164 source numbers, served round
robin, sending to distinct destination numbers, half in the UK (route
``44``) and half in the US (route ``1``), with a fixed mix of texts in every block of
ten messages:

* 6 one-part GSM texts (an OTP-style notice),
* 2 three-part GSM texts (a long notice, 400-odd septets),
* 2 one-part UCS-2 texts (Cyrillic, so GSM cannot carry them).

The sender of each message moves by one number per round of 1,000, so every number
sends the whole mix (1.4 segments per message on average, not 3 for the unlucky ones).

Every text carries ``#`` and an 8-digit token at a place where it survives segmentation
(the start of the first part for the long text), so a carrier-side record (the simulator's ``--log``) can be matched to the
message the client sent, whichever path it took.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

__all__ = [
    "MIX",
    "NUMBERS",
    "SEGMENTS_PER_MESSAGE",
    "CarrierLog",
    "LogReading",
    "Message",
    "messages",
    "sources",
    "token_of",
]

#: Distinct sending numbers in the scenario (the issue asks for at least 1,000).
NUMBERS = 1_000

_LONG = (
    "Your parcel is out for delivery today between 10:00 and 14:00. The driver will call "
    "you when they are about ten minutes away. If nobody is at home the parcel goes to the "
    "pick-up point named on your order, where it is kept for seven days; bring this message "
    "and a photo ID to collect it. To change the day or the address, reply CHANGE or use the "
    "link in your order e-mail. Questions: reply HELP. Thank you for shopping with us!"
)

#: The fixed mix, by position in a block of ten: (kind, template).  ``{t}`` is the token,
#: ``{c}`` a six-digit code.  The kinds are the table's row names.
MIX: tuple[tuple[str, str], ...] = (
    *(("gsm1", "Your verification code is {c}. It expires in 10 minutes. #{t}"),) * 6,
    *(("gsm3", "#{t} " + _LONG),) * 2,
    *(("ucs2", "Ваш код подтверждения {c}. Никому его не сообщайте. #{t}"),) * 2,
)

#: On-air parts of each kind with an 8-bit-reference UDH (checked by the smoke test).
PARTS = {"gsm1": 1, "gsm3": 3, "ucs2": 1}
SEGMENTS_PER_MESSAGE = sum(PARTS[kind] for kind, _ in MIX) / len(MIX)

_TOKEN = re.compile(r"#(\d{8})")


class Message:
    """One generated message: the keyword arguments of ``Client.submit`` plus its token."""

    __slots__ = ("dest", "kind", "source", "text", "token")

    def __init__(self, token: int, kind: str, source: str, dest: str, text: str) -> None:
        self.token = token
        self.kind = kind
        self.source = source
        self.dest = dest
        self.text = text


def sources(count: int = NUMBERS) -> list[str]:
    """``count`` UK mobile numbers in E.164, ``447700900000`` upwards."""
    return [f"4477009{i:05d}" for i in range(count)]


def messages(first_token: int, count: int | None = None) -> Iterator[Message]:
    """Messages of the fixed mix, tokens ``first_token`` upwards; endless when ``count`` is None.

    Token t comes from source ``(t + t // NUMBERS) mod NUMBERS``: the shift by one per
    round keeps a number from always sending the same kind of text, so over ten rounds
    every number sends the whole mix.  Even tokens go to the UK, odd ones to the US.  Raises ValueError when a token would not fit in 8 digits.
    """
    if first_token < 0 or first_token + (count or 0) > 99_999_999:
        raise ValueError(f"first_token: tokens are 8 digits, got {first_token}")
    numbers = sources()
    token = first_token
    end = None if count is None else first_token + count
    while end is None or token < end:
        kind, template = MIX[token % len(MIX)]
        dest = f"4477{token % 10**8:08d}" if token % 2 == 0 else f"1202{token % 10**7:07d}"
        text = template.format(t=f"{token:08d}", c=f"{token * 7919 % 10**6:06d}")
        yield Message(token, kind, numbers[(token + token // NUMBERS) % NUMBERS], dest, text)
        token += 1


def token_of(short_message: bytes, esm_class: int, data_coding: int) -> int | None:
    """The token in one submitted part, or None (a later part of a long text, or no token).

    Strips the UDH when esm_class has UDHI set (SMPP 3.4 §5.2.12) and decodes UCS-2
    (data_coding 8, §5.2.19); GSM unpacked carries '#' and digits as their ASCII codes.
    """
    body = short_message
    if esm_class & 0x40 and body:
        udh = body[: body[0] + 1]
        # IEI 0 / 8 (8- / 16-bit reference, 3GPP TS 23.040 §9.2.3.24.1): only part 1 has it.
        if len(udh) >= 6 and udh[1] in (0, 8) and udh[-1] != 1:
            return None
        body = body[len(udh):]
    text = body.decode("utf-16-be", "replace") if data_coding == 8 else body.decode("latin-1")
    m = _TOKEN.search(text)
    return int(m.group(1)) if m else None


class LogReading:
    """What one stretch of a carrier log held: parts, tokens with their first arrival.

    Only parts of tokens ``min_token`` upwards are counted, so what is left of an
    earlier phase does not count for this one.
    """

    __slots__ = ("arrivals", "last_at", "min_token", "parts", "refused")

    def __init__(self, min_token: int = 0) -> None:
        self.min_token = min_token
        self.parts = 0
        self.refused = 0
        self.last_at = 0.0
        self.arrivals: dict[int, float] = {}


class CarrierLog:
    """Reads a simulator's ``--log`` file (JSON lines) incrementally, from where it left off."""

    __slots__ = ("_offset", "path")

    def __init__(self, path: str) -> None:
        self.path = path
        self._offset = 0

    def lines_pending(self) -> int:
        """Complete lines written since the last ``read`` (or ``skip``)."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                return f.read().count(b"\n")
        except FileNotFoundError:
            return 0

    def skip(self) -> None:
        """Forget everything written so far (the start of a phase)."""
        try:
            with open(self.path, "rb") as f:
                f.seek(0, 2)
                self._offset = f.tell()
        except FileNotFoundError:
            self._offset = 0

    def read(self, into: LogReading | None = None) -> LogReading:
        """Parse the complete lines written since the last call; raises ValueError on a bad line."""
        out = into if into is not None else LogReading()
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            data = f.read()
        end = data.rfind(b"\n") + 1
        self._offset += end
        arrivals, first = out.arrivals, out.min_token
        for line in data[:end].splitlines():
            record = json.loads(line)
            token = token_of(bytes.fromhex(record["short_message"]), record["esm_class"], record["data_coding"])
            if token is not None and token < first:
                continue  # a first part of an earlier phase (later parts carry no token)
            at = record["at"]
            out.parts += 1
            if record["status"] != 0:
                out.refused += 1
                continue
            out.last_at = max(out.last_at, at)
            if token is not None and token not in arrivals:
                arrivals[token] = at
        return out
