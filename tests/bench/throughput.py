"""Benchmark `throughput`: committed transfers/s on a 4-validator localnet vs CometBFT's kvstore.

All networks have the same shape (4 validators on loopback, same consensus
timeouts), the same load generator (open loop: each sender fires
broadcast_tx_async requests back to back on its own keep-alive connection),
the same number of txs and the same tx size (kvstore txs are `key=value`
padded to our signed transfer's length). Runs alternate so noise hits all.

References:
  kvstore         CometBFT's built-in kvstore (proxy_app = "kvstore"): runs
                  inside the CometBFT process, no socket at all. `ratio` is
                  against this one, as the issue asks.
  kvstore_socket  the same kvstore served over the ABCI socket by `abci-cli`
                  (built here with `go install`): what any out-of-process app,
                  ours included, pays for CometBFT's socket protocol.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from polylink.bank.v1 import tx_pb2 as bank_tx
from polylink.base.v1 import coin_pb2

from chain.client.tx_builder import build_tx
from chain.localnet.net import Localnet
from chain.localnet.ports import find_free_base_port
from tests.bench.kvstore_socket import ABCI_CLI
from tests.bench.loadgen import LoadResult, run_load

SENDERS = 32
PER_SENDER = 150
REPS = 3
NODES = 4


def _app_txs(net: Localnet) -> list[list[bytes]]:
    kr = net.keyring()
    signers = [kr.get_signer(u) for u in net.user_keys[:SENDERS]]
    to = kr.show(net.user_keys[-1]).address
    out = []
    for s in signers:
        msg = bank_tx.MsgSend(from_address=s.address, to_address=to, amount=[coin_pb2.Coin(denom="upoly", amount="1")])
        out.append([
            build_tx([msg], s, chain_id=net.chain_id, sequence=q, fee=2000, gas_limit=200_000)
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
    # run by path: app processes start in their node home, where `tests` is not importable
    prefix = [sys.executable, str(Path(__file__).with_name("kvstore_socket.py"))] if kind == "kvstore_socket" else None
    with tempfile.TemporaryDirectory(prefix=f"bench-{kind}-") as d:
        net = Localnet(Path(d), nodes=NODES, base_port=find_free_base_port(NODES), accounts=SENDERS + 1,
                       kvstore=kind == "kvstore", polylink=prefix, gentxs=kind == "app")
        try:
            net.up()
            txs = _app_txs(net) if kind == "app" else _kv_txs(size)
            tx_size = len(txs[0][0])
            res = asyncio.run(run_load([net.rpc_url(i) for i in range(NODES)], txs, mode="async"))
            return res, tx_size
        finally:
            net.down()


def _build_abci_cli() -> None:
    if not ABCI_CLI.exists():
        print("  building abci-cli (CometBFT v0.38.25) for the socket reference", flush=True)
        subprocess.run(["go", "install", "github.com/cometbft/cometbft/abci/cmd/abci-cli@v0.38.25"],
                       env={**__import__("os").environ, "GOBIN": str(ABCI_CLI.parent)}, check=True)


def run() -> dict[str, object]:
    _build_abci_cli()
    runs: dict[str, list[LoadResult]] = {"app": [], "kvstore": [], "kvstore_socket": []}
    size = 0
    for rep in range(REPS):
        for kind in runs:
            r, s = _one(kind, size)
            if kind == "app":
                size = s  # the app's tx size sets the kvstore tx size
            runs[kind].append(r)
            print(f"  rep {rep + 1}/{REPS} {kind:<14} {r.txs} txs in {r.seconds:.2f}s = {r.tps:.0f} tx/s "
                  f"({r.blocks} blocks, {r.rejected} rejected)", flush=True)
    tps = {k: statistics.median(r.tps for r in v) for k, v in runs.items()}
    return {
        "app_tps": round(tps["app"], 1),
        "kvstore_tps": round(tps["kvstore"], 1),
        "ratio": round(tps["app"] / tps["kvstore"], 3),
        "kvstore_socket_tps": round(tps["kvstore_socket"], 1),
        "ratio_vs_socket": round(tps["app"] / tps["kvstore_socket"], 3),
        "txs_per_run": SENDERS * PER_SENDER,
        "tx_bytes": size,
        "repetitions": REPS,
        "nodes": NODES,
        "load": "open loop, broadcast_tx_async, 32 senders",
        **{f"{k}_runs_tps": [round(r.tps, 1) for r in v] for k, v in runs.items()},
        "rejected": sum(r.rejected for v in runs.values() for r in v),
    }
