"""Field layouts of the SMPP 3.4 PDU bodies (§4) and the reference body codec.

A layout is a tuple of ``Field``: name, kind, spec maximum (C-octet strings
count their NUL, as the spec's tables do), and the status to answer a request
whose field is malformed. ``read_body``/``write_body`` walk a layout with the
cursor reader/writer; they are the single source of truth for errors, and the
fast paths in ``fastpath.py`` must agree with them byte for byte.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .buffer import Reader, Writer
from .constants import CommandStatus as S
from .errors import LocalProtocolError, RemoteProtocolError

__all__ = ["Field", "read_body", "write_body", "SmeDest", "DistributionListDest", "UnsuccessSme"]

CSTR, TIME, U8, SM, DESTS, UNSUCC = range(6)

#: §7.1: absolute and relative times are "Fixed 1 or 17": empty, or 16 characters + NUL.
TIME_LEN = 16
#: §5.2.21: sm_length 0–254.
SM_MAX = 254
#: §4.5.1: number_of_dests up to 254 (also the limit for unsuccess_sme, §4.5.2).
DESTS_MAX = 254


class Field(NamedTuple):
    name: str
    kind: int
    max_len: int = 0
    #: status for a malformed value of this field in a request
    status: int = S.ESME_RINVPARLEN


class SmeDest:
    """A submit_multi destination of dest_flag 1 (an SME address), §4.5.1.1."""

    __slots__ = ("dest_addr_ton", "dest_addr_npi", "destination_addr")

    def __init__(self, dest_addr_ton: int = 0, dest_addr_npi: int = 0, destination_addr: str = "") -> None:
        self.dest_addr_ton = dest_addr_ton
        self.dest_addr_npi = dest_addr_npi
        self.destination_addr = destination_addr

    def _key(self) -> tuple[Any, ...]:
        return (self.dest_addr_ton, self.dest_addr_npi, self.destination_addr)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._key() == other._key()  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return "%s%r" % (type(self).__name__, self._key())


class DistributionListDest:
    """A submit_multi destination of dest_flag 2 (a distribution list name), §4.5.1.2."""

    __slots__ = ("dl_name",)

    def __init__(self, dl_name: str = "") -> None:
        self.dl_name = dl_name

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.dl_name == other.dl_name  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return "DistributionListDest(%r)" % self.dl_name


class UnsuccessSme(SmeDest):
    """One entry of submit_multi_resp's unsuccess_sme list, §4.5.2.1."""

    __slots__ = ("error_status_code",)

    def __init__(
        self, dest_addr_ton: int = 0, dest_addr_npi: int = 0, destination_addr: str = "",
        error_status_code: int = 0,
    ) -> None:
        super().__init__(dest_addr_ton, dest_addr_npi, destination_addr)
        self.error_status_code = error_status_code

    def _key(self) -> tuple[Any, ...]:
        return (self.dest_addr_ton, self.dest_addr_npi, self.destination_addr, self.error_status_code)


# --- §4 body layouts ---
# (name, kind, max octets incl. NUL, status for a malformed request) ---
_SERVICE_TYPE = Field("service_type", CSTR, 6, S.ESME_RINVSERTYP)
_SRC = (Field("source_addr_ton", U8), Field("source_addr_npi", U8))
_DST = (Field("dest_addr_ton", U8), Field("dest_addr_npi", U8))
_SOURCE_ADDR_21 = Field("source_addr", CSTR, 21, S.ESME_RINVSRCADR)
_DEST_ADDR_21 = Field("destination_addr", CSTR, 21, S.ESME_RINVDSTADR)
_MESSAGE_ID = Field("message_id", CSTR, 65, S.ESME_RINVMSGID)
_SCHEDULE = Field("schedule_delivery_time", TIME, 17, S.ESME_RINVSCHED)
_VALIDITY = Field("validity_period", TIME, 17, S.ESME_RINVEXPIRY)
_SYSTEM_ID = Field("system_id", CSTR, 16, S.ESME_RINVSYSID)
_PASSWORD = Field("password", CSTR, 9, S.ESME_RINVPASWD)
_SHORT_MESSAGE = Field("short_message", SM)

