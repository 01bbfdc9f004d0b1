"""gov keeper: proposal lifecycle, tally, execution in a branch, deposits refunded or burned.

Runs on a MemStore with the real AccountKeeper and BankKeeper, a real
MsgRouter over bank + gov, and a fake staking keeper (validators with tokens
and shares, delegations), as the gov module sees staking through expected.py.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import pytest
from google.protobuf.message import Message
from polylink.bank.v1 import tx_pb2 as bank_tx
from polylink.bank.v1 import types_pb2 as bank_types
from polylink.base.v1 import coin_pb2
from polylink.gov.v1 import genesis_pb2, tx_pb2, types_pb2

from chain.app.app import MODULE_ACCOUNTS
from chain.app.router import MsgRouter
from chain.core.address import to_bech32
from chain.core.codec import pack_any
from chain.core.coins import Coins
from chain.core.context import BlockHeader, Context, ExecMode
from chain.core.errors import ChainError, ErrorKind, ErrUnauthorized
from chain.core.events import Event
from chain.core.store import MemStore
from chain.modules.auth.keeper import AccountKeeper
from chain.modules.bank.errors import ErrInsufficientFunds, ErrTooManyOutputs
from chain.modules.bank.keeper import BankKeeper
from chain.modules.bank.module import BankModule
from chain.modules.gov import genesis as gov_genesis
from chain.modules.gov.errors import (
    ErrInactiveProposal,
    ErrInvalidAuthority,
    ErrInvalidDeposit,
    ErrInvalidProposalMsg,
    ErrInvalidVote,
    ErrUnknownProposal,
    UpgradeHalt,
)
from chain.modules.gov.keeper import GovKeeper
from chain.modules.gov.module import GovModule

CHAIN = "gov-test"
MIN_DEPOSIT = 10_000_000
S = types_pb2.ProposalStatus
YES, NO, VETO, ABSTAIN = (
    types_pb2.VOTE_OPTION_YES,
    types_pb2.VOTE_OPTION_NO,
    types_pb2.VOTE_OPTION_NO_WITH_VETO,
    types_pb2.VOTE_OPTION_ABSTAIN,
)


def addr(name: str) -> str:
    return to_bech32(hashlib.sha256(name.encode()).digest()[:20])


ALICE, BOB, CAROL, DAVE = addr("alice"), addr("bob"), addr("carol"), addr("dave")
VA, VB, VC = addr("val-a"), addr("val-b"), addr("val-c")


def upoly(n: int) -> Coins:
    return Coins({"upoly": n})


def coins(n: int) -> list[coin_pb2.Coin]:
    return upoly(n).to_proto(coin_pb2.Coin)


# --- fake staking -----------------------------------------------------------------
@dataclass
class FakeValidator:
    operator_address: str
    tokens: str
    delegator_shares: str


@dataclass
class FakeDelegation:
    delegator: str
    validator: str
    shares: str


@dataclass
class FakeStaking:
    """Bonded validators in the order staking would give them; `unbonded` are known but not bonded."""

    bonded: list[FakeValidator] = field(default_factory=list)
    unbonded: list[FakeValidator] = field(default_factory=list)
    delegations: list[FakeDelegation] = field(default_factory=list)

    def add_validator(self, op: str, tokens: int, shares: int | None = None, bonded: bool = True) -> FakeValidator:
        """A validator whose operator self-delegated all its shares."""
        shares = tokens * 10**6 if shares is None else shares
        v = FakeValidator(op, str(tokens), str(shares))
        (self.bonded if bonded else self.unbonded).append(v)
        self.delegations.append(FakeDelegation(op, op, str(shares)))
        return v

    def reset(self) -> None:
        self.bonded.clear()
        self.unbonded.clear()
        self.delegations.clear()

    def move_shares(self, op: str, to: str, shares: int) -> None:
        """Give `shares` of op's self-delegation to delegator `to` (tokens unchanged)."""
        own = next(d for d in self.delegations if d.delegator == op and d.validator == op)
        own.shares = str(int(own.shares) - shares)
        self.delegations.append(FakeDelegation(to, op, str(shares)))

    def bonded_validators(self, ctx: Context) -> list[FakeValidator]:
        return list(self.bonded)

    def total_bonded_tokens(self, ctx: Context) -> int:
        return sum(int(v.tokens) for v in self.bonded)

    def delegations_of(self, ctx: Context, delegator: str) -> list[FakeDelegation]:
        return [d for d in self.delegations if d.delegator == delegator]

    def tokens_from_shares(self, v: FakeValidator, shares: int) -> int:
        return shares * int(v.tokens) // int(v.delegator_shares)

    def get_validator(self, ctx: Context, operator: str) -> FakeValidator | None:
        return next((v for v in self.bonded + self.unbonded if v.operator_address == operator), None)


