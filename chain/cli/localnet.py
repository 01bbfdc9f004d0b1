"""`polylink localnet ...`: run a local multi-validator network on loopback.

    polylink localnet up --home localnet --nodes 4 --accounts 2
    polylink localnet status --home localnet
    polylink localnet stop-node --home localnet --node 2 --app-only --kill
    polylink localnet start-node --home localnet --node 2
    polylink localnet down --home localnet

Node i listens on base+10i (p2p), base+10i+1 (RPC), base+10i+2 (ABCI),
base+10i+3 (gRPC); the base port defaults to 26600. Processes are recorded
in HOME/localnet.json and logs are HOME/node<i>/{app,cometbft}.log.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from chain.localnet import DEFAULT_BASE_PORT, Localnet, LocalnetError
from chain.localnet.net import DEFAULT_NODES, DEFAULT_READY_TIMEOUT


def register(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND")

    def home(s: argparse.ArgumentParser) -> None:
        s.add_argument("--home", type=Path, required=True, help="the localnet's directory")

    s = sub.add_parser(
        "up",
        help="create (if new) and start a localnet; returns once every node is at height 2",
        description="Create a localnet in HOME (cometbft init per node, config.toml, keyring with "
        "val0.. and user0.., one genesis.json) unless HOME already holds one, then start every app "
        "and CometBFT process in the background and wait until all nodes reach height 2. "
        "Creation flags are ignored when HOME already holds a localnet.",
    )
    home(s)
    s.add_argument(
        "--nodes", type=int, default=DEFAULT_NODES, help=f"validators (default {DEFAULT_NODES})"
    )
    s.add_argument(
        "--base-port",
        type=int,
        default=DEFAULT_BASE_PORT,
        help=f"node i uses base+10i .. base+10i+3 (default {DEFAULT_BASE_PORT})",
    )
    s.add_argument(
        "--accounts", type=int, default=0, help="funded user keys user0..userN-1 (default 0)"
    )
    s.add_argument(
        "--timeout-commit", default="200ms", help="CometBFT timeout_commit (default 200ms)"
    )
    s.add_argument("--timeout-propose", default="1s", help="CometBFT timeout_propose (default 1s)")
    s.add_argument("--chain-id", default=None, help="chain id (default: the genesis template's)")
    s.add_argument(
        "--kvstore",
        action="store_true",
        help="run CometBFT's built-in kvstore app instead of PolyLink (benchmark baseline)",
    )
    s.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_READY_TIMEOUT,
        help=f"seconds to wait for height 2 (default {DEFAULT_READY_TIMEOUT:.0f})",
    )
    s.set_defaults(func=cmd_up)

    s = sub.add_parser(
        "status", help="one JSON line per node: node, height, app_hash, rpc, running"
    )
    home(s)
    s.set_defaults(func=cmd_status)

    s = sub.add_parser("down", help="stop every process the localnet started (by recorded PID)")
    home(s)
    s.set_defaults(func=cmd_down)

    s = sub.add_parser("stop-node", help="stop one node's CometBFT and/or app (for crash tests)")
    home(s)
    s.add_argument("--node", type=int, required=True, help="node index")
    only = s.add_mutually_exclusive_group()
    only.add_argument("--app-only", action="store_true", help="stop only the app process")
    only.add_argument("--cometbft-only", action="store_true", help="stop only CometBFT")
    s.add_argument(
        "--kill", action="store_true", help="SIGKILL at once (a crash) instead of SIGTERM"
    )
    s.set_defaults(func=cmd_stop_node)

    s = sub.add_parser("start-node", help="start whatever of one node is not running")
    home(s)
    s.add_argument("--node", type=int, required=True, help="node index")
    s.add_argument(
        "--no-wait", action="store_true", help="return without waiting for its RPC to answer"
    )
    s.add_argument(
        "--timeout", type=float, default=DEFAULT_READY_TIMEOUT, help="seconds to wait for its RPC"
    )
    s.set_defaults(func=cmd_start_node)

    s = sub.add_parser(
        "add-node",
        help="init and start one more node (a full node; `tx staking create-validator` makes it a validator)",
    )
    home(s)
    s.add_argument(
        "--timeout", type=float, default=DEFAULT_READY_TIMEOUT, help="seconds to wait for its RPC"
    )
    s.set_defaults(func=cmd_add_node)


def _fail(msg: str) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return 1


def cmd_up(a: argparse.Namespace) -> int:
    try:
        net = Localnet(
            a.home,
            nodes=a.nodes,
            base_port=a.base_port,
            accounts=a.accounts,
            timeout_commit=a.timeout_commit,
            timeout_propose=a.timeout_propose,
            kvstore=a.kvstore,
            chain_id=a.chain_id,
        )
        if net.created:
            if any(net.pids()):
                return _fail(
                    f"the localnet in {net.home} is already running; `polylink localnet down` first"
                )
            print(
                f"resuming the localnet in {net.home} ({net.nodes} nodes); creation flags ignored"
            )
        net.up(timeout=a.timeout)
    except LocalnetError as e:
        return _fail(str(e))
    app = "kvstore (built into CometBFT)" if net.kvstore else "polylink"
    print(f"localnet {net.chain_id} is up in {net.home}: {net.nodes} nodes, app {app}")
    for i in range(net.nodes):
        if net.kvstore:
            print(f"  node{i}  rpc {net.rpc_url(i)}  log {net.log_path(i, 'cometbft')}")
        else:
            print(
                f"  node{i}  rpc {net.rpc_url(i)}  grpc {net.grpc_addr(i)}"
                f"  logs {net.node_home(i)}/{{app,cometbft}}.log"
            )
    keys = ", ".join(net.validator_keys + net.user_keys)
    print(f"keyring {net.keyring_dir} (funded: {keys})")
    print(f"stop it with: polylink localnet down --home {a.home}")
    return 0


def cmd_status(a: argparse.Namespace) -> int:
    try:
        net = Localnet.load(a.home)
    except LocalnetError as e:
        return _fail(str(e))
    for row in net.status():
        print(json.dumps(row))
    return 0


def cmd_down(a: argparse.Namespace) -> int:
    try:
        net = Localnet.load(a.home)
        pids = net.down()
    except (LocalnetError, RuntimeError) as e:
        return _fail(str(e))
    print(f"stopped {len(pids)} processes" + (f" ({', '.join(map(str, pids))})" if pids else ""))
    return 0


def cmd_stop_node(a: argparse.Namespace) -> int:
    try:
        net = Localnet.load(a.home)
        pids = net.stop_node(a.node, app=not a.cometbft_only, cometbft=not a.app_only, kill=a.kill)
    except (LocalnetError, RuntimeError) as e:
        return _fail(str(e))
    how = "killed" if a.kill else "stopped"
    print(
        f"node{a.node}: {how} {len(pids)} processes"
        + (f" ({', '.join(map(str, pids))})" if pids else "")
    )
    return 0


def cmd_start_node(a: argparse.Namespace) -> int:
    try:
        net = Localnet.load(a.home)
        net.start_node(a.node, wait=not a.no_wait, timeout=a.timeout)
    except LocalnetError as e:
        return _fail(str(e))
    print(f"node{a.node} running: {json.dumps(net.running(a.node))}")
    return 0


def cmd_add_node(a: argparse.Namespace) -> int:
    try:
        net = Localnet.load(a.home)
        i = net.add_full_node(timeout=a.timeout)
    except LocalnetError as e:
        return _fail(str(e))
    key = net.node_home(i) / "config" / "priv_validator_key.json"
    print(json.dumps({"node": i, "rpc": net.rpc_url(i), "grpc": net.grpc_addr(i), "validator_key": str(key)}))
    return 0