#: §4.1.1, §4.1.3, §4.1.5
BIND_LAYOUT = (
    _SYSTEM_ID, _PASSWORD, Field("system_type", CSTR, 13, S.ESME_RINVSYSTYP),
    Field("interface_version", U8), Field("addr_ton", U8), Field("addr_npi", U8),
    Field("address_range", CSTR, 41),
)
#: §4.1.2, §4.1.4, §4.1.6
BIND_RESP_LAYOUT = (_SYSTEM_ID,)
#: §4.1.7.1
OUTBIND_LAYOUT = (_SYSTEM_ID, _PASSWORD)
_SM_TAIL = (
    Field("esm_class", U8, status=S.ESME_RINVESMCLASS), Field("protocol_id", U8),
    Field("priority_flag", U8, status=S.ESME_RINVPRTFLG), _SCHEDULE, _VALIDITY,
    Field("registered_delivery", U8, status=S.ESME_RINVREGDLVFLG),
    Field("replace_if_present_flag", U8, status=S.ESME_RINVREPFLAG), Field("data_coding", U8),
    Field("sm_default_msg_id", U8, status=S.ESME_RINVDFTMSGID), _SHORT_MESSAGE,
)
#: §4.4.1 submit_sm and §4.6.1 deliver_sm share one layout.
SM_LAYOUT = (_SERVICE_TYPE, *_SRC, _SOURCE_ADDR_21, *_DST, _DEST_ADDR_21, *_SM_TAIL)
#: §4.4.2, §4.6.2, §4.7.2
MESSAGE_ID_RESP_LAYOUT = (_MESSAGE_ID,)
#: §4.7.1: data_sm addresses are up to 65 octets.
DATA_SM_LAYOUT = (
    _SERVICE_TYPE, *_SRC, Field("source_addr", CSTR, 65, S.ESME_RINVSRCADR),
    *_DST, Field("destination_addr", CSTR, 65, S.ESME_RINVDSTADR),
    Field("esm_class", U8), Field("registered_delivery", U8), Field("data_coding", U8),
)
#: §4.8.1
QUERY_SM_LAYOUT = (_MESSAGE_ID, *_SRC, _SOURCE_ADDR_21)
#: §4.8.2
QUERY_SM_RESP_LAYOUT = (
    _MESSAGE_ID, Field("final_date", TIME, 17), Field("message_state", U8), Field("error_code", U8),
)
#: §4.9.1
CANCEL_SM_LAYOUT = (_SERVICE_TYPE, _MESSAGE_ID, *_SRC, _SOURCE_ADDR_21, *_DST, _DEST_ADDR_21)
#: §4.10.1
REPLACE_SM_LAYOUT = (
    _MESSAGE_ID, *_SRC, _SOURCE_ADDR_21, _SCHEDULE, _VALIDITY,
    Field("registered_delivery", U8), Field("sm_default_msg_id", U8), _SHORT_MESSAGE,
)
#: §4.5.1: number_of_dests is implied by len(dest_addresses).
SUBMIT_MULTI_LAYOUT = (
    _SERVICE_TYPE, *_SRC, _SOURCE_ADDR_21, Field("dest_addresses", DESTS, status=S.ESME_RINVNUMDESTS),
    *_SM_TAIL,
)
#: §4.5.2: no_unsuccess is implied by len(unsuccess_sme).
SUBMIT_MULTI_RESP_LAYOUT = (_MESSAGE_ID, Field("unsuccess_sme", UNSUCC))
#: §4.12.1
ALERT_NOTIFICATION_LAYOUT = (
    *_SRC, Field("source_addr", CSTR, 65, S.ESME_RINVSRCADR),
    Field("esme_addr_ton", U8), Field("esme_addr_npi", U8), Field("esme_addr", CSTR, 65),
)


def default_of(kind: int) -> object:
    """A fresh spec default for a field kind (0, "", b"" or an empty list)."""
    if kind == CSTR or kind == TIME:
        return ""
    if kind == U8:
        return 0
    if kind == SM:
        return b""
    return []


def read_body(r: Reader, layout: tuple[Field, ...], out: dict[str, object], tolerant: bool) -> None:
    """Read ``layout`` into ``out``; raises RemoteProtocolError naming the field.

    ``tolerant`` (responses): an absent or truncated body leaves the remaining
    fields at their defaults, and a final C-string may lack its NUL.
    """
    for f in layout:
        if tolerant and r.at_end():
            return
        kind = f.kind
        if kind == CSTR or kind == TIME:
            out[f.name] = r.pull_cstring(f.name, f.status, tolerant)
        elif kind == U8:
            out[f.name] = r.pull_u8(f.name)
        elif kind == SM:
            size = r.pull_u8("sm_length")
            out[f.name] = r.pull_bytes(size, f.name, S.ESME_RINVMSGLEN)
        elif kind == DESTS:
            out[f.name] = _read_dests(r)
        else:
            out[f.name] = _read_unsuccess(r)


