"""slashing per-block work: downtime over a sliding window, double-sign evidence, the public API."""

from __future__ import annotations

import pytest

from chain.core.consensus import Evidence
from chain.core.context import Context
from chain.core.errors import ChainError
from chain.core.events import Event
from chain.modules.slashing.errors import ErrInvalidFraction, ErrNoValidator
from chain.modules.slashing.keeper import FOREVER
from tests.unit.slashing_fake import POWER_REDUCTION, Chain, FakeValidator, cons

# localnet params: window 20, min signed 50% -> at most 10 misses; jail 10 blocks
WINDOW, MAX_MISSED, JAIL = 20, 10, 10
DOWNTIME_PPM, DOUBLE_SIGN_PPM, MAX_AGE = 10_000, 50_000, 10_000


def events(ctx: Context, type_: str) -> list[dict[str, str]]:
    return [dict(e.attributes) for e in ctx.events.events if e.type == type_]


def run(c: Chain, v: FakeValidator, pattern: list[bool], start: int = 1) -> list[Context]:
    """One block per entry of `pattern` (True = signed), from height `start`."""
    return [c.block(start + i, [(v, signed)]) for i, signed in enumerate(pattern)]


def test_signing_info_created_on_first_vote() -> None:
    c = Chain()
    a = c.staking.add("a", 10)
    assert c.k.get_signing_info(c.ctx(5), cons(a)) is None
    c.block(5, [(a, True)])
    info = c.k.get_signing_info(c.ctx(5), cons(a))
    assert info is not None
    assert (info.start_height, info.index_offset, info.missed_blocks_counter) == (5, 1, 0)
    assert info.address == cons(a).hex().upper()


def test_unknown_voter_is_not_tracked() -> None:
    c = Chain()
    a = c.staking.add("a", 10)
    del c.staking.validators[a.operator_address]
    c.block(1, [(a, False)])
    assert c.k.iterate_signing_infos(c.ctx(1)) == []


def test_downtime_slashes_jails_and_resets() -> None:
    c = Chain()
    a = c.staking.add("a", 10)
    # heights 1..9 signed, 10..20 missed: 11 misses, but the window is not yet full
    ctxs = run(c, a, [True] * 9 + [False] * (MAX_MISSED + 1))
    assert c.staking.slashes == [] and not a.jailed
    assert events(ctxs[-1], "liveness") == [
        {"validator": a.operator_address, "missed_blocks": "11", "height": "20"}
    ]
    assert c.k.get_signing_info(c.ctx(20), cons(a)).missed_blocks_counter == 11  # type: ignore[union-attr]
    # height 21: 21 blocks since start 1; slot 0 (signed at height 1) is overwritten, 11 misses remain
    ctx = c.block(21, [(a, True)])
    assert c.staking.slashes == [(cons(a), 21 - 2, 10, DOWNTIME_PPM)]
    assert c.staking.jails == [cons(a)] and a.jailed
    amount = 10 * POWER_REDUCTION * DOWNTIME_PPM // 10**6
    assert int(a.tokens) == 10 * POWER_REDUCTION - amount
    assert events(ctx, "slash") == [
        {
            "validator": a.operator_address,
            "power": "10",
            "reason": "downtime",
            "amount": str(amount),
            "jailed_until": str(21 + JAIL),
        }
    ]
    info = c.k.get_signing_info(c.ctx(21), cons(a))
    assert info is not None
    assert (info.missed_blocks_counter, info.index_offset, info.start_height) == (0, 0, 21)
    assert info.jailed_until_height == 21 + JAIL and not info.tombstoned
    assert c.k.missed_indices(c.ctx(21), cons(a)) == []


def test_jailed_validator_is_not_slashed_again_for_downtime() -> None:
    c = Chain()
    a = c.staking.add("a", 10)
    run(c, a, [False] * 60)
    assert len(c.staking.slashes) == 1  # at height 21; jailed from then on


def test_missing_the_allowed_share_is_not_downtime() -> None:
    c = Chain()
    a = c.staking.add("a", 10)
    # exactly MAX_MISSED misses in every window, forever
    run(c, a, ([False] * MAX_MISSED + [True] * (WINDOW - MAX_MISSED)) * 5)
    assert c.staking.slashes == [] and c.staking.jails == [] and not a.jailed
    info = c.k.get_signing_info(c.ctx(100), cons(a))
    assert info is not None and info.missed_blocks_counter == MAX_MISSED


def test_sliding_window_forgets_old_misses() -> None:
    c = Chain()
    a = c.staking.add("a", 10)
    # 10 misses, then 20 signed blocks push them out of the window, then 10 more misses
    run(c, a, [False] * MAX_MISSED + [True] * WINDOW + [False] * MAX_MISSED)
    info = c.k.get_signing_info(c.ctx(40), cons(a))
    assert info is not None and info.missed_blocks_counter == MAX_MISSED
    assert c.staking.slashes == []
    # one more miss is one too many
    c.block(41, [(a, False)])
    assert len(c.staking.slashes) == 1


def test_votes_of_several_validators_are_independent() -> None:
    c = Chain()
    a, b = c.staking.add("a", 10), c.staking.add("b", 3)
    for h in range(1, 22):
        c.block(h, [(a, True), (b, False)])
    assert c.staking.slashes == [(cons(b), 19, 3, DOWNTIME_PPM)]
    assert b.jailed and not a.jailed


def double_sign(v: FakeValidator, height: int, power: int = 7, kind: str = "duplicate_vote") -> Evidence:
    return Evidence(kind, cons(v), power, height, height * 10**9, 100)