# --- the environment ------------------------------------------------------------------
class Env:
    def __init__(self, gs: genesis_pb2.GenesisState | None = None) -> None:
        self.store = MemStore()
        self.height = 1
        self.ak = AccountKeeper(MODULE_ACCOUNTS)
        self.bk = BankKeeper(self.ak)
        self.staking = FakeStaking()
        self.gk = GovKeeper(self.ak, self.bk, self.staking)
        self.bank = BankModule(self.bk)
        self.gov = GovModule(self.gk)
        self.router = MsgRouter([self.bank, self.gov])
        self.gk.bind(self.router, {"bank": self.bank.params_spec(), "gov": self.gov.params_spec()})
        self.events: list[Event] = []
        ctx = self.ctx()
        self.bank.init_genesis(ctx, self.bank.default_genesis())
        gs = gs or gov_genesis.default_genesis()
        self.gov.validate_genesis(gs)
        self.gov.init_genesis(ctx, gs)

    @property
    def authority(self) -> str:
        return self.gk.authority

    def ctx(self) -> Context:
        return Context(self.store, BlockHeader(CHAIN, self.height), ExecMode.FINALIZE)

    def fund(self, address: str, n: int) -> None:
        ctx = self.ctx()
        self.bk.mint(ctx, "fee_collector", upoly(n))
        self.bk.send_from_module(ctx, "fee_collector", address, upoly(n))

    def fund_pool(self, n: int) -> None:
        self.bk.mint(self.ctx(), "community_pool", upoly(n))

    def balance(self, address: str) -> int:
        return self.bk.get_balance(self.ctx(), address, "upoly")

    def module_balance(self, name: str) -> int:
        return self.balance(self.ak.module_address(name))

    def supply(self) -> int:
        return self.bk.get_supply(self.ctx(), "upoly")

    def tx(self, msg: Message, signer: str | None = None) -> Message:
        """Run one message as a user tx's message step does (app.run_tx): unpack, stateless check,
        signer check, handler in a branch kept only on success."""
        route, m = self.router.unpack(pack_any(msg))
        route.validate_basic(m)
        if signer is not None and route.signer(m) != signer:
            raise ErrUnauthorized.wrap(f"must be signed by {route.signer(m)}")
        bctx, cache = self.ctx().branch()
        resp = route.handler(bctx, m)
        cache.write()
        self.events.extend(bctx.events.events)
        return resp

    def end_block(self) -> None:
        """EndBlock of the current height, then BeginBlock of the next."""
        ctx = self.ctx()
        assert self.gov.end_block(ctx) == []
        self.events.extend(ctx.events.events)
        self.height += 1
        self.gov.begin_block(self.ctx())

    def run_through(self, height: int) -> None:
        """Blocks until EndBlock of `height` has run."""
        while self.height <= height:
            self.end_block()

    def submit(self, messages: list[Message], deposit: int = MIN_DEPOSIT, proposer: str = ALICE) -> int:
        msg = tx_pb2.MsgSubmitProposal(
            proposer=proposer,
            messages=[pack_any(m) for m in messages],
            initial_deposit=coins(deposit) if deposit else [],
            title="a proposal",
            summary="why",
        )
        resp = self.tx(msg, proposer)
        assert isinstance(resp, tx_pb2.MsgSubmitProposalResponse)
        return resp.proposal_id

    def vote(self, pid: int, voter: str, option: int) -> None:
        self.tx(tx_pb2.MsgVote(proposal_id=pid, voter=voter, option=option), voter)

    def proposal(self, pid: int) -> types_pb2.Proposal:
        p = self.gk.get_proposal(self.ctx(), pid)
        assert p is not None
        return p

    def finish(self, pid: int) -> types_pb2.Proposal:
        self.run_through(self.proposal(pid).voting_end_height)
        return self.proposal(pid)

    def invariants_hold(self) -> None:
        ctx = self.ctx()
        for mod in (self.bank, self.gov):
            for name, inv in mod.invariants():
                assert inv(ctx) is None, name

    def update_bank_params(self, **kw: object) -> tx_pb2.MsgUpdateParams:
        p = bank_types.Params()
        p.CopyFrom(self.bk.get_params(self.ctx()))
        for k, v in kw.items():
            setattr(p, k, v)
        return tx_pb2.MsgUpdateParams(authority=self.authority, module="bank", params=pack_any(p))

    def spend(self, recipient: str, n: int) -> tx_pb2.MsgCommunityPoolSpend:
        return tx_pb2.MsgCommunityPoolSpend(authority=self.authority, recipient=recipient, amount=coins(n))