def _read_dests(r: Reader) -> list[object]:
    dests: list[object] = []
    for _ in range(r.pull_u8("number_of_dests")):
        flag = r.pull_u8("dest_flag")
        if flag == 1:
            ton = r.pull_u8("dest_addr_ton")
            npi = r.pull_u8("dest_addr_npi")
            dests.append(SmeDest(ton, npi, r.pull_cstring("destination_addr", S.ESME_RINVDSTADR)))
        elif flag == 2:
            dests.append(DistributionListDest(r.pull_cstring("dl_name", S.ESME_RINVDLNAME)))
        else:
            raise RemoteProtocolError(
                "dest_flag: %d is neither 1 (SME) nor 2 (distribution list)" % flag,
                S.ESME_RINVDESTFLAG, field="dest_flag",
            )
    return dests


def _read_unsuccess(r: Reader) -> list[object]:
    entries: list[object] = []
    for _ in range(r.pull_u8("no_unsuccess")):
        ton = r.pull_u8("dest_addr_ton")
        npi = r.pull_u8("dest_addr_npi")
        addr = r.pull_cstring("destination_addr", S.ESME_RINVDSTADR)
        entries.append(UnsuccessSme(ton, npi, addr, r.pull_u32("error_status_code")))
    return entries


def write_body(w: Writer, layout: tuple[Field, ...], pdu: object) -> None:
    """Write ``pdu``'s fields per ``layout``; raises LocalProtocolError naming the field."""
    for f in layout:
        value = getattr(pdu, f.name)
        kind = f.kind
        if kind == CSTR:
            w.push_cstring(value, f.max_len, f.name)
        elif kind == TIME:
            w.push_cstring(value, f.max_len, f.name, TIME_LEN)
        elif kind == U8:
            w.push_u8(value, f.name)
        elif kind == SM:
            w.push_octets(value, SM_MAX, f.name)
            raw = w.parts.pop()
            w.push_u8(len(raw), "sm_length")
            w.parts.append(raw)
        elif kind == DESTS:
            _write_list(w, value, "dest_addresses", "number_of_dests", _write_dest)
        else:
            _write_list(w, value, "unsuccess_sme", "no_unsuccess", _write_unsuccess)


def _write_list(w: Writer, items: object, field: str, count: str, write_one: Any) -> None:
    if not isinstance(items, (list, tuple)):
        raise LocalProtocolError("%s: expected a list, got %r" % (field, items), field=field)
    if len(items) > DESTS_MAX:
        raise LocalProtocolError(
            "%s: %d %s, at most %d" % (count, len(items), field, DESTS_MAX), field=count
        )
    w.push_u8(len(items), count)
    for item in items:
        write_one(w, item)


def _write_dest(w: Writer, d: object) -> None:
    if type(d) is SmeDest:
        w.push_u8(1, "dest_flag")
        w.push_u8(d.dest_addr_ton, "dest_addr_ton")
        w.push_u8(d.dest_addr_npi, "dest_addr_npi")
        w.push_cstring(d.destination_addr, 21, "destination_addr")
    elif type(d) is DistributionListDest:
        w.push_u8(2, "dest_flag")
        w.push_cstring(d.dl_name, 21, "dl_name")
    else:
        raise LocalProtocolError(
            "dest_addresses: %r is neither SmeDest nor DistributionListDest" % (d,), field="dest_addresses"
        )


def _write_unsuccess(w: Writer, u: object) -> None:
    if type(u) is not UnsuccessSme:
        raise LocalProtocolError("unsuccess_sme: %r is not an UnsuccessSme" % (u,), field="unsuccess_sme")
    w.push_u8(u.dest_addr_ton, "dest_addr_ton")
    w.push_u8(u.dest_addr_npi, "dest_addr_npi")
    w.push_cstring(u.destination_addr, 21, "destination_addr")
    w.push_u32(u.error_status_code, "error_status_code")
