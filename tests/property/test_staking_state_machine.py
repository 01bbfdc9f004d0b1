"""Random staking and bank operations against the keepers, invariants after every step.

Each operation runs like a tx (a ChainError discards its writes; any other
exception is a bug and fails the test). A plain model keeps the supply (minus
what slashing burned) and the validator set CometBFT would hold after applying
every update end_block returned. After every step:
- supply == genesis supply - everything slashing burned (and bank's sum of balances == supply);
- bonded_pool == BONDED validators' tokens; not_bonded_pool == the others' + unbonding balances;
- delegation shares add up to each validator's delegator_shares; no negative balances;
- the stored last powers == CometBFT's set as rebuilt from the reported updates;
and right after end_block: the last powers are the BONDED validators with their current
power, at most max_validators of them, and matured unbondings were paid out exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from chain.core.address import from_bech32
from chain.core.codec import encode
from chain.core.coins import Coins
from chain.core.context import Context, ExecMode
from chain.core.errors import ChainError
from chain.modules.staking import errors
from chain.modules.staking.keeper import StakingKeeper, cons_address
from tests.unit.staking_env import BONDED_ADDR, NOT_BONDED_ADDR, Env, addr, make_params, pubkey

NAMES = ["a", "b", "c", "d", "e"]
ADDRS = [addr(n) for n in NAMES]
START = 10_000
PR = 100  # power_reduction: 100 upoly = 1 unit of power, so powers move with small amounts

T = TypeVar("T")
idx = st.integers(0, len(NAMES) - 1)


class StakingMachine(RuleBasedStateMachine):
    @initialize(bonds=st.lists(st.integers(50, 3_000), min_size=1, max_size=3))
    def setup(self, bonds: list[int]) -> None:
        """Genesis: the first validators (like gentxs) and the set InitChain reports."""
        params = make_params(unbonding_blocks=3, max_validators=2, power_reduction=PR, max_entries=3)
        self.e = Env({a: START for a in ADDRS}, params)
        self.supply = START * len(ADDRS)
        for i, bond in enumerate(bonds):
            self.e.create(NAMES[i], bond, min_self=bond // 2)
        self.comet: dict[bytes, int] = {u.pub_key: u.power for u in self.e.genesis_end_block()}
        self.after_end_block = True

    # --- helpers -------------------------------------------------------------
    @property
    def k(self) -> StakingKeeper:
        return self.e.k

    def validators(self) -> list[str]:
        return [v.operator_address for v in self.k.validators(self.e.ctx(ExecMode.QUERY))]

    def pick(self, i: int) -> str | None:
        vals = self.validators()
        return vals[i % len(vals)] if vals else None

    def tx(self, what: str, fn: Callable[[Context], T]) -> T | ChainError:
        r = self.e.try_run(fn)
        event(f"{what}: {r.codespace}/{r.code}" if isinstance(r, ChainError) else f"{what}: ok")
        if not isinstance(r, ChainError):
            self.after_end_block = False
        return r

    # --- rules ----------------------------------------------------------------
    @rule(i=idx, bond=st.integers(1, 3_000), min_self=st.integers(1, 1_000), commission=st.integers(0, 1_000_000))
    def create_validator(self, i: int, bond: int, min_self: int, commission: int) -> None:
        if bond < min_self:
            return  # the message's stateless check refuses it
        name = NAMES[i]
        self.tx(
            "create", lambda ctx: self.k.create_validator(ctx, ADDRS[i], pubkey(name), bond, commission, name, min_self)
        )

    @rule(i=idx, v=st.integers(0, 10), amount=st.integers(1, 4_000))
    def delegate(self, i: int, v: int, amount: int) -> None:
        op = self.pick(v)
        if op is None:
            return
        val = self.e.validator(op)
        have = self.e.balance(ADDRS[i])
        r = self.tx("delegate", lambda ctx: self.k.delegate(ctx, ADDRS[i], op, amount))
        broken_rate = int(val.delegator_shares) > 0 and int(val.tokens) == 0
        if isinstance(r, ChainError):
            assert (r.codespace == "bank" and amount > have) or broken_rate or r.kind is errors.ErrTinyAmount, r.log
        else:
            assert amount <= have and not broken_rate

    @rule(i=idx, v=st.integers(0, 10), frac=st.integers(1, 1_200))
    def undelegate(self, i: int, v: int, frac: int) -> None:
        op = self.pick(v)
        if op is None:
            return
        d = self.k.get_delegation(self.e.ctx(), ADDRS[i], op)
        worth = StakingKeeper.tokens_from_shares(self.e.validator(op), int(d.shares)) if d else 0
        amount = max(1, worth * frac // 1_000)
        r = self.tx("undelegate", lambda ctx: self.k.undelegate(ctx, ADDRS[i], op, amount))
        if not isinstance(r, ChainError):
            completion, paid = r
            assert paid >= amount and completion == self.e.height + 3
        elif amount <= worth:
            assert r.kind in (errors.ErrMaxEntries, errors.ErrTinyAmount), r.log
        else:
            assert r.kind in (errors.ErrInsufficientDelegation, errors.ErrNoDelegation), r.log

    @rule(i=idx, s=st.integers(0, 10), t=st.integers(0, 10), frac=st.integers(1, 1_200))
    def redelegate(self, i: int, s: int, t: int, frac: int) -> None:
        src, dst = self.pick(s), self.pick(t)
        if src is None or dst is None:
            return
        d = self.k.get_delegation(self.e.ctx(), ADDRS[i], src)
        worth = StakingKeeper.tokens_from_shares(self.e.validator(src), int(d.shares)) if d else 0
        amount = max(1, worth * frac // 1_000)
        self.tx("redelegate", lambda ctx: self.k.redelegate(ctx, ADDRS[i], src, dst, amount))

    @rule(i=idx, j=idx, amount=st.integers(1, 5_000))
    def bank_send(self, i: int, j: int, amount: int) -> None:
        have = self.e.balance(ADDRS[i])
        r = self.tx("send", lambda ctx: self.e.bank.send(ctx, ADDRS[i], ADDRS[j], Coins({"upoly": amount})))
        assert isinstance(r, ChainError) == (amount > have)

    @rule(v=st.integers(0, 10), back=st.integers(0, 6), ppm=st.integers(0, 1_000_000), extra=st.integers(-3, 3))
    def slash(self, v: int, back: int, ppm: int, extra: int) -> None:
        op = self.pick(v)
        if op is None:
            return
        val = self.e.validator(op)
        power = max(0, self.comet.get(bytes(val.consensus_pubkey), 0) + extra)
        infraction = max(0, self.e.height - back)
        before = self.e.supply()
        cons = cons_address(bytes(val.consensus_pubkey))
        r = self.tx("slash", lambda ctx: self.k.slash(ctx, cons, infraction, power, ppm))
        assert not isinstance(r, ChainError), r
        assert isinstance(r, int) and r >= 0
        assert self.e.supply() == before - r
        self.supply -= r

    @rule(v=st.integers(0, 10), jail=st.booleans())
    def jail_or_unjail(self, v: int, jail: bool) -> None:
        op = self.pick(v)
        if op is None:
            return
        cons = cons_address(bytes(self.e.validator(op).consensus_pubkey))
        self.tx("jail" if jail else "unjail", lambda ctx: (self.k.jail if jail else self.k.unjail)(ctx, cons))

    @rule(n=st.integers(1, 4))
    def set_max_validators(self, n: int) -> None:
        def change(ctx: Context) -> None:
            p = self.k.get_params(ctx)
            p.max_validators = n
            self.k.set_params(ctx, p)

        self.tx("params", change)

    @rule()
    def end_block(self) -> None:
        ctx = self.e.ctx(ExecMode.QUERY)
        due: dict[str, int] = {}
        for u in self.k.all_unbonding_delegations(ctx):
            for x in u.entries:
                if x.completion_height <= self.e.height:
                    due[u.delegator] = due.get(u.delegator, 0) + int(x.balance)
        before = {a: self.e.balance(a) for a in ADDRS}
        updates = self.e.end_block()
        event(f"end_block: {len(updates)} updates")
        keys = [u.pub_key for u in updates]
        assert len(keys) == len(set(keys)), "one update per validator"
        for u in updates:
            assert u.power >= 0
            if u.power:
                self.comet[u.pub_key] = u.power
            else:
                assert u.pub_key in self.comet, "removing a validator CometBFT does not have"
                del self.comet[u.pub_key]
        for a in ADDRS:
            assert self.e.balance(a) == before[a] + due.get(a, 0)
        self.after_end_block = True

    @rule()
    def export_import(self) -> None:
        """Export -> import at this height gives the same state and CometBFT's set."""
        if not self.after_end_block:
            return
        auth_gs, bank_gs, gs = self.e.export()
        e2, initial = Env.from_genesis(auth_gs, bank_gs, gs, self.e.height - 1)
        assert {u.pub_key: u.power for u in initial} == self.comet
        event(f"export_import: {len(gs.validators)} validators")
        assert [encode(m) for m in e2.export()] == [encode(m) for m in (auth_gs, bank_gs, gs)]

    # --- invariants -------------------------------------------------------------
    @invariant()
    def conserved_and_consistent(self) -> None:
        if not hasattr(self, "e"):
            return
        assert self.e.supply() == self.supply
        assert self.e.invariants(mid_block=not self.after_end_block) == []
        ctx = self.e.ctx(ExecMode.QUERY)
        for _a, coins in self.e.bank.iterate_balances(ctx):
            assert all(n > 0 for _d, n in coins.items())
        stored = {bytes(self.e.validator(op).consensus_pubkey): p for op, p in self.k.last_powers(ctx).items()}
        assert stored == self.comet
        # what delegations are worth never exceeds what the validator holds
        for op in self.validators():
            v = self.e.validator(op)
            worth = sum(StakingKeeper.tokens_from_shares(v, int(d.shares)) for d in self.k.delegations_to(ctx, op))
            assert worth <= int(v.tokens)
        assert self.e.balance(BONDED_ADDR) == self.k.total_bonded_tokens(ctx)
        assert self.e.balance(NOT_BONDED_ADDR) >= 0
        order = [from_bech32(op) for op in self.validators()]
        assert order == sorted(order)


StakingMachine.TestCase.settings = settings(max_examples=100, stateful_step_count=50, deadline=None)
TestStakingStateMachine = StakingMachine.TestCase
