"""Text benchmarks: encoding choice and rendering, per call, on the message mix's texts.

Run: ``python -m benchmarks.text``.  Prints a table, then RESULT lines. The baseline is
the gsm0338 codec (a test dependency) encoding the same 130-character text, measured in
the same run.
"""

from __future__ import annotations

import codecs
import timeit
from collections.abc import Callable

from router.text import decode_short_message, measure, render

ASCII_130 = (
    "Your ACME code is 482913. It expires in 10 minutes. Never share it: "
    "we will not ask for it. Reply STOP to opt out, HELP for help. "
)[:130]
CYRILLIC_130 = ("Ваш код подтверждения 482913. Никому его не сообщайте. " * 3)[:130]
LATIN_EXT_130 = ("Café 5€ à Zürich, prix {promo} [ok] " * 4)[:130]
GSM_3_PART = (ASCII_130 * 3)[:400]


def per_call_us(func: Callable[[], object], number: int = 20_000) -> float:
    """Best of five runs, microseconds per call."""
    return min(timeit.repeat(func, number=number, repeat=5)) / number * 1e6


def main() -> None:
    assert len(ASCII_130) == len(CYRILLIC_130) == len(LATIN_EXT_130) == 130
    packed_parts = render(GSM_3_PART, "gsm7", dc0_charset="gsm7_packed")
    rows = [
        ("measure 130 ASCII", lambda: measure(ASCII_130)),
        ("measure 130 Cyrillic", lambda: measure(CYRILLIC_130)),
        ("measure 130 GSM with € and {}", lambda: measure(LATIN_EXT_130)),
        ("measure 400 ASCII (3 parts)", lambda: measure(GSM_3_PART)),
        ("render 130 ASCII gsm7", lambda: render(ASCII_130, "gsm7")),
        (
            "render 130 ASCII gsm7_packed",
            lambda: render(ASCII_130, "gsm7", dc0_charset="gsm7_packed"),
        ),
        ("render 130 Cyrillic ucs2", lambda: render(CYRILLIC_130, "ucs2")),
        ("render 400 ASCII gsm7 udh8", lambda: render(GSM_3_PART, "gsm7", ref=7)),
        (
            "render 400 ASCII gsm7_packed udh8",
            lambda: render(GSM_3_PART, "gsm7", dc0_charset="gsm7_packed"),
        ),
        (
            "decode packed part with UDH",
            lambda: decode_short_message(
                packed_parts[0].short_message, 0, True, dc0_charset="gsm7_packed"
            ),
        ),
    ]
    results = {name: per_call_us(func) for name, func in rows}
    try:
        import gsm0338  # noqa: F401  (registers the codec)
    except ImportError:
        baseline = None
    else:
        oracle = codecs.lookup("gsm03.38")
        baseline = per_call_us(lambda: oracle.encode(ASCII_130), number=2_000)
        results["gsm0338 codec encode 130 ASCII"] = baseline

    print(f"{'operation':40s} {'µs/call':>9s}")
    for name, value in results.items():
        print(f"{name:40s} {value:9.2f}")
    print(f"RESULT measure_ascii_130={results['measure 130 ASCII']:.2f} us")
    print(f"RESULT measure_cyrillic_130={results['measure 130 Cyrillic']:.2f} us")
    print(f"RESULT render_gsm7_130={results['render 130 ASCII gsm7']:.2f} us")
    print(
        f"RESULT render_gsm7_packed_3_parts={results['render 400 ASCII gsm7_packed udh8']:.2f} us"
    )
    if baseline is not None:
        ratio = baseline / results["render 130 ASCII gsm7"]
        print(f"RESULT render_vs_gsm0338_encode={ratio:.0f} x")


if __name__ == "__main__":
    main()
