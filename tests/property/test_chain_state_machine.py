"""Random signed txs through the whole app (PolyLinkApp(None): auth, bank, gov, staking, slashing),
one block per tx, plus empty blocks with votes and evidence; invariants after every block.

Every tx is signed with the sequence read from state. Before a block with txs is committed it
is finalized with each prefix of its txs, from the same committed state (the app starts every
FinalizeBlock on a fresh branch, SAFETY C3), so each tx's own effect is the difference between
two of those branches: a failed tx that got past the ante handler changed its signer's fee and
sequence and nothing else, one refused earlier changed nothing at all; a successful one did
exactly what its message says (balances, tokens, shares, unbonding balance, jail flag).

After every committed block:
- app.check_invariants() == [] (bank supply, staking pools / shares / powers, gov deposits, slashing);
- supply == genesis supply - every `burn` bank emitted (+ `mint`, none expected), and the burns
  from the staking pools add up to the amounts of staking's `slash` events;
- bonded_pool == BONDED validators' tokens; no negative balance; sum of balances == supply;
- CometBFT's set, rebuilt from the genesis validators and every update FinalizeBlock returned,
  == staking's stored last powers mapped by consensus pubkey;
- finished proposals did what they said: a PASSED MsgUpdateParams set exactly its params, an
  invalid one never passes; a PASSED community-pool spend paid exactly its amount, one over
  the pool's balance never passes; a text proposal never FAILS; only vetoed deposits burn;
  in blocks without txs or slashing, the tally and the outcome are recomputed from the design
  (power = bonded tokens, delegators' own votes deducted from their validator's);
- the app hash commits to the whole store.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Sequence

from google.protobuf.message import Message
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule
from polylink.bank.v1 import tx_pb2 as bank_tx
from polylink.bank.v1 import types_pb2 as bank_types
from polylink.base.v1 import coin_pb2
from polylink.gov.v1 import tx_pb2 as gov_tx
from polylink.gov.v1 import types_pb2 as gov_types
from polylink.slashing.v1 import tx_pb2 as slashing_tx
from polylink.staking.v1 import tx_pb2 as staking_tx

from chain.app.app import BlockResult, PolyLinkApp, TxResult
from chain.client.signer import Signer
from chain.client.tx_builder import build_tx
from chain.core.address import address_bytes, from_bech32
from chain.core.apphash import StateAccumulator
from chain.core.codec import pack_any
from chain.core.coins import Coins
from chain.core.consensus import Evidence, Vote
from chain.core.context import BlockHeader, Context, ExecMode
from chain.core.events import Event
from chain.core.store import CacheStore, MemStore
from chain.modules.auth import keys as auth_keys
from chain.modules.bank import keys as bank_keys
from chain.modules.staking.keeper import BONDED, StakingKeeper

CHAIN = "chain-prop"
POLY = 1_000_000
GAS = 2_000_000
FEE = 20_000  # GAS at the default min gas price (10_000 ppm)
MIN_DEPOSIT = POLY
COMMUNITY_POOL_START = 50 * POLY
OPS = [Signer(hashlib.sha256(b"chain-op%d" % i).digest()) for i in range(3)]  # genesis validators
USERS = [Signer(hashlib.sha256(b"chain-user%d" % i).digest()) for i in range(3)]
SIGNERS = [*OPS, *USERS]
ADDRS = [s.address for s in SIGNERS]
BY_ADDR = {s.address: s for s in SIGNERS}
START = 200 * POLY
GENESIS_POWERS = [10, 7, 5]
MAX_VALIDATORS = 4
UNBONDING_BLOCKS = 5

signer_idx = st.integers(0, len(SIGNERS) - 1)
val_idx = st.integers(0, 20)
# mostly plenty of gas; sometimes so little that the ante handler or a message runs out part way
gas_limit = st.one_of(st.just(GAS), st.integers(30_000, 150_000))
voter_idx = st.one_of(st.integers(0, len(OPS) - 1), signer_idx)  # operators vote more often
VOTE_OPTIONS = [
    gov_types.VOTE_OPTION_YES, gov_types.VOTE_OPTION_YES, gov_types.VOTE_OPTION_NO,
    gov_types.VOTE_OPTION_ABSTAIN, gov_types.VOTE_OPTION_NO_WITH_VETO, gov_types.VOTE_OPTION_UNSPECIFIED,
]


def coin(n: int) -> coin_pb2.Coin:
    return coin_pb2.Coin(denom="upoly", amount=str(n))


def cons_pubkey(tag: str) -> bytes:
    return hashlib.sha256(b"chain-cons-" + tag.encode()).digest()


def gentx(i: int) -> str:
    msg = staking_tx.MsgCreateValidator(
        operator_address=OPS[i].address, consensus_pubkey=cons_pubkey(f"genesis{i}"),
        self_bond=coin(GENESIS_POWERS[i] * POLY), commission_ppm=50_000, moniker=f"node{i}",
        min_self_delegation=str(POLY),
    )
    return base64.b64encode(build_tx([msg], OPS[i], chain_id=CHAIN, sequence=0, fee=FEE, gas_limit=GAS)).decode()


# checks what a successful tx did: (its result, context without it, context with it)
Effect = Callable[[TxResult, Context, Context], None]


def upoly(e: Event) -> int:
    return Coins.parse(dict(e.attributes)["amount"]).amount_of("upoly")


class ChainMachine(RuleBasedStateMachine):
    @initialize()
    def setup(self) -> None:
        self.app = PolyLinkApp(None)
        self.gov_addr = self.app.m.gov.authority
        self.pool_addr = self.app.m.auth.module_address("community_pool")
        balances = [{"address": a, "coins": [{"denom": "upoly", "amount": str(START)}]} for a in ADDRS]
        balances.append({"address": self.pool_addr, "coins": [{"denom": "upoly", "amount": str(COMMUNITY_POOL_START)}]})
        state = {
            "bank": {"balances": balances},
            "staking": {"params": {
                "unbonding_blocks": str(UNBONDING_BLOCKS), "max_validators": str(MAX_VALIDATORS), "max_entries": "3",
            }},
            "slashing": {"params": {"signed_blocks_window": "6", "downtime_jail_blocks": "3"}},
            "gov": {"params": {
                "min_deposit": [{"denom": "upoly", "amount": str(MIN_DEPOSIT)}],
                "voting_period_blocks": "6", "max_deposit_period_blocks": "5",
            }},
            # no emission: this machine models the community pool to the upoly; the rewards/supply
            # invariant (initial + minted - burned == supply) still runs after every step, with slashes
            "rewards": {"params": {"block_reward": "0"}},
            "genutil": {"gen_txs": [gentx(i) for i in range(len(OPS))]},
        }
        self.app.init_chain(CHAIN, json.dumps(state).encode(), 1, 0, -1)
        self.supply = len(ADDRS) * START + COMMUNITY_POOL_START  # gentx fees only move coins
        self.comet: dict[bytes, int] = {}
        for u in self.app.genesis_validators:
            assert u.power > 0 and u.pub_key not in self.comet
            self.comet[u.pub_key] = u.power
        assert sorted(self.comet.values()) == sorted(GENESIS_POWERS)
        self.height = 0
        self.fresh = 0  # counter of fresh consensus pubkeys
        self.proposals: dict[int, tuple[str, object]] = {}  # id -> (kind, what it should do)
        self.fee_collector = from_bech32(self.app.m.auth.module_address("fee_collector"))
        self._block([])

    # --- reads ---------------------------------------------------------------
    @property
    def k(self) -> StakingKeeper:
        return self.app.m.staking

    def ctx(self, store: CacheStore | None = None) -> Context:
        if store is None:
            return self.app.query_context()
        return Context(store, BlockHeader(CHAIN, self.height + 1), ExecMode.QUERY)

    def balance(self, addr: str, store: CacheStore | None = None) -> int:
        return self.app.m.bank.get_balance(self.ctx(store), addr, "upoly")

    def sequence(self, addr: str, store: CacheStore | None = None) -> int:
        acc = self.app.m.auth.get_account(self.ctx(store), addr)
        return acc.sequence if acc else 0

    def pick(self, v: int) -> str | None:
        vals = [x.operator_address for x in self.k.validators(self.ctx())]
        return vals[v % len(vals)] if vals else None

    def pick_delegated(self, i: int, v: int) -> str | None:
        """Mostly a validator signer i delegated to; sometimes any validator."""
        dels = self.k.delegations_of(self.ctx(), ADDRS[i])
        return dels[v % len(dels)].validator if dels and v < 17 else self.pick(v)

    def tokens(self, ctx: Context, op: str) -> int:
        v = self.k.get_validator(ctx, op)
        assert v is not None
        return int(v.tokens)

    def shares(self, ctx: Context, delegator: str, op: str) -> int:
        d = self.k.get_delegation(ctx, delegator, op)
        return int(d.shares) if d else 0

    def unbonding(self, ctx: Context, delegator: str, op: str) -> int:
        ubd = self.k.get_unbonding_delegation(ctx, delegator, op)
        return sum(int(e.balance) for e in ubd.entries) if ubd else 0

    def worth(self, delegator: str, op: str) -> int:
        ctx = self.ctx()
        d = self.k.get_delegation(ctx, delegator, op)
        v = self.k.get_validator(ctx, op)
        return StakingKeeper.tokens_from_shares(v, int(d.shares)) if d and v else 0

    # --- blocks ----------------------------------------------------------------
    def _finalize(
        self, txs: Sequence[bytes], votes: Sequence[Vote] = (), evidence: Sequence[Evidence] = ()
    ) -> BlockResult:
        h = self.height + 1
        return self.app.finalize_block(
            h, h * 10**9, hashlib.sha256(b"block%d" % h).digest(), b"", list(txs), votes, evidence
        )

    def _block(
        self, txs: Sequence[bytes], votes: Sequence[Vote] = (), evidence: Sequence[Evidence] = ()
    ) -> BlockResult:
        # before block 1 nothing is committed: genesis is written with it
        pool_before = self.balance(self.pool_addr) if self.height else COMMUNITY_POOL_START
        tallies = self.expected_tallies() if self.height and not txs else {}
        r = self._finalize(txs, votes, evidence)
        self.app.commit()
        self.height += 1
        self._account(r, pool_before)
        if not any(e.type == "slash" for e in r.events):  # else stake moved before the tally
            self._check_tallies(r, tallies)
        self._check()
        return r

    def expected_tallies(self) -> dict[int, tuple[int, int, int, int, int]]:
        """For the proposals whose voting ends in the next block: (yes, abstain, no, veto, total
        bonded) as the design defines them, from the committed state (what gov's end_block sees
        in a block without txs and without slashing)."""
        ctx = self.ctx()
        gov = self.app.m.gov
        bonded = {v.operator_address: v for v in self.k.validators(ctx) if v.status == BONDED}
        out = {}
        for p in gov.iterate_proposals(ctx):
            if p.status != gov_types.PROPOSAL_STATUS_VOTING_PERIOD or p.voting_end_height != self.height + 1:
                continue
            power: dict[int, int] = dict.fromkeys(VOTE_OPTIONS, 0)
            own: dict[str, int] = {}  # bonded operator -> its vote
            voted_away: dict[str, int] = {}  # validator -> tokens its delegators voted themselves
            for vote in gov.votes_of(ctx, p.id):
                if vote.voter in bonded:
                    own[vote.voter] = vote.option
                for d in self.k.delegations_of(ctx, vote.voter):
                    if d.validator in bonded:
                        tokens = StakingKeeper.tokens_from_shares(bonded[d.validator], int(d.shares))
                        power[vote.option] += tokens
                        voted_away[d.validator] = voted_away.get(d.validator, 0) + tokens
            for op, option in own.items():
                power[option] += int(bonded[op].tokens) - voted_away.get(op, 0)
            out[p.id] = (
                power[gov_types.VOTE_OPTION_YES], power[gov_types.VOTE_OPTION_ABSTAIN],
                power[gov_types.VOTE_OPTION_NO], power[gov_types.VOTE_OPTION_NO_WITH_VETO],
                sum(int(v.tokens) for v in bonded.values()),
            )
        return out

    def _check_tallies(self, r: BlockResult, tallies: dict[int, tuple[int, int, int, int, int]]) -> None:
        """Each finished proposal's tally and outcome, recomputed from the design's rules."""
        finished = {int(dict(e.attributes)["proposal_id"]): dict(e.attributes) for e in r.events
                    if e.type == "proposal_finished"}
        assert set(finished) == set(tallies)
        params = self.app.m.gov.get_params(self.ctx())
        ppm = 1_000_000
        for pid, (yes, abstain, no, veto, total) in tallies.items():
            a = finished[pid]
            assert (int(a["yes"]), int(a["abstain"]), int(a["no"]), int(a["no_with_veto"])) == (yes, abstain, no, veto)
            counted = yes + abstain + no + veto
            if total == 0 or counted * ppm < total * params.quorum_ppm:
                want = ("REJECTED", "no quorum")
            elif veto * ppm >= counted * params.veto_ppm:
                want = ("REJECTED", "vetoed")
            elif counted - abstain > 0 and yes * ppm >= (counted - abstain) * params.threshold_ppm:
                want = ("PASSED", "passed")
            else:
                want = ("REJECTED", "rejected")
            got = (a["status"].removeprefix("PROPOSAL_STATUS_"), a["result"])
            assert got == want or (want[0] == "PASSED" and got == ("FAILED", "failed")), (pid, got, want)
            event("tally recomputed")

    def _account(self, r: BlockResult, pool_before: int) -> None:
        """Apply what the block reported: validator updates, burns and mints, finished proposals."""
        keys = [u.pub_key for u in r.validator_updates]
        assert len(keys) == len(set(keys)), "one update per validator per block"
        for u in r.validator_updates:
            assert u.power >= 0
            if u.power:
                self.comet[u.pub_key] = u.power
            else:
                assert u.pub_key in self.comet, "removing a validator CometBFT does not have"
                del self.comet[u.pub_key]
        events = [*r.events, *(e for t in r.tx_results if t.code == 0 for e in t.events)]
        burns = [e for e in events if e.type == "burn"]
        self.supply -= sum(upoly(e) for e in burns)
        self.supply += sum(upoly(e) for e in events if e.type == "mint")
        pools = ("bonded_pool", "not_bonded_pool")
        staking_burned = sum(upoly(e) for e in burns if dict(e.attributes)["module"] in pools)
        # staking's own `slash` event (slashing's, with a reason, repeats the amount)
        staking_slashed = sum(
            int(a["amount"]) for e in events if e.type == "slash" and "fraction_ppm" in (a := dict(e.attributes))
        )
        assert staking_burned == staking_slashed
        if staking_slashed:
            event("slashed")
        gov_burned = sum(upoly(e) for e in burns if dict(e.attributes)["module"] == "gov")
        vetoed = [int(dict(e.attributes)["proposal_id"]) for e in r.events
                  if e.type == "proposal_finished" and dict(e.attributes)["deposits"] == "burned"]
        deposits = 0
        for pid in vetoed:
            p = self.app.m.gov.get_proposal(self.ctx(), pid)
            assert p is not None and p.status == gov_types.PROPOSAL_STATUS_REJECTED
            deposits += Coins.from_proto(p.total_deposit).amount_of("upoly")
        assert gov_burned == deposits
        pool = pool_before
        for e in r.events:
            if e.type == "proposal_dropped":
                self.proposals.pop(int(dict(e.attributes)["proposal_id"]))
                event("proposal dropped")
            if e.type != "proposal_finished":
                continue
            a = dict(e.attributes)
            pid, status = int(a["proposal_id"]), a["status"].removeprefix("PROPOSAL_STATUS_")
            kind, what = self.proposals.pop(pid)
            event(f"proposal {kind}: {status} ({a['result']})")
            if kind == "text":
                assert status in ("PASSED", "REJECTED")
            elif kind == "params":
                assert isinstance(what, bank_types.Params)
                valid = 1 <= what.max_multisend_outputs <= 10_000
                assert status != ("FAILED" if valid else "PASSED")
                if status == "PASSED":
                    assert self.app.m.bank.get_params(self.ctx()) == what
            elif kind == "spend":
                assert isinstance(what, int)
                if status == "PASSED":
                    assert what <= pool
                    pool -= what
                elif status == "FAILED":
                    assert what > pool
        assert self.balance(self.pool_addr) == pool

    def _check(self) -> None:
        ctx = self.ctx()
        assert self.app.check_invariants() == []
        bank = self.app.m.bank
        assert bank.get_supply(ctx, "upoly") == self.supply
        balances = bank.iterate_balances(ctx)
        assert all(n >= 0 for _a, c in balances for _d, n in c.items())
        assert sum(c.amount_of("upoly") for _a, c in balances) == self.supply
        bonded = sum(int(v.tokens) for v in self.k.validators(ctx) if v.status == BONDED)
        assert self.balance(self.app.m.auth.module_address("bonded_pool")) == bonded
        stored: dict[bytes, int] = {}
        for op, power in self.k.last_powers(ctx).items():
            v = self.k.get_validator(ctx, op)
            assert v is not None
            stored[bytes(v.consensus_pubkey)] = power
        assert stored == self.comet
        store = self.app.committed
        assert isinstance(store, MemStore)
        assert self.app.app_hash == StateAccumulator.of_items(store.items()).app_hash()

    def submit(
        self, what: str, i: int, msg: Message, effect: Effect | None = None, gas: int = GAS
    ) -> TxResult:
        """Sign `msg` by SIGNERS[i] with its current sequence and run it alone in the next block;
        if it succeeds, `effect(result, before, after)` checks what it did (contexts over the
        block without and with it). A small `gas` limit runs out part way (the fee stays FEE)."""
        return self.submit_many(what, [(i, msg)], effect, gas)[0]

    def submit_many(
        self, what: str, msgs: Sequence[tuple[int, Message]], effect: Effect | None = None, gas: int = GAS
    ) -> list[TxResult]:
        """One tx per (signer, message), signed with the sequence read from state, all in the
        next block. The block is finalized with each prefix of the txs first (each attempt is
        thrown away), so each tx's own effect is known exactly: the difference between the
        block without it and with it."""
        seqs: dict[str, int] = {}
        txs = []
        for i, msg in msgs:
            a = ADDRS[i]
            seqs[a] = seqs.get(a, self.sequence(a))
            txs.append(build_tx([msg], SIGNERS[i], chain_id=CHAIN, sequence=seqs[a], fee=FEE, gas_limit=gas))
            seqs[a] += 1
        pool_before = self.balance(self.pool_addr)
        self._finalize([])
        before = self.app.block
        assert before is not None
        for k, (i, _msg) in enumerate(msgs):
            r = self._finalize(txs[: k + 1])
            after = self.app.block
            assert after is not None and after is not before
            res = r.tx_results[k]
            self._check_tx(what, ADDRS[i], res, before, after)
            if res.code == 0 and effect is not None:
                effect(res, self.ctx(before), self.ctx(after))
            before = after
        self.app.commit()  # the last attempt: every tx
        self.height += 1
        self._account(r, pool_before)
        self._check()
        return r.tx_results

    def _check_tx(self, what: str, addr: str, res: TxResult, before: CacheStore, after: CacheStore) -> None:
        """A tx that failed changed its signer's fee and sequence (if it got past the ante
        handler) and nothing else."""
        event(f"{what}: {res.codespace}/{res.code}" if res.code else f"{what}: ok")
        assert (res.codespace, res.code) != ("tx", 3), "sequences are read from state"
        charged = self.sequence(addr, after) == self.sequence(addr, before) + 1
        if not charged:  # refused before or by the ante handler: nothing at all changed
            assert res.code != 0
            assert self.sequence(addr, after) == self.sequence(addr, before)
            assert after.changes() == before.changes()
            if (res.codespace, res.code) == ("tx", 6):
                assert self.balance(addr, before) < FEE
            return
        assert self.balance(addr, before) >= FEE
        if res.code == 0:
            return
        raw = from_bech32(addr)
        allowed = {
            bank_keys.NAMESPACE + bank_keys.balance_key(raw, "upoly"),
            bank_keys.NAMESPACE + bank_keys.balance_key(self.fee_collector, "upoly"),
            auth_keys.NAMESPACE + auth_keys.account_key(raw),
            auth_keys.NAMESPACE + auth_keys.NEXT_ACCOUNT_NUMBER,
        }
        b, a = dict(before.changes()), dict(after.changes())
        differ = {key for key in b.keys() | a.keys() if b.get(key, b"?") != a.get(key, b"?")}
        assert differ <= allowed, sorted(differ - allowed)
        assert self.balance(addr, after) == self.balance(addr, before) - FEE
        fc = self.app.m.auth.module_address("fee_collector")
        assert self.balance(fc, after) == self.balance(fc, before) + FEE

    # --- bank ------------------------------------------------------------------
    @rule(i=signer_idx, j=signer_idx, amount=st.integers(1, 300 * POLY), gas=gas_limit)
    def send(self, i: int, j: int, amount: int, gas: int) -> None:
        have = self.balance(ADDRS[i])
        enabled = self.app.m.bank.get_params(self.ctx()).send_enabled

        def moved(_res: TxResult, before: Context, after: Context) -> None:
            bal = self.app.m.bank.get_balance
            if i != j:
                assert bal(after, ADDRS[i], "upoly") == bal(before, ADDRS[i], "upoly") - FEE - amount
                assert bal(after, ADDRS[j], "upoly") == bal(before, ADDRS[j], "upoly") + amount

        msg = bank_tx.MsgSend(from_address=ADDRS[i], to_address=ADDRS[j], amount=[coin(amount)])
        res = self.submit("send", i, msg, moved, gas)
        if enabled and have >= FEE + amount and gas == GAS:
            assert res.code == 0, res.log

    # --- staking ---------------------------------------------------------------
    @rule(
        i=signer_idx, bond=st.integers(1, 30 * POLY), min_self=st.integers(1, 10 * POLY),
        commission=st.integers(0, 1_000_000), reuse=st.integers(0, 9), gas=gas_limit,
    )
    def create_validator(self, i: int, bond: int, min_self: int, commission: int, reuse: int, gas: int) -> None:
        if reuse == 0:  # a consensus key some validator already has
            vals = self.k.validators(self.ctx())
            pub = bytes(vals[bond % len(vals)].consensus_pubkey) if vals else cons_pubkey("genesis0")
        else:
            self.fresh += 1
            pub = cons_pubkey(f"fresh{self.fresh}")
        msg = staking_tx.MsgCreateValidator(
            operator_address=ADDRS[i], consensus_pubkey=pub, self_bond=coin(bond), commission_ppm=commission,
            moniker=f"v{self.fresh}", min_self_delegation=str(min_self),
        )

        def created(_res: TxResult, before: Context, after: Context) -> None:
            assert self.k.get_validator(before, ADDRS[i]) is None
            v = self.k.get_validator(after, ADDRS[i])
            assert v is not None and int(v.tokens) == bond and bytes(v.consensus_pubkey) == pub
            assert self.shares(after, ADDRS[i], ADDRS[i]) == int(v.delegator_shares) > 0

        self.submit("create_validator", i, msg, created, gas)

    @rule(i=signer_idx, v=val_idx, amount=st.integers(1, 40 * POLY), gas=gas_limit)
    def delegate(self, i: int, v: int, amount: int, gas: int) -> None:
        op = self.pick(v)
        if op is None:
            return
        val = self.k.get_validator(self.ctx(), op)
        assert val is not None
        have = self.balance(ADDRS[i])

        def bonded(res: TxResult, before: Context, after: Context) -> None:
            shares = int(staking_tx.MsgDelegateResponse.FromString(res.data).shares)
            assert shares > 0
            assert self.tokens(after, op) == self.tokens(before, op) + amount
            assert self.shares(after, ADDRS[i], op) == self.shares(before, ADDRS[i], op) + shares
            bal = self.app.m.bank.get_balance
            assert bal(after, ADDRS[i], "upoly") == bal(before, ADDRS[i], "upoly") - FEE - amount

        res = self.submit("delegate", i, staking_tx.MsgDelegate(
            delegator_address=ADDRS[i], validator_address=op, amount=coin(amount)), bonded, gas)
        tokens, shares = int(val.tokens), int(val.delegator_shares)
        healthy = shares == 0 or (tokens > 0 and amount * shares // tokens > 0)
        if have >= FEE + amount and healthy and gas == GAS:
            assert res.code == 0, res.log

    @rule(i=signer_idx, v=val_idx, frac=st.integers(1, 1_200), gas=gas_limit)
    def undelegate(self, i: int, v: int, frac: int, gas: int) -> None:
        op = self.pick_delegated(i, v)
        if op is None:
            return
        amount = max(1, self.worth(ADDRS[i], op) * frac // 1_000)

        def unbonding(res: TxResult, before: Context, after: Context) -> None:
            resp = staking_tx.MsgUndelegateResponse.FromString(res.data)
            paid = int(resp.amount.amount)
            assert paid >= amount and resp.completion_height == self.height + 1 + UNBONDING_BLOCKS
            assert self.tokens(after, op) == self.tokens(before, op) - paid
            assert self.unbonding(after, ADDRS[i], op) == self.unbonding(before, ADDRS[i], op) + paid

        self.submit("undelegate", i, staking_tx.MsgUndelegate(
            delegator_address=ADDRS[i], validator_address=op, amount=coin(amount)), unbonding, gas)

    @rule(i=signer_idx, s=val_idx, t=val_idx, frac=st.integers(1, 1_200), gas=gas_limit)
    def redelegate(self, i: int, s: int, t: int, frac: int, gas: int) -> None:
        src, dst = self.pick_delegated(i, s), self.pick(t)
        if src is None or dst is None or src == dst:
            return  # the same validator twice is refused statelessly
        amount = max(1, self.worth(ADDRS[i], src) * frac // 1_000)

        def moved(res: TxResult, before: Context, after: Context) -> None:
            tokens = int(staking_tx.MsgRedelegateResponse.FromString(res.data).amount.amount)
            assert tokens >= amount
            assert self.tokens(after, src) == self.tokens(before, src) - tokens
            assert self.tokens(after, dst) == self.tokens(before, dst) + tokens

        self.submit("redelegate", i, staking_tx.MsgRedelegate(
            delegator_address=ADDRS[i], src_validator_address=src, dst_validator_address=dst, amount=coin(amount)),
            moved, gas)

    # --- slashing --------------------------------------------------------------
    @rule(v=val_idx)
    def unjail(self, v: int) -> None:
        op = self.pick(v)
        if op is None or op not in BY_ADDR:
            return

        def freed(_res: TxResult, before: Context, after: Context) -> None:
            was, now = self.k.get_validator(before, op), self.k.get_validator(after, op)
            assert was is not None and now is not None and was.jailed and not now.jailed

        self.submit("unjail", ADDRS.index(op), slashing_tx.MsgUnjail(validator_address=op), freed)

    # --- gov -------------------------------------------------------------------
    @rule(
        i=signer_idx,
        kind=st.sampled_from(["text", "params", "spend", "bad_authority"]),
        # (an initial deposit over the proposer's balance fails after the proposal was written)
        deposit=st.one_of(
            st.sampled_from([MIN_DEPOSIT, 2 * MIN_DEPOSIT, 0, 1_000 * POLY]), st.integers(0, 2 * MIN_DEPOSIT)
        ),
        multisend=st.one_of(st.integers(1, 10_000), st.sampled_from([0, 10_001, 2**32 - 1])),
        send_enabled=st.sampled_from([True, True, True, False]),
        j=signer_idx,
        spend=st.integers(1, 2 * COMMUNITY_POOL_START),
        votes=st.lists(
            st.tuples(voter_idx, st.sampled_from(VOTE_OPTIONS)), max_size=4, unique_by=lambda t: t[0]
        ),
        gas=gas_limit,
    )
    def submit_proposal(
        self,
        i: int,
        kind: str,
        deposit: int,
        multisend: int,
        send_enabled: bool,
        j: int,
        spend: int,
        votes: list[tuple[int, int]],
        gas: int,
    ) -> None:
        """A proposal (text, bank params valid or not, community pool spend, or one carrying a
        message gov does not sign); if it enters its voting period, `votes` are cast in the next block."""
        what: object = None
        msgs: list[Message] = []
        if kind == "params":
            what = bank_types.Params(send_enabled=send_enabled, max_multisend_outputs=multisend)
            msgs = [gov_tx.MsgUpdateParams(authority=self.gov_addr, module="bank", params=pack_any(what))]
        elif kind == "spend":
            what = spend
            msgs = [gov_tx.MsgCommunityPoolSpend(authority=self.gov_addr, recipient=ADDRS[j], amount=[coin(spend)])]
        elif kind == "bad_authority":  # not signed by gov: refused at submit
            msgs = [gov_tx.MsgCommunityPoolSpend(authority=ADDRS[i], recipient=ADDRS[j], amount=[coin(spend)])]
        msg = gov_tx.MsgSubmitProposal(
            proposer=ADDRS[i], messages=[pack_any(m) for m in msgs],
            initial_deposit=[coin(deposit)] if deposit else [], title=f"{kind} proposal", summary="",
        )
        res = self.submit(f"submit {kind}", i, msg, gas=gas)
        if kind == "bad_authority":
            assert res.code != 0
        if res.code == 0:
            pid = gov_tx.MsgSubmitProposalResponse.FromString(res.data).proposal_id
            assert pid not in self.proposals
            self.proposals[pid] = (kind, what)
            p = self.app.m.gov.get_proposal(self.ctx(), pid)
            if votes and p is not None and p.status == gov_types.PROPOSAL_STATUS_VOTING_PERIOD:
                self.cast(pid, votes)

    def proposal_id(self, back: int, statuses: tuple[int, ...]) -> int:
        """Mostly a proposal in one of `statuses`; else a recent id, maybe finished or not there yet."""
        gov = self.app.m.gov
        ctx = self.ctx()
        ids = [p.id for p in gov.iterate_proposals(ctx) if p.status in statuses]
        if ids and back < 4:
            return ids[back % len(ids)]
        return max(gov.next_proposal_id(ctx) - 1 - back, 0) or 1

    @rule(
        i=signer_idx,
        back=st.integers(0, 5),
        amount=st.one_of(st.sampled_from([MIN_DEPOSIT, MIN_DEPOSIT // 2]), st.integers(1, MIN_DEPOSIT)),
        gas=gas_limit,
    )
    def deposit(self, i: int, back: int, amount: int, gas: int) -> None:
        pid = self.proposal_id(back, (gov_types.PROPOSAL_STATUS_DEPOSIT_PERIOD,))
        msg = gov_tx.MsgDeposit(proposal_id=pid, depositor=ADDRS[i], amount=[coin(amount)])
        self.submit("deposit", i, msg, gas=gas)

    @rule(
        back=st.integers(0, 5),
        votes=st.lists(
            st.tuples(voter_idx, st.sampled_from(VOTE_OPTIONS)), min_size=1, max_size=6, unique_by=lambda t: t[0]
        ),
    )
    def vote(self, back: int, votes: list[tuple[int, int]]) -> None:
        """Operators and delegators vote (or vote again) on a recent proposal, in one block."""
        self.cast(self.proposal_id(back, (gov_types.PROPOSAL_STATUS_VOTING_PERIOD,)), votes)

    def cast(self, pid: int, votes: list[tuple[int, int]]) -> None:
        msgs: list[tuple[int, Message]] = [
            (i, gov_tx.MsgVote(proposal_id=pid, voter=ADDRS[i], option=gov_types.VoteOption.Name(option)))
            for i, option in votes
        ]
        self.submit_many("vote", msgs)

    # --- blocks without txs ------------------------------------------------------
    @rule(n=st.integers(1, 6), missing=st.sets(st.integers(0, 5), max_size=2))
    def advance(self, n: int, missing: set[int]) -> None:
        """Empty blocks; the validators at positions `missing` of CometBFT's set do not sign."""
        for _ in range(n):
            votes = [
                Vote(address_bytes(pub), power, k not in missing)
                for k, (pub, power) in enumerate(sorted(self.comet.items()))
            ]
            self._block([], votes)

    @rule(v=val_idx, back=st.integers(0, 6), extra=st.integers(-2, 2))
    def double_sign(self, v: int, back: int, extra: int) -> None:
        """CometBFT proves a validator signed twice at a recent height."""
        op = self.pick(v)
        if op is None:
            return
        val = self.k.get_validator(self.ctx(), op)
        assert val is not None
        pub = bytes(val.consensus_pubkey)
        power = max(0, self.comet.get(pub, int(val.tokens) // POLY) + extra)
        h = self.height + 1
        total = sum(self.comet.values())
        ev = Evidence("duplicate_vote", address_bytes(pub), power, max(h - back, 1), h * 10**9, total)
        info = self.app.m.slashing.get_signing_info(self.ctx(), address_bytes(pub))
        already = info is not None and info.tombstoned
        r = self._block([], evidence=[ev])
        if already:  # punished once, never again
            assert not any(e.type in ("slash", "burn") for e in r.events)
        info = self.app.m.slashing.get_signing_info(self.ctx(), address_bytes(pub))
        assert info is not None and info.tombstoned
        after = self.k.get_validator(self.ctx(), op)
        assert after is not None and after.jailed
        assert pub not in self.comet
        event("double_sign: again" if already else "double_sign: first")


ChainMachine.TestCase.settings = settings(max_examples=30, stateful_step_count=30, deadline=None)
TestChainStateMachine = ChainMachine.TestCase
