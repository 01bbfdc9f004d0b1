"""gov genesis (validate / init / export mirror each other) and queries."""

from __future__ import annotations

import pytest
from polylink.base.v1 import query_pb2 as base_q
from polylink.gov.v1 import genesis_pb2, query_pb2, tx_pb2, types_pb2

from chain.core.codec import from_json, to_json
from chain.core.errors import ChainError, ErrNotFound
from chain.modules.gov import genesis as gov_genesis
from chain.modules.gov import keys
from chain.modules.gov.errors import ErrInvalidGenesis
from chain.modules.gov.query_server import QueryServer
from tests.unit.test_gov_keeper import (
    ABSTAIN,
    ALICE,
    BOB,
    MIN_DEPOSIT,
    NO,
    VA,
    VB,
    VC,
    YES,
    Env,
    coins,
)

S = types_pb2.ProposalStatus


def busy_env() -> Env:
    """Proposals in every status, deposits, votes and an upgrade plan."""
    e = Env()
    for op, tokens in ((VA, 600), (VB, 300), (VC, 100)):
        e.staking.add_validator(op, tokens)
    e.fund(ALICE, 10 * MIN_DEPOSIT)
    e.fund(BOB, 10 * MIN_DEPOSIT)
    e.fund_pool(50)
    passed = e.submit(
        [tx_pb2.MsgSoftwareUpgrade(authority=e.authority, name="v2", height=10_000, info="i"), e.spend(BOB, 5)]
    )
    rejected = e.submit([])
    e.vote(passed, VA, YES)
    e.vote(rejected, VA, NO)
    e.finish(rejected)
    e.submit([], deposit=MIN_DEPOSIT // 3)  # deposit period
    e.tx(tx_pb2.MsgDeposit(proposal_id=3, depositor=BOB, amount=coins(7)), BOB)
    voting = e.submit([], proposer=BOB)
    e.tx(tx_pb2.MsgDeposit(proposal_id=voting, depositor=ALICE, amount=coins(3)), ALICE)
    e.vote(voting, VB, ABSTAIN)
    e.vote(voting, ALICE, NO)
    return e


def gov_kv(e: Env) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in e.store.items() if k.startswith(keys.NAMESPACE)]


def test_export_import_round_trip() -> None:
    e = busy_env()
    e.invariants_hold()
    gs = e.gov.export_genesis(e.ctx())
    assert isinstance(gs, genesis_pb2.GenesisState)
    assert [p.status for p in gs.proposals] == [
        S.PROPOSAL_STATUS_PASSED,
        S.PROPOSAL_STATUS_REJECTED,
        S.PROPOSAL_STATUS_DEPOSIT_PERIOD,
        S.PROPOSAL_STATUS_VOTING_PERIOD,
    ]
    assert gs.starting_proposal_id == 5 and gs.upgrade_plan.name == "v2"
    assert len(gs.deposits) == 4 and len(gs.votes) == 2
    # through JSON, as genesis.json carries it
    gs2 = e.gov.genesis_from_json(to_json(gs))
    assert gs2 == gs
    f = Env(gs2)  # validates and inits
    assert f.gov.export_genesis(f.ctx()) == gs
    assert gov_kv(f) == gov_kv(e)  # the queues are rebuilt identically


def test_imported_state_keeps_running() -> None:
    e = busy_env()
    gs = e.gov.export_genesis(e.ctx())
    f = Env(gs)
    f.height = e.height
    for op, tokens in ((VA, 600), (VB, 300), (VC, 100)):
        f.staking.add_validator(op, tokens)
    # the gov account's balance comes from bank genesis; recreate it
    f.fund(ALICE, 0 + MIN_DEPOSIT // 3)
    f.fund(BOB, 7 + MIN_DEPOSIT + 3)  # proposal 4's deposits, by bob and alice
    f.bk.send_to_module(f.ctx(), ALICE, "gov", f.bk.get_all_balances(f.ctx(), ALICE))
    f.bk.send_to_module(f.ctx(), BOB, "gov", f.bk.get_all_balances(f.ctx(), BOB))
    f.invariants_hold()
    p4 = f.proposal(4)
    f.vote(4, VA, YES)
    f.run_through(p4.voting_end_height)
    assert f.proposal(4).status == S.PROPOSAL_STATUS_PASSED
    assert f.gk.get_proposal(f.ctx(), 3) is None  # its deposit period ended first
    assert f.module_balance("gov") == 0
    f.invariants_hold()


def _gs() -> genesis_pb2.GenesisState:
    e = busy_env()
    gs = e.gov.export_genesis(e.ctx())
    assert isinstance(gs, genesis_pb2.GenesisState)
    return gs


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda gs: setattr(gs, "starting_proposal_id", 4), "starting_proposal_id"),
        (lambda gs: gs.proposals.append(gs.proposals[0]), "duplicate id"),
        (lambda gs: setattr(gs.proposals[0], "id", 7), "id must be"),
        (lambda gs: setattr(gs.params, "quorum_ppm", 0), "quorum_ppm"),
        (lambda gs: setattr(gs.params, "voting_period_blocks", 0), "periods"),
        (lambda gs: setattr(gs.deposits[0], "proposal_id", 1), "no open proposal"),
        (lambda gs: setattr(gs.deposits[0].amount[0], "amount", "1"), "total_deposit"),
        (lambda gs: setattr(gs.votes[0], "proposal_id", 3), "not in its voting period"),
        (lambda gs: gs.votes.append(gs.votes[0]), "duplicate"),
        (lambda gs: setattr(gs.votes[0], "voter", "poly1bad"), "invalid address"),
        (lambda gs: setattr(gs.proposals[2], "deposit_end_height", 0), "deposit_end_height"),
        (lambda gs: setattr(gs.upgrade_plan, "height", 0), "upgrade_plan"),
    ],
)
def test_validate_genesis_rejects(edit: object, message: str) -> None:
    gs = _gs()
    gs.starting_proposal_id = 5
    edit(gs)  # type: ignore[operator]
    with pytest.raises(ChainError, match=message):
        gov_genesis.validate_genesis(gs)


