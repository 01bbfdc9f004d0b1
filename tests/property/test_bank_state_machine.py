"""Random valid and invalid bank txs against a plain model, invariants after every step.

Drives the real state machine (PolyLinkApp: ante, routers, keepers, block
branches, app hash) in memory; the model is a dict of balances and sequences.
"""

from __future__ import annotations

import hashlib
import json

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from polylink.bank.v1 import tx_pb2 as bank_tx
from polylink.bank.v1 import types_pb2 as bank_types
from polylink.base.v1 import coin_pb2

from chain.app.app import PolyLinkApp
from chain.client.signer import Signer
from chain.client.tx_builder import build_tx
from chain.core.address import module_address
from chain.core.apphash import StateAccumulator
from chain.core.store import MemStore

CHAIN = "prop-1"
FEE = 2_000
SIGNERS = [Signer(hashlib.sha256(f"acct{i}".encode()).digest()) for i in range(4)]
ADDRS = [s.address for s in SIGNERS]
FEE_COLLECTOR = module_address("fee_collector")
GENESIS = {i: 1_000_000 for i in range(3)}  # account 3 starts empty


def coins(n: int) -> list[coin_pb2.Coin]:
    return [coin_pb2.Coin(denom="upoly", amount=str(n))]


class BankMachine(RuleBasedStateMachine):
    @initialize()
    def setup(self) -> None:
        self.app = PolyLinkApp(None)
        balances = [{"address": ADDRS[i], "coins": [{"denom": "upoly", "amount": str(a)}]} for i, a in GENESIS.items()]
        gen = {"bank": {"balances": balances}}
        self.app.init_chain(CHAIN, json.dumps(gen).encode(), 1, 0, -1)
        self.height = 0
        self.bal = {a: GENESIS.get(i, 0) for i, a in enumerate(ADDRS)}
        self.bal[FEE_COLLECTOR] = 0
        self.seq = {a: 0 for a in ADDRS}
        self.supply = sum(GENESIS.values())

    def _run(self, tx: bytes) -> tuple[int, str]:
        self.height += 1
        block_hash = hashlib.sha256(str(self.height).encode()).digest()
        r = self.app.finalize_block(self.height, self.height * 10**9, block_hash, b"", [tx])
        self.app.commit()
        return r.tx_results[0].code, r.tx_results[0].codespace

    def _charge(self, i: int) -> None:
        self.bal[ADDRS[i]] -= FEE
        self.bal[FEE_COLLECTOR] += FEE
        self.seq[ADDRS[i]] += 1

    @rule(i=st.integers(0, 3), j=st.integers(0, 3), amount=st.integers(1, 1_200_000))
    def send(self, i: int, j: int, amount: int) -> None:
        a, b = ADDRS[i], ADDRS[j]
        tx = build_tx([bank_tx.MsgSend(from_address=a, to_address=b, amount=coins(amount))], SIGNERS[i],
                      chain_id=CHAIN, sequence=self.seq[a], fee=FEE)
        code, space = self._run(tx)
        if self.bal[a] < FEE:
            assert (space, code) == ("tx", 6)  # cannot pay the fee: nothing changes
        elif self.bal[a] - FEE < amount:
            assert (space, code) == ("bank", 2)  # overdraft: fee and sequence only
            self._charge(i)
        else:
            assert code == 0
            self._charge(i)
            self.bal[a] -= amount
            self.bal[b] += amount

    @rule(
        i=st.integers(0, 2),
        split=st.lists(st.tuples(st.integers(0, 3), st.integers(1, 50_000)), min_size=1, max_size=4),
    )
    def multi_send(self, i: int, split: list[tuple[int, int]]) -> None:
        a = ADDRS[i]
        total = sum(n for _, n in split)
        msg = bank_tx.MsgMultiSend(
            inputs=[bank_types.Input(address=a, coins=coins(total))],
            outputs=[bank_types.Output(address=ADDRS[j], coins=coins(n)) for j, n in split],
        )
        code, space = self._run(build_tx([msg], SIGNERS[i], chain_id=CHAIN, sequence=self.seq[a], fee=FEE))
        if self.bal[a] < FEE:
            assert (space, code) == ("tx", 6)
        elif self.bal[a] - FEE < total:
            assert (space, code) == ("bank", 2)
            self._charge(i)
        else:
            assert code == 0
            self._charge(i)
            self.bal[a] -= total
            for j, n in split:
                self.bal[ADDRS[j]] += n

    @rule(
        i=st.integers(0, 2),
        kind=st.sampled_from(
            ["replay", "future_seq", "wrong_chain", "low_fee", "bad_sig", "garbage", "module_recipient"]
        ),
    )
    def invalid(self, i: int, kind: str) -> None:
        a = ADDRS[i]
        if kind == "replay" and self.seq[a] == 0:
            return  # nothing sent yet: there is no earlier sequence to replay
        seq, chain, fee, signer = self.seq[a], CHAIN, FEE, SIGNERS[i]
        to = ADDRS[(i + 1) % 4]
        if kind == "replay":
            seq -= 1
        elif kind == "future_seq":
            seq += 1
        elif kind == "wrong_chain":
            chain = "other-chain"
        elif kind == "low_fee":
            fee = 1
        elif kind == "bad_sig":
            signer = SIGNERS[(i + 1) % 4]
        elif kind == "module_recipient":
            to = FEE_COLLECTOR
        msg = bank_tx.MsgSend(from_address=a, to_address=to, amount=coins(1))
        tx = build_tx([msg], signer, chain_id=chain, sequence=seq, fee=fee)
        if kind == "bad_sig":  # signed by another key but claiming this signer's pubkey
            from polylink.tx.v1 import tx_pb2
            t = tx_pb2.Tx.FromString(tx)
            auth = tx_pb2.AuthInfo.FromString(t.auth_info_bytes)
            auth.pub_key = SIGNERS[i].pub_key
            t.auth_info_bytes = auth.SerializeToString(deterministic=True)
            tx = t.SerializeToString(deterministic=True)
        if kind == "garbage":
            tx = b"\x0a\xff" + tx[:10]
        code, space = self._run(tx)
        expected = {
            "replay": ("tx", 3), "future_seq": ("tx", 3), "wrong_chain": ("tx", 8),
            "low_fee": ("tx", 5), "bad_sig": ("tx", 4), "garbage": ("tx", 2),
            "module_recipient": ("bank", 4),
        }[kind]
        if self.bal[a] < FEE and kind == "module_recipient":
            assert (space, code) == ("tx", 6)
            return
        assert (space, code) == expected, (kind, space, code)
        if kind == "module_recipient":
            self._charge(i)  # message failed after the ante: fee and sequence only

    @invariant()
    def matches_model(self) -> None:
        if not hasattr(self, "app") or self.height == 0:
            return  # genesis is committed with block 1
        ctx = self.app.query_context()
        for addr, want in self.bal.items():
            assert self.app.m.bank.get_balance(ctx, addr, "upoly") == want
        for addr, want in self.seq.items():
            acc = self.app.m.auth.get_account(ctx, addr)
            assert (acc.sequence if acc else 0) == want
        assert self.app.m.bank.get_supply(ctx, "upoly") == self.supply
        assert self.app.check_invariants() == []
        assert all(v >= 0 for v in self.bal.values())

    @invariant()
    def app_hash_commits_to_state(self) -> None:
        if not hasattr(self, "app") or self.height == 0:
            return
        store = self.app.committed
        assert isinstance(store, MemStore)
        assert self.app.app_hash == StateAccumulator.of_items(store.items()).app_hash()


BankMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=25, deadline=None)
TestBankStateMachine = BankMachine.TestCase
