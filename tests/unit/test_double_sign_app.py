"""A double sign through the real app (PolyLinkApp(None), every module wired): gentx validators,
signed delegate / undelegate / redelegate txs, then CometBFT's evidence in FinalizeBlock.

Checks the slash contract of docs/design/staking-slashing-gov.md to the upoly: amount =
power * power_reduction * fraction // 10**6; stake that left the validator at or after the
infraction pays first (each unbonding and redelegation entry by `fraction` of its initial
balance), the validator the rest; supply falls by exactly what was burned; the validator is
jailed, tombstoned and removed from CometBFT's set; evidence again does nothing; it can never
unjail. Every module's invariants hold after every block.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence

from google.protobuf.message import Message
from polylink.base.v1 import coin_pb2
from polylink.slashing.v1 import tx_pb2 as slashing_tx
from polylink.staking.v1 import tx_pb2 as staking_tx

from chain.app.app import BlockResult, PolyLinkApp
from chain.client.signer import Signer
from chain.client.tx_builder import build_tx
from chain.core.address import address_bytes
from chain.core.coins import Coins
from chain.core.consensus import Evidence, ValidatorUpdate
from chain.modules.slashing.errors import ErrValidatorTombstoned
from chain.modules.slashing.keeper import FOREVER
from chain.modules.staking.keeper import BONDED, StakingKeeper

CHAIN = "double-sign-app"
POLY = 1_000_000  # power_reduction (the default)
PPM = 1_000_000
DOUBLE_SIGN_PPM = 50_000  # slashing's default slash_fraction_double_sign_ppm
UNBONDING_BLOCKS = 12
GAS = 400_000
FEE = 4_000
OPS = [Signer(hashlib.sha256(b"ds-op%d" % i).digest()) for i in range(3)]
CONS = [hashlib.sha256(b"ds-node%d" % i).digest() for i in range(3)]
POWERS = [10, 7, 5]
DELEGATOR = Signer(hashlib.sha256(b"ds-delegator").digest())
A, B = OPS[0].address, OPS[1].address
CONS_A = address_bytes(CONS[0])


def coin(n: int) -> coin_pb2.Coin:
    return coin_pb2.Coin(denom="upoly", amount=str(n))


def gentx(i: int) -> str:
    msg = staking_tx.MsgCreateValidator(
        operator_address=OPS[i].address, consensus_pubkey=CONS[i], self_bond=coin(POWERS[i] * POLY),
        commission_ppm=100_000, moniker=f"node{i}", min_self_delegation="1",
    )
    return base64.b64encode(build_tx([msg], OPS[i], chain_id=CHAIN, sequence=0, fee=FEE, gas_limit=GAS)).decode()


class Chain:
    def __init__(self) -> None:
        self.app = PolyLinkApp(None)
        balances = [
            {"address": s.address, "coins": [{"denom": "upoly", "amount": str(100 * POLY)}]}
            for s in [*OPS, DELEGATOR]
        ]
        state = {
            "bank": {"balances": balances},
            "staking": {"params": {"unbonding_blocks": str(UNBONDING_BLOCKS)}},
            "rewards": {"params": {"block_reward": "0"}},  # these tests count tokens exactly
            "genutil": {"gen_txs": [gentx(i) for i in range(3)]},
        }
        self.app.init_chain(CHAIN, json.dumps(state).encode(), 1, 0, -1)
        self.height = 0
        self.seq = {s.address: (1 if s in OPS else 0) for s in [*OPS, DELEGATOR]}  # gentxs used sequence 0

    def tx(self, signer: Signer, msg: Message) -> bytes:
        t = build_tx([msg], signer, chain_id=CHAIN, sequence=self.seq[signer.address], fee=FEE, gas_limit=GAS)
        self.seq[signer.address] += 1
        return t

    def block(self, txs: Sequence[bytes] = (), evidence: tuple[Evidence, ...] = ()) -> BlockResult:
        self.height += 1
        h = self.height
        r = self.app.finalize_block(h, h * 10**9, hashlib.sha256(b"%d" % h).digest(), b"", list(txs),
                                    misbehavior=evidence)
        self.app.commit()
        assert self.app.check_invariants() == [], h
        return r

    # --- reads over the committed state --------------------------------------
    @property
    def k(self) -> StakingKeeper:
        return self.app.m.staking

    def tokens(self, op: str) -> int:
        v = self.k.get_validator(self.app.query_context(), op)
        assert v is not None
        return int(v.tokens)

    def supply(self) -> int:
        return self.app.m.bank.get_supply(self.app.query_context(), "upoly")

    def balance(self, addr: str) -> int:
        return self.app.m.bank.get_balance(self.app.query_context(), addr, "upoly")


def burned_in(r: BlockResult) -> int:
    """upoly destroyed in a block, from bank's `burn` events (block and tx events)."""
    events = [*r.events, *(e for t in r.tx_results for e in t.events)]
    return sum(Coins.parse(dict(e.attributes)["amount"]).amount_of("upoly") for e in events if e.type == "burn")


