"""A load generator for CometBFT localnets: pre-signed txs, broadcast_tx_sync, committed tx/s.

The same generator drives our app and CometBFT's kvstore, so the ratio of the
two figures measures the app, not the generator. Each sender's txs go to one
node in order (so sequences arrive in order); senders run concurrently.
"""

from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import dataclass

import httpx


@dataclass
class LoadResult:
    txs: int
    seconds: float
    rejected: int
    blocks: int

    @property
    def tps(self) -> float:
        return self.txs / self.seconds if self.seconds else 0.0


async def _height(c: httpx.AsyncClient, url: str) -> int:
    r = await c.get(f"{url}/status")
    return int(r.json()["result"]["sync_info"]["latest_block_height"])


async def _committed_since(c: httpx.AsyncClient, url: str, after: int, upto: int) -> int:
    total = 0
    lo = after + 1
    while lo <= upto:
        hi = min(upto, lo + 19)
        r = await c.get(f"{url}/blockchain", params={"minHeight": lo, "maxHeight": hi})
        total += sum(int(m["num_txs"]) for m in r.json()["result"]["block_metas"])
        lo = hi + 1
    return total


async def run_load(urls: list[str], per_sender: list[list[bytes]], timeout: float = 300.0) -> LoadResult:
    """Send every sender's txs (sender i -> urls[i % len(urls)]); return when all are committed."""
    n = sum(len(s) for s in per_sender)
    limits = httpx.Limits(max_connections=len(per_sender) + 8)
    async with httpx.AsyncClient(timeout=30.0, limits=limits) as c:
        start_height = await _height(c, urls[0])
        rejected = 0

        async def sender(i: int, txs: list[bytes]) -> None:
            nonlocal rejected
            url = urls[i % len(urls)]
            for tx in txs:
                r = await c.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "broadcast_tx_sync",
                                            "params": {"tx": base64.b64encode(tx).decode()}})
                body = r.json()
                if "error" in body or body["result"]["code"] != 0:
                    rejected += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(sender(i, s) for i, s in enumerate(per_sender)))
        accepted = n - rejected
        deadline = t0 + timeout
        committed = 0
        h = start_height
        while committed < accepted:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"only {committed}/{accepted} txs committed in {timeout}s")
            await asyncio.sleep(0.05)
            top = await _height(c, urls[0])
            if top > h:
                committed += await _committed_since(c, urls[0], h, top)
                h = top
        seconds = time.perf_counter() - t0
        return LoadResult(committed, seconds, rejected, h - start_height)
