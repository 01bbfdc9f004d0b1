"""gov genesis: validate, init and export (init and export mirror each other).

The queues (which proposal ends when) are not exported: they follow from each
open proposal's status and end height, and init rebuilds them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from polylink.gov.v1 import genesis_pb2, types_pb2

from chain.core.address import from_bech32
from chain.core.coins import Coins
from chain.core.context import Context
from chain.core.errors import ChainError
from chain.modules.gov.errors import ErrInvalidGenesis
from chain.modules.gov.keeper import DEPOSIT_PERIOD, OPEN, VOTE_OPTIONS, VOTING_PERIOD, GovKeeper
from chain.modules.gov.params import default_params, validate_params


def default_genesis() -> genesis_pb2.GenesisState:
    return genesis_pb2.GenesisState(params=default_params(), starting_proposal_id=1)


def validate_genesis(gs: genesis_pb2.GenesisState) -> None:
    validate_params(gs.params)
    if gs.starting_proposal_id < 1:
        raise ErrInvalidGenesis.wrap("starting_proposal_id must be >= 1")
    statuses: dict[int, int] = {}
    totals: dict[int, Coins] = {}
    for p in gs.proposals:
        where = f"proposal {p.id}"
        if p.id == 0 or p.id >= gs.starting_proposal_id:
            raise ErrInvalidGenesis.wrap(f"{where}: id must be in 1..starting_proposal_id-1")
        if p.id in statuses:
            raise ErrInvalidGenesis.wrap(f"{where}: duplicate id")
        if p.status not in types_pb2.ProposalStatus.values() or p.status == 0:
            raise ErrInvalidGenesis.wrap(f"{where}: status {p.status}")
        if p.status == DEPOSIT_PERIOD and p.deposit_end_height == 0:
            raise ErrInvalidGenesis.wrap(f"{where}: deposit period without deposit_end_height")
        if p.status == VOTING_PERIOD and p.voting_end_height == 0:
            raise ErrInvalidGenesis.wrap(f"{where}: voting period without voting_end_height")
        with _invalid(where):
            from_bech32(p.proposer)
            Coins.from_proto(p.total_deposit)
        statuses[p.id] = p.status
        totals[p.id] = Coins()
    seen: set[tuple[int, bytes]] = set()
    for d in gs.deposits:
        where = f"deposit of {d.depositor} on proposal {d.proposal_id}"
        if statuses.get(d.proposal_id) not in OPEN:
            raise ErrInvalidGenesis.wrap(f"{where}: no open proposal {d.proposal_id}")
        with _invalid(where):
            raw = from_bech32(d.depositor)
            amount = Coins.from_proto(d.amount)
        if amount.is_zero() or (d.proposal_id, raw) in seen:
            raise ErrInvalidGenesis.wrap(f"{where}: empty or duplicate")
        seen.add((d.proposal_id, raw))
        totals[d.proposal_id] = totals[d.proposal_id] + amount
    for p in gs.proposals:
        if p.status in OPEN and Coins.from_proto(p.total_deposit) != totals[p.id]:
            raise ErrInvalidGenesis.wrap(f"proposal {p.id}: total_deposit != sum of its deposits {totals[p.id]}")
    seen.clear()
    for v in gs.votes:
        where = f"vote of {v.voter} on proposal {v.proposal_id}"
        if statuses.get(v.proposal_id) != VOTING_PERIOD:
            raise ErrInvalidGenesis.wrap(f"{where}: proposal {v.proposal_id} is not in its voting period")
        with _invalid(where):
            raw = from_bech32(v.voter)
        if v.option not in VOTE_OPTIONS or (v.proposal_id, raw) in seen:
            raise ErrInvalidGenesis.wrap(f"{where}: invalid option or duplicate")
        seen.add((v.proposal_id, raw))
    if gs.HasField("upgrade_plan") and (not gs.upgrade_plan.name or gs.upgrade_plan.height == 0):
        raise ErrInvalidGenesis.wrap("upgrade_plan needs a name and a height")


@contextmanager
def _invalid(where: str) -> Iterator[None]:
    """Re-raise a registered error from inside the block as ErrInvalidGenesis naming `where`."""
    try:
        yield
    except ChainError as e:
        raise ErrInvalidGenesis.wrap(f"{where}: {e.log}") from None


def init_genesis(k: GovKeeper, ctx: Context, gs: genesis_pb2.GenesisState) -> None:
    k.set_params(ctx, gs.params)
    k.set_next_proposal_id(ctx, gs.starting_proposal_id)
    for p in sorted(gs.proposals, key=lambda p: p.id):
        k.set_proposal(ctx, p)
        k.enqueue(ctx, p)
    for d in gs.deposits:
        k.set_deposit(ctx, d)
    for v in gs.votes:
        k.set_vote(ctx, v)
    if gs.HasField("upgrade_plan"):
        k.set_upgrade_plan(ctx, gs.upgrade_plan)


def export_genesis(k: GovKeeper, ctx: Context) -> genesis_pb2.GenesisState:
    gs = genesis_pb2.GenesisState(
        params=k.get_params(ctx),
        starting_proposal_id=k.next_proposal_id(ctx),
        proposals=k.iterate_proposals(ctx),
        deposits=k.iterate_deposits(ctx),
        votes=k.iterate_votes(ctx),
    )
    plan = k.get_upgrade_plan(ctx)
    if plan is not None:
        gs.upgrade_plan.CopyFrom(plan)
    return gs
