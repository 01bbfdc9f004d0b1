"""How one result's fee divides (SPEC 3.8): pure integer arithmetic, no state.

For a result with fee F (the escrow for the tokens it actually produced):

- worker share     W = F x worker_share_ppm // 10^6
- royalty          R = W x royalty_ppm // 10^6       (taken from the worker share)
- committee share  V = F x validator_share_ppm // 10^6
- community pool   C = F - W - V                     (the rest of the fee)

A passed result pays W - R to the worker and R to the model's provider. A
rejected one (quality below pass_ppm) pays neither: W (both parts) goes back
to the requester; the committee and the community pool are paid all the
same, since the scoring was done.

V goes to the committee members that revealed a score within outlier_ppm of
the final quality ("earners"), in proportion to their weight (power x
rating, the weight their score had in the median), each part rounded down.
What rounding leaves, and all of V when nobody earned it, goes to the
community pool: the documented home of every remainder. Every upoly of F
lands in exactly one place: worker + provider + validators + community +
refund == F.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

PPM = 1_000_000


@dataclass(frozen=True)
class FeeSplit:
    """Where a fee goes, in upoly; the parts add up to the fee exactly."""

    worker: int
    provider: int
    # operator address -> its part of the committee share (before commission and delegators)
    validators: dict[str, int] = field(default_factory=dict)
    community: int = 0
    refund: int = 0

    @property
    def total(self) -> int:
        return self.worker + self.provider + sum(self.validators.values()) + self.community + self.refund


def split_fee(
    fee: int,
    *,
    worker_share_ppm: int,
    validator_share_ppm: int,
    royalty_ppm: int,
    passed: bool,
    earners: Sequence[tuple[str, int]],
) -> FeeSplit:
    """Split ``fee`` as the module docstring says; ``earners`` are (operator, weight > 0), distinct."""
    if fee < 0:
        raise ValueError(f"negative fee {fee}")
    if worker_share_ppm + validator_share_ppm > PPM:
        raise ValueError("worker_share_ppm + validator_share_ppm exceed 10^6")
    if not 0 <= royalty_ppm <= PPM:
        raise ValueError(f"royalty_ppm {royalty_ppm} outside 0..10^6")
    worker_share = fee * worker_share_ppm // PPM
    royalty = worker_share * royalty_ppm // PPM
    committee = fee * validator_share_ppm // PPM
    community = fee - worker_share - committee
    parts = divide(committee, earners)
    community += committee - sum(parts.values())
    if passed:
        return FeeSplit(worker_share - royalty, royalty, parts, community, 0)
    return FeeSplit(0, 0, parts, community, worker_share)


def divide(amount: int, weights: Sequence[tuple[str, int]]) -> dict[str, int]:
    """``amount`` in proportion to the weights, each part rounded down (zero parts left out)."""
    total = sum(w for _, w in weights)
    if amount < 0 or any(w < 0 for _, w in weights):
        raise ValueError("negative amount or weight")
    if len({who for who, _ in weights}) != len(weights):
        raise ValueError("a recipient appears twice")
    if total == 0:
        return {}
    out: dict[str, int] = {}
    for who, w in weights:
        part = amount * w // total
        if part:
            out[who] = part
    return out
