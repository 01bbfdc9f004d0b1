"""Money on the real module wiring (tests/unit/tiqe_env.py: `Modules` of the app), under random
single and swarm requests, random committee scores (some below pass_ppm), unscored rounds, block
emission and idle blocks. After every step:

- every app invariant holds (rewards/supply: initial supply + minted - burned == total supply;
  rewards/emission; inference/escrow: the escrow account == the open requests' escrow, swarm
  tickets included; registry/bond-pool == the workers' bonds; staking's bonded pool; bank supply);
- no account balance is negative and the supply identity holds from the queries' point of view;
- a closed request holds no escrow, and every ticket of a closed request has an outcome.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from chain.core.coins import BOND_DENOM
from tests.unit.tiqe_env import Env

CLOSED = (4, 5)  # COMPLETED, FAILED
SCORING = 6


class RewardsMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.e = Env(workers=("w0", "w1", "w2", "w3"), rewards={"block_reward": "1003"})
        self.requests: list[int] = []

    @rule(redundancy=st.sampled_from([1, 2, 3]), tokens=st.integers(min_value=1, max_value=100))
    def request_answered(self, redundancy: int, tokens: int) -> None:
        self.requests.append(self.e.answer(redundancy=redundancy, tokens=tokens))

    @rule(data=st.data())
    def score_one(self, data: st.DataObject) -> None:
        """A committee scores one result waiting for it: each member reveals its own score."""
        open_results = [
            x
            for rid in self.requests
            if self.e.request(rid).status == SCORING
            for x in self.e.result_ids(rid)
            if self.e.round(x).phase == 1 and not any(m.commitment for m in self.e.round(x).members)
        ]
        if not open_results:
            return
        res = data.draw(st.sampled_from(open_results))
        members = self.e.committee(res)
        scores = {v: data.draw(st.integers(min_value=0, max_value=1_000_000)) for v in members}
        self.e.score(res, scores)

    @rule(blocks=st.integers(min_value=1, max_value=12))
    def idle(self, blocks: int) -> None:
        self.e.advance(blocks)

    @invariant()
    def money_is_accounted(self) -> None:
        e = self.e
        assert e.invariants() == []
        q = e.q()
        bank = e.m.bank
        for _addr, coins in bank.iterate_balances(q):
            assert all(a >= 0 for _, a in coins.items())
        initial = e.m.rewards.get_initial_supply(q)
        minted = int(e.m.rewards.get_totals(q).minted)
        assert initial + minted - bank.get_burned(q, BOND_DENOM) == bank.get_supply(q, BOND_DENOM)
        for rid in self.requests:
            r = e.request(rid)
            if r.status in CLOSED:
                assert r.escrow == "0"
                assert all(a.ticket_outcome for a in r.assignments if int(a.ticket or "0"))


TestRewardsMachine = RewardsMachine.TestCase
TestRewardsMachine.settings = settings(
    max_examples=25, stateful_step_count=20, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
