"""`polylink tx gov ...` and `polylink query gov ...`: proposals, deposits, votes.

    polylink tx gov submit-proposal --title T --summary S --deposit 10000000upoly \\
        --param-change bank '{"max_multisend_outputs": 50}' alice
    polylink tx gov submit-proposal --title T --summary S --community-spend poly1... 100upoly alice
    polylink tx gov submit-proposal --title T --summary S --upgrade v2 1000 alice
    polylink tx gov deposit 1 5000000upoly bob
    polylink tx gov vote 1 yes alice
    polylink query gov proposal 1 | proposals [--status voting] | votes 1 | deposits 1 | tally 1
    polylink query gov params | upgrade-plan

Proposal messages are signed by the gov authority, the `gov` module
account's address; the CLI fills it in. A `--param-change` merges the JSON
over the module's current params (queried from the node), so fields not named
keep their on-chain values; the module validates the result when the proposal
executes.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import importlib
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message
from polylink.base.v1 import query_pb2 as base_q
from polylink.gov.v1 import query_pb2 as gov_q
from polylink.gov.v1 import tx_pb2 as gov_tx
from polylink.gov.v1 import types_pb2 as gov_types

from chain.cli.client_args import add_home, add_node, add_output, emit, resolve_address, run, show_help
from chain.cli.tx import _sign_and_send, _tx_flags
from chain.client.client import Client
from chain.client.msgs import coin_list, coins_of
from chain.core.address import from_bech32, module_address
from chain.core.codec import pack_any, to_json
from chain.core.coins import Coins
from chain.core.errors import ErrInvalidRequest

T = TypeVar("T")
QUERY = "/polylink.gov.v1.Query/"
OPTIONS = {
    "yes": gov_types.VOTE_OPTION_YES,
    "no": gov_types.VOTE_OPTION_NO,
    "no_with_veto": gov_types.VOTE_OPTION_NO_WITH_VETO,
    "abstain": gov_types.VOTE_OPTION_ABSTAIN,
}
STATUSES = {
    "deposit": gov_types.PROPOSAL_STATUS_DEPOSIT_PERIOD,
    "voting": gov_types.PROPOSAL_STATUS_VOTING_PERIOD,
    "passed": gov_types.PROPOSAL_STATUS_PASSED,
    "rejected": gov_types.PROPOSAL_STATUS_REJECTED,
    "failed": gov_types.PROPOSAL_STATUS_FAILED,
}


def gov_authority() -> str:
    """The signer of every proposal message (same derivation as the chain's module accounts)."""
    return module_address("gov")


# --- tx ------------------------------------------------------------------------
def register_tx(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    gov = sub.add_parser(
        "gov",
        help="governance transactions (submit-proposal, deposit, vote)",
        description="Submit proposals, deposit on them and vote.",
    )
    show_help(gov)
    gsub = gov.add_subparsers(dest="tx_cmd", metavar="COMMAND")

    p = gsub.add_parser(
        "submit-proposal",
        help="submit a proposal (param change, community-pool spend, upgrade, or text)",
        description="Sign a MsgSubmitProposal with key FROM_KEY. With no --param-change, --community-spend "
        "or --upgrade it is a text proposal. Its messages run, signed by the gov authority, if it passes.",
    )
    p.add_argument("--title", required=True, help="proposal title (at most 140 characters)")
    p.add_argument("--summary", default="", help="proposal summary")
    p.add_argument("--deposit", metavar="AMOUNT", help="initial deposit, e.g. 10000000upoly (default none)")
    p.add_argument(
        "--param-change",
        nargs=2,
        action="append",
        default=[],
        metavar=("MODULE", "JSON_PARAMS"),
        help="change MODULE's params: JSON merged over the current params (repeatable)",
    )
    p.add_argument(
        "--community-spend",
        nargs=2,
        action="append",
        default=[],
        metavar=("RECIPIENT", "AMOUNT"),
        help="pay AMOUNT from the community pool to RECIPIENT (repeatable)",
    )
    p.add_argument(
        "--upgrade", nargs=2, metavar=("NAME", "HEIGHT"), help="schedule software upgrade NAME: halt at HEIGHT"
    )
    p.add_argument("--upgrade-info", default="", help="upgrade info (e.g. where to get the binary)")
    p.add_argument("from_key", metavar="FROM_KEY", help="name of the proposer's key in the keyring")
    _tx_flags(p)
    p.set_defaults(func=run(cmd_submit_proposal))

    p = gsub.add_parser(
        "deposit",
        help="add to a proposal's deposit",
        description="Sign a MsgDeposit of AMOUNT on proposal ID with key FROM_KEY.",
    )
    p.add_argument("proposal_id", metavar="ID", type=int, help="proposal id")
    p.add_argument("amount", metavar="AMOUNT", help="e.g. 5000000upoly")
    p.add_argument("from_key", metavar="FROM_KEY", help="name of the depositor's key in the keyring")
    _tx_flags(p)
    p.set_defaults(func=run(cmd_deposit))

    p = gsub.add_parser(
        "vote",
        help="vote on a proposal in its voting period (a new vote replaces the old)",
        description="Sign a MsgVote on proposal ID with key FROM_KEY. A delegator's own vote overrides "
        "its validator's for its share of the stake.",
    )
    p.add_argument("proposal_id", metavar="ID", type=int, help="proposal id")
    p.add_argument("option", metavar="OPTION", choices=sorted(OPTIONS), help="|".join(OPTIONS))
    p.add_argument("from_key", metavar="FROM_KEY", help="name of the voter's key in the keyring")
    _tx_flags(p)
    p.set_defaults(func=run(cmd_vote))


def _current_params(args: argparse.Namespace, module: str) -> Message:
    """MODULE's params from the node (its /polylink.<module>.v1.Query/Params)."""
    try:
        q = importlib.import_module(f"polylink.{module}.v1.query_pb2")
    except ModuleNotFoundError:
        raise ErrInvalidRequest.wrap(f"unknown module {module!r} (no polylink.{module}.v1 protos)") from None
    resp = _query(
        args, lambda c: c.query(f"/polylink.{module}.v1.Query/Params", q.QueryParamsRequest(), q.QueryParamsResponse)
    )
    params: Message = resp.params
    return params


def param_change_msg(authority: str, module: str, current: Message, changes: str) -> gov_tx.MsgUpdateParams:
    """MsgUpdateParams with `changes` (a JSON object) merged over `current`."""
    try:
        data = json.loads(changes)
    except json.JSONDecodeError as e:
        raise ErrInvalidRequest.wrap(f"--param-change {module}: not JSON: {e}") from None
    if not isinstance(data, dict):
        raise ErrInvalidRequest.wrap(f"--param-change {module}: JSON_PARAMS must be an object")
    new = type(current)()
    new.CopyFrom(current)
    try:
        json_format.ParseDict(data, new, ignore_unknown_fields=False)
    except json_format.ParseError as e:
        raise ErrInvalidRequest.wrap(f"--param-change {module}: {e}") from None
    return gov_tx.MsgUpdateParams(authority=authority, module=module, params=pack_any(new))


def community_spend_msg(authority: str, recipient: str, amount: str) -> gov_tx.MsgCommunityPoolSpend:
    from_bech32(recipient)
    return gov_tx.MsgCommunityPoolSpend(authority=authority, recipient=recipient, amount=coin_list(coins_of(amount)))


def upgrade_msg(authority: str, name: str, height: str, info: str) -> gov_tx.MsgSoftwareUpgrade:
    if not height.isdigit() or int(height) == 0:
        raise ErrInvalidRequest.wrap(f"upgrade height {height!r} must be a positive integer")
    return gov_tx.MsgSoftwareUpgrade(authority=authority, name=name, height=int(height), info=info)


def submit_proposal_msg(
    proposer: str, messages: Sequence[Message], deposit: str | None, title: str, summary: str
) -> gov_tx.MsgSubmitProposal:
    from_bech32(proposer)
    initial = coins_of(deposit) if deposit else Coins()
    return gov_tx.MsgSubmitProposal(
        proposer=proposer,
        messages=[pack_any(m) for m in messages],
        initial_deposit=coin_list(initial),
        title=title,
        summary=summary,
    )


def cmd_submit_proposal(args: argparse.Namespace) -> int:
    authority = gov_authority()
    msgs: list[Message] = []
    for module, changes in args.param_change:
        msgs.append(param_change_msg(authority, module, _current_params(args, module), changes))
    for recipient, amount in args.community_spend:
        msgs.append(community_spend_msg(authority, recipient, amount))
    if args.upgrade:
        msgs.append(upgrade_msg(authority, args.upgrade[0], args.upgrade[1], args.upgrade_info))
    return _sign_and_send(
        args, lambda sender: [submit_proposal_msg(sender, msgs, args.deposit, args.title, args.summary)]
    )


def cmd_deposit(args: argparse.Namespace) -> int:
    amount = coin_list(coins_of(args.amount))
    return _sign_and_send(
        args, lambda sender: [gov_tx.MsgDeposit(proposal_id=args.proposal_id, depositor=sender, amount=amount)]
    )


def cmd_vote(args: argparse.Namespace) -> int:
    option = OPTIONS[args.option]
    return _sign_and_send(
        args, lambda sender: [gov_tx.MsgVote(proposal_id=args.proposal_id, voter=sender, option=option)]
    )


# --- query ---------------------------------------------------------------------
def register_query(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    gov = sub.add_parser(
        "gov", help="proposals, votes, deposits, tallies, params", description="Query the gov module."
    )
    show_help(gov)
    gsub = gov.add_subparsers(dest="query_cmd", metavar="COMMAND")

    def with_id(name: str, help_: str, func: Callable[[argparse.Namespace], int]) -> None:
        p = gsub.add_parser(name, help=help_, description=help_)
        p.add_argument("proposal_id", metavar="ID", type=int, help="proposal id")
        _flags(p)
        p.set_defaults(func=run(func))

    with_id("proposal", "one proposal", cmd_proposal)
    p = gsub.add_parser("proposals", help="every proposal, by id", description="Every proposal, by id.")
    p.add_argument("--status", choices=sorted(STATUSES), help="only proposals with this status")
    _flags(p)
    p.set_defaults(func=run(cmd_proposals))
    with_id("votes", "the votes on a proposal in its voting period", cmd_votes)
    with_id("deposits", "the deposits on an open proposal", cmd_deposits)
    with_id("tally", "the tally so far (voting period) or the final tally", cmd_tally)
    p = gsub.add_parser(
        "vote", help="one voter's vote on a proposal", description="The vote of VOTER on proposal ID."
    )
    p.add_argument("proposal_id", metavar="ID", type=int, help="proposal id")
    p.add_argument("voter", metavar="VOTER", help="bech32 address (poly1...) or key name")
    _flags(p, home=True)
    p.set_defaults(func=run(cmd_vote_query))
    p = gsub.add_parser("params", help="gov params", description="The gov module's params.")
    _flags(p)
    p.set_defaults(func=run(cmd_params))
    p = gsub.add_parser(
        "upgrade-plan", help="the scheduled software upgrade, if any", description="The scheduled upgrade plan."
    )
    _flags(p)
    p.set_defaults(func=run(cmd_upgrade_plan))


def _flags(p: argparse.ArgumentParser, home: bool = False) -> None:
    add_node(p)
    if home:
        add_home(p)
    add_output(p)


def _query(args: argparse.Namespace, q: Callable[[Client], Awaitable[T]]) -> T:
    async def go() -> T:
        async with Client(args.node) as c:
            return await q(c)

    return asyncio.run(go())


def _any_json(a: Any) -> dict[str, object]:
    """An Any as JSON with its fields when this client knows the type, else its raw bytes."""
    try:
        return json_format.MessageToDict(a, preserving_proto_field_name=True)
    except (TypeError, KeyError, json_format.Error):
        return {"@type": a.type_url, "value": base64.b64encode(a.value).decode()}


def proposal_json(p: gov_types.Proposal) -> dict[str, object]:
    messages = list(p.messages)
    bare = gov_types.Proposal()
    bare.CopyFrom(p)
    del bare.messages[:]
    obj = to_json(bare)
    obj["messages"] = [_any_json(m) for m in messages]
    return obj


def _lines(obj: dict[str, object]) -> str:
    return "\n".join(
        f"{k}: {v if isinstance(v, str | int) else json.dumps(v)}" for k, v in obj.items() if v not in ("", None, [])
    )


def cmd_proposal(args: argparse.Namespace) -> int:
    r = _query(
        args,
        lambda c: c.query(
            QUERY + "Proposal", gov_q.QueryProposalRequest(proposal_id=args.proposal_id), gov_q.QueryProposalResponse
        ),
    )
    obj = proposal_json(r.proposal)
    emit(args, {"proposal": obj}, _lines(obj))
    return 0


async def _all_pages(
    fetch: Callable[[bytes], Awaitable[tuple[list[T], bytes]]],
) -> list[T]:
    out: list[T] = []
    key = b""
    while True:
        items, key = await fetch(key)
        out.extend(items)
        if not key:
            return out


def cmd_proposals(args: argparse.Namespace) -> int:
    status = STATUSES[args.status] if args.status else gov_types.PROPOSAL_STATUS_UNSPECIFIED

    async def fetch(c: Client, key: bytes) -> tuple[list[gov_types.Proposal], bytes]:
        req = gov_q.QueryProposalsRequest(status=status, pagination=base_q.PageRequest(key=key))
        r = await c.query(QUERY + "Proposals", req, gov_q.QueryProposalsResponse)
        return list(r.proposals), r.pagination.next_key

    props = _query(args, lambda c: _all_pages(lambda k: fetch(c, k)))
    text = "\n".join(
        f"{p.id}\t{gov_types.ProposalStatus.Name(p.status).removeprefix('PROPOSAL_STATUS_')}\t{p.title}" for p in props
    )
    emit(args, {"proposals": [proposal_json(p) for p in props]}, text or "(no proposals)")
    return 0


def cmd_votes(args: argparse.Namespace) -> int:
    async def fetch(c: Client, key: bytes) -> tuple[list[gov_types.Vote], bytes]:
        req = gov_q.QueryVotesRequest(proposal_id=args.proposal_id, pagination=base_q.PageRequest(key=key))
        r = await c.query(QUERY + "Votes", req, gov_q.QueryVotesResponse)
        return list(r.votes), r.pagination.next_key

    votes = _query(args, lambda c: _all_pages(lambda k: fetch(c, k)))
    text = "\n".join(f"{v.voter}\t{_option_name(v.option)}" for v in votes)
    emit(args, {"votes": [to_json(v) for v in votes]}, text or "(no votes)")
    return 0


def cmd_deposits(args: argparse.Namespace) -> int:
    async def fetch(c: Client, key: bytes) -> tuple[list[gov_types.Deposit], bytes]:
        req = gov_q.QueryDepositsRequest(proposal_id=args.proposal_id, pagination=base_q.PageRequest(key=key))
        r = await c.query(QUERY + "Deposits", req, gov_q.QueryDepositsResponse)
        return list(r.deposits), r.pagination.next_key

    deposits = _query(args, lambda c: _all_pages(lambda k: fetch(c, k)))
    text = "\n".join(f"{d.depositor}\t{Coins.from_proto(d.amount)}" for d in deposits)
    emit(args, {"deposits": [to_json(d) for d in deposits]}, text or "(no deposits)")
    return 0


def _option_name(option: int) -> str:
    return gov_types.VoteOption.Name(option).removeprefix("VOTE_OPTION_").lower()


def cmd_vote_query(args: argparse.Namespace) -> int:
    voter = resolve_address(args.voter, args.home)
    r = _query(
        args,
        lambda c: c.query(
            QUERY + "Vote",
            gov_q.QueryVoteRequest(proposal_id=args.proposal_id, voter=voter),
            gov_q.QueryVoteResponse,
        ),
    )
    emit(args, {"vote": to_json(r.vote)}, _option_name(r.vote.option))
    return 0


def cmd_tally(args: argparse.Namespace) -> int:
    r = _query(
        args,
        lambda c: c.query(
            QUERY + "TallyResult",
            gov_q.QueryTallyResultRequest(proposal_id=args.proposal_id),
            gov_q.QueryTallyResultResponse,
        ),
    )
    obj = to_json(r.tally)
    emit(args, {"tally": obj}, _lines(obj))
    return 0


def cmd_params(args: argparse.Namespace) -> int:
    r = _query(args, lambda c: c.query(QUERY + "Params", gov_q.QueryParamsRequest(), gov_q.QueryParamsResponse))
    obj = to_json(r.params)
    emit(args, {"params": obj}, _lines(obj))
    return 0


def cmd_upgrade_plan(args: argparse.Namespace) -> int:
    r = _query(
        args, lambda c: c.query(QUERY + "UpgradePlan", gov_q.QueryUpgradePlanRequest(), gov_q.QueryUpgradePlanResponse)
    )
    if not r.HasField("plan"):
        emit(args, {"plan": None}, "(no upgrade scheduled)")
        return 0
    obj = to_json(r.plan)
    emit(args, {"plan": obj}, _lines(obj))
    return 0
