"""tiqe params: defaults and validation.

The defaults suit a public network; the localnet template shortens the jail
periods (`no_reveal_jail_blocks` 10, `worker_jail_blocks` 20).

Fidelity (the substitution guard) mirrors quality's worker rule: the same
EMA weight (`fidelity_alpha_ppm` = `quality_alpha_ppm`, 0.2) and the same
floor (`min_fidelity_ppm` = `min_quality_ppm`, 0.4) after `min_results`, so a
worker is judged on both numbers over the same horizon; fidelity is a noisier,
text-only signal (FACTS: likelihood under a small model measures imitation),
and an EMA well below the middle of the scale over several results is what
it takes. Serving another model than the one paid for is deliberate fraud,
not decay, so `slash_fraction_substitution_ppm` (10%) is twice
`slash_fraction_degradation_ppm` (5%).
"""

from __future__ import annotations

from polylink.tiqe.v1 import types_pb2

from chain.core.errors import ErrInvalidRequest

PPM = 1_000_000
# Sanity bounds (not in the contract): end_block aggregates without gas metering
# and every rating stores its window, so the work one round causes stays bounded.
MAX_COMMITTEE_SIZE = 100
MAX_RATING_WINDOW = 1000


def default_params() -> types_pb2.Params:
    return types_pb2.Params(
        committee_size=3,
        score_commit_blocks=10,
        score_reveal_blocks=10,
        rating_window=50,
        initial_rating_ppm=500_000,
        min_rating_ppm=50_000,
        slash_fraction_no_reveal_ppm=1_000,
        max_misses=3,
        no_reveal_jail_blocks=100,  # localnet 10
        outlier_ppm=200_000,
        quality_alpha_ppm=200_000,
        pass_ppm=500_000,
        min_results=5,
        min_quality_ppm=400_000,
        worker_jail_blocks=100,  # localnet 20
        slash_fraction_degradation_ppm=50_000,
        quorum_ppm=666_667,
        min_fidelity_ppm=400_000,
        slash_fraction_substitution_ppm=100_000,
        fidelity_alpha_ppm=200_000,
    )


def validate_params(p: types_pb2.Params) -> None:
    if not 1 <= p.committee_size <= MAX_COMMITTEE_SIZE:
        raise ErrInvalidRequest.wrap(f"tiqe.committee_size must be in 1..{MAX_COMMITTEE_SIZE}")
    if not 2 <= p.rating_window <= MAX_RATING_WINDOW:
        # a rating needs two deviations: a window of one would never move it
        raise ErrInvalidRequest.wrap(f"tiqe.rating_window must be in 2..{MAX_RATING_WINDOW}")
    for name in ("score_commit_blocks", "score_reveal_blocks", "max_misses", "no_reveal_jail_blocks",
                 "worker_jail_blocks"):  # fmt: skip
        if getattr(p, name) < 1:
            raise ErrInvalidRequest.wrap(f"tiqe.{name} must be >= 1")
    # a rating of 0 would make a validator's sampling weight 0 for good
    if not 1 <= p.min_rating_ppm <= PPM:
        raise ErrInvalidRequest.wrap(f"tiqe.min_rating_ppm must be in 1..{PPM}")
    if not p.min_rating_ppm <= p.initial_rating_ppm <= PPM:
        raise ErrInvalidRequest.wrap(f"tiqe.initial_rating_ppm must be in min_rating_ppm..{PPM}")
    for name in ("slash_fraction_no_reveal_ppm", "outlier_ppm", "quality_alpha_ppm", "pass_ppm", "min_quality_ppm",
                 "slash_fraction_degradation_ppm", "quorum_ppm", "min_fidelity_ppm",
                 "slash_fraction_substitution_ppm", "fidelity_alpha_ppm"):  # fmt: skip
        if getattr(p, name) > PPM:
            raise ErrInvalidRequest.wrap(f"tiqe.{name} must be <= {PPM}")
