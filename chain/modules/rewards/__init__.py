"""rewards: how settled fees divide, and the per-block emission to bonded validators (SPEC 3.8)."""
