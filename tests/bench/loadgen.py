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
from urllib.parse import urlsplit

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


class LeanRPC:
    """A minimal HTTP/1.1 keep-alive JSON-RPC sender (one connection, one request at a time).

    The generator shares the host's 2 cores with the network under test, so it
    must cost as little CPU per tx as possible; httpx costs several times more.
    """

    def __init__(self, url: str) -> None:
        u = urlsplit(url)
        self.host, self.port = u.hostname or "127.0.0.1", u.port or 80
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def call(self, method: str, tx: bytes) -> bool:
        """Send one broadcast; True if CometBFT accepted it (code 0, no error)."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        body = b'{"jsonrpc":"2.0","id":1,"method":"%s","params":{"tx":"%s"}}' % (
            method.encode(), base64.b64encode(tx))
        self.writer.write(b"POST / HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\n\r\n%s" % (self.host.encode(), len(body), body))
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        resp = await self.reader.readexactly(length)
        return b'"error"' not in resp and b'"code":0' in resp

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def run_load(
    urls: list[str], per_sender: list[list[bytes]], timeout: float = 300.0, mode: str = "async"
) -> LoadResult:
    """Send every sender's txs (sender i -> urls[i % len(urls)]); return when all are committed.

    mode "async" (broadcast_tx_async: saturates the network; each sender's
    requests still go one after another, so CheckTx sees its sequences in
    order) or "sync" (broadcast_tx_sync: waits for each CheckTx, so it
    measures latency as much as throughput).
    """
    n = sum(len(s) for s in per_sender)
    limits = httpx.Limits(max_connections=len(per_sender) + 8)
    async with httpx.AsyncClient(timeout=30.0, limits=limits) as c:
        start_height = await _height(c, urls[0])
        rejected = 0

        async def sender(i: int, txs: list[bytes]) -> None:
            nonlocal rejected
            rpc = LeanRPC(urls[i % len(urls)])
            try:
                for tx in txs:
                    if not await rpc.call(f"broadcast_tx_{mode}", tx):
                        rejected += 1
            finally:
                await rpc.close()

        t0 = time.perf_counter()
        await asyncio.gather(*(sender(i, s) for i, s in enumerate(per_sender)))
        accepted = n - rejected
        deadline = t0 + timeout
        committed = 0
        h = start_height
        while committed < accepted:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"only {committed}/{accepted} txs committed in {timeout}s")
            await asyncio.sleep(0.1)
            top = await _height(c, urls[0])
            if top > h:
                committed += await _committed_since(c, urls[0], h, top)
                h = top
        seconds = time.perf_counter() - t0
        return LoadResult(committed, seconds, rejected, h - start_height)
