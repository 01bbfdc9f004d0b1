"""The gov module as the app sees it."""

from __future__ import annotations

from polylink.gov.v1 import query_pb2, tx_pb2, types_pb2

from chain.app.module import Invariant, ModuleBase, MsgRoute, QueryRoute, query_routes_for
from chain.core.consensus import ValidatorUpdate
from chain.core.context import Context
from chain.modules.gov import genesis, invariants
from chain.modules.gov.errors import UpgradeHalt
from chain.modules.gov.keeper import GovKeeper
from chain.modules.gov.msg_server import (
    MsgServer,
    validate_community_pool_spend,
    validate_deposit,
    validate_software_upgrade,
    validate_submit_proposal,
    validate_update_params,
    validate_vote,
)
from chain.modules.gov.params import validate_params
from chain.modules.gov.query_server import QueryServer

__all__ = ["GovModule", "UpgradeHalt"]


class GovModule(ModuleBase):
    name = "gov"
    genesis = genesis
    params = (types_pb2.Params, validate_params)
    keeper: GovKeeper

    def msg_routes(self) -> list[MsgRoute]:
        s = MsgServer(self.keeper)
        return [
            MsgRoute(tx_pb2.MsgSubmitProposal, s.submit_proposal, lambda m: m.proposer, validate_submit_proposal),
            MsgRoute(tx_pb2.MsgDeposit, s.deposit, lambda m: m.depositor, validate_deposit),
            MsgRoute(tx_pb2.MsgVote, s.vote, lambda m: m.voter, validate_vote),
            MsgRoute(tx_pb2.MsgUpdateParams, s.update_params, lambda m: m.authority, validate_update_params),
            MsgRoute(
                tx_pb2.MsgCommunityPoolSpend,
                s.community_pool_spend,
                lambda m: m.authority,
                validate_community_pool_spend,
            ),
            MsgRoute(tx_pb2.MsgSoftwareUpgrade, s.software_upgrade, lambda m: m.authority, validate_software_upgrade),
        ]

    def query_routes(self) -> list[QueryRoute]:
        q = QueryServer(self.keeper)
        return query_routes_for(
            "polylink.gov.v1.Query",
            {
                "Proposal": (query_pb2.QueryProposalRequest, q.proposal),
                "Proposals": (query_pb2.QueryProposalsRequest, q.proposals),
                "Deposits": (query_pb2.QueryDepositsRequest, q.deposits),
                "Votes": (query_pb2.QueryVotesRequest, q.votes),
                "Vote": (query_pb2.QueryVoteRequest, q.vote),
                "TallyResult": (query_pb2.QueryTallyResultRequest, q.tally_result),
                "Params": (query_pb2.QueryParamsRequest, q.params),
                "UpgradePlan": (query_pb2.QueryUpgradePlanRequest, q.upgrade_plan),
            },
        )

    def begin_block(self, ctx: Context) -> None:
        """Halt at the height of a scheduled upgrade: this binary must not run that block."""
        plan = self.keeper.get_upgrade_plan(ctx)
        if plan is not None and ctx.height >= plan.height:
            raise UpgradeHalt(
                f"UPGRADE {plan.name!r} NEEDED at height {plan.height}"
                + (f": {plan.info}" if plan.info else "")
                + "; this binary stops here"
            )

    def end_block(self, ctx: Context) -> list[ValidatorUpdate]:
        self.keeper.end_block(ctx)
        return []

    def invariants(self) -> list[tuple[str, Invariant]]:
        return [("gov/deposits-held", invariants.deposits_held(self.keeper))]
