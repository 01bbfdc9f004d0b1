"""Liveness at the 2/3 boundary on the real localnet (SAFETY C2): CometBFT needs MORE than 2/3 of the power.

Three equal validators; one stops: the two left hold exactly 2/3, the chain
halts (the votes stop at 2/3 of the power, not more), nothing diverges;
the third comes back and the chain goes on from where it stopped.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from chain.localnet.net import Localnet
from chain.localnet.ports import find_free_base_port
from tests.e2e.chainutil import (
    assert_same_app_hash_every_height,
    consensus_summary,
    heights,
    node_validator_address,
    round_state,
    validator_powers,
    vote_tallies,
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
    # the evidence, from the live nodes' consensus state at the height they are stuck at: no vote set of any round
    # holds more than 2/3 of the power, and the live nodes' votes add up to exactly 2/3 (20/30). Which step they
    # are stuck in depends on when the kill landed: if node 2's prevote was already out, the prevotes are 30/30
    # and the precommits stop at 20/30 (with exactly 2/3 CometBFT schedules no precommit timeout, so the round
    # stays); if not, the prevotes stop at 20/30
    for i in live:
        rs = round_state(net, i)
        assert int(rs["height"]) == stuck + 1, (i, rs["height"], rs["round"], rs["step"])
        tallies = vote_tallies(rs)
        assert all(t == total for _, _, _, t in tallies), tallies
        assert not any(kind == "precommits" and 3 * n > 2 * total for _, kind, n, _ in tallies), tallies
        assert any(n == left for _, _, n, _ in tallies), consensus_summary(net, i)
    # the node returns: the chain goes on, and every node agrees on every height
    net.start_node(2)
    wait_all_at(net, stuck + 3, timeout=90)
    assert_same_app_hash_every_height(net, stuck + 2)
