"""Apply a seeded random tx sequence to a fresh app on a real SQLite store; print app hashes.

Run as a separate process (`python -m tests.property.determinism_driver SEED DB`);
the test compares its output across processes with different PYTHONHASHSEED.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys

from polylink.bank.v1 import tx_pb2 as bank_tx
from polylink.bank.v1 import types_pb2 as bank_types
from polylink.base.v1 import coin_pb2

from chain.app.app import PolyLinkApp
from chain.client.signer import Signer
from chain.client.tx_builder import build_tx
from chain.storage.sql import SQLStore

CHAIN = "det-1"


def main(seed: int, db: str, blocks: int = 12, per_block: int = 15) -> None:
    rnd = random.Random(seed)
    signers = [Signer(hashlib.sha256(f"det{i}".encode()).digest()) for i in range(6)]
    addrs = [s.address for s in signers]
    seqs = [0] * len(signers)
    app = PolyLinkApp(SQLStore(db), invariant_period=1)
    balances = [
        {"address": a, "coins": [{"denom": "upoly", "amount": "5000000"}, {"denom": f"uzz{i % 2}", "amount": "77"}]}
        for i, a in enumerate(addrs[:4])
    ]
    gen = {"bank": {"balances": balances}}
    app.init_chain(CHAIN, json.dumps(gen).encode(), 1, 1_700_000_000 * 10**9, 100_000_000)
    for h in range(1, blocks + 1):
        txs = []
        for _ in range(per_block):
            i = rnd.randrange(len(signers))
            kind = rnd.random()
            if kind < 0.6:
                msg = bank_tx.MsgSend(from_address=addrs[i], to_address=rnd.choice(addrs),
                                      amount=[coin_pb2.Coin(denom="upoly", amount=str(rnd.randint(1, 900_000)))])
            else:
                outs = [
                    bank_types.Output(
                        address=rnd.choice(addrs),
                        coins=[coin_pb2.Coin(denom="upoly", amount=str(rnd.randint(1, 1000)))],
                    )
                    for _ in range(rnd.randint(1, 3))
                ]
                total = sum(int(o.coins[0].amount) for o in outs)
                inputs = [bank_types.Input(address=addrs[i], coins=[coin_pb2.Coin(denom="upoly", amount=str(total))])]
                msg = bank_tx.MsgMultiSend(inputs=inputs, outputs=outs)
            seq = seqs[i] if rnd.random() < 0.9 else seqs[i] + 1  # some bad sequences
            fee = 2_000 + rnd.randint(0, 50)
            txs.append(build_tx([msg], signers[i], chain_id=CHAIN, sequence=seq, fee=fee, memo=str(rnd.random())))
            if seq == seqs[i]:
                seqs[i] += 1  # optimistic; failures below resync
        r = app.finalize_block(h, (1_700_000_000 + h) * 10**9, hashlib.sha256(b"%d" % h).digest(), b"", txs)
        app.commit()
        # resync sequences from state (fee-less failures do not bump them)
        ctx = app.query_context()
        for i, a in enumerate(addrs):
            acc = app.m.auth.get_account(ctx, a)
            seqs[i] = acc.sequence if acc else 0
        codes = [[t.codespace, t.code, t.gas_used] for t in r.tx_results]
        print(json.dumps({"height": h, "app_hash": r.app_hash.hex(), "results": codes}))


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
