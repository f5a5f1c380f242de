"""Hostile config edits against the running daemon (in process): a carrier removed or
renamed while messages wait for it, every route removed, a rate deck replaced by a broken
file, and reloads fired in a storm while the file changes. Bad edits are refused and the
old config keeps running; good ones lose nothing that was acknowledged."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path
from typing import Any

import pytest

from adapters.carrier_sim import SimOptions
from tests.e2e.harness import Router, carrier_entry, render_config, route, until

TO = "4915112345678"


def _text(r: Router, carriers: dict[str, dict[str, Any]], routes: list[dict[str, Any]]) -> str:
    """Config text for the given carriers (name → extra keys; port of the same-named sim,
    or of `port_of`)."""
    entries = [carrier_entry(n, r.ports[keys.pop("port_of", n)], **keys) for n, keys in carriers.items()]
    return render_config(socket_url=r.socket_url, carriers=entries, routes=routes, router=r.router_keys)


async def _status(r: Router, router_id: str) -> dict[str, Any]:
    return (await r.client.status(router_id))["mdr"]


async def _submit_many(r: Router, n: int, tag: str) -> list[str]:
    reply = await r.client.submit_many([{"from": "ACME", "to": TO, "text": f"{tag} {i}"} for i in range(n)])
    assert reply["ok"] and all(x["ok"] for x in reply["results"]), reply
    return [x["id"] for x in reply["results"]]


async def _all_delivered_on(r: Router, ids: list[str], carrier: str) -> None:
    async def check() -> bool:
        mdrs = [await _status(r, i) for i in ids]
        return all(m["status"] == "DELIVERED" and m["carrier"] == carrier for m in mdrs)
    await until(check, what=f"{len(ids)} messages DELIVERED on {carrier}")


async def test_removing_the_carrier_messages_wait_for_moves_them(tmp_path: Path) -> None:
    """`b` is down with messages waiting for it; the edit removes `b` and routes to `a`:
    the waiting messages go out on `a`."""
    async with Router(tmp_path, {"a": SimOptions(), "b": SimOptions()},
                      [route("", ("b", 0.001))]) as r:
        await r.sims["b"].stop()
        await until(lambda: _b_down(r), what="b down")
        ids = await _submit_many(r, 20, "waiting")
        await asyncio.sleep(0.3)
        assert {(await _status(r, i))["status"] for i in ids} == {"QUEUED"}
        r.config_path.write_text(_text(r, {"a": {}}, [route("", ("a", 0.001))]))
        assert await r.app.reload("test") is True  # type: ignore[union-attr]
        await _all_delivered_on(r, ids, "a")


async def _b_down(r: Router) -> bool:
    stats = await r.client.stats()
    return any(c["name"] == "b" and all(b["state"] != "bound" for b in c["binds"]) for c in stats["carriers"])


async def test_renaming_a_carrier_with_messages_waiting_sends_them_under_the_new_name(tmp_path: Path) -> None:
    """`a` throttled to a crawl with a backlog; the edit renames it `a2` (same host): the
    backlog goes out on `a2` and nothing is lost or sent twice."""
    async with Router(tmp_path, {"a": SimOptions()}, [route("", ("a", 0.001))],
                      entries={"a": {"tps": 2}}) as r:
        ids = await _submit_many(r, 15, "backlog")
        r.config_path.write_text(_text(r, {"a2": {"port_of": "a"}}, [route("", ("a2", 0.001))]))
        assert await r.app.reload("test") is True  # type: ignore[union-attr]

        async def check() -> list[dict[str, Any]] | None:
            mdrs = [await _status(r, i) for i in ids]
            return mdrs if all(m["status"] == "DELIVERED" for m in mdrs) else None
        mdrs = await until(check, what="the backlog delivered after the rename")
        assert "a2" in {m["carrier"] for m in mdrs}, "the backlog had gone before the rename"
        texts = [s.short_message for s in r.sims["a"].received]
        assert len(texts) == len(set(texts)) == 15


async def test_removing_every_route_or_breaking_a_rate_deck_is_refused(tmp_path: Path) -> None:
    """Edits that leave no route, or point a rate deck at a broken file, are refused: the
    running config keeps routing, and traffic still flows."""
    async with Router(tmp_path, {"a": SimOptions()}, [route("", ("a", 0.001))]) as r:
        assert r.app is not None
        good = r.config_path.read_text()
        deck = tmp_path / "rates.csv"
        deck.write_text("prefix,cost\n49,0.001\n")
        r.config_path.write_text(_text(r, {"a": {"rate_deck": "rates.csv"}},
                                       [{"prefix": "", "carriers": [{"name": "a"}]}]))
        assert await r.app.reload("deck") is True
        for broken in ("prefix,cost\n49,cheap\n", "\x00\xff\xfe garbage", ""):
            deck.write_text(broken)
            assert await r.app.reload("broken deck") is False, broken
        deck.write_text("prefix,cost\n49,0.001\n")
        r.config_path.write_text(render_config(socket_url=r.socket_url,
                                               carriers=[carrier_entry("a", r.ports["a"])],
                                               routes=[], router=r.router_keys))
        no_routes = await r.app.reload("no routes")
        ids = await _submit_many(r, 3, "after")
        await _all_delivered_on(r, ids, "a")
        # If an empty routing table is accepted at all, it must still not strand what waits.
        assert no_routes is False, "a config without routes was accepted"
        r.config_path.write_text(good)


async def test_a_reload_storm_while_a_carrier_rebinds(tmp_path: Path) -> None:
    """50 reloads at once (as a SIGHUP storm schedules them) right after an edit that
    rebinds `b`: none of them fails, every carrier ends bound, traffic flows on both."""
    async with Router(tmp_path, {"a": SimOptions(), "b": SimOptions()},
                      [route("49", ("a", 0.001)), route("33", ("b", 0.001))]) as r:
        assert r.app is not None
        r.config_path.write_text(_text(r, {"a": {}, "b": {"system_type": "NEW"}},
                                       [route("49", ("a", 0.001)), route("33", ("b", 0.001))]))
        loop = asyncio.get_running_loop()
        storm = [loop.create_task(r.app.reload("signal")) for _ in range(50)]
        results = await asyncio.gather(*storm, return_exceptions=True)
        errors = [x for x in results if isinstance(x, BaseException)]
        assert not errors, errors[:3]
        await r.wait_bound()
        assert set(r.app.pools) == {"a", "b"}
        for to, name in (("4915112345678", "a"), ("33612345678", "b")):
            reply = await r.client.submit("ACME", to, text="after the storm")
            assert reply["ok"], reply
            await until(functools.partial(_delivered, r, reply["id"]), what=f"delivered on {name}")


async def _delivered(r: Router, router_id: str) -> bool:
    return (await _status(r, router_id))["status"] == "DELIVERED"


async def test_two_edits_in_quick_succession_both_apply(tmp_path: Path) -> None:
    """Two saves a moment apart, each rebinding `b` (its system_type), each followed by a
    reload while the first one is still unbinding: no reload fails, and `b` ends bound with
    the settings of the last edit."""
    async with Router(tmp_path, {"a": SimOptions(), "b": SimOptions()},
                      [route("49", ("a", 0.001)), route("33", ("b", 0.001))]) as r:
        assert r.app is not None
        routes = [route("49", ("a", 0.001)), route("33", ("b", 0.001))]
        loop = asyncio.get_running_loop()
        r.config_path.write_text(_text(r, {"a": {}, "b": {"system_type": "FIRST"}}, routes))
        first = loop.create_task(r.app.reload("signal"))
        await asyncio.sleep(0)  # the first reload is now stopping b's old pool
        r.config_path.write_text(_text(r, {"a": {}, "b": {"system_type": "SECOND"}}, routes))
        second = loop.create_task(r.app.reload("signal"))
        results = await asyncio.gather(first, second, return_exceptions=True)
        assert [x for x in results if isinstance(x, BaseException)] == []
        await r.wait_bound()
        assert r.app.pools["b"].cfg.system_type == "SECOND"
