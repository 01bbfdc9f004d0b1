"""`polylink tx staking ...` and `polylink query staking ...`."""

from __future__ import annotations

import argparse
import base64
import binascii
import json
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from google.protobuf.message import Message
from polylink.base.v1 import coin_pb2
from polylink.base.v1 import query_pb2 as base_q
from polylink.staking.v1 import query_pb2 as q
from polylink.staking.v1 import tx_pb2, types_pb2

from chain.cli.client_args import emit, fail, resolve_address, run, show_help
from chain.cli.query import _flags, _query
from chain.cli.tx import _sign_and_send, _tx_flags
from chain.client.client import Client
from chain.core.address import from_bech32
from chain.core.codec import to_json
from chain.core.coins import BOND_DENOM, Coins, ErrInvalidCoins
from chain.core.errors import ErrInvalidPubKey

M = TypeVar("M", bound=Message)
R = TypeVar("R")

PATH = "/polylink.staking.v1.Query/"
PUBKEY_LEN = 32
STATUSES = {"bonded": types_pb2.BONDED, "unbonding": types_pb2.UNBONDING, "unbonded": types_pb2.UNBONDED}


# --- message constructors (checked before anything is signed) ------------------
def bond_coin(text: str) -> coin_pb2.Coin:
    """'100upoly' or '100' -> a positive Coin of the bond denom."""
    coins = Coins.parse(text + BOND_DENOM if text.isdigit() else text)
    if [d for d, _ in coins.items()] != [BOND_DENOM]:
        raise ErrInvalidCoins.wrap(f"amount must be a positive amount of {BOND_DENOM}, got {text!r}")
    return coin_pb2.Coin(denom=BOND_DENOM, amount=str(coins.amount_of(BOND_DENOM)))