def kind_of(e: pytest.ExceptionInfo[ChainError]) -> ErrorKind:
    return e.value.kind


@pytest.fixture
def env() -> Env:
    e = Env()
    e.staking.add_validator(VA, 600)
    e.staking.add_validator(VB, 300)
    e.staking.add_validator(VC, 100)
    e.fund(ALICE, 3 * MIN_DEPOSIT)
    e.fund(BOB, 3 * MIN_DEPOSIT)
    return e


# --- tests ----------------------------------------------------------------------------
def test_param_change_passes_and_new_value_is_in_force(env: Env) -> None:
    pid = env.submit([env.update_bank_params(max_multisend_outputs=2)])
    p = env.proposal(pid)
    assert p.status == S.PROPOSAL_STATUS_VOTING_PERIOD and p.voting_end_height == env.height + 20
    assert env.balance(ALICE) == 2 * MIN_DEPOSIT and env.module_balance("gov") == MIN_DEPOSIT
    env.vote(pid, VA, YES)
    env.vote(pid, VB, NO)
    env.invariants_hold()
    env.run_through(p.voting_end_height - 1)
    assert env.proposal(pid).status == S.PROPOSAL_STATUS_VOTING_PERIOD  # not before its end
    p = env.finish(pid)
    assert p.status == S.PROPOSAL_STATUS_PASSED
    assert (p.final_tally_result.yes, p.final_tally_result.no) == ("600", "300")
    assert env.bk.get_params(env.ctx()).max_multisend_outputs == 2
    assert env.balance(ALICE) == 3 * MIN_DEPOSIT and env.module_balance("gov") == 0  # refunded
    assert env.gk.votes_of(env.ctx(), pid) == [] and env.gk.deposits_of(env.ctx(), pid) == []
    env.invariants_hold()
    outputs = [bank_types.Output(address=a, coins=coins(1)) for a in (BOB, CAROL, DAVE)]
    with pytest.raises(ChainError) as ei:
        env.tx(bank_tx.MsgMultiSend(inputs=[bank_types.Input(address=ALICE, coins=coins(3))], outputs=outputs))
    assert kind_of(ei) is ErrTooManyOutputs


def test_gov_params_change_through_gov_too(env: Env) -> None:
    new = types_pb2.Params()
    new.CopyFrom(env.gk.get_params(env.ctx()))
    new.voting_period_blocks = 5
    pid = env.submit([tx_pb2.MsgUpdateParams(authority=env.authority, module="gov", params=pack_any(new))])
    env.vote(pid, VA, YES)
    assert env.finish(pid).status == S.PROPOSAL_STATUS_PASSED
    pid2 = env.submit([])
    assert env.proposal(pid2).voting_end_height == env.height + 5


