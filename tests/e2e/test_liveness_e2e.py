"""Liveness at the 2/3 boundary on the real localnet (SAFETY C2): CometBFT needs MORE than 2/3 of the power.

Three equal validators; one stops: the two left hold exactly 2/3, the chain
halts (the prevotes stay at 2/3 of the power, not more), nothing diverges;
the third comes back and the chain goes on from where it stopped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from chain.client.rpc import CometRPC
from chain.localnet.net import Localnet
from chain.localnet.ports import find_free_base_port
from tests.e2e.chainutil import (
    assert_same_app_hash_every_height,
    consensus_summary,
    heights,
    node_validator_address,
    validator_powers,
    wait_all_at,
)

pytestmark = pytest.mark.e2e
# a halt is shown by no block for this long: many times the localnet's block interval (~1 s) and
# propose timeout, so a slow block is not mistaken for a halt
HALT_WINDOW_S = 12.0


@pytest.fixture
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Localnet]:
    n = Localnet(tmp_path_factory.mktemp("two-thirds"), nodes=3, base_port=find_free_base_port(3), accounts=1)
    try:
        n.up()
        yield n
    finally:
        n.down()
        assert list(n.pids()) == []


def _round_state(net: Localnet, i: int) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        async with CometRPC(net.rpc_url(i), timeout=10.0) as rpc:
            r: dict[str, Any] = await rpc.call("dump_consensus_state", {})
            return r

    return dict(asyncio.run(run())["round_state"])


def _max_height(net: Localnet, nodes: list[int]) -> int:
    return max(h for i, h in enumerate(heights(net)) if i in nodes)


def test_the_chain_halts_at_exactly_two_thirds_and_recovers_when_the_node_returns(net: Localnet) -> None:
    powers = validator_powers(net, 0)
    assert len(powers) == 3 and len(set(powers.values())) == 1, powers  # three equal validators
    total = sum(powers.values())
    wait_all_at(net, 3)
    net.stop_node(2, kill=True)
    live = [0, 1]
    left = total - powers[node_validator_address(net, 2)]
    assert 3 * left == 2 * total  # exactly 2/3: not enough
    # a block already in flight may still commit; after that, none for HALT_WINDOW_S
    time.sleep(3.0)
    stuck = _max_height(net, live)
    deadline = time.monotonic() + HALT_WINDOW_S
    while time.monotonic() < deadline:
        assert _max_height(net, live) == stuck, f"a block was made at 2/3 of the power: {heights(net)}"
        time.sleep(0.5)
    # the evidence: the live nodes' prevotes for the height they are stuck at add up to exactly 2/3
    rs = _round_state(net, 0)
    assert int(rs["height"]) == stuck + 1, (rs["height"], rs["round"], rs["step"])
    tallies = [str(v["prevotes_bit_array"]) for v in rs["votes"] if v.get("prevotes_bit_array")]
    assert any(t.endswith(f"{left}/{total} = 0.67") for t in tallies), (tallies, consensus_summary(net, 0))
    assert not any(t.endswith(f"{total}/{total} = 1.00") for t in tallies), tallies
    # the node returns: the chain goes on, and every node agrees on every height
    net.start_node(2)
    wait_all_at(net, stuck + 3, timeout=90)
    assert_same_app_hash_every_height(net, stuck + 2)
