"""tiqe invariants: the indexes are exactly what the open rounds imply (so every open round has
its deadline entry); ratings stay in [min_rating_ppm, 10^6] with at most rating_window
deviations; committees are distinct validators, never the worker; every open round's result
exists and still waits for its verdict; every quality and fidelity (members' and rounds') is ppm."""

from __future__ import annotations

from chain.app.module import Invariant
from chain.core.context import Context
from chain.modules.tiqe.aggregate import PPM
from chain.modules.tiqe.keeper import OPEN_PHASES, TiqeKeeper, index_keys_of


def indexes_consistent(k: TiqeKeeper) -> Invariant:
    """DEADLINE and MEMBER hold exactly the entries the open rounds imply."""

    def check(ctx: Context) -> str | None:
        want: set[bytes] = set()
        for rd in k.iterate_rounds(ctx):
            want.update(index_keys_of(rd))
        have = set(k.index_entries(ctx))
        missing, stray = sorted(want - have), sorted(have - want)
        if missing or stray:
            return f"index entries missing {[m.hex() for m in missing[:5]]}, stray {[s.hex() for s in stray[:5]]}"
        return None

    return check


def ratings_in_bounds(k: TiqeKeeper) -> Invariant:
    def check(ctx: Context) -> str | None:
        p = k.get_params(ctx)
        for r in k.iterate_ratings(ctx):
            if not p.min_rating_ppm <= r.rating_ppm <= PPM:
                return f"rating of {r.validator} is {r.rating_ppm}, outside [{p.min_rating_ppm}, {PPM}]"
            if len(r.deviations) > p.rating_window:
                return f"{r.validator} keeps {len(r.deviations)} deviations, rating_window is {p.rating_window}"
        return None

    return check


def committees_distinct(k: TiqeKeeper) -> Invariant:
    def check(ctx: Context) -> str | None:
        for rd in k.iterate_rounds(ctx):
            members = [m.validator for m in rd.members]
            if len(set(members)) != len(members):
                return f"round {rd.result_id}: a validator sits twice on the committee"
            if rd.worker in members:
                return f"round {rd.result_id}: the worker {rd.worker} sits on its own committee"
        return None

    return check


def scores_in_bounds(k: TiqeKeeper) -> Invariant:
    """Both numbers of every revealed score and of every verdict lie in 0..10^6."""

    def check(ctx: Context) -> str | None:
        for rd in k.iterate_rounds(ctx):
            if rd.quality_ppm > PPM or rd.fidelity_ppm > PPM:
                return f"round {rd.result_id}: quality {rd.quality_ppm}, fidelity {rd.fidelity_ppm} beyond {PPM}"
            for m in rd.members:
                if m.quality_ppm > PPM or m.fidelity_ppm > PPM:
                    return (
                        f"round {rd.result_id}, member {m.validator}: quality {m.quality_ppm}, "
                        f"fidelity {m.fidelity_ppm} beyond {PPM}"
                    )
        return None

    return check


def open_rounds_await_results(k: TiqeKeeper) -> Invariant:
    """Each open round's result exists in inference and has no verdict yet."""

    def check(ctx: Context) -> str | None:
        for rd in k.iterate_rounds(ctx):
            if rd.phase not in OPEN_PHASES:
                continue
            res = k.inference.get_result(ctx, rd.result_id)
            if res is None:
                return f"open round {rd.result_id} has no result"
            if res.scored or res.passed:
                return f"open round {rd.result_id}: its result already has a verdict"
        return None

    return check