def test_double_sign_slashes_jails_forever_and_tombstones() -> None:
    c = Chain()
    a = c.staking.add("a", 10)
    ctx = c.block(100, evidence=(double_sign(a, 95),))
    assert c.staking.slashes == [(cons(a), 95, 7, DOUBLE_SIGN_PPM)]
    assert c.staking.jails == [cons(a)]
    info = c.k.get_signing_info(c.ctx(100), cons(a))
    assert info is not None and info.tombstoned and info.jailed_until_height == FOREVER
    amount = 7 * POWER_REDUCTION * DOUBLE_SIGN_PPM // 10**6
    assert events(ctx, "slash") == [
        {
            "validator": a.operator_address,
            "power": "7",
            "reason": "double_sign",
            "amount": str(amount),
            "jailed_until": str(FOREVER),
        }
    ]
    # a second piece of evidence (same or another height) does nothing
    ctx = c.block(101, evidence=(double_sign(a, 95), double_sign(a, 99)))
    assert len(c.staking.slashes) == 1 and len(c.staking.jails) == 1
    assert events(ctx, "slash") == []


def test_double_sign_of_a_jailed_validator_slashes_without_jailing_twice() -> None:
    c = Chain()
    a = c.staking.add("a", 10)
    run(c, a, [False] * 21)  # downtime at 21
    c.block(22, evidence=(double_sign(a, 20, kind="light_client_attack"),))
    assert [s[1] for s in c.staking.slashes] == [19, 20]
    assert c.staking.jails == [cons(a)]
    info = c.k.get_signing_info(c.ctx(22), cons(a))
    assert info is not None and info.tombstoned and info.jailed_until_height == FOREVER


def test_evidence_age_limit() -> None:
    c = Chain()
    a, b = c.staking.add("a", 10), c.staking.add("b", 10)
    h = 20_000
    c.block(h, evidence=(double_sign(a, h - MAX_AGE - 1), double_sign(b, h - MAX_AGE)))
    assert c.staking.slashes == [(cons(b), h - MAX_AGE, 7, DOUBLE_SIGN_PPM)]
    assert c.k.get_signing_info(c.ctx(h), cons(a)) is None


def test_evidence_of_unknown_validator_or_kind_is_ignored() -> None:
    c = Chain()
    a = c.staking.add("a", 10)
    gone = c.staking.add("gone", 10)
    del c.staking.validators[gone.operator_address]
    c.block(10, evidence=(double_sign(gone, 9), double_sign(a, 9, kind="unknown")))
    assert c.staking.slashes == [] and c.k.iterate_signing_infos(c.ctx(10)) == []


def test_public_slash_uses_current_height_and_power() -> None:
    c = Chain()
    a = c.staking.add("a", 10)
    ctx = c.ctx(50)
    amount = c.k.slash(ctx, cons(a), 20_000, "tiqe_collusion")
    assert amount == 10 * POWER_REDUCTION * 20_000 // 10**6
    assert c.staking.slashes == [(cons(a), 50, 10, 20_000)]
    assert c.staking.jails == [] and not a.jailed
    assert ctx.events.events == [
        Event.of(
            "slash", validator=a.operator_address, power=10, reason="tiqe_collusion",
            amount=amount, jailed_until=0,
        )
    ]


def test_public_jail_keeps_the_later_release_height() -> None:
    c = Chain()
    a = c.staking.add("a", 10)
    ctx = c.ctx(50)
    c.k.jail(ctx, cons(a), 80, "tiqe")
    assert a.jailed and c.staking.jails == [cons(a)]
    c.k.jail(ctx, cons(a), 70, "tiqe")  # already jailed: staking is not asked again
    assert c.staking.jails == [cons(a)]
    info = c.k.get_signing_info(ctx, cons(a))
    assert info is not None and info.jailed_until_height == 80 and info.start_height == 50
    periods = [dict(e.attributes) for e in ctx.events.events if e.type == "jail_period"]
    assert periods == [{"validator": a.operator_address, "reason": "tiqe", "jailed_until": "80"}] * 2


def test_public_api_errors() -> None:
    c = Chain()
    a = c.staking.add("a", 10)
    with pytest.raises(ChainError) as ei:
        c.k.slash(c.ctx(1), b"\x01" * 20, 1, "x")
    assert ei.value.kind is ErrNoValidator
    with pytest.raises(ChainError) as ei:
        c.k.jail(c.ctx(1), b"\x01" * 20, 5, "x")
    assert ei.value.kind is ErrNoValidator
    with pytest.raises(ChainError) as ei:
        c.k.slash(c.ctx(1), cons(a), 1_000_001, "x")
    assert ei.value.kind is ErrInvalidFraction
    assert c.staking.slashes == []


def test_window_param_change_restarts_every_window() -> None:
    c = Chain()
    a = c.staking.add("a", 10)
    run(c, a, [False] * 5)
    p = c.k.get_params(c.ctx(5))
    p.min_signed_ppm = 0  # same window: nothing restarts
    c.k.set_params(c.ctx(6), p)
    assert c.k.get_signing_info(c.ctx(6), cons(a)).missed_blocks_counter == 5  # type: ignore[union-attr]
    p.signed_blocks_window = 8
    c.k.set_params(c.ctx(6), p)
    info = c.k.get_signing_info(c.ctx(6), cons(a))
    assert info is not None and (info.missed_blocks_counter, info.index_offset, info.start_height) == (0, 0, 6)
    assert c.k.missed_indices(c.ctx(6), cons(a)) == []
