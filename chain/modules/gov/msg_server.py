"""One handler per gov message: stateless check, stateful check, writes, event, response.

MsgSubmitProposal, MsgDeposit and MsgVote come from users. MsgUpdateParams,
MsgCommunityPoolSpend and MsgSoftwareUpgrade are signed by the gov authority:
they only ever run as the messages of a passed proposal. A user tx carrying
one fails: either its signer is not the message's authority (the app's signer
check), or its authority is not gov's (ErrInvalidAuthority here).
"""

from __future__ import annotations

from polylink.gov.v1 import tx_pb2, types_pb2

from chain.core.address import from_bech32
from chain.core.codec import decode, type_url
from chain.core.coins import Coins
from chain.core.context import Context
from chain.core.events import Event
from chain.modules.gov.errors import (
    ErrInvalidAuthority,
    ErrInvalidDeposit,
    ErrInvalidProposalContent,
    ErrInvalidProposalMsg,
    ErrInvalidRecipient,
    ErrInvalidUpgrade,
    ErrInvalidVote,
    ErrUnknownParamsModule,
    ErrUnknownProposal,
)
from chain.modules.gov.keeper import COMMUNITY_POOL, VOTE_OPTIONS, GovKeeper

MAX_TITLE_LEN = 140
MAX_SUMMARY_LEN = 10_000
MAX_PROPOSAL_MSGS = 16
MAX_UPGRADE_NAME_LEN = 140


# --- stateless checks -------------------------------------------------------
def validate_submit_proposal(msg: tx_pb2.MsgSubmitProposal) -> None:
    from_bech32(msg.proposer)
    if not msg.title.strip() or len(msg.title) > MAX_TITLE_LEN:
        raise ErrInvalidProposalContent.wrap(f"title must be 1..{MAX_TITLE_LEN} characters")
    if len(msg.summary) > MAX_SUMMARY_LEN:
        raise ErrInvalidProposalContent.wrap(f"summary must be at most {MAX_SUMMARY_LEN} characters")
    if len(msg.messages) > MAX_PROPOSAL_MSGS:
        raise ErrInvalidProposalMsg.wrap(f"{len(msg.messages)} messages > {MAX_PROPOSAL_MSGS}")
    Coins.from_proto(msg.initial_deposit)  # may be empty


def _check_proposal_id(pid: int) -> None:
    if pid == 0:
        raise ErrUnknownProposal.wrap("proposal id 0")


def validate_deposit(msg: tx_pb2.MsgDeposit) -> None:
    _check_proposal_id(msg.proposal_id)
    from_bech32(msg.depositor)
    if Coins.from_proto(msg.amount).is_zero():
        raise ErrInvalidDeposit.wrap("amount is empty")


def validate_vote(msg: tx_pb2.MsgVote) -> None:
    _check_proposal_id(msg.proposal_id)
    from_bech32(msg.voter)
    if msg.option not in VOTE_OPTIONS:
        raise ErrInvalidVote.wrap(f"option {msg.option}")


def validate_update_params(msg: tx_pb2.MsgUpdateParams) -> None:
    from_bech32(msg.authority)
    if not msg.module:
        raise ErrUnknownParamsModule.wrap("module is empty")
    if not msg.HasField("params") or not msg.params.type_url:
        raise ErrInvalidProposalMsg.wrap("MsgUpdateParams.params is empty")


def validate_community_pool_spend(msg: tx_pb2.MsgCommunityPoolSpend) -> None:
    from_bech32(msg.authority)
    from_bech32(msg.recipient)
    if Coins.from_proto(msg.amount).is_zero():
        raise ErrInvalidProposalMsg.wrap("MsgCommunityPoolSpend.amount is empty")


def validate_software_upgrade(msg: tx_pb2.MsgSoftwareUpgrade) -> None:
    from_bech32(msg.authority)
    if not msg.name.strip() or len(msg.name) > MAX_UPGRADE_NAME_LEN:
        raise ErrInvalidUpgrade.wrap(f"name must be 1..{MAX_UPGRADE_NAME_LEN} characters")
    if msg.height == 0:
        raise ErrInvalidUpgrade.wrap("height is 0")
    if len(msg.info) > MAX_SUMMARY_LEN:
        raise ErrInvalidUpgrade.wrap(f"info must be at most {MAX_SUMMARY_LEN} characters")


