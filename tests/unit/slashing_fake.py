"""A small in-memory staking keeper for the slashing tests (the StakingKeeper Protocol).

It keeps validators by operator and by consensus address, records every
slash / jail / unjail call, and slashes with the contract's arithmetic
(power * power_reduction * fraction // 10^6, capped at the tokens left).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from polylink.slashing.v1 import types_pb2

from chain.client.signer import Signer
from chain.core.address import address_bytes
from chain.core.consensus import Evidence, Vote
from chain.core.context import BlockHeader, Context, ExecMode
from chain.core.store import MemStore
from chain.modules.slashing.keeper import SlashingKeeper
from chain.modules.slashing.params import default_params

POWER_REDUCTION = 1_000_000
CHAIN = "slashing-test"


@dataclass
class FakeValidator:
    operator_address: str
    consensus_pubkey: bytes
    tokens: str
    delegator_shares: str
    min_self_delegation: str = "1"
    jailed: bool = False


@dataclass
class FakeDelegation:
    delegator: str
    validator: str
    shares: str


@dataclass
class FakeParams:
    power_reduction: int = POWER_REDUCTION


@dataclass
class FakeStaking:
    params: FakeParams = field(default_factory=FakeParams)
    validators: dict[str, FakeValidator] = field(default_factory=dict)
    delegations: list[FakeDelegation] = field(default_factory=list)
    slashes: list[tuple[bytes, int, int, int]] = field(default_factory=list)
    jails: list[bytes] = field(default_factory=list)
    unjails: list[bytes] = field(default_factory=list)

    def add(self, seed: str, power: int, self_bond: int | None = None) -> FakeValidator:
        """A validator of `power` whose operator self-bonds `self_bond` tokens (default: all)."""
        op = Signer(hashlib.sha256(b"op:" + seed.encode()).digest()).address
        pub = hashlib.sha256(b"cons:" + seed.encode()).digest()
        tokens = power * POWER_REDUCTION
        v = FakeValidator(op, pub, str(tokens), str(tokens * 10**6))
        self.validators[op] = v
        own = tokens if self_bond is None else self_bond
        self.delegations.append(FakeDelegation(op, op, str(own * 10**6)))
        return v

    def get_params(self, ctx: Context) -> FakeParams:
        return self.params

    def get_validator(self, ctx: Context, operator: str) -> FakeValidator | None:
        return self.validators.get(operator)

    def validator_by_cons_addr(self, ctx: Context, cons_addr: bytes) -> FakeValidator | None:
        for v in self.validators.values():
            if address_bytes(v.consensus_pubkey) == cons_addr:
                return v
        return None

    def delegations_of(self, ctx: Context, delegator: str) -> list[FakeDelegation]:
        return [d for d in self.delegations if d.delegator == delegator]

    def tokens_from_shares(self, v: FakeValidator, shares: int) -> int:
        return shares * int(v.tokens) // int(v.delegator_shares)

    def slash(self, ctx: Context, cons_addr: bytes, infraction_height: int, power: int, fraction_ppm: int) -> int:
        v = self.validator_by_cons_addr(ctx, cons_addr)
        assert v is not None
        amount = min(power * POWER_REDUCTION * fraction_ppm // 10**6, int(v.tokens))
        v.tokens = str(int(v.tokens) - amount)
        self.slashes.append((cons_addr, infraction_height, power, fraction_ppm))
        return amount

    def jail(self, ctx: Context, cons_addr: bytes) -> None:
        v = self.validator_by_cons_addr(ctx, cons_addr)
        assert v is not None and not v.jailed
        v.jailed = True
        self.jails.append(cons_addr)

    def unjail(self, ctx: Context, cons_addr: bytes) -> None:
        v = self.validator_by_cons_addr(ctx, cons_addr)
        assert v is not None and v.jailed
        v.jailed = False
        self.unjails.append(cons_addr)


def cons(v: FakeValidator) -> bytes:
    return address_bytes(v.consensus_pubkey)


def localnet_params(**over: int) -> types_pb2.Params:
    """The localnet's slashing params (window 20, jail 10 blocks), with overrides."""
    p = default_params()
    p.signed_blocks_window = 20
    p.downtime_jail_blocks = 10
    for k, val in over.items():
        setattr(p, k, val)
    return p


class Chain:
    """One store, one keeper, blocks driven by hand: `block(h, votes, evidence)`."""

    def __init__(self, **params: int) -> None:
        self.store = MemStore()
        self.staking = FakeStaking()
        self.k = SlashingKeeper(self.staking)
        self.k.set_params(self.ctx(0), localnet_params(**params))

    def ctx(self, height: int, votes: tuple[Vote, ...] = (), evidence: tuple[Evidence, ...] = ()) -> Context:
        header = BlockHeader(CHAIN, height, height * 10**9, votes=votes, misbehavior=evidence)
        return Context(self.store, header, ExecMode.FINALIZE)

    def block(
        self, height: int, votes: Sequence[tuple[FakeValidator, bool]] = (), evidence: tuple[Evidence, ...] = ()
    ) -> Context:
        vs = tuple(Vote(cons(v), int(v.tokens) // POWER_REDUCTION, signed) for v, signed in votes)
        ctx = self.ctx(height, vs, evidence)
        self.k.begin_block(ctx)
        return ctx
