"""Block lifecycle edge cases: repeated FinalizeBlock, reopen from the database, crash before Commit."""

from __future__ import annotations

import hashlib
import json

from polylink.bank.v1 import tx_pb2 as bank_tx
from polylink.base.v1 import coin_pb2

from chain.app.app import PolyLinkApp
from chain.client.signer import Signer
from chain.client.tx_builder import build_tx
from chain.storage.sql import SQLStore

CHAIN = "life-1"
ALICE = Signer(hashlib.sha256(b"alice").digest())
BOB = Signer(hashlib.sha256(b"bob").digest())
GENESIS = json.dumps(
    {"bank": {"balances": [{"address": ALICE.address, "coins": [{"denom": "upoly", "amount": "1000000"}]}]}}
).encode()


def send(seq: int, amount: int = 10) -> bytes:
    coins = [coin_pb2.Coin(denom="upoly", amount=str(amount))]
    msg = bank_tx.MsgSend(from_address=ALICE.address, to_address=BOB.address, amount=coins)
    return build_tx([msg], ALICE, chain_id=CHAIN, sequence=seq, fee=2000)


def block(app: PolyLinkApp, h: int, txs: list[bytes]) -> bytes:
    return app.finalize_block(h, h * 10**9, hashlib.sha256(b"%d" % h).digest(), b"", txs).app_hash


def reference_hashes() -> list[bytes]:
    app = PolyLinkApp(None)
    app.init_chain(CHAIN, GENESIS, 1, 0, -1)
    out = []
    for h in (1, 2, 3):
        out.append(block(app, h, [send(h - 1)]))
        app.commit()
    return out


def test_repeated_finalize_block_after_restart_gives_same_hash(store_url: str) -> None:
    ref = reference_hashes()
    app = PolyLinkApp(SQLStore(store_url))
    app.init_chain(CHAIN, GENESIS, 1, 0, -1)
    assert block(app, 1, [send(0)]) == ref[0]
    app.reset_check_state()  # CometBFT restarted before Commit; genesis must survive
    assert block(app, 1, [send(0)]) == ref[0]
    app.commit()
    assert block(app, 2, [send(1)]) == ref[1]
    app.reset_check_state()
    assert block(app, 2, [send(1)]) == ref[1]  # not applied twice
    app.commit()
    ctx = app.query_context()
    assert app.m.bank.get_balance(ctx, BOB.address, "upoly") == 20


def test_reopen_from_database_reports_last_commit_and_continues(store_url: str) -> None:
    ref = reference_hashes()
    url = store_url
    app = PolyLinkApp(SQLStore(url))
    app.init_chain(CHAIN, GENESIS, 1, 0, -1)
    block(app, 1, [send(0)])
    app.commit()
    block(app, 2, [send(1)])  # staged, never committed: lost with the process
    app.store.close()  # type: ignore[union-attr]
    again = PolyLinkApp(SQLStore(url))
    assert (again.height, again.app_hash, again.chain_id) == (1, ref[0], CHAIN)
    assert block(again, 2, [send(1)]) == ref[1]
    again.commit()
    assert block(again, 3, [send(2)]) == ref[2]


def test_crash_before_first_commit_reruns_init_chain(store_url: str) -> None:
    ref = reference_hashes()
    url = store_url
    app = PolyLinkApp(SQLStore(url))
    app.init_chain(CHAIN, GENESIS, 1, 0, -1)
    block(app, 1, [send(0)])
    app.store.close()  # type: ignore[union-attr]
    again = PolyLinkApp(SQLStore(url))
    assert again.height == 0 and again.app_hash == b""
    again.init_chain(CHAIN, GENESIS, 1, 0, -1)
    assert block(again, 1, [send(0)]) == ref[0]


def test_check_state_resets_on_new_connection() -> None:
    app = PolyLinkApp(None)
    app.init_chain(CHAIN, GENESIS, 1, 0, -1)
    block(app, 1, [])
    app.commit()
    assert app.check_tx(send(0), recheck=False).code == 0
    assert app.check_tx(send(0), recheck=False).code == 3  # sequence already used in the mempool
    app.reset_check_state()  # a restarted CometBFT has an empty mempool
    assert app.check_tx(send(0), recheck=False).code == 0


def test_a_tx_checktx_refuses_leaves_no_trace_in_the_check_state() -> None:
    """An overdraft passes the ante (fee, sequence) but fails in its message: it never enters
    the mempool, so its sequence must stay free for the sender's next tx."""
    app = PolyLinkApp(None)
    app.init_chain(CHAIN, GENESIS, 1, 0, -1)
    block(app, 1, [])
    app.commit()
    r = app.check_tx(send(0, amount=10**9), recheck=False)
    assert (r.codespace, r.code) == ("bank", 2)
    assert app.check_tx(send(0), recheck=False).code == 0  # the same sequence is still free
    assert app.check_tx(send(1), recheck=False).code == 0


def test_export_import_round_trip_keeps_app_hash() -> None:
    app = PolyLinkApp(None)
    app.init_chain(CHAIN, GENESIS, 1, 0, -1)
    block(app, 1, [send(0), send(1, 77)])
    app.commit()
    exported = app.export_genesis()
    other = PolyLinkApp(None)
    other.init_chain(CHAIN, json.dumps(exported).encode(), 1, 0, -1)
    block(other, 1, [])
    other.commit()
    assert other.export_genesis() == exported
    assert other.app_hash == app.app_hash


def test_recheck_keeps_pending_sequences_and_drops_stale_or_unpayable_txs() -> None:
    app = PolyLinkApp(None)
    app.init_chain(CHAIN, GENESIS, 1, 0, -1)
    block(app, 1, [])
    app.commit()
    t0, t1 = send(0), send(1)
    assert app.check_tx(t0, recheck=False).code == 0
    assert app.check_tx(t1, recheck=False).code == 0
    block(app, 2, [t0])  # only t0 made it into the block
    app.commit()
    assert app.check_tx(t0, recheck=True).code == 3  # committed: its sequence is stale
    assert app.check_tx(t1, recheck=True).code == 0  # still valid, re-applied
    t2 = send(2)
    assert app.check_tx(t2, recheck=False).code == 0  # builds on the rechecked t1
    # another node's conflicting txs win the next block and drain the balance:
    # 1_000_000 - 2000 - 10 (t0) - 2000 - 990_000 (t1b) = 5_990 left
    t1b = send(1, amount=990_000)
    block(app, 3, [t1b])
    app.commit()
    assert app.check_tx(t1, recheck=True).code == 3
    t2b = send(2, amount=3_000)  # 5_990 - 2000 - 3000 = 990 left
    t3 = send(3)
    block(app, 4, [t2b])
    app.commit()
    assert app.check_tx(t2, recheck=True).code == 3
    assert app.check_tx(t3, recheck=True).code == 6  # right sequence, cannot pay the fee
    ctx = app.query_context()
    assert app.m.bank.get_balance(ctx, ALICE.address, "upoly") == 990