def test_default_genesis_is_valid_and_json_friendly() -> None:
    gs = gov_genesis.default_genesis()
    gov_genesis.validate_genesis(gs)
    assert from_json(genesis_pb2.GenesisState, to_json(gs)) == gs
    assert gs.params.min_deposit[0].amount == str(MIN_DEPOSIT)
    assert (gs.params.quorum_ppm, gs.params.threshold_ppm, gs.params.veto_ppm) == (334_000, 500_000, 334_000)


def test_validate_error_kind() -> None:
    gs = _gs()
    gs.votes[0].proposal_id = 3
    with pytest.raises(ChainError) as ei:
        gov_genesis.validate_genesis(gs)
    assert ei.value.kind is ErrInvalidGenesis


# --- queries -------------------------------------------------------------------------
def test_queries() -> None:
    e = busy_env()
    q = QueryServer(e.gk)
    ctx = e.ctx()
    assert q.proposal(ctx, query_pb2.QueryProposalRequest(proposal_id=2)).proposal.status == S.PROPOSAL_STATUS_REJECTED
    with pytest.raises(ChainError) as ei:
        q.proposal(ctx, query_pb2.QueryProposalRequest(proposal_id=9))
    assert ei.value.kind is ErrNotFound

    every = q.proposals(ctx, query_pb2.QueryProposalsRequest())
    assert [p.id for p in every.proposals] == [1, 2, 3, 4] and not every.pagination.next_key
    open_ = q.proposals(ctx, query_pb2.QueryProposalsRequest(status=S.PROPOSAL_STATUS_VOTING_PERIOD))
    assert [p.id for p in open_.proposals] == [4]
    page = q.proposals(ctx, query_pb2.QueryProposalsRequest(pagination=base_q.PageRequest(limit=3)))
    assert [p.id for p in page.proposals] == [1, 2, 3]
    next_page = base_q.PageRequest(key=page.pagination.next_key)
    rest = q.proposals(ctx, query_pb2.QueryProposalsRequest(pagination=next_page))
    assert [p.id for p in rest.proposals] == [4]
    # a filtered page is full of matches; its next key is the next match
    two = q.proposals(
        ctx,
        query_pb2.QueryProposalsRequest(
            status=S.PROPOSAL_STATUS_DEPOSIT_PERIOD, pagination=base_q.PageRequest(limit=1)
        ),
    )
    assert [p.id for p in two.proposals] == [3] and not two.pagination.next_key

    deposits = q.deposits(ctx, query_pb2.QueryDepositsRequest(proposal_id=4)).deposits
    assert sorted((d.depositor, d.amount[0].amount) for d in deposits) == sorted(
        [(BOB, str(MIN_DEPOSIT)), (ALICE, "3")]
    )
    votes = q.votes(ctx, query_pb2.QueryVotesRequest(proposal_id=4)).votes
    assert {(v.voter, v.option) for v in votes} == {(VB, ABSTAIN), (ALICE, NO)}
    assert q.vote(ctx, query_pb2.QueryVoteRequest(proposal_id=4, voter=VB)).vote.option == ABSTAIN
    with pytest.raises(ChainError):
        q.vote(ctx, query_pb2.QueryVoteRequest(proposal_id=4, voter=VA))

    tally = q.tally_result(ctx, query_pb2.QueryTallyResultRequest(proposal_id=4)).tally
    assert (tally.abstain, tally.no, tally.yes) == ("300", "0", "0")  # alice has no stake
    final = q.tally_result(ctx, query_pb2.QueryTallyResultRequest(proposal_id=2)).tally
    assert final.no == "600"
    assert q.tally_result(ctx, query_pb2.QueryTallyResultRequest(proposal_id=3)).tally.yes == "0"

    assert q.params(ctx, query_pb2.QueryParamsRequest()).params == e.gk.get_params(ctx)
    plan = q.upgrade_plan(ctx, query_pb2.QueryUpgradePlanRequest())
    assert plan.HasField("plan") and plan.plan.height == 10_000
    e.gk.clear_upgrade_plan(ctx)
    assert not q.upgrade_plan(ctx, query_pb2.QueryUpgradePlanRequest()).HasField("plan")


def test_query_routes_cover_the_service() -> None:
    e = Env()
    paths = sorted(r.path for r in e.gov.query_routes())
    service = query_pb2.DESCRIPTOR.services_by_name["Query"]
    assert paths == sorted(f"/polylink.gov.v1.Query/{m.name}" for m in service.methods)
