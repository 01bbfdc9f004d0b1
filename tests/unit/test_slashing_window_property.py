"""Property: the liveness window against a plain model.

The model keeps every vote since the window last restarted; the counter must
equal the misses among the last `window` of them (so it never exceeds the
window), equal the set bits of the stored bitmap, and downtime must fire
exactly when the model says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from chain.modules.slashing.invariants import missed_blocks
from chain.modules.slashing.params import max_missed
from tests.unit.slashing_fake import Chain, FakeValidator, cons

# per validator per block: "sign", "miss", "absent" (not in the commit) or "unjail" (a MsgUnjail's effect)


@st.composite
def schedules(draw: st.DrawFn) -> list[tuple[str, str]]:
    """Blocks of actions; how often validators miss varies per example, so downtime is common."""
    misses = draw(st.integers(0, 6))
    action = st.sampled_from(["sign"] * 2 + ["miss"] * misses + ["absent", "unjail"])
    n = draw(st.integers(1, 60))
    return draw(st.lists(st.tuples(action, action), min_size=n, max_size=n))


@dataclass
class Model:
    start: int | None = None
    votes: list[bool] = field(default_factory=list)  # missed? since the last restart
    slashes: int = 0


@settings(max_examples=200, deadline=None)
@given(
    window=st.integers(1, 12),
    # hypothesis favours small integers; a ppm near 0 allows every miss, so mix in larger ones
    min_signed_ppm=st.sampled_from([250_000, 500_000, 900_000, 1_000_000]) | st.integers(0, 1_000_000),
    blocks=schedules(),
)
def test_window_counter_matches_model(window: int, min_signed_ppm: int, blocks: list[tuple[str, str]]) -> None:
    c = Chain(signed_blocks_window=window, min_signed_ppm=min_signed_ppm)
    params = c.k.get_params(c.ctx(0))
    allowed = max_missed(params)
    vals: list[FakeValidator] = [c.staking.add("a", 10), c.staking.add("b", 4)]
    models = [Model(), Model()]
    check = missed_blocks(c.k)
    for h, actions in enumerate(blocks, start=1):
        votes: list[tuple[FakeValidator, bool]] = []
        for v, m, act in zip(vals, models, actions, strict=True):
            if act == "unjail":
                if v.jailed:
                    c.k.unjail(c.ctx(h), v)
                    m.votes, m.start = [], h
                continue
            if act == "absent":
                continue
            votes.append((v, act == "sign"))
            if m.start is None:
                m.start = h
            m.votes.append(act == "miss")
            if h - m.start >= window and sum(m.votes[-window:]) > allowed and not v.jailed:
                m.votes, m.start = [], h
                m.slashes += 1
        c.block(h, votes)
        ctx = c.ctx(h)
        for v, m in zip(vals, models, strict=True):
            info = c.k.get_signing_info(ctx, cons(v))
            if m.start is None:
                assert info is None
                continue
            assert info is not None
            bits = c.k.missed_indices(ctx, cons(v))
            assert info.missed_blocks_counter == sum(m.votes[-window:]) == len(bits) <= window
            assert all(0 <= i < window for i in bits)
            assert info.start_height == m.start and info.index_offset == len(m.votes)
        assert [sum(1 for s in c.staking.slashes if s[0] == cons(v)) for v in vals] == [m.slashes for m in models]
        assert check(ctx) is None
