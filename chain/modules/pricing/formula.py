"""One block's price step (SPEC 3.7), pure integer arithmetic.

    price' = price x (1 + (demand - target) / target / d)

with the step rounded down (toward the floor: `//` rounds toward -infinity),
bounded by price // d either way, at least 1 upoly up whenever demand exceeds
the target (else a price below d could never rise, as in geth's base fee),
then clamped to [base, cap]; the base price wins when base > cap (a model is
never sold below its registered floor).

Without any target (no active worker serves the model) demand has no supply:
the price takes the full step up while there is demand and stays put without
it (0 / 0 is no signal).
"""

from __future__ import annotations

PPM = 1_000_000


def target_of(capacity: int, target_util_ppm: int) -> int:
    """Tokens per block the price steers towards: capacity x target_util_ppm // 10^6."""
    return capacity * target_util_ppm // PPM


def next_price(price: int, demand: int, target: int, base: int, cap: int, denominator: int) -> int:
    """The price after one block with `demand` requested tokens against `target` (see the module doc)."""
    if price < 0 or demand < 0 or target < 0 or base < 0 or cap < 0 or denominator < 1:
        raise ValueError("next_price takes non-negative amounts and a denominator >= 1")
    bound = price // denominator
    if target == 0:
        delta = max(bound, 1) if demand > 0 else 0
    else:
        delta = price * (demand - target) // (target * denominator)
        delta = max(1, min(delta, bound)) if demand > target else max(delta, -bound)
    return max(base, min(cap, price + delta))