class MsgServer:
    def __init__(self, k: GovKeeper) -> None:
        self.k = k

    def _check_authority(self, authority: str) -> None:
        if authority != self.k.authority:
            raise ErrInvalidAuthority.wrap(f"expected {self.k.authority}, got {authority}")

    # --- user messages -----------------------------------------------------
    def submit_proposal(self, ctx: Context, msg: tx_pb2.MsgSubmitProposal) -> tx_pb2.MsgSubmitProposalResponse:
        pid = self.k.submit_proposal(
            ctx, msg.proposer, list(msg.messages), Coins.from_proto(msg.initial_deposit), msg.title, msg.summary
        )
        ctx.emit(Event.of("message", module="gov", action="submit_proposal", sender=msg.proposer))
        return tx_pb2.MsgSubmitProposalResponse(proposal_id=pid)

    def deposit(self, ctx: Context, msg: tx_pb2.MsgDeposit) -> tx_pb2.MsgDepositResponse:
        self.k.add_deposit(ctx, msg.proposal_id, msg.depositor, Coins.from_proto(msg.amount))
        ctx.emit(Event.of("message", module="gov", action="deposit", sender=msg.depositor))
        return tx_pb2.MsgDepositResponse()

    def vote(self, ctx: Context, msg: tx_pb2.MsgVote) -> tx_pb2.MsgVoteResponse:
        self.k.vote(ctx, msg.proposal_id, msg.voter, msg.option)
        ctx.emit(Event.of("message", module="gov", action="vote", sender=msg.voter))
        return tx_pb2.MsgVoteResponse()

    # --- proposal messages (signer: the gov authority) ----------------------
    def update_params(self, ctx: Context, msg: tx_pb2.MsgUpdateParams) -> tx_pb2.MsgUpdateParamsResponse:
        self._check_authority(msg.authority)
        spec = self.k.params_specs.get(msg.module)
        if spec is None:
            raise ErrUnknownParamsModule.wrap(msg.module)
        if msg.params.type_url != type_url(spec.cls):
            want = type_url(spec.cls)
            raise ErrInvalidProposalMsg.wrap(f"params of {msg.module} are {want}, got {msg.params.type_url}")
        spec.set(ctx, decode(spec.cls, msg.params.value, msg.params.type_url))  # validates; raises on bad params
        ctx.emit(Event.of("update_params", module=msg.module))
        return tx_pb2.MsgUpdateParamsResponse()

    def community_pool_spend(
        self, ctx: Context, msg: tx_pb2.MsgCommunityPoolSpend
    ) -> tx_pb2.MsgCommunityPoolSpendResponse:
        self._check_authority(msg.authority)
        if self.k.ak.is_module_address(msg.recipient):
            raise ErrInvalidRecipient.wrap(f"{msg.recipient} is a module account")
        amount = Coins.from_proto(msg.amount)
        self.k.bk.send_from_module(ctx, COMMUNITY_POOL, msg.recipient, amount)  # insufficient funds -> error
        ctx.emit(Event.of("community_pool_spend", recipient=msg.recipient, amount=amount))
        return tx_pb2.MsgCommunityPoolSpendResponse()

    def software_upgrade(self, ctx: Context, msg: tx_pb2.MsgSoftwareUpgrade) -> tx_pb2.MsgSoftwareUpgradeResponse:
        self._check_authority(msg.authority)
        if msg.height <= ctx.height:
            raise ErrInvalidUpgrade.wrap(f"height {msg.height} is not after the current height {ctx.height}")
        self.k.set_upgrade_plan(ctx, types_pb2.UpgradePlan(name=msg.name, height=msg.height, info=msg.info))
        ctx.emit(Event.of("software_upgrade", name=msg.name, height=msg.height))
        return tx_pb2.MsgSoftwareUpgradeResponse()
