"""Fault injection in the simulated carrier, each seen from the client's side of the socket."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from adapters.carrier_sim import CarrierSim, SimOptions
from adapters.smpp.constants import CommandId, status_name
from adapters.smpp.constants import CommandStatus as S
from adapters.smpp.pdu import EnquireLink, EnquireLinkResp
from tests.test_carrier_sim import Esme, running_sims, submit_pdu


@pytest.fixture
async def sim_factory() -> AsyncIterator[Callable[..., Awaitable[CarrierSim]]]:
    async with running_sims() as make:
        yield make


async def _statuses(esme: Esme, count: int, to: str = "447700900123") -> Counter[int]:
    seqs = esme.write(*(submit_pdu(to, dlr=False) for _ in range(count)))
    return Counter([(await esme.response(seq)).command_status for seq in seqs])


@pytest.mark.parametrize(("options", "status"), [
    ({"fail_rate": 0.25}, S.ESME_RSYSERR),
    ({"reject_rate": 0.25}, S.ESME_RINVDSTADR),
    ({"reject_rate": 0.25, "reject_status": "0x0401"}, 0x0401),
])
async def test_fail_and_reject_rates_hit_their_share_reproducibly(sim_factory, options, status) -> None:
    runs = []
    for _ in range(2):
        sim = await sim_factory(seed=42, **options)
        esme = await Esme.connect(sim)
        await esme.bind()
        counts = await _statuses(esme, 400)
        runs.append(counts)
        assert set(counts) == {0, status}
        # Binomial(400, 0.25): mean 100, sd 8.7; the seed makes it exact, the bounds make it honest.
        assert 70 <= counts[status] <= 130, counts
        assert sim.stats["submit_status"][status_name(status)] == counts[status]
        await esme.close()
    assert runs[0] == runs[1]


async def test_reject_numbers_refuse_those_prefixes_with_invalid_destination(sim_factory) -> None:
    sim = await sim_factory(reject_numbers="4479,+1900")
    esme = await Esme.connect(sim)
    await esme.bind()
    assert (await esme.submit("447912345678")).command_status == S.ESME_RINVDSTADR
    assert (await esme.submit("+19005550100")).command_status == S.ESME_RINVDSTADR
    ok = await esme.submit("447712345678")
    assert ok.command_status == 0 and ok.message_id == "1"
    # A refused submit gets no receipt: the only one is for the accepted submit.
    assert (await esme.receipt()).source_addr == "447712345678"
    with pytest.raises(TimeoutError):
        await esme.receipt(timeout=0.1)
    await esme.close()


async def test_throttle_refuses_above_n_per_sliding_second_then_recovers(sim_factory) -> None:
    sim = await sim_factory(throttle_tps=20)
    a, b = await Esme.connect(sim), await Esme.connect(sim)
    await a.bind("transmitter")
    await b.bind("transmitter")
    counts = await _statuses(a, 15) + await _statuses(b, 15)  # the limit is the system_id's, across binds
    assert counts == Counter({0: 20, S.ESME_RTHROTTLED: 10})
    other = await Esme.connect(sim)
    await other.bind("transmitter", system_id="globex")
    assert (await other.submit(dlr=False)).command_status == 0  # another account has its own second
    await asyncio.sleep(1.05)
    assert await _statuses(a, 20) == Counter({0: 20})
    for esme in (a, b, other):
        await esme.close()


async def test_stall_after_n_answers_n_pdus_then_nothing_and_keeps_the_socket(sim_factory) -> None:
    sim = await sim_factory(stall_after=3)
    esme = await Esme.connect(sim)
    await esme.bind()  # 1
    # 2, 3 answered; 4 (submit) and 5 (enquire_link) arrive in the same write and are not.
    seqs = esme.write(submit_pdu(dlr=False), EnquireLink(), submit_pdu(dlr=False), EnquireLink())
    assert (await esme.response(seqs[0])).command_status == 0
    assert (await esme.response(seqs[1])).command_id == CommandId.ENQUIRE_LINK_RESP
    assert not await esme.closed(timeout=0.3)  # no answer, no close
    assert esme.inbox == []
    assert sim.stats["submits"] == 1 and sim.stats["stalls"] == 1
    await esme.close()


async def test_stall_and_resume_on_demand(sim_factory) -> None:
    sim = await sim_factory()
    esme = await Esme.connect(sim)
    await esme.bind()
    sim.stall()
    (seq,) = esme.write(EnquireLink())
    with pytest.raises(TimeoutError):
        await esme.response(seq, timeout=0.2)
    late = await Esme.connect(sim)  # a new connection is not answered either
    (bind_seq,) = late.write(submit_pdu())
    with pytest.raises(TimeoutError):
        await late.response(bind_seq, timeout=0.1)
    sim.resume()
    (seq,) = esme.write(EnquireLink())
    assert (await esme.response(seq)).command_id == CommandId.ENQUIRE_LINK_RESP
    assert (await esme.submit()).command_status == 0
    await esme.close()
    await late.close()


async def test_drop_after_n_answers_n_pdus_then_closes(sim_factory) -> None:
    sim = await sim_factory(drop_after=3)
    esme = await Esme.connect(sim)
    await esme.bind()
    seqs = esme.write(*(submit_pdu(dlr=False) for _ in range(4)))
    got = [(await esme.response(seq)).command_status for seq in seqs[:2]]
    assert got == [0, 0]
    assert await esme.closed()
    assert esme.inbox == []  # the fourth and fifth PDUs were never answered
    assert sim.stats["drops"] == 1
    again = await Esme.connect(sim)  # the carrier is still there
    assert (await again.bind()).command_status == 0
    await again.close()


async def test_drop_all_closes_every_connection_and_keeps_listening(sim_factory) -> None:
    sim = await sim_factory()
    clients = [await Esme.connect(sim) for _ in range(3)]
    for esme in clients:
        await esme.bind()
    sim.drop_all()
    for esme in clients:
        assert await esme.closed()
    fresh = await Esme.connect(sim)
    assert (await fresh.bind()).command_status == 0
    await fresh.close()


async def test_the_simulator_sends_its_own_enquire_links_when_idle(sim_factory) -> None:
    sim = await sim_factory(enquire_link_s=0.1)
    esme = await Esme.connect(sim)
    await esme.bind()
    for _ in range(2):
        probe = await esme.read(timeout=1.0)
        assert probe.command_id == CommandId.ENQUIRE_LINK
        esme.write(EnquireLinkResp(sequence_number=probe.sequence_number))
    assert sim.stats["enquire_links_sent"] == 2
    await esme.close()


async def test_an_unanswered_enquire_link_of_ours_ends_the_connection(sim_factory) -> None:
    sim = await sim_factory(enquire_link_s=0.05, response_timeout_s=0.1)
    esme = await Esme.connect(sim)
    await esme.bind()
    assert (await esme.read(timeout=1.0)).command_id == CommandId.ENQUIRE_LINK
    assert await esme.closed(timeout=1.0)


async def test_alybnd_for_the_first_n_bind_attempts_then_ok(sim_factory) -> None:
    sim = await sim_factory(alybnd_first=2)
    statuses = []
    for _ in range(3):
        esme = await Esme.connect(sim)
        statuses.append((await esme.bind()).command_status)
        await esme.close()
    assert statuses == [S.ESME_RALYBND, S.ESME_RALYBND, 0]


async def test_window_violations_are_counted_per_connection(sim_factory) -> None:
    sim = await sim_factory(window=2)
    polite = await Esme.connect(sim)
    await polite.bind()
    for _ in range(5):
        seqs = polite.write(submit_pdu(dlr=False), submit_pdu(dlr=False))
        for seq in seqs:
            await polite.response(seq)
    assert sim.stats["window_violations"] == 0
    greedy = await Esme.connect(sim)
    await greedy.bind()
    seqs = greedy.write(*(submit_pdu(dlr=False) for _ in range(5)))  # 5 outstanding with a window of 2
    for seq in seqs:
        await greedy.response(seq)
    assert sim.stats["window_violations"] == 3
    await polite.close()
    await greedy.close()


async def test_a_stalled_carrier_sees_a_client_that_ignores_its_window(sim_factory) -> None:
    sim = await sim_factory(window=3, stall_after=1)  # answers the bind only
    esme = await Esme.connect(sim)
    await esme.bind()
    for _ in range(4):  # one at a time, but never answered: the fourth breaks the window
        esme.write(submit_pdu(dlr=False))
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    assert esme.inbox == [] and sim.stats["submits"] == 0  # nothing answered, nothing accepted
    assert sim.stats["window_violations"] == 1  # ... but the fourth unanswered submit is seen
    await esme.close()


async def test_set_options_changes_behaviour_at_run_time_and_validates(sim_factory) -> None:
    sim = await sim_factory()
    esme = await Esme.connect(sim)
    await esme.bind()
    assert (await esme.submit(dlr=False)).command_status == 0
    sim.set_options(fail_rate=1.0)
    assert (await esme.submit(dlr=False)).command_status == S.ESME_RSYSERR
    with pytest.raises(ValueError, match="fail_rate"):
        sim.set_options(fail_rate=2.0)
    with pytest.raises(TypeError):
        sim.set_options(no_such_option=1)
    assert sim.options.fail_rate == 1.0
    await esme.close()


@pytest.mark.parametrize(("options", "field"), [
    ({"id_format": "base64"}, "id_format"),
    ({"id_format": "uuid", "receipt_id_format": "hex"}, "receipt_id_format"),
    ({"reject_rate": -0.1}, "reject_rate"),
    ({"dlr_delay_ms": float("nan")}, "dlr_delay_ms"),
    ({"throttle_tps": -1}, "throttle_tps"),
    ({"stall_after": -1}, "stall_after"),
    ({"reject_numbers": "44x"}, "reject_numbers"),
    ({"reject_status": "ESME_NOPE"}, "reject_status"),
    ({"system_id": "acme"}, "password"),
    ({"receipt_window": 0}, "receipt_window"),
])
def test_bad_options_are_refused_naming_the_field(options, field) -> None:
    with pytest.raises(ValueError, match=field):
        SimOptions(**options)


def test_options_accept_status_names_numbers_and_prefix_lists() -> None:
    opts = SimOptions(reject_status="esme_rinvsrcadr", reject_numbers="+44, 1900", undeliverable_numbers=["33"])
    assert (opts.reject_status, opts.reject_numbers, opts.undeliverable_numbers) == (
        S.ESME_RINVSRCADR, ("44", "1900"), ("33",))
    assert SimOptions(reject_status="0x0401").reject_status == 0x0401
    assert CarrierSim(fail_rate=0.5).options.fail_rate == 0.5


async def test_a_stalled_connection_stays_open_even_with_keepalives_on(sim_factory) -> None:
    sim = await sim_factory(enquire_link_s=0.05, response_timeout_s=0.1, stall_after=1)
    esme = await Esme.connect(sim)
    await esme.bind()
    esme.write(EnquireLink())  # the second PDU: the stall begins
    assert not await esme.closed(timeout=0.5)  # no enquire_link of ours, no timeout, no close
    assert esme.inbox == []
    await esme.close()