def test_no_quorum_rejects_and_refunds(env: Env) -> None:
    pid = env.submit([env.update_bank_params(max_multisend_outputs=2)], deposit=MIN_DEPOSIT // 2)
    env.tx(tx_pb2.MsgDeposit(proposal_id=pid, depositor=BOB, amount=coins(MIN_DEPOSIT // 2)), BOB)
    assert env.proposal(pid).status == S.PROPOSAL_STATUS_VOTING_PERIOD
    supply = env.supply()
    env.vote(pid, VC, YES)  # 100 of 1000 bonded < 33.4%
    env.vote(pid, DAVE, YES)  # no delegations: no power
    p = env.finish(pid)
    assert p.status == S.PROPOSAL_STATUS_REJECTED
    assert p.final_tally_result.yes == "100"
    assert env.balance(ALICE) == env.balance(BOB) == 3 * MIN_DEPOSIT
    assert env.supply() == supply and env.module_balance("gov") == 0
    assert env.bk.get_params(env.ctx()).max_multisend_outputs == 100  # not executed
    env.invariants_hold()


def test_quorum_is_inclusive(env: Env) -> None:
    env.staking.reset()
    env.staking.add_validator(VA, 334)
    env.staking.add_validator(VB, 666)
    pid = env.submit([])
    env.vote(pid, VA, YES)  # exactly 334_000 ppm of bonded tokens
    assert env.finish(pid).status == S.PROPOSAL_STATUS_PASSED


def test_veto_rejects_and_burns_deposits(env: Env) -> None:
    pid = env.submit([env.update_bank_params(max_multisend_outputs=2)], deposit=MIN_DEPOSIT - 1)
    env.tx(tx_pb2.MsgDeposit(proposal_id=pid, depositor=BOB, amount=coins(7)), BOB)
    supply = env.supply()
    env.vote(pid, VA, YES)
    env.vote(pid, VB, VETO)  # 300 of 900 counted = 333_333 ppm < 334_000: not yet a veto
    env.vote(pid, VC, VETO)  # 400 of 1000 counted: vetoed, although yes (600) > 50%
    p = env.finish(pid)
    assert p.status == S.PROPOSAL_STATUS_REJECTED
    assert p.final_tally_result.no_with_veto == "400"
    assert env.supply() == supply - (MIN_DEPOSIT - 1 + 7)  # exactly the deposits
    assert env.balance(ALICE) == 2 * MIN_DEPOSIT + 1 and env.balance(BOB) == 3 * MIN_DEPOSIT - 7
    assert env.module_balance("gov") == 0
    assert env.bk.get_params(env.ctx()).max_multisend_outputs == 100
    env.invariants_hold()


def test_just_below_veto_passes(env: Env) -> None:
    pid = env.submit([])
    env.vote(pid, VA, YES)
    env.vote(pid, VB, VETO)  # 300 / 900 = 333_333 ppm < veto_ppm 334_000
    assert env.finish(pid).status == S.PROPOSAL_STATUS_PASSED


def test_failed_execution_keeps_no_state_and_chain_goes_on(env: Env) -> None:
    env.fund_pool(100)
    # the first message would succeed; the second has invalid params: nothing may stay
    pid = env.submit([env.spend(CAROL, 40), env.update_bank_params(max_multisend_outputs=0)])
    env.vote(pid, VA, YES)
    supply = env.supply()
    p = env.finish(pid)
    assert p.status == S.PROPOSAL_STATUS_FAILED
    assert "message 1" in p.failed_reason and "max_multisend_outputs" in p.failed_reason
    assert env.balance(CAROL) == 0 and env.module_balance("community_pool") == 100
    assert env.bk.get_params(env.ctx()).max_multisend_outputs == 100
    assert env.balance(ALICE) == 3 * MIN_DEPOSIT and env.supply() == supply  # refunded, not burned
    failed = [e for e in env.events if e.type == "proposal_failed"]
    assert len(failed) == 1 and dict(failed[0].attributes)["codespace"] == "tx"
    assert not [e for e in env.events if e.type == "community_pool_spend"]  # branch events dropped
    env.invariants_hold()
    # the chain goes on: a later proposal with a valid spend passes and pays
    pid2 = env.submit([env.spend(CAROL, 40)])
    env.vote(pid2, VA, YES)
    assert env.finish(pid2).status == S.PROPOSAL_STATUS_PASSED
    assert env.balance(CAROL) == 40 and env.module_balance("community_pool") == 60
    assert [e for e in env.events if e.type == "community_pool_spend"]


def test_community_spend_beyond_the_pool_fails(env: Env) -> None:
    env.fund_pool(100)
    pid = env.submit([env.spend(CAROL, 101)])
    env.vote(pid, VA, YES)
    p = env.finish(pid)
    assert p.status == S.PROPOSAL_STATUS_FAILED
    assert ErrInsufficientFunds.description in p.failed_reason
    assert env.balance(CAROL) == 0 and env.module_balance("community_pool") == 100


def test_community_spend_to_a_module_account_fails(env: Env) -> None:
    env.fund_pool(100)
    pid = env.submit([env.spend(env.ak.module_address("bonded_pool"), 10)])
    env.vote(pid, VA, YES)
    assert env.finish(pid).status == S.PROPOSAL_STATUS_FAILED
    assert env.module_balance("community_pool") == 100


def test_proposal_may_not_move_deposits_held_for_others(env: Env) -> None:
    """A bank MsgSend signed by the gov authority passes the signer check but would spend
    other proposals' deposits: execution fails instead."""
    steal = bank_tx.MsgSend(from_address=env.authority, to_address=CAROL, amount=coins(MIN_DEPOSIT // 2))
    pid = env.submit([steal], proposer=BOB)
    env.vote(pid, VA, YES)
    env.run_through(env.proposal(pid).voting_end_height - 5)
    other = env.submit([], deposit=MIN_DEPOSIT // 2)  # still in its deposit period when pid executes
    p = env.finish(pid)
    assert p.status == S.PROPOSAL_STATUS_FAILED and "deposits held" in p.failed_reason
    assert env.balance(CAROL) == 0 and env.module_balance("gov") == MIN_DEPOSIT // 2
    assert env.proposal(other).status == S.PROPOSAL_STATUS_DEPOSIT_PERIOD
    env.invariants_hold()


def test_deposit_period_expiry_deletes_and_refunds(env: Env) -> None:
    pid = env.submit([], deposit=MIN_DEPOSIT // 4)
    env.tx(tx_pb2.MsgDeposit(proposal_id=pid, depositor=BOB, amount=coins(MIN_DEPOSIT // 4)), BOB)
    p = env.proposal(pid)
    assert p.status == S.PROPOSAL_STATUS_DEPOSIT_PERIOD and p.deposit_end_height == env.height + 20
    assert Coins.from_proto(p.total_deposit) == upoly(MIN_DEPOSIT // 2)
    with pytest.raises(ChainError) as ei:
        env.vote(pid, VA, YES)
    assert kind_of(ei) is ErrInactiveProposal
    env.run_through(p.deposit_end_height - 1)
    assert env.gk.get_proposal(env.ctx(), pid) is not None
    env.end_block()
    assert env.gk.get_proposal(env.ctx(), pid) is None
    assert env.balance(ALICE) == env.balance(BOB) == 3 * MIN_DEPOSIT
    assert env.module_balance("gov") == 0 and env.gk.deposits_of(env.ctx(), pid) == []
    assert [e for e in env.events if e.type == "proposal_dropped"]
    with pytest.raises(ChainError) as ei:
        env.tx(tx_pb2.MsgDeposit(proposal_id=pid, depositor=BOB, amount=coins(1)), BOB)
    assert kind_of(ei) is ErrUnknownProposal
    env.invariants_hold()


def test_late_deposit_reaching_min_starts_voting(env: Env) -> None:
    pid = env.submit([], deposit=0)
    env.run_through(env.height + 5)
    env.tx(tx_pb2.MsgDeposit(proposal_id=pid, depositor=BOB, amount=coins(MIN_DEPOSIT)), BOB)
    p = env.proposal(pid)
    assert p.status == S.PROPOSAL_STATUS_VOTING_PERIOD and p.voting_start_height == env.height
    env.run_through(p.deposit_end_height)  # its deposit-queue entry is gone: nothing dropped
    assert env.proposal(pid).status == S.PROPOSAL_STATUS_VOTING_PERIOD
    # deposits are still taken in the voting period, and refunded at the end
    env.tx(tx_pb2.MsgDeposit(proposal_id=pid, depositor=BOB, amount=coins(5)), BOB)
    env.invariants_hold()
    env.finish(pid)
    assert env.balance(BOB) == 3 * MIN_DEPOSIT


def test_deposit_in_an_unknown_denom_is_refused(env: Env) -> None:
    pid = env.submit([], deposit=1)
    with pytest.raises(ChainError) as ei:
        env.tx(tx_pb2.MsgDeposit(proposal_id=pid, depositor=BOB, amount=[coin_pb2.Coin(denom="uabc", amount="1")]))
    assert kind_of(ei) is ErrInvalidDeposit


def test_delegator_vote_moves_exactly_its_tokens(env: Env) -> None:
    env.staking.reset()
    # a slashed validator: 999 tokens for 1000e6 shares, so shares don't map 1:1 to tokens
    va = env.staking.add_validator(VA, 999, shares=1000 * 10**6)
    env.staking.move_shares(VA, DAVE, 333 * 10**6)
    env.staking.add_validator(VB, 1000)
    env.staking.move_shares(VB, DAVE, 10 * 10**6)
    env.staking.add_validator(VC, 500, bonded=False)  # dave's stake here has no power
    env.staking.move_shares(VC, DAVE, 100 * 10**6)
    pid = env.submit([])
    env.vote(pid, VA, YES)
    before = env.gk.tally(env.ctx(), pid)
    assert (before.yes, before.no) == (999, 0)
    env.vote(pid, DAVE, NO)
    after = env.gk.tally(env.ctx(), pid)
    moved = env.staking.tokens_from_shares(va, 333 * 10**6)
    assert moved == 332  # floor(332.667)
    assert (after.yes, after.no) == (999 - moved, moved + 10)  # + dave's 10 tokens with VB (who did not vote)
    assert after.counted == 999 + 10
    # the delegator votes like its validator: the total is unchanged
    env.vote(pid, DAVE, YES)
    assert env.gk.tally(env.ctx(), pid).yes == 999 + 10


def test_operator_vote_covers_its_self_delegation_once(env: Env) -> None:
    pid = env.submit([])
    env.vote(pid, VA, YES)
    t = env.gk.tally(env.ctx(), pid)
    assert (t.yes, t.counted) == (600, 600)


def test_abstain_is_excluded_from_threshold(env: Env) -> None:
    env.staking.reset()
    env.staking.add_validator(VA, 400)
    env.staking.add_validator(VB, 350)
    env.staking.add_validator(VC, 250)
    pid = env.submit([])
    env.vote(pid, VA, ABSTAIN)
    env.vote(pid, VB, YES)  # 350 / (1000 - 400) = 58% >= 50%, though only 35% of all counted
    env.vote(pid, VC, NO)
    p = env.finish(pid)
    assert p.status == S.PROPOSAL_STATUS_PASSED
    assert p.final_tally_result.abstain == "400"


def test_all_abstain_is_rejected_and_refunded(env: Env) -> None:
    pid = env.submit([])
    env.vote(pid, VA, ABSTAIN)
    assert env.finish(pid).status == S.PROPOSAL_STATUS_REJECTED
    assert env.balance(ALICE) == 3 * MIN_DEPOSIT


def test_threshold_is_inclusive_and_ties_pass(env: Env) -> None:
    env.staking.reset()
    env.staking.add_validator(VA, 500)
    env.staking.add_validator(VB, 500)
    pid = env.submit([])
    env.vote(pid, VA, YES)
    env.vote(pid, VB, NO)  # yes exactly 500_000 ppm of non-abstain
    assert env.finish(pid).status == S.PROPOSAL_STATUS_PASSED


def test_revote_replaces(env: Env) -> None:
    pid = env.submit([])
    env.vote(pid, VA, NO)
    env.vote(pid, VA, YES)
    votes = env.gk.votes_of(env.ctx(), pid)
    assert [(v.voter, v.option) for v in votes] == [(VA, YES)]
    t = env.gk.tally(env.ctx(), pid)
    assert (t.yes, t.no) == (600, 0)
    assert env.finish(pid).status == S.PROPOSAL_STATUS_PASSED


def test_vote_checks(env: Env) -> None:
    pid = env.submit([])
    with pytest.raises(ChainError) as ei:
        env.vote(pid, VA, types_pb2.VOTE_OPTION_UNSPECIFIED)
    assert kind_of(ei) is ErrInvalidVote
    with pytest.raises(ChainError) as ei:
        env.vote(pid + 1, VA, YES)
    assert kind_of(ei) is ErrUnknownProposal
    env.finish(pid)
    with pytest.raises(ChainError) as ei:
        env.vote(pid, VA, YES)
    assert kind_of(ei) is ErrInactiveProposal


def test_proposal_messages_must_be_signed_by_the_authority(env: Env) -> None:
    # a bank send from the proposer: its signer is not the gov authority
    send = bank_tx.MsgSend(from_address=ALICE, to_address=BOB, amount=coins(1))
    with pytest.raises(ChainError) as ei:
        env.submit([send])
    assert kind_of(ei) is ErrInvalidAuthority
    wrong = tx_pb2.MsgUpdateParams(authority=ALICE, module="bank", params=env.update_bank_params().params)
    with pytest.raises(ChainError) as ei:
        env.submit([wrong])
    assert kind_of(ei) is ErrInvalidAuthority
    vote = tx_pb2.MsgVote(proposal_id=1, voter=env.authority, option=YES)
    with pytest.raises(ChainError) as ei:
        env.submit([vote])
    assert kind_of(ei) is ErrInvalidProposalMsg
    assert env.balance(ALICE) == 3 * MIN_DEPOSIT and env.gk.next_proposal_id(env.ctx()) == 1  # nothing kept


def test_authority_messages_in_a_user_tx_are_unauthorized(env: Env) -> None:
    env.fund_pool(100)
    # authority = the gov account, signed by alice: the app's signer check refuses it
    with pytest.raises(ChainError) as ei:
        env.tx(env.update_bank_params(max_multisend_outputs=2), signer=ALICE)
    assert kind_of(ei) is ErrUnauthorized
    # authority = alice herself (so the signer check passes): the handler refuses it
    for msg in (
        tx_pb2.MsgUpdateParams(authority=ALICE, module="bank", params=env.update_bank_params().params),
        tx_pb2.MsgCommunityPoolSpend(authority=ALICE, recipient=ALICE, amount=coins(100)),
        tx_pb2.MsgSoftwareUpgrade(authority=ALICE, name="v2", height=100),
    ):
        with pytest.raises(ChainError) as ei:
            env.tx(msg, signer=ALICE)
        assert kind_of(ei) is ErrInvalidAuthority
    assert env.module_balance("community_pool") == 100
    assert env.gk.get_upgrade_plan(env.ctx()) is None


def test_upgrade_plan_halts_at_its_height(env: Env) -> None:
    halt = env.height + 30
    pid = env.submit(
        [tx_pb2.MsgSoftwareUpgrade(authority=env.authority, name="v2", height=halt, info="get it from x")]
    )
    env.vote(pid, VA, YES)
    assert env.finish(pid).status == S.PROPOSAL_STATUS_PASSED
    plan = env.gk.get_upgrade_plan(env.ctx())
    assert plan is not None and (plan.name, plan.height) == ("v2", halt)
    env.run_through(halt - 2)  # BeginBlock of halt-1 ran fine
    assert env.height == halt - 1
    with pytest.raises(UpgradeHalt, match=f"'v2'.*height {halt}"):
        env.end_block()  # EndBlock of halt-1, then BeginBlock of halt
    assert isinstance(UpgradeHalt("x"), RuntimeError)


def test_upgrade_in_the_past_fails(env: Env) -> None:
    pid = env.submit([tx_pb2.MsgSoftwareUpgrade(authority=env.authority, name="v2", height=5)])
    env.vote(pid, VA, YES)
    p = env.finish(pid)
    assert p.status == S.PROPOSAL_STATUS_FAILED and "not after the current height" in p.failed_reason
    assert env.gk.get_upgrade_plan(env.ctx()) is None


def test_unknown_module_params_fail_at_execution(env: Env) -> None:
    msg = tx_pb2.MsgUpdateParams(authority=env.authority, module="nope", params=env.update_bank_params().params)
    pid = env.submit([msg])
    env.vote(pid, VA, YES)
    assert env.finish(pid).status == S.PROPOSAL_STATUS_FAILED


def test_params_of_the_wrong_type_fail_at_execution(env: Env) -> None:
    wrong = tx_pb2.MsgUpdateParams(
        authority=env.authority, module="gov", params=env.update_bank_params().params
    )  # bank Params for gov
    pid = env.submit([wrong])
    env.vote(pid, VA, YES)
    p = env.finish(pid)
    assert p.status == S.PROPOSAL_STATUS_FAILED and "polylink.gov.v1.Params" in p.failed_reason


def test_unbind_keeper_says_so() -> None:
    gk = GovKeeper(AccountKeeper(MODULE_ACCOUNTS), BankKeeper(AccountKeeper(MODULE_ACCOUNTS)), FakeStaking())
    with pytest.raises(RuntimeError, match="bind"):
        _ = gk.router


def test_no_bonded_tokens_means_no_quorum(env: Env) -> None:
    pid = env.submit([])
    env.staking.bonded[:] = []
    assert env.finish(pid).status == S.PROPOSAL_STATUS_REJECTED
    assert env.balance(ALICE) == 3 * MIN_DEPOSIT


def test_invariant_detects_a_stray_gov_balance(env: Env) -> None:
    env.submit([])
    env.invariants_hold()
    env.bk.mint(env.ctx(), "gov", upoly(1))
    ((_name, inv),) = env.gov.invariants()
    msg = inv(env.ctx())
    assert msg is not None and "gov account holds" in msg
