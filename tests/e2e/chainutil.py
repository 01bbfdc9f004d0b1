"""Helpers for e2e tests: heights, app hashes per height across nodes."""

from __future__ import annotations

import asyncio
import time

from chain.client.rpc import CometRPC
from chain.localnet.net import Localnet


async def _header_app_hashes(url: str, lo: int, hi: int) -> dict[int, str]:
    """App hash after block h, read from block h+1's header, for h in [lo, hi]."""
    out: dict[int, str] = {}
    async with CometRPC(url, timeout=10.0) as rpc:
        for h in range(lo, hi + 1):
            b = await rpc.call("block", {"height": str(h + 1)})
            out[h] = b["block"]["header"]["app_hash"]
    return out


def app_hashes(net: Localnet, lo: int, hi: int, nodes: list[int] | None = None) -> dict[int, dict[int, str]]:
    """{node: {height: app_hash}} for every node (each must have block hi+1)."""
    idx = list(range(net.nodes)) if nodes is None else nodes

    async def run() -> list[dict[int, str]]:
        return list(await asyncio.gather(*(_header_app_hashes(net.rpc_url(i), lo, hi) for i in idx)))

    return dict(zip(idx, asyncio.run(run()), strict=True))


def heights(net: Localnet) -> list[int]:
    return [s["height"] or 0 for s in net.status()]


def wait_all_at(net: Localnet, height: int, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while min(heights(net)) < height:
        if time.monotonic() > deadline:
            raise TimeoutError(f"nodes did not all reach height {height}: {heights(net)}")
        time.sleep(0.2)


def assert_same_app_hash_every_height(net: Localnet, upto: int) -> int:
    """Every node reports the same app hash at every height 1..upto; returns heights checked."""
    wait_all_at(net, upto + 1)
    table = app_hashes(net, 1, upto)
    for h in range(1, upto + 1):
        seen = {node: hashes[h] for node, hashes in table.items()}
        assert len(set(seen.values())) == 1, f"app hash differs at height {h}: {seen}"
    return upto
