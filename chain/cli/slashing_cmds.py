"""`polylink tx slashing ...` and `polylink query slashing ...`: unjail, signing infos, params."""

from __future__ import annotations

import argparse
import re

from polylink.base.v1 import query_pb2 as base_q
from polylink.slashing.v1 import query_pb2 as slashing_q
from polylink.slashing.v1 import tx_pb2 as slashing_tx
from polylink.slashing.v1 import types_pb2 as slashing_types

from chain.cli.client_args import emit, resolve_address, run, show_help
from chain.cli.query import _flags, _query
from chain.cli.tx import _sign_and_send, _tx_flags
from chain.client.client import Client
from chain.core.address import from_bech32
from chain.core.codec import to_json
from chain.modules.slashing.keeper import FOREVER

PATH_SIGNING_INFO = "/polylink.slashing.v1.Query/SigningInfo"
PATH_SIGNING_INFOS = "/polylink.slashing.v1.Query/SigningInfos"
PATH_PARAMS = "/polylink.slashing.v1.Query/Params"
_CONS_ADDR = re.compile(r"(0x)?[0-9A-Fa-f]{40}")


def msg_unjail(operator: str) -> slashing_tx.MsgUnjail:
    from_bech32(operator)
    return slashing_tx.MsgUnjail(validator_address=operator)


def register_tx(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    g = sub.add_parser(
        "slashing",
        help="slashing transactions (unjail)",
        description="Bring a jailed validator back once its jail period is over.",
    )
    show_help(g)
    gsub = g.add_subparsers(dest="tx_cmd", metavar="COMMAND")
    p = gsub.add_parser(
        "unjail",
        help="unjail the validator operated by a key",
        description="Sign a MsgUnjail for the validator whose operator is key OPERATOR_KEY and broadcast it. "
        "It fails if the validator is not jailed, is tombstoned, is still in its jail period, "
        "or its self-delegation is below its min_self_delegation.",
    )
    p.add_argument(  # `from_key`: the signer, as every tx command names it
        "from_key", metavar="OPERATOR_KEY", help="name of the validator operator's key in the keyring"
    )
    _tx_flags(p)
    p.set_defaults(func=run(cmd_unjail))


def register_query(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    g = sub.add_parser(
        "slashing",
        help="validators' signing infos and slashing params",
        description="Query the slashing module.",
    )
    show_help(g)
    gsub = g.add_subparsers(dest="query_cmd", metavar="COMMAND")
    p = gsub.add_parser(
        "signing-info",
        help="one validator's liveness record",
        description="The signing info of a validator, named by its consensus address (40 hex characters, "
        "as CometBFT prints it) or by its operator (a bech32 address or a keyring key name).",
    )
    p.add_argument("validator", metavar="CONS_ADDR_OR_OPERATOR", help="consensus address (hex) or operator")
    _flags(p)
    p.set_defaults(func=run(cmd_signing_info))
    p = gsub.add_parser(
        "signing-infos",
        help="every validator's liveness record",
        description="The signing info of every validator, by consensus address.",
    )
    _flags(p)
    p.set_defaults(func=run(cmd_signing_infos))
    p = gsub.add_parser(
        "params",
        help="slashing params (window, slash fractions, jail time)",
        description="The slashing module's params.",
    )
    _flags(p)
    p.set_defaults(func=run(cmd_params))


def cmd_unjail(args: argparse.Namespace) -> int:
    return _sign_and_send(args, lambda operator: [msg_unjail(operator)])


def _info_text(info: slashing_types.ValidatorSigningInfo) -> str:
    until = "forever" if info.jailed_until_height == FOREVER else str(info.jailed_until_height)
    return (
        f"address: {info.address}\nstart_height: {info.start_height}\nindex_offset: {info.index_offset}\n"
        f"missed_blocks_counter: {info.missed_blocks_counter}\njailed_until_height: {until}\n"
        f"tombstoned: {str(info.tombstoned).lower()}"
    )


def cmd_signing_info(args: argparse.Namespace) -> int:
    if _CONS_ADDR.fullmatch(args.validator):
        req = slashing_q.QuerySigningInfoRequest(cons_address=args.validator)
    else:
        req = slashing_q.QuerySigningInfoRequest(validator_address=resolve_address(args.validator, args.home))
    r = _query(args, lambda c: c.query(PATH_SIGNING_INFO, req, slashing_q.QuerySigningInfoResponse))
    emit(args, {"val_signing_info": to_json(r.val_signing_info)}, _info_text(r.val_signing_info))
    return 0


async def _all_signing_infos(c: Client) -> list[slashing_types.ValidatorSigningInfo]:
    out: list[slashing_types.ValidatorSigningInfo] = []
    key = b""
    while True:
        r = await c.query(
            PATH_SIGNING_INFOS,
            slashing_q.QuerySigningInfosRequest(pagination=base_q.PageRequest(key=key)),
            slashing_q.QuerySigningInfosResponse,
        )
        out.extend(r.info)
        key = r.pagination.next_key
        if not key:
            return out


def cmd_signing_infos(args: argparse.Namespace) -> int:
    infos = _query(args, _all_signing_infos)
    emit(
        args,
        {"info": [to_json(i) for i in infos]},
        "\n\n".join(_info_text(i) for i in infos) or "(no signing infos)",
    )
    return 0


def cmd_params(args: argparse.Namespace) -> int:
    r = _query(args, lambda c: c.query(PATH_PARAMS, slashing_q.QueryParamsRequest(), slashing_q.QueryParamsResponse))
    obj = to_json(r.params)
    emit(args, {"params": obj}, "\n".join(f"{k}: {v}" for k, v in obj.items()))
    return 0
