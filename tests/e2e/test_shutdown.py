"""A graceful stop while carriers hold the router's windows full.

What was written and not answered is in doubt; what was never written must stay queued
for the next run — a stopping router has not tried to send it, so it must not give up on it.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from tests.e2e.harness import Router, SimOptions, route, text_of, until


async def test_stop_keeps_unwritten_messages_queued_for_the_next_run(tmp_path: Path) -> None:
    window = {"window": 4, "response_timeout_s": 30}
    r = Router(tmp_path, {"a": SimOptions(), "b": SimOptions()}, [route("", ("a", 0.001), ("b", 0.002))],
               entries={"a": window, "b": window})
    async with r:
        for sim in r.sims.values():
            sim.stall()  # answer nothing: both windows fill, the rest waits unwritten
        replies = [await r.client.submit("ACME", "4915112345678", text=f"m{i:02d}") for i in range(20)]
        ids = [m["id"] for m in replies]
        await until(lambda: sum(s.stats["ignored"] for s in r.sims.values()) >= 8,
                    what="both windows full")
        await r.stop_app(0.3)
        stopped = Counter(r.mdr_status(ids).values())
        assert stopped == {"UNKNOWN": 8, "QUEUED": 12}, stopped

        for name in list(r.sims):
            await r.restart_sim(name)
        await r.start_app()
        await until(lambda: Counter(r.mdr_status(ids).values()).get("UNKNOWN", 0) == 8
                    and len(r.mdr_status(ids)) == 20
                    and set(r.mdr_status(ids).values()) <= {"UNKNOWN", "SUBMITTED", "DELIVERED"},
                    what="the queued twelve sent by the next run")
        resent = sorted(text_of(rec) for s in r.sims.values() for rec in s.received)

    assert len(resent) == 12 and len(set(resent)) == 12
