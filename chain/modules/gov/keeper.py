"""GovKeeper: the only code that reads or writes gov state.

Lifecycle of a proposal (heights are block heights):

  submit (h) ── DEPOSIT_PERIOD ── total deposit >= min_deposit ──> VOTING_PERIOD (h')
      │                                                                   │
      └─ end_block at deposit_end_height without it:                       │
         proposal deleted, deposits refunded                               │
                                    end_block at voting_end_height: tally ─┘
     no quorum -> REJECTED (refund) | veto -> REJECTED (burn) | yes >= threshold -> PASSED (refund,
     then execute in a branch; any failure -> FAILED, branch dropped) | else REJECTED (refund)

Deposits are held by the `gov` module account; its balance always equals the
sum of the deposits of open (deposit- or voting-period) proposals. Deposits
and votes of a finished proposal are deleted; the proposal keeps its final
tally and total deposit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from google.protobuf import any_pb2
from polylink.base.v1 import coin_pb2
from polylink.gov.v1 import tx_pb2, types_pb2

from chain.app.module import ParamsSpec
from chain.core.address import from_bech32
from chain.core.codec import decode, encode, type_url
from chain.core.coins import Coins
from chain.core.context import Context
from chain.core.errors import ChainError
from chain.core.events import Event, index_keys
from chain.core.store import KVStore, PrefixStore
from chain.modules.gov import keys
from chain.modules.gov.errors import (
    ErrInactiveProposal,
    ErrInvalidAuthority,
    ErrInvalidDeposit,
    ErrInvalidProposalMsg,
    ErrInvalidVote,
    ErrUnknownProposal,
)
from chain.modules.gov.expected import AccountKeeper, BankKeeper, MsgUnpacker, StakingKeeper
from chain.modules.gov.params import PPM, default_params

GOV_MODULE = "gov"  # module account holding deposits; its address is the authority
COMMUNITY_POOL = "community_pool"

Status = types_pb2.ProposalStatus
DEPOSIT_PERIOD = types_pb2.PROPOSAL_STATUS_DEPOSIT_PERIOD
VOTING_PERIOD = types_pb2.PROPOSAL_STATUS_VOTING_PERIOD
PASSED = types_pb2.PROPOSAL_STATUS_PASSED
REJECTED = types_pb2.PROPOSAL_STATUS_REJECTED
FAILED = types_pb2.PROPOSAL_STATUS_FAILED
OPEN = (DEPOSIT_PERIOD, VOTING_PERIOD)

YES = types_pb2.VOTE_OPTION_YES
ABSTAIN = types_pb2.VOTE_OPTION_ABSTAIN
NO = types_pb2.VOTE_OPTION_NO
NO_WITH_VETO = types_pb2.VOTE_OPTION_NO_WITH_VETO
VOTE_OPTIONS = (YES, ABSTAIN, NO, NO_WITH_VETO)

# gov's own user messages can't be proposed: signed by the authority they could
# only move the deposits the gov account holds for other proposals.
NOT_PROPOSABLE = frozenset(type_url(c) for c in (tx_pb2.MsgSubmitProposal, tx_pb2.MsgDeposit, tx_pb2.MsgVote))

index_keys("submit_proposal", "proposal_id", "proposer")
index_keys("proposal_deposit", "proposal_id", "depositor")
index_keys("proposal_vote", "proposal_id", "voter")
index_keys("proposal_finished", "proposal_id", "status")


@dataclass(frozen=True)
class Tally:
    """Voting power (bonded tokens) per option."""

    yes: int = 0
    abstain: int = 0
    no: int = 0
    no_with_veto: int = 0

    @property
    def counted(self) -> int:
        return self.yes + self.abstain + self.no + self.no_with_veto

    def to_proto(self) -> types_pb2.TallyResult:
        return types_pb2.TallyResult(
            yes=str(self.yes), abstain=str(self.abstain), no=str(self.no), no_with_veto=str(self.no_with_veto)
        )


def covers(have: Coins, need: Coins) -> bool:
    return all(have.amount_of(d) >= a for d, a in need.items())


def coins_proto(c: Coins) -> list[coin_pb2.Coin]:
    return c.to_proto(coin_pb2.Coin)


class GovKeeper:
    def __init__(self, ak: AccountKeeper, bk: BankKeeper, staking: StakingKeeper) -> None:
        self.ak = ak
        self.bk = bk
        self.staking = staking
        self._router: MsgUnpacker | None = None
        self._params: Mapping[str, ParamsSpec] = {}

    def bind(self, router: MsgUnpacker, params: Mapping[str, ParamsSpec]) -> None:
        """Called by the app once every module exists: proposal messages are unpacked and run
        through `router`; MsgUpdateParams reaches a module's params through `params[module]`."""
        self._router = router
        self._params = params

    @property
    def router(self) -> MsgUnpacker:
        if self._router is None:
            raise RuntimeError("GovKeeper.bind(router, params) was not called")
        return self._router

    @property
    def params_specs(self) -> Mapping[str, ParamsSpec]:
        return self._params

    @property
    def authority(self) -> str:
        """The signer of every proposal message: the gov module account's address."""
        return self.ak.module_address(GOV_MODULE)

    def _kv(self, ctx: Context) -> KVStore:
        return ctx.kv(keys.NAMESPACE)

    # --- params ----------------------------------------------------------
    def get_params(self, ctx: Context) -> types_pb2.Params:
        raw = self._kv(ctx).get(keys.PARAMS)
        return default_params() if raw is None else decode(types_pb2.Params, raw)

    def set_params(self, ctx: Context, p: types_pb2.Params) -> None:
        self._kv(ctx).set(keys.PARAMS, encode(p))

    # --- proposals -------------------------------------------------------
    def next_proposal_id(self, ctx: Context) -> int:
        raw = self._kv(ctx).get(keys.NEXT_PROPOSAL_ID)
        return 1 if raw is None else int.from_bytes(raw, "big")

    def set_next_proposal_id(self, ctx: Context, pid: int) -> None:
        self._kv(ctx).set(keys.NEXT_PROPOSAL_ID, keys.u64(pid))

    def get_proposal(self, ctx: Context, pid: int) -> types_pb2.Proposal | None:
        raw = self._kv(ctx).get(keys.proposal_key(pid))
        return None if raw is None else decode(types_pb2.Proposal, raw)

    def must_get_proposal(self, ctx: Context, pid: int) -> types_pb2.Proposal:
        p = self.get_proposal(ctx, pid)
        if p is None:
            raise ErrUnknownProposal.wrap(f"proposal {pid}")
        return p

    def set_proposal(self, ctx: Context, p: types_pb2.Proposal) -> None:
        self._kv(ctx).set(keys.proposal_key(p.id), encode(p))

    def iterate_proposals(self, ctx: Context) -> list[types_pb2.Proposal]:
        """Every stored proposal, by id."""
        store = PrefixStore(self._kv(ctx), keys.PROPOSAL)
        return [decode(types_pb2.Proposal, v) for _, v in store.iterate()]

    def _enqueue(self, ctx: Context, queue: bytes, end: int, pid: int) -> None:
        self._kv(ctx).set(keys.queue_key(queue, end, pid), keys.QUEUED)

    def _dequeue(self, ctx: Context, queue: bytes, end: int, pid: int) -> None:
        self._kv(ctx).delete(keys.queue_key(queue, end, pid))

    def _due(self, ctx: Context, queue: bytes, height: int) -> list[tuple[int, int]]:
        """(end height, id) of queue entries ending at or before `height`, in key order."""
        store = PrefixStore(self._kv(ctx), queue)
        return [
            (int.from_bytes(k[:8], "big"), int.from_bytes(k[8:16], "big"))
            for k, _ in store.iterate(b"", keys.u64(height + 1))
        ]

    def enqueue(self, ctx: Context, p: types_pb2.Proposal) -> None:
        """The queue entry an open proposal needs (used by submit, activation and genesis)."""
        if p.status == DEPOSIT_PERIOD:
            self._enqueue(ctx, keys.DEPOSIT_QUEUE, p.deposit_end_height, p.id)
        elif p.status == VOTING_PERIOD:
            self._enqueue(ctx, keys.VOTING_QUEUE, p.voting_end_height, p.id)

    def submit_proposal(
        self,
        ctx: Context,
        proposer: str,
        messages: Sequence[any_pb2.Any],
        initial_deposit: Coins,
        title: str,
        summary: str,
    ) -> int:
        """Open a proposal in its deposit period (voting starts at once if the initial
        deposit reaches min_deposit); returns its id."""
        authority = self.authority
        for i, a in enumerate(messages):
            if a.type_url in NOT_PROPOSABLE:
                raise ErrInvalidProposalMsg.wrap(f"message {i}: {a.type_url} cannot be proposed")
            route, msg = self.router.unpack(a)
            signer = route.signer(msg)
            if signer != authority:
                raise ErrInvalidAuthority.wrap(f"message {i} ({a.type_url}) is signed by {signer}, not {authority}")
            route.validate_basic(msg)
        params = self.get_params(ctx)
        pid = self.next_proposal_id(ctx)
        self.set_next_proposal_id(ctx, pid + 1)
        p = types_pb2.Proposal(
            id=pid,
            messages=list(messages),
            status=DEPOSIT_PERIOD,
            submit_height=ctx.height,
            deposit_end_height=ctx.height + params.max_deposit_period_blocks,
            proposer=proposer,
            title=title,
            summary=summary,
        )
        self.set_proposal(ctx, p)
        self.enqueue(ctx, p)
        ctx.emit(Event.of("submit_proposal", proposal_id=pid, proposer=proposer, messages=len(messages)))
        if initial_deposit.is_zero():
            self._maybe_activate(ctx, p, params)
        else:
            self.add_deposit(ctx, pid, proposer, initial_deposit)
        return pid

    def _maybe_activate(self, ctx: Context, p: types_pb2.Proposal, params: types_pb2.Params) -> None:
        """Start the voting period if the total deposit reached min_deposit."""
        if p.status != DEPOSIT_PERIOD:
            return
        if not covers(Coins.from_proto(p.total_deposit), Coins.from_proto(params.min_deposit)):
            return
        self._dequeue(ctx, keys.DEPOSIT_QUEUE, p.deposit_end_height, p.id)
        p.status = VOTING_PERIOD
        p.voting_start_height = ctx.height
        p.voting_end_height = ctx.height + params.voting_period_blocks
        self.set_proposal(ctx, p)
        self.enqueue(ctx, p)
        ctx.emit(Event.of("voting_period_start", proposal_id=p.id, voting_end_height=p.voting_end_height))

    # --- deposits --------------------------------------------------------
    def get_deposit(self, ctx: Context, pid: int, depositor: str) -> types_pb2.Deposit | None:
        raw = self._kv(ctx).get(keys.deposit_key(pid, from_bech32(depositor)))
        return None if raw is None else decode(types_pb2.Deposit, raw)

    def set_deposit(self, ctx: Context, d: types_pb2.Deposit) -> None:
        self._kv(ctx).set(keys.deposit_key(d.proposal_id, from_bech32(d.depositor)), encode(d))

    def deposits_of(self, ctx: Context, pid: int) -> list[types_pb2.Deposit]:
        """Deposits of one proposal, by depositor address bytes."""
        store = PrefixStore(self._kv(ctx), keys.deposits_prefix(pid))
        return [decode(types_pb2.Deposit, v) for _, v in store.iterate()]

    def iterate_deposits(self, ctx: Context) -> list[types_pb2.Deposit]:
        """Every stored deposit, by (proposal id, depositor)."""
        store = PrefixStore(self._kv(ctx), keys.DEPOSIT)
        return [decode(types_pb2.Deposit, v) for _, v in store.iterate()]

    def add_deposit(self, ctx: Context, pid: int, depositor: str, amount: Coins) -> None:
        """Move `amount` from the depositor to the gov account; may start the voting period."""
        p = self.must_get_proposal(ctx, pid)
        if p.status not in OPEN:
            raise ErrInactiveProposal.wrap(f"proposal {pid} no longer takes deposits")
        params = self.get_params(ctx)
        accepted = {d for d, _ in Coins.from_proto(params.min_deposit).items()}
        stray = [d for d, _ in amount.items() if d not in accepted]
        if stray:
            raise ErrInvalidDeposit.wrap(f"denoms {stray} are not in min_deposit")
        self.bk.send_to_module(ctx, depositor, GOV_MODULE, amount)
        d = self.get_deposit(ctx, pid, depositor)
        total = amount if d is None else Coins.from_proto(d.amount) + amount
        self.set_deposit(ctx, types_pb2.Deposit(proposal_id=pid, depositor=depositor, amount=coins_proto(total)))
        new_total = coins_proto(Coins.from_proto(p.total_deposit) + amount)
        del p.total_deposit[:]
        p.total_deposit.extend(new_total)
        self.set_proposal(ctx, p)
        ctx.emit(Event.of("proposal_deposit", proposal_id=pid, depositor=depositor, amount=amount))
        self._maybe_activate(ctx, p, params)

    def _settle_deposits(self, ctx: Context, pid: int, burn: bool) -> None:
        """Refund every deposit of `pid` to its depositor, or burn them all; delete them."""
        kv = self._kv(ctx)
        total = Coins()
        for d in self.deposits_of(ctx, pid):
            amount = Coins.from_proto(d.amount)
            if burn:
                total = total + amount
            else:
                self.bk.send_from_module(ctx, GOV_MODULE, d.depositor, amount)
            kv.delete(keys.deposit_key(pid, from_bech32(d.depositor)))
        if burn and not total.is_zero():
            self.bk.burn(ctx, GOV_MODULE, total)

    # --- votes -----------------------------------------------------------
    def get_vote(self, ctx: Context, pid: int, voter: str) -> types_pb2.Vote | None:
        raw = self._kv(ctx).get(keys.vote_key(pid, from_bech32(voter)))
        return None if raw is None else decode(types_pb2.Vote, raw)

    def set_vote(self, ctx: Context, v: types_pb2.Vote) -> None:
        self._kv(ctx).set(keys.vote_key(v.proposal_id, from_bech32(v.voter)), encode(v))

    def votes_of(self, ctx: Context, pid: int) -> list[types_pb2.Vote]:
        """Votes on one proposal, by voter address bytes."""
        store = PrefixStore(self._kv(ctx), keys.votes_prefix(pid))
        return [decode(types_pb2.Vote, v) for _, v in store.iterate()]

    def iterate_votes(self, ctx: Context) -> list[types_pb2.Vote]:
        store = PrefixStore(self._kv(ctx), keys.VOTE)
        return [decode(types_pb2.Vote, v) for _, v in store.iterate()]

    def vote(self, ctx: Context, pid: int, voter: str, option: types_pb2.VoteOption) -> None:
        """Record the voter's vote, replacing an earlier one."""
        if option not in VOTE_OPTIONS:
            raise ErrInvalidVote.wrap(f"option {option}")
        p = self.must_get_proposal(ctx, pid)
        if p.status != VOTING_PERIOD:
            raise ErrInactiveProposal.wrap(f"proposal {pid} is not in its voting period")
        self.set_vote(ctx, types_pb2.Vote(proposal_id=pid, voter=voter, option=option))
        ctx.emit(Event.of("proposal_vote", proposal_id=pid, voter=voter, option=types_pb2.VoteOption.Name(option)))

    # --- tally -----------------------------------------------------------
    def tally(self, ctx: Context, pid: int) -> Tally:
        """Voting power per option over the current bonded set (read-only).

        A delegator who voted counts its delegations to bonded validators
        (tokens_from_shares, floor); a validator operator who voted counts its
        validator's tokens minus the tokens of the delegators who voted
        themselves. So a delegator's own vote moves exactly its tokens, and
        nothing is lost to rounding.
        """
        bonded = {v.operator_address: v for v in self.staking.bonded_validators(ctx)}
        power: dict[int, int] = dict.fromkeys(VOTE_OPTIONS, 0)
        by_validator: dict[str, int] = {}  # operator -> the operator's own vote option
        deducted: dict[str, int] = {}  # operator -> tokens voted by its delegators
        for vote in self.votes_of(ctx, pid):
            if vote.voter in bonded:
                by_validator[vote.voter] = vote.option
            for d in self.staking.delegations_of(ctx, vote.voter):
                v = bonded.get(d.validator)
                if v is None:
                    continue
                tokens = self.staking.tokens_from_shares(v, int(d.shares))
                deducted[d.validator] = deducted.get(d.validator, 0) + tokens
                power[vote.option] += tokens
        for op, option in sorted(by_validator.items()):
            power[option] += max(0, int(bonded[op].tokens) - deducted.get(op, 0))
        return Tally(yes=power[YES], abstain=power[ABSTAIN], no=power[NO], no_with_veto=power[NO_WITH_VETO])

    def current_tally(self, ctx: Context, pid: int) -> types_pb2.TallyResult:
        """The tally so far (voting period) or the final one (finished proposals)."""
        p = self.must_get_proposal(ctx, pid)
        if p.status == VOTING_PERIOD:
            return self.tally(ctx, pid).to_proto()
        if p.HasField("final_tally_result"):
            return p.final_tally_result
        return Tally().to_proto()

    # --- end of periods --------------------------------------------------
    def end_block(self, ctx: Context) -> None:
        """Drop proposals whose deposit period ended; tally those whose voting period ended."""
        for end, pid in self._due(ctx, keys.DEPOSIT_QUEUE, ctx.height):
            self._dequeue(ctx, keys.DEPOSIT_QUEUE, end, pid)
            self._settle_deposits(ctx, pid, burn=False)
            self._kv(ctx).delete(keys.proposal_key(pid))
            ctx.emit(Event.of("proposal_dropped", proposal_id=pid, reason="min_deposit not reached"))
        for end, pid in self._due(ctx, keys.VOTING_QUEUE, ctx.height):
            self._dequeue(ctx, keys.VOTING_QUEUE, end, pid)
            self._finish(ctx, self.must_get_proposal(ctx, pid))

    def _finish(self, ctx: Context, p: types_pb2.Proposal) -> None:
        params = self.get_params(ctx)
        t = self.tally(ctx, p.id)
        total_bonded = self.staking.total_bonded_tokens(ctx)
        non_abstain = t.counted - t.abstain
        burn = False
        if total_bonded == 0 or t.counted * PPM < total_bonded * params.quorum_ppm:
            status, result = REJECTED, "no quorum"
        elif t.no_with_veto * PPM >= t.counted * params.veto_ppm:
            status, result, burn = REJECTED, "vetoed", True
        elif non_abstain > 0 and t.yes * PPM >= non_abstain * params.threshold_ppm:
            status, result = PASSED, "passed"
        else:
            status, result = REJECTED, "rejected"
        self._settle_deposits(ctx, p.id, burn)
        kv = self._kv(ctx)
        for v in self.votes_of(ctx, p.id):
            kv.delete(keys.vote_key(p.id, from_bech32(v.voter)))
        p.final_tally_result.CopyFrom(t.to_proto())
        if status == PASSED:
            err = self._execute(ctx, p)
            if err is not None:
                status, result = FAILED, "failed"
                p.failed_reason = err.log
                ctx.emit(
                    Event.of("proposal_failed", proposal_id=p.id, codespace=err.codespace, code=err.code, log=err.log)
                )
        p.status = status
        self.set_proposal(ctx, p)
        ctx.emit(
            Event.of(
                "proposal_finished",
                proposal_id=p.id,
                status=types_pb2.ProposalStatus.Name(status),
                result=result,
                deposits="burned" if burn else "refunded",
                yes=t.yes,
                abstain=t.abstain,
                no=t.no,
                no_with_veto=t.no_with_veto,
            )
        )

    def _execute(self, ctx: Context, p: types_pb2.Proposal) -> ChainError | None:
        """Run the proposal's messages in a branch; keep it only if every one succeeds.

        Only registered (ChainError) failures mark the proposal FAILED; any
        other exception is a bug and propagates, stopping the node loudly.
        """
        bctx, cache = ctx.branch()
        gov = self.authority
        held = self.bk.get_all_balances(ctx, gov)
        for i, a in enumerate(p.messages):
            try:
                route, msg = self.router.unpack(a)
                route.validate_basic(msg)
                if route.signer(msg) != gov:
                    raise ErrInvalidAuthority.wrap(f"signer {route.signer(msg)}")
                route.handler(bctx, msg)
            except ChainError as e:
                where = f"message {i} ({a.type_url})"
                return e.kind.wrap(f"{where}: {e.detail}" if e.detail else where)
        if self.bk.get_all_balances(bctx, gov) != held:
            return ErrInvalidProposalMsg.wrap("proposal messages may not move the deposits held by the gov account")
        cache.write()
        ctx.events.extend(bctx.events.events)
        return None

    # --- upgrade plan ----------------------------------------------------
    def get_upgrade_plan(self, ctx: Context) -> types_pb2.UpgradePlan | None:
        raw = self._kv(ctx).get(keys.UPGRADE_PLAN)
        return None if raw is None else decode(types_pb2.UpgradePlan, raw)

    def set_upgrade_plan(self, ctx: Context, plan: types_pb2.UpgradePlan) -> None:
        self._kv(ctx).set(keys.UPGRADE_PLAN, encode(plan))

    def clear_upgrade_plan(self, ctx: Context) -> None:
        """For the upgraded binary, once it has applied the upgrade."""
        self._kv(ctx).delete(keys.UPGRADE_PLAN)
