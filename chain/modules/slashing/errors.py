"""Registered errors of the slashing module."""

from chain.core.errors import register

SPACE = "slashing"
ErrNoValidator = register(SPACE, 2, "no validator with this address")
ErrValidatorNotJailed = register(SPACE, 3, "validator is not jailed")
ErrValidatorTombstoned = register(SPACE, 4, "validator is tombstoned and can never be unjailed")
ErrJailPeriodNotOver = register(SPACE, 5, "validator is still in its jail period")
ErrSelfDelegationTooLow = register(SPACE, 6, "self-delegation is below the validator's min_self_delegation")
ErrNoSigningInfo = register(SPACE, 7, "no signing info for this validator")
ErrInvalidGenesis = register(SPACE, 8, "invalid slashing genesis")
ErrInvalidFraction = register(SPACE, 9, "slash fraction must be in 0..1_000_000 ppm")
