"""Helpers for e2e tests: heights, app hashes per height across nodes."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

from chain.client.rpc import CometRPC
from chain.localnet.net import Localnet


async def _header_app_hashes(url: str, lo: int, hi: int) -> dict[int, str]:
    """App hash after block h, read from block h+1's header, for h in [lo, hi]."""
    out: dict[int, str] = {}
    async with CometRPC(url, timeout=10.0) as rpc:
        for h in range(lo, hi + 1):
            b = await rpc.call("block", {"height": str(h + 1)})
            out[h] = b["block"]["header"]["app_hash"]
    return out


def app_hashes(net: Localnet, lo: int, hi: int, nodes: list[int] | None = None) -> dict[int, dict[int, str]]:
    """{node: {height: app_hash}} for every node (each must have block hi+1)."""
    idx = list(range(net.nodes)) if nodes is None else nodes

    async def run() -> list[dict[int, str]]:
        return list(await asyncio.gather(*(_header_app_hashes(net.rpc_url(i), lo, hi) for i in idx)))

    return dict(zip(idx, asyncio.run(run()), strict=True))


def validator_powers(net: Localnet, node: int) -> dict[str, int]:
    """{validator address (hex): voting power} from node's /validators (the set CometBFT runs now)."""

    async def run() -> list[dict[str, Any]]:
        async with CometRPC(net.rpc_url(node), timeout=10.0) as rpc:
            return await rpc.validators()

    return {str(v["address"]): int(v["voting_power"]) for v in asyncio.run(run())}


def node_validator_address(net: Localnet, i: int) -> str:
    """Node i's validator address (hex, as /validators gives it), from its priv_validator_key.json."""
    key = json.loads((net.node_home(i) / "config" / "priv_validator_key.json").read_text())
    return str(key["address"])


def assert_live_power_above_two_thirds(net: Localnet, down: list[int], ask: int) -> dict[str, int]:
    """Before a fault: the validators left running once ``down`` stop keep more than 2/3 of the power
    (CometBFT needs more than 2/3 to commit); returns the powers read from node ``ask``."""
    powers = validator_powers(net, ask)
    total = sum(powers.values())
    lost = sum(powers.get(node_validator_address(net, i), 0) for i in down)
    assert 3 * (total - lost) > 2 * total, (
        f"stopping nodes {down} leaves {total - lost}/{total} of the power, not more than 2/3: {powers}"
    )
    return powers


def round_state(net: Localnet, node: int) -> dict[str, Any]:
    """node's CometBFT ``dump_consensus_state`` round_state: height, round, step and each round's vote sets."""

    async def run() -> dict[str, Any]:
        async with CometRPC(net.rpc_url(node), timeout=10.0) as rpc:
            r: dict[str, Any] = await rpc.call("dump_consensus_state", {})
            return r

    return dict(asyncio.run(run())["round_state"])


_TALLY = re.compile(r"(\d+)/(\d+) = [0-9.]+$")


def vote_tallies(rs: dict[str, Any]) -> list[tuple[int, str, int, int]]:
    """(round, "prevotes"|"precommits", power voted, total power) for every vote set of a round_state
    (CometBFT prints each as ``BA{3:xx_} 20/30 = 0.67``)."""
    out: list[tuple[int, str, int, int]] = []
    for v in rs.get("votes", []):
        for kind in ("prevotes", "precommits"):
            m = _TALLY.search(str(v.get(f"{kind}_bit_array", "")))
            if m:
                out.append((int(v.get("round", 0)), kind, int(m.group(1)), int(m.group(2))))
    return out


def consensus_summary(net: Localnet, node: int) -> str:
    """One line of node's consensus state: height/round/step and every round's prevote and precommit tallies."""
    try:
        rs = round_state(net, node)
    except Exception as e:  # diagnostics only: never hide the failure being diagnosed
        return f"node{node}: no consensus state ({e})"
    votes = "; ".join(f"r{r} {k} {n}/{t}" for r, k, n, t in vote_tallies(rs))
    return f"node{node}: height {rs.get('height')} round {rs.get('round')} step {rs.get('step')} votes: {votes}"


def unjail(net: Localnet, i: int, timeout: float = 150.0, via: int = 0) -> None:
    """Send node i's validator's MsgUnjail through node ``via`` until it executes, retrying while CheckTx refuses it
    (its jail period still runs); TimeoutError with the last refusal after ``timeout`` seconds."""
    from polylink.slashing.v1 import tx_pb2 as slashing_tx

    from chain.client.errors import TxRejectedError
    from chain.client.sync import SyncClient

    kr = net.keyring()
    op = net.validator_keys[i]
    msg = slashing_tx.MsgUnjail(validator_address=kr.show(op).address)
    deadline = time.monotonic() + timeout
    with SyncClient(net.rpc_url(via), keyring=kr) as c:
        while True:
            try:
                r = c.send_and_wait([msg], op, gas=400_000, timeout=60)
                if r.code == 0:
                    return
                why = r.log
            except TxRejectedError as e:  # still in its jail period
                why = str(e)
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not unjail node{i}'s validator: {why}")
            time.sleep(1.0)


def unjail_every_validator(net: Localnet, timeout: float = 150.0) -> list[int]:
    """Unjail each node's validator that downtime jailed (retrying while its jail period runs), then wait until
    CometBFT runs all of them again; returns the nodes unjailed. For fault tests that run back to back on one
    network: each fault's claim is about a healthy set."""
    from polylink.staking.v1 import query_pb2 as staking_q

    from chain.client.sync import SyncClient

    kr = net.keyring()
    deadline = time.monotonic() + timeout
    with SyncClient(net.rpc_url(0), keyring=kr) as c:
        jailed = [
            i for i, op in enumerate(net.validator_keys)
            if c.query("/polylink.staking.v1.Query/Validator",
                       staking_q.QueryValidatorRequest(validator_address=kr.show(op).address),
                       staking_q.QueryValidatorResponse).validator.jailed
        ]
    for i in jailed:
        unjail(net, i, timeout=max(1.0, deadline - time.monotonic()))
    want = {node_validator_address(net, i) for i in range(len(net.validator_keys))}
    while not want <= set(validator_powers(net, 0)):
        if time.monotonic() > deadline:
            raise TimeoutError(f"CometBFT does not run every validator again: {validator_powers(net, 0)}")
        time.sleep(0.3)
    return jailed


def heights(net: Localnet) -> list[int]:
    return [s["height"] or 0 for s in net.status()]


def wait_all_at(net: Localnet, height: int, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while min(heights(net)) < height:
        if time.monotonic() > deadline:
            live = [i for i in range(net.nodes) if all(net.running(i).values())]
            try:
                powers: object = validator_powers(net, live[0]) if live else {}
            except Exception as e:  # diagnostics only
                powers = f"unreadable ({e})"
            state = "\n  ".join(consensus_summary(net, i) for i in live)
            raise TimeoutError(
                f"nodes did not all reach height {height}: {heights(net)}\n  /validators: {powers}\n  {state}"
            )
        time.sleep(0.2)


def assert_same_app_hash_every_height(net: Localnet, upto: int) -> int:
    """Every node reports the same app hash at every height 1..upto; returns heights checked."""
    wait_all_at(net, upto + 1)
    table = app_hashes(net, 1, upto)
    for h in range(1, upto + 1):
        seen = {node: hashes[h] for node, hashes in table.items()}
        assert len(set(seen.values())) == 1, f"app hash differs at height {h}: {seen}"
    return upto
