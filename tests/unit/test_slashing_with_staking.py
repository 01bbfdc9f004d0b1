"""slashing over the real staking, bank and auth keepers (no app, no network): the downtime
and double-sign paths burn stake, jail, leave and rejoin the bonded set, and every module's
invariants hold throughout."""

from __future__ import annotations

import hashlib

import pytest
from polylink.slashing.v1 import tx_pb2

from chain.app.app import MODULE_ACCOUNTS
from chain.client.signer import Signer
from chain.core.address import address_bytes
from chain.core.coins import Coins
from chain.core.consensus import Evidence, ValidatorUpdate, Vote
from chain.core.context import BlockHeader, Context, ExecMode
from chain.core.errors import ChainError
from chain.core.store import MemStore
from chain.modules.auth.keeper import AccountKeeper
from chain.modules.bank.keeper import BankKeeper
from chain.modules.bank.module import BankModule
from chain.modules.slashing.errors import ErrJailPeriodNotOver, ErrValidatorTombstoned
from chain.modules.slashing.keeper import FOREVER, SlashingKeeper
from chain.modules.slashing.module import SlashingModule
from chain.modules.slashing.msg_server import MsgServer
from chain.modules.staking.keeper import StakingKeeper
from chain.modules.staking.module import StakingModule
from tests.unit.slashing_fake import localnet_params

PR = 1_000_000


class Net:
    def __init__(self) -> None:
        self.store = MemStore()
        self.ak = AccountKeeper(MODULE_ACCOUNTS)
        self.bk = BankKeeper(self.ak)
        self.sk = StakingKeeper(self.ak, self.bk)
        self.k = SlashingKeeper(self.sk)
        self.mods = [BankModule(self.bk), StakingModule(self.sk), SlashingModule(self.k)]
        self.k.set_params(self.ctx(0), localnet_params())
        self.ops = [Signer(hashlib.sha256(f"op{i}".encode()).digest()).address for i in range(2)]
        self.pubs = [hashlib.sha256(f"cons{i}".encode()).digest() for i in range(2)]
        ctx = self.ctx(0)
        for op, pub, power in zip(self.ops, self.pubs, (10, 5), strict=True):
            self.bk.mint(ctx, "fee_collector", Coins({"upoly": power * PR}))
            self.bk.send_from_module(ctx, "fee_collector", op, Coins({"upoly": power * PR}))
            self.sk.create_validator(ctx, op, pub, power * PR, 0, op[-4:], PR)
        self.updates = self.sk.end_block(ctx)

    def ctx(self, h: int, votes: tuple[Vote, ...] = (), ev: tuple[Evidence, ...] = ()) -> Context:
        return Context(self.store, BlockHeader("t", h, votes=votes, misbehavior=ev), ExecMode.FINALIZE)

    def block(self, h: int, signed: tuple[bool, bool], ev: tuple[Evidence, ...] = ()) -> list[ValidatorUpdate]:
        votes = tuple(
            Vote(address_bytes(pub), self.power(i), s)
            for i, (pub, s) in enumerate(zip(self.pubs, signed, strict=True))
        )
        ctx = self.ctx(h, votes, ev)
        for m in self.mods:
            m.begin_block(ctx)
        updates = [u for m in self.mods for u in m.end_block(ctx)]
        broken = [f"{n}: {msg}" for m in self.mods for n, inv in m.invariants() if (msg := inv(ctx))]
        assert broken == []
        return updates

    def power(self, i: int) -> int:
        v = self.sk.get_validator(self.ctx(0), self.ops[i])
        assert v is not None
        return int(v.tokens) // PR

    def supply(self) -> int:
        return self.bk.get_supply(self.ctx(0), "upoly")


def test_downtime_then_unjail_through_real_staking() -> None:
    n = Net()
    assert {u.power for u in n.updates} == {10, 5}
    supply = n.supply()
    jailed_at = None
    for h in range(1, 22):
        ups = n.block(h, (True, False))
        if ups:
            jailed_at = h
            assert ups == [ValidatorUpdate(n.pubs[1], 0)]  # leaves CometBFT's set
    assert jailed_at == 21
    burned = 5 * PR * 10_000 // 10**6
    assert n.supply() == supply - burned
    v = n.sk.get_validator(n.ctx(21), n.ops[1])
    assert v is not None and v.jailed and int(v.tokens) == 5 * PR - burned
    s = MsgServer(n.k)
    with pytest.raises(ChainError) as ei:
        s.unjail(n.ctx(30), tx_pb2.MsgUnjail(validator_address=n.ops[1]))
    assert ei.value.kind is ErrJailPeriodNotOver
    s.unjail(n.ctx(31), tx_pb2.MsgUnjail(validator_address=n.ops[1]))
    assert n.block(31, (True, True)) == [ValidatorUpdate(n.pubs[1], 4)]  # 4.95 POLY -> power 4


def test_double_sign_through_real_staking() -> None:
    n = Net()
    supply = n.supply()
    ev = Evidence("duplicate_vote", address_bytes(n.pubs[0]), 10, 3, 0, 15)
    assert n.block(5, (True, True), (ev,)) == [ValidatorUpdate(n.pubs[0], 0)]
    assert n.supply() == supply - 10 * PR * 50_000 // 10**6
    info = n.k.get_signing_info(n.ctx(5), address_bytes(n.pubs[0]))
    assert info is not None and info.tombstoned and info.jailed_until_height == FOREVER
    with pytest.raises(ChainError) as ei:
        MsgServer(n.k).unjail(n.ctx(10**6), tx_pb2.MsgUnjail(validator_address=n.ops[0]))
    assert ei.value.kind is ErrValidatorTombstoned
