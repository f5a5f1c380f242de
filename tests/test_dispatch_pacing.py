"""A carrier limiter that frees up within PACE_SLACK_S counts as free: passes, not the
limiter's burst of 1, would otherwise set the carrier's rate."""

from __future__ import annotations

from router.dispatch import PACE_SLACK_S
from router.model import QUEUED, SENDING
from tests.test_dispatch import T0, Rig


async def test_a_carrier_free_within_the_slack_takes_the_message_now() -> None:
    rig = Rig()
    for pool in rig.pools.values():
        pool.at = T0 + PACE_SLACK_S / 2
    msg = rig.submit()
    assert msg.status == SENDING and msg.carrier == "cheap"
    assert len(rig.pools["cheap"].sent) == 1


async def test_a_carrier_free_later_than_the_slack_makes_the_message_wait() -> None:
    rig = Rig()
    later = T0 + PACE_SLACK_S * 5
    for pool in rig.pools.values():
        pool.at = later
    msg = rig.submit()
    assert msg.status == QUEUED and not rig.pools["cheap"].sent and not rig.pools["dear"].sent
    assert rig.timer == later
    rig.d.pump(later)
    assert msg.status == SENDING and msg.carrier == "cheap"
