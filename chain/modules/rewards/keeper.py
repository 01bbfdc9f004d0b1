"""rewards keeper: fee splits for settled results and the per-block emission (SPEC 3.8).

Settlement moves money out of inference's escrow, which only inference
accounts for, so `settle` takes a `pay(address, amount)` callback (inference's
escrow payment) and calls it once per recipient: the worker, the model's
provider, each earning validator's operator (commission) and delegators, and
the community pool. Validators are paid at once (push), not through a lazy
distribution: committees are small, and a delegator's part is its shares'
share of what its validator earned, rounded down; dust goes to the pool.

Emission: BeginBlock mints `block_reward` into the fee collector and pays
it out in the same block to the bonded validators by power, each part split
into commission and delegators the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from polylink.rewards.v1 import types_pb2

from chain.core.codec import decode, encode
from chain.core.coins import BOND_DENOM, Coins
from chain.core.context import Context
from chain.core.events import Event
from chain.core.store import KVStore
from chain.modules.auth.keeper import AccountKeeper
from chain.modules.bank.keeper import BankKeeper
from chain.modules.rewards import keys
from chain.modules.rewards.params import COMMUNITY_POOL, EMISSION_ACCOUNT, PPM, default_params
from chain.modules.rewards.split import FeeSplit, divide, split_fee
from chain.modules.staking.keeper import StakingKeeper

Pay = Callable[[str, int], None]
TOTAL_FIELDS = (
    "minted",
    "to_workers",
    "to_providers",
    "to_validators",
    "to_community",
    "refunded",
    "emission_to_validators",
    "emission_to_community",
)


class RewardsKeeper:
    def __init__(self, ak: AccountKeeper, bk: BankKeeper, sk: StakingKeeper) -> None:
        self.ak = ak
        self.bk = bk
        self.sk = sk

    def _kv(self, ctx: Context) -> KVStore:
        return ctx.kv(keys.NAMESPACE)

    # --- params, totals, initial supply ----------------------------------------
    def get_params(self, ctx: Context) -> types_pb2.Params:
        raw = self._kv(ctx).get(keys.PARAMS)
        return default_params() if raw is None else decode(types_pb2.Params, raw)

    def set_params(self, ctx: Context, p: types_pb2.Params) -> None:
        self._kv(ctx).set(keys.PARAMS, encode(p))

    def get_totals(self, ctx: Context) -> types_pb2.Totals:
        raw = self._kv(ctx).get(keys.TOTALS)
        t = types_pb2.Totals() if raw is None else decode(types_pb2.Totals, raw)
        for name in TOTAL_FIELDS:
            if not getattr(t, name):
                setattr(t, name, "0")
        return t

    def set_totals(self, ctx: Context, t: types_pb2.Totals) -> None:
        self._kv(ctx).set(keys.TOTALS, encode(t))

    def _add_totals(self, ctx: Context, **amounts: int) -> None:
        t = self.get_totals(ctx)
        for name, amount in amounts.items():
            setattr(t, name, str(int(getattr(t, name)) + amount))
        self.set_totals(ctx, t)

    def get_initial_supply(self, ctx: Context) -> int:
        raw = self._kv(ctx).get(keys.INITIAL_SUPPLY)
        return 0 if raw is None else int(raw)

    def set_initial_supply(self, ctx: Context, amount: int) -> None:
        self._kv(ctx).set(keys.INITIAL_SUPPLY, str(amount).encode())

    def community_address(self) -> str:
        return self.ak.module_address(COMMUNITY_POOL)

    # --- settlement ----------------------------------------------------------------
    def settle(
        self,
        ctx: Context,
        pay: Pay,
        *,
        fee: int,
        worker: str,
        provider: str,
        royalty_ppm: int,
        passed: bool,
        earners: Sequence[tuple[str, int]],
    ) -> FeeSplit:
        """Split `fee` (see split.py) and pay every part with `pay`, except the refund, which
        stays with the caller (it goes back to the requester with the rest of the escrow)."""
        p = self.get_params(ctx)
        s = split_fee(
            fee,
            worker_share_ppm=p.worker_share_ppm,
            validator_share_ppm=p.validator_share_ppm,
            royalty_ppm=royalty_ppm if provider else 0,
            passed=passed,
            earners=earners,
        )
        pay(worker, s.worker)
        if provider:
            pay(provider, s.provider)
        to_validators = 0
        dust = 0
        paid_to: dict[str, int] = {}
        for operator, amount in s.validators.items():
            paid, left = self._pay_validator(ctx, pay, operator, amount)
            paid_to[operator] = paid
            to_validators += paid
            dust += left
        pay(self.community_address(), s.community + dust)
        self._add_totals(
            ctx,
            to_workers=s.worker,
            to_providers=s.provider,
            to_validators=to_validators,
            to_community=s.community + dust,
            refunded=s.refund,
        )
        # as paid: the delegators' rounding dust went to the community pool
        return replace(s, validators=paid_to, community=s.community + dust)

    def _pay_validator(self, ctx: Context, pay: Pay, operator: str, amount: int) -> tuple[int, int]:
        """Pay `amount` earned by `operator`'s validator: commission, then delegators by shares;
        returns (paid, dust left for the community pool)."""
        commission, delegators, dust = self.sk.split_reward(ctx, operator, amount)
        pay(operator, commission)
        for delegator, part in delegators.items():
            pay(delegator, part)
        return amount - dust, dust

    def ticket_for(self, ctx: Context, slot_fee: int) -> int:
        """The swarm ticket a committing worker locks: ticket_ppm of the per-worker fee."""
        return slot_fee * self.get_params(ctx).ticket_ppm // PPM

    # --- emission --------------------------------------------------------------------
    def begin_block(self, ctx: Context) -> None:
        """Mint `block_reward` and pay it to the bonded validators by power (see the docstring)."""
        reward = int(self.get_params(ctx).block_reward or "0")
        if reward <= 0:
            return
        pr = self.sk.get_params(ctx).power_reduction
        weights = [(v.operator_address, self.sk.power(v, pr)) for v in self.sk.bonded_validators(ctx)]
        if sum(w for _, w in weights) <= 0:
            return
        self.bk.mint(ctx, EMISSION_ACCOUNT, Coins({BOND_DENOM: reward}))

        def pay(address: str, amount: int) -> None:
            if amount:
                self.bk.send_from_module(ctx, EMISSION_ACCOUNT, address, Coins({BOND_DENOM: amount}))

        parts = divide(reward, weights)
        paid = 0
        for operator, amount in parts.items():
            got, _ = self._pay_validator(ctx, pay, operator, amount)
            paid += got
        pay(self.community_address(), reward - paid)
        self._add_totals(ctx, minted=reward, emission_to_validators=paid, emission_to_community=reward - paid)
        ctx.emit(Event.of("rewards.emission", minted=reward, to_validators=paid, to_community=reward - paid))
