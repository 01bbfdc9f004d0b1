"""gov queries, served over the last committed state (gRPC and ABCI Query)."""

from __future__ import annotations

from polylink.gov.v1 import query_pb2, types_pb2

from chain.core.codec import decode
from chain.core.context import Context
from chain.core.errors import ErrNotFound
from chain.core.query import paginate
from chain.core.store import PrefixStore
from chain.modules.gov import keys
from chain.modules.gov.keeper import GovKeeper


class QueryServer:
    def __init__(self, k: GovKeeper) -> None:
        self.k = k

    def _proposal(self, ctx: Context, pid: int) -> types_pb2.Proposal:
        p = self.k.get_proposal(ctx, pid)
        if p is None:
            raise ErrNotFound.wrap(f"proposal {pid}")
        return p

    def proposal(self, ctx: Context, req: query_pb2.QueryProposalRequest) -> query_pb2.QueryProposalResponse:
        return query_pb2.QueryProposalResponse(proposal=self._proposal(ctx, req.proposal_id))

    def proposals(self, ctx: Context, req: query_pb2.QueryProposalsRequest) -> query_pb2.QueryProposalsResponse:
        """By id; with a status, only those (a page still holds up to `limit` matches)."""
        store = PrefixStore(ctx.kv(keys.NAMESPACE), keys.PROPOSAL)
        items, page = paginate(
            store,
            req.pagination,
            lambda _k, v: decode(types_pb2.Proposal, v),
            (lambda p: p.status == req.status) if req.status else None,
        )
        return query_pb2.QueryProposalsResponse(proposals=items, pagination=page)

    def deposits(self, ctx: Context, req: query_pb2.QueryDepositsRequest) -> query_pb2.QueryDepositsResponse:
        self._proposal(ctx, req.proposal_id)
        store = PrefixStore(ctx.kv(keys.NAMESPACE), keys.deposits_prefix(req.proposal_id))
        items, page = paginate(store, req.pagination, lambda _k, v: decode(types_pb2.Deposit, v))
        return query_pb2.QueryDepositsResponse(deposits=items, pagination=page)

    def votes(self, ctx: Context, req: query_pb2.QueryVotesRequest) -> query_pb2.QueryVotesResponse:
        self._proposal(ctx, req.proposal_id)
        store = PrefixStore(ctx.kv(keys.NAMESPACE), keys.votes_prefix(req.proposal_id))
        items, page = paginate(store, req.pagination, lambda _k, v: decode(types_pb2.Vote, v))
        return query_pb2.QueryVotesResponse(votes=items, pagination=page)

    def vote(self, ctx: Context, req: query_pb2.QueryVoteRequest) -> query_pb2.QueryVoteResponse:
        v = self.k.get_vote(ctx, req.proposal_id, req.voter)
        if v is None:
            raise ErrNotFound.wrap(f"vote of {req.voter} on proposal {req.proposal_id}")
        return query_pb2.QueryVoteResponse(vote=v)

    def tally_result(
        self, ctx: Context, req: query_pb2.QueryTallyResultRequest
    ) -> query_pb2.QueryTallyResultResponse:
        self._proposal(ctx, req.proposal_id)
        return query_pb2.QueryTallyResultResponse(tally=self.k.current_tally(ctx, req.proposal_id))

    def params(self, ctx: Context, req: query_pb2.QueryParamsRequest) -> query_pb2.QueryParamsResponse:
        return query_pb2.QueryParamsResponse(params=self.k.get_params(ctx))

    def upgrade_plan(
        self, ctx: Context, req: query_pb2.QueryUpgradePlanRequest
    ) -> query_pb2.QueryUpgradePlanResponse:
        plan = self.k.get_upgrade_plan(ctx)
        return query_pb2.QueryUpgradePlanResponse(plan=plan) if plan else query_pb2.QueryUpgradePlanResponse()
