"""Codec speed: ours against smpplib, measured in the same run.

Run as ``python -m benchmarks.codec``. Prints µs per operation for encoding
and decoding a typical submit_sm and a deliver_sm delivery receipt, the
speed-up over smpplib, and RESULT lines.
"""

from __future__ import annotations

import timeit
from typing import Any, Callable

from adapters.smpp.constants import TlvTag
from adapters.smpp.pdu import DeliverSm, SubmitSm, decode, encode

TEXT = b"Your verification code is 482913. It expires in 10 minutes."
RECEIPT = (
    b"id:0123456789abcdef sub:001 dlvrd:001 submit date:2501011200 done date:2501011201 "
    b"stat:DELIVRD err:000 text:Your verification c"
)


def sample_submit_sm() -> SubmitSm:
    """A typical single-part submit_sm asking for a receipt."""
    return SubmitSm(
        sequence_number=123456, source_addr_ton=5, source_addr="ACME", dest_addr_ton=1, dest_addr_npi=1,
        destination_addr="447700900123", registered_delivery=1, short_message=TEXT,
    )


def sample_receipt() -> DeliverSm:
    """A deliver_sm delivery receipt with the usual TLVs."""
    return DeliverSm(
        sequence_number=987, source_addr_ton=1, source_addr_npi=1, source_addr="447700900123",
        dest_addr_ton=5, destination_addr="ACME", esm_class=0x04, short_message=RECEIPT,
        tlvs={TlvTag.RECEIPTED_MESSAGE_ID: "0123456789abcdef", TlvTag.MESSAGE_STATE: 2},
    )


class _NoSocket:
    sequence = 0

    def next_sequence(self) -> int:
        return 0


def _smpplib_ops(pdu: Any, wire: bytes) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """smpplib's parse of ``wire`` and generate of an equivalent object built as its users do."""
    from smpplib import command, smpp

    client = _NoSocket()
    fields = {name: getattr(pdu, name) for name in pdu._names}
    fields.update((command.get_optional_name(tag), value) for tag, value in pdu.tlvs.items())
    theirs = smpp.make_pdu(smpp.pdu.extract_command(wire), client=client, **fields)
    theirs.sequence = pdu.sequence_number
    if decode(theirs.generate()) != pdu:  # same PDU; smpplib orders TLVs its own way
        raise AssertionError("smpplib does not produce the same PDU as ours")
    return (lambda: smpp.parse_pdu(wire, client=client)), theirs.generate


def per_op_us(ops: dict[str, Callable[[], Any]], rounds: int = 9, min_time: float = 0.05) -> dict[str, float]:
    """Best-of-``rounds`` µs per call for each op.

    The ops are timed in turn within every round, so ours and smpplib's see
    the same machine load (the box is shared); the minimum filters out rounds
    another process disturbed.
    """
    timers = {name: timeit.Timer(fn) for name, fn in ops.items()}
    numbers = {}
    for name, timer in timers.items():
        number, elapsed = timer.autorange()
        numbers[name] = max(1, int(number * min_time / max(elapsed, 1e-9)))
    best = {name: float("inf") for name in ops}
    for _ in range(rounds):
        for name, timer in timers.items():
            best[name] = min(best[name], timer.timeit(numbers[name]) / numbers[name] * 1e6)
    return best


def measure() -> dict[str, dict[str, float]]:
    """µs/op for each sample: ours_decode, ours_encode, smpplib_decode, smpplib_encode."""
    rows: dict[str, dict[str, float]] = {}
    for name, pdu in (("submit_sm", sample_submit_sm()), ("deliver_sm receipt", sample_receipt())):
        wire = encode(pdu)
        assert decode(wire) == pdu
        theirs_decode, theirs_encode = _smpplib_ops(pdu, wire)
        rows[name] = per_op_us({
            "ours_decode": lambda wire=wire: decode(wire),
            "ours_encode": lambda pdu=pdu: encode(pdu),
            "smpplib_decode": theirs_decode,
            "smpplib_encode": theirs_encode,
        })
    return rows


def main() -> None:
    rows = measure()
    print("%-20s %-7s %12s %12s %9s" % ("PDU", "op", "ours µs/op", "smpplib µs", "speed-up"))
    for name, r in rows.items():
        for op in ("decode", "encode"):
            ours, theirs = r["ours_" + op], r["smpplib_" + op]
            print("%-20s %-7s %12.2f %12.2f %8.1fx" % (name, op, ours, theirs, theirs / ours))
        both_ours = r["ours_decode"] + r["ours_encode"]
        both_theirs = r["smpplib_decode"] + r["smpplib_encode"]
        print("%-20s %-7s %12.2f %12.2f %8.1fx" % (name, "both", both_ours, both_theirs, both_theirs / both_ours))
    sm = rows["submit_sm"]
    speedup = (sm["smpplib_decode"] + sm["smpplib_encode"]) / (sm["ours_decode"] + sm["ours_encode"])
    print("RESULT codec_speedup_vs_smpplib=%.1f x" % speedup)
    print("RESULT submit_sm_decodes_per_s=%d 1/s" % (1e6 / sm["ours_decode"]))


if __name__ == "__main__":
    main()
