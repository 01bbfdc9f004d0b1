"""The tiqe module as the app sees it."""

from __future__ import annotations

from polylink.tiqe.v1 import query_pb2, tx_pb2, types_pb2

from chain.app.module import Invariant, ModuleBase, MsgRoute, QueryRoute, query_routes_for
from chain.core.context import Context
from chain.modules.tiqe import genesis, invariants
from chain.modules.tiqe.keeper import TiqeKeeper
from chain.modules.tiqe.msg_server import MsgServer, validate_commit_score, validate_reveal_score
from chain.modules.tiqe.params import validate_params
from chain.modules.tiqe.query_server import QueryServer

__all__ = ["TiqeModule"]


class TiqeModule(ModuleBase):
    name = "tiqe"
    genesis = genesis
    params = (types_pb2.Params, validate_params)
    keeper: TiqeKeeper

    def msg_routes(self) -> list[MsgRoute]:
        s = MsgServer(self.keeper)
        return [
            MsgRoute(tx_pb2.MsgCommitScore, s.commit_score, lambda m: m.validator, validate_commit_score),
            MsgRoute(tx_pb2.MsgRevealScore, s.reveal_score, lambda m: m.validator, validate_reveal_score),
        ]

    def query_routes(self) -> list[QueryRoute]:
        q = QueryServer(self.keeper)
        return query_routes_for(
            "polylink.tiqe.v1.Query",
            {
                "Round": (query_pb2.QueryRoundRequest, q.round),
                "Rounds": (query_pb2.QueryRoundsRequest, q.rounds),
                "ValidatorTasks": (query_pb2.QueryValidatorTasksRequest, q.validator_tasks),
                "Rating": (query_pb2.QueryRatingRequest, q.rating),
                "Ratings": (query_pb2.QueryRatingsRequest, q.ratings),
                "Params": (query_pb2.QueryParamsRequest, q.params),
            },
        )

    def begin_block(self, ctx: Context) -> None:
        """Close the commit and reveal windows that ended with the block before; aggregate the
        finished rounds (before staking's EndBlock, which sees their slashes and jails)."""
        self.keeper.begin_block(ctx)

    def invariants(self) -> list[tuple[str, Invariant]]:
        return [
            ("tiqe/indexes", invariants.indexes_consistent(self.keeper)),
            ("tiqe/ratings", invariants.ratings_in_bounds(self.keeper)),
            ("tiqe/committees", invariants.committees_distinct(self.keeper)),
            ("tiqe/results", invariants.open_rounds_await_results(self.keeper)),
            ("tiqe/scores", invariants.scores_in_bounds(self.keeper)),
        ]
