"""Benchmark `throughput`: committed transfers/s on a 4-validator localnet vs CometBFT's kvstore.

Both networks have the same shape (4 validators on loopback, same consensus
timeouts), the same load generator, the same number of txs and the same tx
size (kvstore txs are `key=value` padded to our signed transfer's length).
Runs alternate (app, kvstore, app, kvstore, ...) so machine noise hits both.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
from pathlib import Path

from polylink.bank.v1 import tx_pb2 as bank_tx
from polylink.base.v1 import coin_pb2

from chain.client.tx_builder import build_tx
from chain.localnet.net import Localnet
from chain.localnet.ports import find_free_base_port
from tests.bench.loadgen import LoadResult, run_load

SENDERS = 32
PER_SENDER = 60
REPS = 2
NODES = 4


def _app_txs(net: Localnet) -> list[list[bytes]]:
    kr = net.keyring()
    signers = [kr.get_signer(u) for u in net.user_keys[:SENDERS]]
    to = kr.show(net.user_keys[-1]).address
    out = []
    for s in signers:
        out.append([
            build_tx([bank_tx.MsgSend(from_address=s.address, to_address=to, amount=[coin_pb2.Coin(denom="upoly", amount="1")])],
                     s, chain_id=net.chain_id, sequence=q, fee=2000, gas_limit=200_000)
            for q in range(PER_SENDER)
        ])
    return out


def _kv_txs(size: int) -> list[list[bytes]]:
    out = []
    for i in range(SENDERS):
        txs = []
        for q in range(PER_SENDER):
            head = f"bench-{i}-{q}=".encode()
            txs.append(head + b"v" * (size - len(head)))
        out.append(txs)
    return out


def _one(kind: str, size: int) -> tuple[LoadResult, int]:
    with tempfile.TemporaryDirectory(prefix=f"bench-{kind}-") as d:
        net = Localnet(Path(d), nodes=NODES, base_port=find_free_base_port(NODES), accounts=SENDERS + 1,
                       kvstore=kind == "kvstore")
        try:
            net.up()
            txs = _app_txs(net) if kind == "app" else _kv_txs(size)
            tx_size = len(txs[0][0])
            res = asyncio.run(run_load([net.rpc_url(i) for i in range(NODES)], txs))
            return res, tx_size
        finally:
            net.down()


def run() -> dict[str, object]:
    # the app's tx size sets the kvstore tx size
    app_runs: list[LoadResult] = []
    kv_runs: list[LoadResult] = []
    size = 0
    for rep in range(REPS):
        r, size = _one("app", size)
        app_runs.append(r)
        print(f"  rep {rep + 1}/{REPS} app:     {r.txs} txs in {r.seconds:.2f}s = {r.tps:.0f} tx/s ({r.blocks} blocks, {r.rejected} rejected)", flush=True)
        k, _ = _one("kvstore", size)
        kv_runs.append(k)
        print(f"  rep {rep + 1}/{REPS} kvstore: {k.txs} txs in {k.seconds:.2f}s = {k.tps:.0f} tx/s ({k.blocks} blocks, {k.rejected} rejected)", flush=True)
    app_tps = statistics.median(r.tps for r in app_runs)
    kv_tps = statistics.median(r.tps for r in kv_runs)
    return {
        "app_tps": round(app_tps, 1),
        "kvstore_tps": round(kv_tps, 1),
        "ratio": round(app_tps / kv_tps, 3) if kv_tps else 0.0,
        "txs_per_run": SENDERS * PER_SENDER,
        "tx_bytes": size,
        "repetitions": REPS,
        "nodes": NODES,
        "app_runs_tps": [round(r.tps, 1) for r in app_runs],
        "kvstore_runs_tps": [round(r.tps, 1) for r in kv_runs],
        "rejected": sum(r.rejected for r in app_runs + kv_runs),
    }