def read_pubkey_file(path: str) -> bytes:
    """The ed25519 public key in a CometBFT priv_validator_key.json (pub_key.value, base64)."""
    try:
        data = json.loads(Path(path).read_text())
        value = data["pub_key"]["value"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ErrInvalidPubKey.wrap(f"cannot read pub_key.value from {path}: {e}") from None
    return decode_pubkey(str(value), path)


def decode_pubkey(text: str, what: str = "--pubkey") -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ErrInvalidPubKey.wrap(f"{what}: not base64") from None
    if len(raw) != PUBKEY_LEN:
        raise ErrInvalidPubKey.wrap(f"{what}: an ed25519 key is {PUBKEY_LEN} bytes, got {len(raw)}")
    return raw


def msg_create_validator(
    operator: str, pubkey: bytes, self_bond: str, moniker: str, commission_ppm: int, min_self_delegation: int
) -> tx_pb2.MsgCreateValidator:
    from_bech32(operator)
    return tx_pb2.MsgCreateValidator(
        operator_address=operator,
        consensus_pubkey=pubkey,
        self_bond=bond_coin(self_bond),
        commission_ppm=commission_ppm,
        moniker=moniker,
        min_self_delegation=str(min_self_delegation),
    )


# --- tx ------------------------------------------------------------------------
def register_tx(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    g = sub.add_parser(
        "staking",
        help="staking transactions (create-validator, delegate, undelegate, ...)",
        description="Create and edit validators; delegate, undelegate and redelegate stake.",
    )
    show_help(g)
    s = g.add_subparsers(dest="tx_cmd", metavar="COMMAND")

    p = s.add_parser(
        "create-validator",
        help="create a validator operated by a key, with its self-bond",
        description="Sign a MsgCreateValidator with FROM_KEY (the operator, which pays AMOUNT as the "
        "self-bond). The consensus key is a node's CometBFT key: give --pubkey-file "
        "NODE_HOME/config/priv_validator_key.json or --pubkey BASE64.",
    )
    p.add_argument("from_key", metavar="FROM_KEY", help="the operator's key in the keyring")
    p.add_argument("amount", metavar="AMOUNT", help="self-bond, e.g. 10000000upoly")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--pubkey-file", metavar="PATH", help="a CometBFT priv_validator_key.json")
    src.add_argument("--pubkey", metavar="BASE64", help="the ed25519 consensus public key, base64")
    p.add_argument("--moniker", required=True, help="the validator's name (1-70 characters)")
    p.add_argument("--commission-ppm", type=int, default=100_000, help="commission in ppm (default 100000 = 10%%)")
    p.add_argument(
        "--min-self-delegation", type=int, default=1, help="upoly the self-delegation must stay at (default 1)"
    )
    _tx_flags(p)
    p.set_defaults(func=run(cmd_create_validator))

    p = s.add_parser(
        "edit-validator",
        help="change a validator's moniker or commission",
        description="Sign a MsgEditValidator with FROM_KEY (the operator). A commission rise is capped "
        "per edit by the max_commission_change_ppm param.",
    )
    p.add_argument("from_key", metavar="FROM_KEY", help="the operator's key in the keyring")
    p.add_argument("--moniker", default="", help="new moniker (default: unchanged)")
    p.add_argument("--commission-ppm", type=int, default=None, help="new commission in ppm (default: unchanged)")
    _tx_flags(p)
    p.set_defaults(func=run(cmd_edit_validator))

    for name, help_, desc in (
        ("delegate", "bond tokens to a validator", "Sign a MsgDelegate: bond AMOUNT of FROM_KEY to VALIDATOR."),
        (
            "undelegate",
            "unbond tokens from a validator",
            "Sign a MsgUndelegate: unbond AMOUNT of FROM_KEY's delegation to VALIDATOR; the tokens "
            "come back after the unbonding_blocks param.",
        ),
    ):
        p = s.add_parser(name, help=help_, description=desc)
        p.add_argument("from_key", metavar="FROM_KEY", help="the delegator's key in the keyring")
        p.add_argument("validator", metavar="VALIDATOR", help="the validator's operator address (poly1...)")
        p.add_argument("amount", metavar="AMOUNT", help="e.g. 1000000upoly")
        _tx_flags(p)
        p.set_defaults(func=run(cmd_delegate if name == "delegate" else cmd_undelegate))

    p = s.add_parser(
        "redelegate",
        help="move a delegation from one validator to another",
        description="Sign a MsgRedelegate: move AMOUNT of FROM_KEY's delegation from SRC to DST at once.",
    )
    p.add_argument("from_key", metavar="FROM_KEY", help="the delegator's key in the keyring")
    p.add_argument("src", metavar="SRC", help="source validator's operator address")
    p.add_argument("dst", metavar="DST", help="destination validator's operator address")
    p.add_argument("amount", metavar="AMOUNT", help="e.g. 1000000upoly")
    _tx_flags(p)
    p.set_defaults(func=run(cmd_redelegate))


def cmd_create_validator(args: argparse.Namespace) -> int:
    pubkey = read_pubkey_file(args.pubkey_file) if args.pubkey_file else decode_pubkey(args.pubkey)
    return _sign_and_send(
        args,
        lambda op: [
            msg_create_validator(
                op, pubkey, args.amount, args.moniker, args.commission_ppm, args.min_self_delegation
            )
        ],
    )


def cmd_edit_validator(args: argparse.Namespace) -> int:
    if not args.moniker and args.commission_ppm is None:
        return fail("nothing to change: give --moniker and/or --commission-ppm")
    return _sign_and_send(
        args,
        lambda op: [
            tx_pb2.MsgEditValidator(
                operator_address=op,
                moniker=args.moniker,
                commission_ppm=args.commission_ppm or 0,
                commission_set=args.commission_ppm is not None,
            )
        ],
    )


def cmd_delegate(args: argparse.Namespace) -> int:
    from_bech32(args.validator)
    amount = bond_coin(args.amount)
    return _sign_and_send(
        args, lambda d: [tx_pb2.MsgDelegate(delegator_address=d, validator_address=args.validator, amount=amount)]
    )


def cmd_undelegate(args: argparse.Namespace) -> int:
    from_bech32(args.validator)
    amount = bond_coin(args.amount)
    return _sign_and_send(
        args, lambda d: [tx_pb2.MsgUndelegate(delegator_address=d, validator_address=args.validator, amount=amount)]
    )


def cmd_redelegate(args: argparse.Namespace) -> int:
    from_bech32(args.src)
    from_bech32(args.dst)
    amount = bond_coin(args.amount)
    return _sign_and_send(
        args,
        lambda d: [
            tx_pb2.MsgRedelegate(
                delegator_address=d, src_validator_address=args.src, dst_validator_address=args.dst, amount=amount
            )
        ],
    )


# --- query ---------------------------------------------------------------------
def register_query(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    g = sub.add_parser(
        "staking",
        help="validators, delegations, unbondings, staking params and pools",
        description="Query the staking module.",
    )
    show_help(g)
    s = g.add_subparsers(dest="query_cmd", metavar="COMMAND")

    def cmd(name: str, help_: str, handler: Callable[[argparse.Namespace], int], *positional: str) -> None:
        p = s.add_parser(name, help=help_, description=help_[0].upper() + help_[1:] + ".")
        for a in positional:
            p.add_argument(a.lower(), metavar=a, help="bech32 address (poly1...) or key name")
        if name == "validators":
            p.add_argument("--status", choices=sorted(STATUSES), help="only validators with this status")
        _flags(p)
        p.set_defaults(func=run(handler))

    cmd("validator", "one validator", cmd_validator, "VALIDATOR")
    cmd("validators", "every validator (or those with --status)", cmd_validators)
    cmd("delegation", "one delegation and what it is worth", cmd_delegation, "DELEGATOR", "VALIDATOR")
    cmd("delegations", "a delegator's delegations", cmd_delegations, "DELEGATOR")
    cmd("validator-delegations", "the delegations to a validator", cmd_validator_delegations, "VALIDATOR")
    cmd("unbonding", "a delegator's unbonding delegations", cmd_unbonding, "DELEGATOR")
    cmd("redelegations", "a delegator's maturing redelegations", cmd_redelegations, "DELEGATOR")
    cmd("params", "the staking params", cmd_params)
    cmd("pool", "bonded and not-bonded tokens", cmd_pool)


def _one(args: argparse.Namespace, method: str, req: Message, resp_cls: type[M]) -> M:
    return _query(args, lambda c: c.query(PATH + method, req, resp_cls))


def _all_pages(
    args: argparse.Namespace,
    method: str,
    make: Callable[[base_q.PageRequest], Message],
    resp_cls: type[M],
    page: Callable[[M], tuple[list[R], bytes]],
) -> list[R]:
    """Every item of a paginated query: `page(response)` gives (items, next_key)."""

    async def go(c: Client) -> list[R]:
        out: list[R] = []
        key = b""
        while True:
            items, key = page(await c.query(PATH + method, make(base_q.PageRequest(key=key)), resp_cls))
            out.extend(items)
            if not key:
                return out

    return _query(args, go)


def _validator_text(v: types_pb2.Validator) -> str:
    status = types_pb2.BondStatus.Name(v.status)
    return (
        f"{v.operator_address}  {v.moniker}  {status}{' JAILED' if v.jailed else ''}  tokens={v.tokens}  "
        f"commission={v.commission_ppm}ppm"
    )


def _delegation_text(d: q.DelegationResponse) -> str:
    return f"{d.delegation.delegator} -> {d.delegation.validator}: {d.balance.amount}{d.balance.denom} " \
        f"({d.delegation.shares} shares)"


def cmd_validator(args: argparse.Namespace) -> int:
    addr = resolve_address(args.validator, args.home)
    v = _one(args, "Validator", q.QueryValidatorRequest(validator_address=addr), q.QueryValidatorResponse).validator
    obj = to_json(v)
    emit(args, {"validator": obj}, "\n".join(f"{k}: {val}" for k, val in obj.items()))
    return 0


def cmd_validators(args: argparse.Namespace) -> int:
    status = STATUSES[args.status] if args.status else types_pb2.UNSPECIFIED
    vals = _all_pages(
        args, "Validators", lambda p: q.QueryValidatorsRequest(status=status, pagination=p),
        q.QueryValidatorsResponse, lambda r: (list(r.validators), r.pagination.next_key),
    )
    emit(args, {"validators": [to_json(v) for v in vals]},
         "\n".join(_validator_text(v) for v in vals) or "(no validators)")
    return 0


def cmd_delegation(args: argparse.Namespace) -> int:
    req = q.QueryDelegationRequest(
        delegator_address=resolve_address(args.delegator, args.home),
        validator_address=resolve_address(args.validator, args.home),
    )
    d = _one(args, "Delegation", req, q.QueryDelegationResponse).delegation_response
    emit(args, {"delegation_response": to_json(d)}, _delegation_text(d))
    return 0


def _emit_delegations(args: argparse.Namespace, ds: list[q.DelegationResponse]) -> int:
    emit(args, {"delegation_responses": [to_json(d) for d in ds]},
         "\n".join(_delegation_text(d) for d in ds) or "(no delegations)")
    return 0


def cmd_delegations(args: argparse.Namespace) -> int:
    addr = resolve_address(args.delegator, args.home)
    ds = _all_pages(
        args,
        "DelegatorDelegations",
        lambda p: q.QueryDelegatorDelegationsRequest(delegator_address=addr, pagination=p),
        q.QueryDelegatorDelegationsResponse, lambda r: (list(r.delegation_responses), r.pagination.next_key),
    )
    return _emit_delegations(args, ds)


def cmd_validator_delegations(args: argparse.Namespace) -> int:
    addr = resolve_address(args.validator, args.home)
    ds = _all_pages(
        args,
        "ValidatorDelegations",
        lambda p: q.QueryValidatorDelegationsRequest(validator_address=addr, pagination=p),
        q.QueryValidatorDelegationsResponse, lambda r: (list(r.delegation_responses), r.pagination.next_key),
    )
    return _emit_delegations(args, ds)


def cmd_unbonding(args: argparse.Namespace) -> int:
    addr = resolve_address(args.delegator, args.home)
    us = _all_pages(
        args,
        "UnbondingDelegations",
        lambda p: q.QueryUnbondingDelegationsRequest(delegator_address=addr, pagination=p),
        q.QueryUnbondingDelegationsResponse, lambda r: (list(r.unbonding_delegations), r.pagination.next_key),
    )
    text = "\n".join(
        f"{u.validator}: {e.balance}{BOND_DENOM} (of {e.initial_balance}) at height {e.completion_height}"
        for u in us for e in u.entries
    )
    emit(args, {"unbonding_delegations": [to_json(u) for u in us]}, text or "(no unbonding delegations)")
    return 0


def cmd_redelegations(args: argparse.Namespace) -> int:
    addr = resolve_address(args.delegator, args.home)
    rs = _all_pages(
        args, "Redelegations", lambda p: q.QueryRedelegationsRequest(delegator_address=addr, pagination=p),
        q.QueryRedelegationsResponse, lambda r: (list(r.redelegations), r.pagination.next_key),
    )
    text = "\n".join(
        f"{r.src_validator} -> {r.dst_validator}: {e.initial_balance}{BOND_DENOM} slashable until height "
        f"{e.completion_height}"
        for r in rs for e in r.entries
    )
    emit(args, {"redelegations": [to_json(r) for r in rs]}, text or "(no redelegations)")
    return 0


def cmd_params(args: argparse.Namespace) -> int:
    p = _one(args, "Params", q.QueryParamsRequest(), q.QueryParamsResponse).params
    obj = to_json(p)
    emit(args, {"params": obj}, "\n".join(f"{k}: {v}" for k, v in obj.items()))
    return 0


def cmd_pool(args: argparse.Namespace) -> int:
    r = _one(args, "Pool", q.QueryPoolRequest(), q.QueryPoolResponse)
    emit(
        args,
        {"bonded_tokens": r.bonded_tokens, "not_bonded_tokens": r.not_bonded_tokens},
        f"bonded_tokens: {r.bonded_tokens}{BOND_DENOM}\nnot_bonded_tokens: {r.not_bonded_tokens}{BOND_DENOM}",
    )
    return 0
