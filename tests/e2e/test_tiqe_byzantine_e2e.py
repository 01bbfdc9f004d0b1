"""Byzantine TIQE scorers on the real localnet, each behaviour on a fresh chain.

4 validators of equal stake; val3's scorer is the attacker (10 of 40 voting
power, < 1/3 of the stake), the other three score honestly with the real
pipeline (SmolLM2 + MiniLM); real workers answer real prompts. Each
behaviour (always 0, always 10^6, random) gets a chain of its own: on one
shared chain the earlier attackers' ratings would already be ruined, and a
later attacker, still rated as the honest scorer it was, would outweigh them
(power x rating) on some committees: then it no longer holds < 1/3 of the
committee's weight, which is the premise of the claim. Checked, on every
result: the final quality stays within `outlier_ppm` of what the honest
validators alone give (their weighted median; any score between the lower
and upper median when their weight splits evenly), and afterwards the
attacker's rating is below every honest validator's.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from polylink.tiqe.v1 import types_pb2 as tiqe_t

from chain.client.sync import SyncClient
from chain.localnet.net import Localnet
from tests.e2e.test_tiqe_e2e import (
    DEGRADED,
    MODEL,
    PROMPTS,
    addr,
    honest_median_range,
    make_net,
    prepare_chain,
    quorum_reached,
    rating,
    scored_rounds,
    tiqe_params,
)

pytestmark = pytest.mark.e2e

ATTACKER = "val3"
BEHAVIOURS = ("zero", "max", "random")


@pytest.fixture(params=BEHAVIOURS)
def attacked(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Localnet, SyncClient, str]]:
    behaviour: str = request.param
    net = make_net(tmp_path / behaviour)
    if behaviour == "max":
        # the garbling worker must keep answering until the attacker sat on two of its rounds:
        # jailing it (tests/e2e/test_tiqe_e2e.py's subject) could come first, after min_results
        net.set_genesis_params("tiqe", min_results="1000")
    try:
        net.up()
        with SyncClient(net.rpc_url(0), keyring=net.keyring()) as c:
            # always 10^6 agrees with good answers: the garbling worker shows it on bad ones too
            prepare_chain(net, c, degraded=behaviour == "max", byzantine={ATTACKER: behaviour})
            yield net, c, behaviour
    finally:
        net.down()
        assert list(net.pids()) == []


def sat_on(r: tiqe_t.Round, attacker: str) -> bool:
    return r.scored and attacker in {m.validator for m in r.members if m.revealed}


def rounds_until_attacked(
    c: SyncClient, net: Localnet, model: str, prompts: list[str], attacker: str, *, least: int, need: int
) -> list[tiqe_t.Round]:
    """Send prompts one after the other: at least `least` of them, then on until the attacker sat
    on `need` scored committees (committees are drawn by power x rating: a caught attacker is
    drawn less and less) or the prompts run out."""
    out: list[tiqe_t.Round] = []
    for i, prompt in enumerate(prompts):
        out += scored_rounds(c, net, model, [prompt])
        if i + 1 >= least and sum(sat_on(r, attacker) for r in out) >= need:
            break
    return out


def test_byzantine_scorer_cannot_move_the_final_quality_and_loses_rating(
    attacked: tuple[Localnet, SyncClient, str],
) -> None:
    net, c, behaviour = attacked
    attacker = addr(net, ATTACKER)
    p = tiqe_params(c)
    if behaviour == "max":
        # always 10^6 agrees with good answers: the garbling worker's answers show it up. Garbled
        # rounds first: a rating moves from a validator's second deviation on, and one of about 10^6
        # then drops it to min_rating, after which it sits on few committees (about 1 in 12). Had it
        # first sat on a good answer's round (a deviation near 0), its first garbled round would already
        # be the second deviation, and a second garbled round would be left to that chance.
        rounds = rounds_until_attacked(c, net, DEGRADED, PROMPTS[3:], attacker, least=2, need=2)
        assert sum(sat_on(r, attacker) for r in rounds) >= 2, "the attacker sat on < 2 garbled rounds"
        rounds += scored_rounds(c, net, MODEL, PROMPTS[:3])
    else:
        rounds = rounds_until_attacked(c, net, MODEL, PROMPTS, attacker, least=4, need=2)
    # a round short of the quorum (a member missed its reveal) is final unscored: it judges nobody
    for r in rounds:
        if not r.scored:
            assert not quorum_reached(r, p.quorum_ppm), r
    attacked_rounds = [r for r in rounds if sat_on(r, attacker)]
    # two deviations at least: a rating moves from the second one on
    assert len(attacked_rounds) >= 2, f"the attacker sat on {len(attacked_rounds)} of {len(rounds)} scored committees"
    for r in rounds:
        if r.scored:
            lo, hi = honest_median_range(r, attacker)
            assert lo - p.outlier_ppm <= int(r.quality_ppm) <= hi + p.outlier_ppm, r
            lo, hi = honest_median_range(r, attacker, fidelity=True)  # the attacker sends both numbers
            assert lo - p.outlier_ppm <= int(r.fidelity_ppm) <= hi + p.outlier_ppm, r
    honest = [rating(c, addr(net, k)) for k in net.validator_keys if k != ATTACKER]
    assert rating(c, attacker) < min(honest), (rating(c, attacker), honest)
