"""SMPP 3.4 wire constants: command ids, statuses, address types, TLV tags.

Section numbers refer to the SMPP v3.4 specification (issue 1.2, 1999).
A few SMPP 5.0 codes that carriers send to 3.4 binds are included and marked.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = [
    "CommandId",
    "CommandStatus",
    "DataCoding",
    "EsmClass",
    "MessageState",
    "Npi",
    "RegisteredDelivery",
    "TlvTag",
    "Ton",
    "status_name",
    "RESPONSE_BIT",
    "HEADER_SIZE",
    "DEFAULT_MAX_PDU_BYTES",
    "INTERFACE_VERSION_34",
]

#: §3.2: command_length counts itself; the header is 4 × 4 octets.
HEADER_SIZE = 16
#: §5.1.2: a response's command_id is its request's with bit 31 set.
RESPONSE_BIT = 0x80000000
#: Largest PDU we accept by default: a 64 KiB message_payload plus generous headroom.
DEFAULT_MAX_PDU_BYTES = 73728
#: §5.2.4: interface_version 0x34 means SMPP 3.4.
INTERFACE_VERSION_34 = 0x34


class CommandId(IntEnum):
    """command_id values, §5.1.2.1."""

    GENERIC_NACK = 0x80000000
    BIND_RECEIVER = 0x00000001
    BIND_RECEIVER_RESP = 0x80000001
    BIND_TRANSMITTER = 0x00000002
    BIND_TRANSMITTER_RESP = 0x80000002
    QUERY_SM = 0x00000003
    QUERY_SM_RESP = 0x80000003
    SUBMIT_SM = 0x00000004
    SUBMIT_SM_RESP = 0x80000004
    DELIVER_SM = 0x00000005
    DELIVER_SM_RESP = 0x80000005
    UNBIND = 0x00000006
    UNBIND_RESP = 0x80000006
    REPLACE_SM = 0x00000007
    REPLACE_SM_RESP = 0x80000007
    CANCEL_SM = 0x00000008
    CANCEL_SM_RESP = 0x80000008
    BIND_TRANSCEIVER = 0x00000009
    BIND_TRANSCEIVER_RESP = 0x80000009
    OUTBIND = 0x0000000B
    ENQUIRE_LINK = 0x00000015
    ENQUIRE_LINK_RESP = 0x80000015
    SUBMIT_MULTI = 0x00000021
    SUBMIT_MULTI_RESP = 0x80000021
    ALERT_NOTIFICATION = 0x00000102
    DATA_SM = 0x00000103
    DATA_SM_RESP = 0x80000103


class CommandStatus(IntEnum):
    """command_status (error) codes, §5.1.3.

    Unknown codes (reserved ranges, vendor 0x400–0x4FF) are not members:
    PDUs carry the status as a plain ``int`` so nothing is ever collapsed.
    """

    ESME_ROK = 0x00000000
    ESME_RINVMSGLEN = 0x00000001
    ESME_RINVCMDLEN = 0x00000002
    ESME_RINVCMDID = 0x00000003
    ESME_RINVBNDSTS = 0x00000004
    ESME_RALYBND = 0x00000005
    ESME_RINVPRTFLG = 0x00000006
    ESME_RINVREGDLVFLG = 0x00000007
    ESME_RSYSERR = 0x00000008
    ESME_RINVSRCADR = 0x0000000A
    ESME_RINVDSTADR = 0x0000000B
    ESME_RINVMSGID = 0x0000000C
    ESME_RBINDFAIL = 0x0000000D
    ESME_RINVPASWD = 0x0000000E
    ESME_RINVSYSID = 0x0000000F
    ESME_RCANCELFAIL = 0x00000011
    ESME_RREPLACEFAIL = 0x00000013
    ESME_RMSGQFUL = 0x00000014
    ESME_RINVSERTYP = 0x00000015
    ESME_RINVNUMDESTS = 0x00000033
    ESME_RINVDLNAME = 0x00000034
    ESME_RINVDESTFLAG = 0x00000040
    ESME_RINVSUBREP = 0x00000042
    ESME_RINVESMCLASS = 0x00000043
    ESME_RCNTSUBDL = 0x00000044
    ESME_RSUBMITFAIL = 0x00000045
    ESME_RINVSRCTON = 0x00000048
    ESME_RINVSRCNPI = 0x00000049
    ESME_RINVDSTTON = 0x00000050
    ESME_RINVDSTNPI = 0x00000051
    ESME_RINVSYSTYP = 0x00000053
    ESME_RINVREPFLAG = 0x00000054
    ESME_RINVNUMMSGS = 0x00000055
    ESME_RTHROTTLED = 0x00000058
    ESME_RINVSCHED = 0x00000061
    ESME_RINVEXPIRY = 0x00000062
    ESME_RINVDFTMSGID = 0x00000063
    ESME_RX_T_APPN = 0x00000064
    ESME_RX_P_APPN = 0x00000065
    ESME_RX_R_APPN = 0x00000066
    ESME_RQUERYFAIL = 0x00000067
    ESME_RINVOPTPARSTREAM = 0x000000C0
    ESME_ROPTPARNOTALLWD = 0x000000C1
    ESME_RINVPARLEN = 0x000000C2
    ESME_RMISSINGOPTPARAM = 0x000000C3
    ESME_RINVOPTPARAMVAL = 0x000000C4
    ESME_RDELIVERYFAILURE = 0x000000FE
    ESME_RUNKNOWNERR = 0x000000FF
    #: SMPP 5.0 §4.7.6; carriers return it on 3.4 binds for an unsupported data_coding.
    ESME_RINVDCS = 0x00000104


_STATUS_NAMES = {s.value: s.name for s in CommandStatus}


def status_name(code: int) -> str:
    """Name of a command_status, e.g. ``ESME_RTHROTTLED``; ``"0x%08X"`` for unknown codes."""
    name = _STATUS_NAMES.get(code)
    return name if name is not None else "0x%08X" % code


class Ton(IntEnum):
    """Type of number, §5.2.5."""

    UNKNOWN = 0
    INTERNATIONAL = 1
    NATIONAL = 2
    NETWORK_SPECIFIC = 3
    SUBSCRIBER_NUMBER = 4
    ALPHANUMERIC = 5
    ABBREVIATED = 6


class Npi(IntEnum):
    """Numbering plan indicator, §5.2.6."""

    UNKNOWN = 0
    ISDN = 1  #: E.163 / E.164
    DATA = 3  #: X.121
    TELEX = 4  #: F.69
    LAND_MOBILE = 6  #: E.212
    NATIONAL = 8
    PRIVATE = 9
    ERMES = 10
    INTERNET = 14  #: IP
    WAP_CLIENT_ID = 18


class EsmClass(IntEnum):
    """esm_class bits, §5.2.12. Test message-type bits with ``MESSAGE_TYPE_MASK``."""

    MESSAGE_TYPE_MASK = 0x3C
    SMSC_DELIVERY_RECEIPT = 0x04
    SME_DELIVERY_ACK = 0x08
    SME_MANUAL_ACK = 0x10
    INTERMEDIATE_NOTIFICATION = 0x20
    UDHI = 0x40
    REPLY_PATH = 0x80


class RegisteredDelivery(IntEnum):
    """registered_delivery values, §5.2.17 (SMSC delivery receipt bits 1–0)."""

    NONE = 0x00
    ON_SUCCESS_OR_FAILURE = 0x01
    ON_FAILURE = 0x02
    INTERMEDIATE = 0x10


class DataCoding(IntEnum):
    """data_coding values, §5.2.19."""

    SMSC_DEFAULT = 0x00
    IA5 = 0x01
    OCTET_UNSPECIFIED = 0x02
    LATIN_1 = 0x03
    OCTET_UNSPECIFIED_2 = 0x04
    JIS = 0x05
    CYRILLIC = 0x06
    LATIN_HEBREW = 0x07
    UCS2 = 0x08
    PICTOGRAM = 0x09
    ISO_2022_JP = 0x0A
    EXTENDED_KANJI = 0x0D
    KS_C_5601 = 0x0E


class MessageState(IntEnum):
    """message_state values, §5.2.28 (SMPP 5.0 adds 0 and 9; kept, carriers send them)."""

    SCHEDULED = 0  #: SMPP 5.0
    ENROUTE = 1
    DELIVERED = 2
    EXPIRED = 3
    DELETED = 4
    UNDELIVERABLE = 5
    ACCEPTED = 6
    UNKNOWN = 7
    REJECTED = 8
    SKIPPED = 9  #: SMPP 5.0


class TlvTag(IntEnum):
    """Optional parameter tags, §5.3.2 (vendor-specific range 0x1400–0x3FFF, §5.3.2 table)."""

    DEST_ADDR_SUBUNIT = 0x0005  #: §5.3.2.1
    DEST_NETWORK_TYPE = 0x0006  #: §5.3.2.3
    DEST_BEARER_TYPE = 0x0007  #: §5.3.2.5
    DEST_TELEMATICS_ID = 0x0008  #: §5.3.2.7
    SOURCE_ADDR_SUBUNIT = 0x000D  #: §5.3.2.2
    SOURCE_NETWORK_TYPE = 0x000E  #: §5.3.2.4
    SOURCE_BEARER_TYPE = 0x000F  #: §5.3.2.6
    SOURCE_TELEMATICS_ID = 0x0010  #: §5.3.2.8
    QOS_TIME_TO_LIVE = 0x0017  #: §5.3.2.9
    PAYLOAD_TYPE = 0x0019  #: §5.3.2.10
    ADDITIONAL_STATUS_INFO_TEXT = 0x001D  #: §5.3.2.11
    RECEIPTED_MESSAGE_ID = 0x001E  #: §5.3.2.12
    MS_MSG_WAIT_FACILITIES = 0x0030  #: §5.3.2.13
    PRIVACY_INDICATOR = 0x0201  #: §5.3.2.14
    SOURCE_SUBADDRESS = 0x0202  #: §5.3.2.15
    DEST_SUBADDRESS = 0x0203  #: §5.3.2.16
    USER_MESSAGE_REFERENCE = 0x0204  #: §5.3.2.17
    USER_RESPONSE_CODE = 0x0205  #: §5.3.2.18
    SOURCE_PORT = 0x020A  #: §5.3.2.20
    DESTINATION_PORT = 0x020B  #: §5.3.2.21
    SAR_MSG_REF_NUM = 0x020C  #: §5.3.2.22
    LANGUAGE_INDICATOR = 0x020D  #: §5.3.2.19
    SAR_TOTAL_SEGMENTS = 0x020E  #: §5.3.2.23
    SAR_SEGMENT_SEQNUM = 0x020F  #: §5.3.2.24
    SC_INTERFACE_VERSION = 0x0210  #: §5.3.2.25
    CALLBACK_NUM_PRES_IND = 0x0302  #: §5.3.2.37
    CALLBACK_NUM_ATAG = 0x0303  #: §5.3.2.38
    NUMBER_OF_MESSAGES = 0x0304  #: §5.3.2.39
    CALLBACK_NUM = 0x0381  #: §5.3.2.36
    DPF_RESULT = 0x0420  #: §5.3.2.28
    SET_DPF = 0x0421  #: §5.3.2.29
    MS_AVAILABILITY_STATUS = 0x0422  #: §5.3.2.30
    NETWORK_ERROR_CODE = 0x0423  #: §5.3.2.31
    MESSAGE_PAYLOAD = 0x0424  #: §5.3.2.32
    DELIVERY_FAILURE_REASON = 0x0425  #: §5.3.2.33
    MORE_MESSAGES_TO_SEND = 0x0426  #: §5.3.2.34
    MESSAGE_STATE = 0x0427  #: §5.3.2.35
    USSD_SERVICE_OP = 0x0501  #: §5.3.2.44
    DISPLAY_TIME = 0x1201  #: §5.3.2.26
    SMS_SIGNAL = 0x1203  #: §5.3.2.40
    MS_VALIDITY = 0x1204  #: §5.3.2.27
    ALERT_ON_MESSAGE_DELIVERY = 0x130C  #: §5.3.2.41
    ITS_REPLY_TYPE = 0x1380  #: §5.3.2.42
    ITS_SESSION_INFO = 0x1383  #: §5.3.2.43
