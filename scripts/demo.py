"""`make demo`: a 4-validator localnet on loopback, real signed transfers, the results.

Leaves the network running (logs under localnet-demo/); `make demo-down` stops it.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from polylink.staking.v1 import query_pb2 as staking_q  # noqa: E402

from chain.client.sync import SyncClient  # noqa: E402
from chain.localnet.net import Localnet  # noqa: E402
from chain.localnet.ports import busy_ports  # noqa: E402

HOME = ROOT / "localnet-demo"
NODES = 4


def main() -> int:
    net = Localnet(HOME, nodes=NODES, accounts=3)
    if net.created and not any(any(net.running(i).values()) for i in range(net.nodes)):
        shutil.rmtree(HOME)  # a stopped demo network is disposable: start a fresh chain
        net = Localnet(HOME, nodes=NODES, accounts=3)
    if net.created:
        print(f"==> a demo localnet is already running in {HOME}; `make demo-down` stops it")
    else:
        if not net.created:
            busy = busy_ports(26600, NODES)
            if busy:
                print(f"ports {busy} are busy; stop what uses them or run `make demo-down`", file=sys.stderr)
                return 1
        print(f"==> starting {NODES} validators (CometBFT {net.nodes} nodes + {net.nodes} app processes) in {HOME}")
        t0 = time.perf_counter()
        net.up()
        print(f"    ready in {time.perf_counter() - t0:.1f}s")
    kr = net.keyring()
    users = net.user_keys
    addr = {u: kr.show(u).address for u in users}
    with SyncClient(net.rpc_url(0), keyring=kr) as c:
        print(f"==> chain {c.chain_id()}; accounts: " + ", ".join(f"{u}={a}" for u, a in addr.items()))
        before = {u: c.balance(a) for u, a in addr.items()}
        print("==> sending 3 signed transfers through CometBFT RPC and waiting for each block")
        for src, dst, amount in (("user0", "user1", 1_500_000), ("user1", "user2", 250_000), ("user2", "user0", 42)):
            res = c.bank_send(src, addr[dst], f"{amount}upoly")
            tx = c.wait(res.hash, timeout=60)
            print(
                f"    {src} -> {dst} {amount}upoly: height {tx.height}, code {tx.code},"
                f" gas {tx.gas_used}/{tx.gas_wanted}, tx {tx.hash[:16]}.."
            )
        print("==> balances (upoly), before -> after (each transfer also paid a 2000upoly fee):")
        for u, a in addr.items():
            print(f"    {u}: {before[u]} -> {c.balance(a)}")
        print(f"    total supply: {c.total_supply()}")
    with SyncClient(net.rpc_url(0), keyring=kr) as c:
        vals = c.query("/polylink.staking.v1.Query/Validators", staking_q.QueryValidatorsRequest(),
                       staking_q.QueryValidatorsResponse).validators
        print("==> validators (created by the staking module from each operator's gentx):")
        for v in vals:
            print(f"    {v.moniker}: operator {v.operator_address}, tokens {v.tokens}upoly, "
                  f"commission {v.commission_ppm / 10_000:g}%, {'jailed' if v.jailed else 'active'}")
    print("==> every node's height and app hash:")
    for s in net.status():
        print(f"    node{s['node']}: height {s['height']} app_hash {s['app_hash']}  rpc {s['rpc']}")
    print(f"\nThe localnet keeps running. Try:\n"
          f"    .venv/bin/polylink query bank balances {addr['user0']} --node {net.rpc_url(0)}\n"
          f"    .venv/bin/polylink localnet status --home {HOME}\n"
          f"Stop it with: make demo-down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