def test_double_sign_slashes_unbonding_redelegation_and_validator_then_tombstones() -> None:
    c = Chain()
    assert sorted((u.pub_key, u.power) for u in c.app.genesis_validators) == sorted(
        zip(CONS, POWERS, strict=True)
    )
    c.block()  # 1
    d = DELEGATOR
    r = c.block([c.tx(d, staking_tx.MsgDelegate(delegator_address=d.address, validator_address=A,
                                                amount=coin(10 * POLY)))])  # 2
    assert [t.code for t in r.tx_results] == [0], [t.log for t in r.tx_results]
    assert r.validator_updates == [ValidatorUpdate(CONS[0], 20)]
    c.block()  # 3
    c.block()  # 4: the infraction height; A has power 20
    power_at_infraction = c.tokens(A) // POLY
    assert power_at_infraction == 20
    r = c.block([  # 5: after the infraction, 3 POLY start unbonding and 2 POLY move to B
        c.tx(d, staking_tx.MsgUndelegate(delegator_address=d.address, validator_address=A, amount=coin(3 * POLY))),
        c.tx(d, staking_tx.MsgRedelegate(delegator_address=d.address, src_validator_address=A,
                                         dst_validator_address=B, amount=coin(2 * POLY))),
    ])
    assert [t.code for t in r.tx_results] == [0, 0], [t.log for t in r.tx_results]
    assert sorted((u.pub_key, u.power) for u in r.validator_updates) == sorted([(CONS[0], 15), (CONS[1], 9)])
    c.block()  # 6

    ctx = c.app.query_context()
    (ubd,) = c.k.unbonding_delegations_of(ctx, d.address)
    (entry,) = ubd.entries
    assert (entry.creation_height, int(entry.initial_balance), int(entry.balance)) == (5, 3 * POLY, 3 * POLY)
    (red,) = c.k.redelegations_of(ctx, d.address)
    (rentry,) = red.entries
    assert (red.src_validator, red.dst_validator, rentry.creation_height) == (A, B, 5)
    d_at_b = c.k.get_delegation(ctx, d.address, B)
    assert d_at_b is not None and int(d_at_b.shares) == int(rentry.shares_dst)
    tokens_a, tokens_b, supply = c.tokens(A), c.tokens(B), c.supply()
    assert (tokens_a, tokens_b) == (15 * POLY, 9 * POLY)
    v_b = c.k.get_validator(ctx, B)
    assert v_b is not None
    b_delegator_shares = int(v_b.delegator_shares)

    total_power = sum(POWERS) + 10
    ev = Evidence("duplicate_vote", CONS_A, power_at_infraction, 4, 4 * 10**9, total_power)
    r = c.block(evidence=(ev,))  # 7

    amount = power_at_infraction * POLY * DOUBLE_SIGN_PPM // PPM
    from_ubd = 3 * POLY * DOUBLE_SIGN_PPM // PPM
    red_shares = int(rentry.shares_dst) * DOUBLE_SIGN_PPM // PPM
    from_red = red_shares * tokens_b // b_delegator_shares
    from_validator = amount - from_ubd - from_red
    assert (amount, from_ubd, from_red, from_validator) == (1_000_000, 150_000, 100_000, 750_000)

    # the validator pays the rest of the amount
    assert c.tokens(A) == tokens_a - from_validator
    # the unbonding entry lost `fraction` of its initial balance
    ctx = c.app.query_context()
    (ubd,) = c.k.unbonding_delegations_of(ctx, d.address)
    (entry,) = ubd.entries
    assert (int(entry.initial_balance), int(entry.balance)) == (3 * POLY, 3 * POLY - from_ubd)
    # the redelegated stake at the destination lost `fraction` of the shares the entry received
    assert c.tokens(B) == tokens_b - from_red
    d_at_b = c.k.get_delegation(ctx, d.address, B)
    assert d_at_b is not None and int(d_at_b.shares) == int(rentry.shares_dst) - red_shares
    # supply falls by exactly what was burned, and the events say so
    assert c.supply() == supply - amount
    assert burned_in(r) == amount
    slash_amounts = [int(dict(e.attributes)["amount"]) for e in r.events if e.type == "slash"]
    assert slash_amounts == [amount, amount]  # staking's slash, then slashing's (reason double_sign)
    assert any(e.type == "slash" and ("reason", "double_sign") in e.attributes for e in r.events)
    # jailed, out of CometBFT's set, tombstoned forever; B's power follows its slashed stake
    v_a = c.k.get_validator(ctx, A)
    assert v_a is not None and v_a.jailed and v_a.status != BONDED
    assert A not in c.k.last_powers(ctx)
    assert sorted((u.pub_key, u.power) for u in r.validator_updates) == sorted(
        [(CONS[0], 0), (CONS[1], (tokens_b - from_red) // POLY)]
    )
    assert ValidatorUpdate(CONS[0], 0) in r.validator_updates
    info = c.app.m.slashing.get_signing_info(ctx, CONS_A)
    assert info is not None and info.tombstoned and info.jailed_until_height == FOREVER

    # the same evidence again (or a later one) changes nothing
    before = (c.tokens(A), c.tokens(B), c.supply(), c.balance(d.address))
    r = c.block(evidence=(ev, Evidence("duplicate_vote", CONS_A, 15, 7, 7 * 10**9, total_power - 5)))  # 8
    assert (c.tokens(A), c.tokens(B), c.supply(), c.balance(d.address)) == before
    assert burned_in(r) == 0 and not any(e.type in ("slash", "jail") for e in r.events)
    assert r.validator_updates == []
    (ubd,) = c.k.unbonding_delegations_of(c.app.query_context(), d.address)
    assert int(ubd.entries[0].balance) == 3 * POLY - from_ubd

    # a tombstoned validator can never unjail: the tx fails with the tombstone code (fee only)
    op_balance = c.balance(A)
    r = c.block([c.tx(OPS[0], slashing_tx.MsgUnjail(validator_address=A))])  # 9
    (res,) = r.tx_results
    assert (res.codespace, res.code) == (ErrValidatorTombstoned.codespace, ErrValidatorTombstoned.code), res.log
    assert c.balance(A) == op_balance - FEE
    v_a = c.k.get_validator(c.app.query_context(), A)
    assert v_a is not None and v_a.jailed
    assert r.validator_updates == []

    # the slashed unbonding entry pays out what is left of it when it matures
    have = c.balance(d.address)
    while c.height < 5 + UNBONDING_BLOCKS:
        c.block()
    assert c.balance(d.address) == have + 3 * POLY - from_ubd
    assert c.k.unbonding_delegations_of(c.app.query_context(), d.address) == []
