"""pricing: the per-model, per-block, EIP-1559-style price of inference (SPEC 3.7)."""
