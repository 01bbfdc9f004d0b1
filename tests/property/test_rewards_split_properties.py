"""The fee split of SPEC 3.8 (chain/modules/rewards/split.py): exact in integers for any input."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chain.modules.rewards.split import PPM, divide, split_fee

fees = st.integers(min_value=0, max_value=10**24)
ppm = st.integers(min_value=0, max_value=PPM)
earners = st.dictionaries(st.text(min_size=1, max_size=4), st.integers(min_value=1, max_value=10**12), max_size=8)


@given(fees, ppm, ppm, ppm, st.booleans(), earners)
def test_every_upoly_of_the_fee_lands_in_exactly_one_place(
    fee: int, ws: int, vs: int, royalty: int, passed: bool, who: dict[str, int]
) -> None:
    if ws + vs > PPM:
        ws, vs = ws // 2, vs // 2
    s = split_fee(
        fee, worker_share_ppm=ws, validator_share_ppm=vs, royalty_ppm=royalty, passed=passed, earners=list(who.items())
    )
    assert s.total == fee
    assert min(s.worker, s.provider, s.community, s.refund, *s.validators.values(), 0) >= 0
    worker_share = fee * ws // PPM
    if passed:
        assert (s.worker + s.provider, s.refund) == (worker_share, 0)
        assert s.provider == worker_share * royalty // PPM
    else:
        assert (s.worker, s.provider, s.refund) == (0, 0, worker_share)
    committee = fee * vs // PPM
    assert sum(s.validators.values()) <= committee
    # rounding leaves less than one upoly per earner (all of it without earners): to the community pool
    if who:
        assert committee - sum(s.validators.values()) < len(who)
    else:
        assert s.validators == {}
    assert s.community == fee - worker_share - sum(s.validators.values())
    assert set(s.validators) <= set(who)


@given(st.integers(min_value=0, max_value=10**18), earners)
def test_divide_is_proportional_and_rounds_down(amount: int, who: dict[str, int]) -> None:
    parts = divide(amount, list(who.items()))
    total = sum(who.values())
    for k, w in who.items():
        assert parts.get(k, 0) == (amount * w // total if total else 0)
    assert sum(parts.values()) <= amount


def test_no_earner_sends_the_committee_share_to_the_pool() -> None:
    s = split_fee(1000, worker_share_ppm=700_000, validator_share_ppm=200_000, royalty_ppm=100_000,
                  passed=True, earners=[])  # fmt: skip
    assert (s.worker, s.provider, s.validators, s.community, s.refund) == (630, 70, {}, 300, 0)
