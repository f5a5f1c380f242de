"""What the simulated carrier remembers of each submit, in memory and as JSON lines.

A test in the same process reads ``CarrierSim.received`` (``SubmitRecord``
objects); a run in another process reads the ``--log`` file, one JSON object
per line, written in batches (every ``batch`` records and at least every
``FLUSH_S`` seconds, see ``CarrierSim``) rather than one write per submit.
"""

from __future__ import annotations

import json
from typing import Any, TextIO

from adapters.smpp.constants import CommandId

__all__ = ["FLUSH_S", "JsonlLog", "SubmitRecord"]

#: The longest a record waits in memory before it reaches the log file.
FLUSH_S = 0.2


class SubmitRecord:
    """One submit_sm (or data_sm) as the carrier received it, and what it answered.

    ``at`` is the wall-clock arrival time (epoch seconds); ``status`` the
    command_status answered (0 for accepted) and ``message_id`` the id given
    ("" when refused).  ``tlvs`` is the PDU's own dict (decoded values).
    """

    __slots__ = (
        "at", "system_id", "bind_id", "command", "sequence_number",
        "source_addr", "source_addr_ton", "source_addr_npi",
        "destination_addr", "dest_addr_ton", "dest_addr_npi",
        "data_coding", "esm_class", "registered_delivery", "short_message", "tlvs",
        "status", "message_id",
    )

    def __init__(self, at: float, system_id: str, bind_id: int, pdu: Any, status: int, message_id: str) -> None:
        self.at = at
        self.system_id = system_id
        self.bind_id = bind_id
        self.command = "data_sm" if pdu.command_id == CommandId.DATA_SM else "submit_sm"
        self.sequence_number = pdu.sequence_number
        self.source_addr = pdu.source_addr
        self.source_addr_ton = pdu.source_addr_ton
        self.source_addr_npi = pdu.source_addr_npi
        self.destination_addr = pdu.destination_addr
        self.dest_addr_ton = pdu.dest_addr_ton
        self.dest_addr_npi = pdu.dest_addr_npi
        self.data_coding = pdu.data_coding
        self.esm_class = pdu.esm_class
        self.registered_delivery = pdu.registered_delivery
        self.short_message: bytes = getattr(pdu, "short_message", b"")
        self.tlvs: dict[int, object] = pdu.tlvs
        self.status = status
        self.message_id = message_id

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: octets as hex, TLV tags as ``0x0424`` keys."""
        out = {name: getattr(self, name) for name in self.__slots__}
        out["short_message"] = self.short_message.hex()
        out["tlvs"] = {
            f"0x{tag:04X}": value.hex() if isinstance(value, (bytes, bytearray)) else value
            for tag, value in self.tlvs.items()
        }
        return out

    def __repr__(self) -> str:
        return (
            f"SubmitRecord(system_id={self.system_id!r}, seq={self.sequence_number}, "
            f"to={self.destination_addr!r}, status={self.status}, message_id={self.message_id!r})"
        )


class JsonlLog:
    """Appends records to a file as JSON lines, in batches. Raises OSError when it cannot open it."""

    __slots__ = ("path", "batch", "_file", "_lines")

    def __init__(self, path: str, batch: int = 512) -> None:
        self.path = path
        self.batch = batch
        self._file: TextIO | None = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()
        self._lines: list[str] = []

    @property
    def pending(self) -> int:
        """Records not yet written."""
        return len(self._lines)

    def append(self, record: SubmitRecord) -> None:
        """Queue ``record``; writes the batch when it is full."""
        self._lines.append(json.dumps(record.as_dict(), separators=(",", ":")))
        if len(self._lines) >= self.batch:
            self.flush()

    def flush(self) -> None:
        """Write and flush every queued record."""
        if self._lines and self._file is not None:
            self._file.write("\n".join(self._lines) + "\n")
            self._file.flush()
        self._lines.clear()

    def close(self) -> None:
        """Flush, then close the file; later appends are dropped."""
        self.flush()
        if self._file is not None:
            self._file.close()
            self._file = None
