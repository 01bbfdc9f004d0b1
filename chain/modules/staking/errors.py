"""Registered errors of the staking module."""

from chain.core.errors import register

SPACE = "staking"
ErrNoValidator = register(SPACE, 2, "validator does not exist")
ErrValidatorExists = register(SPACE, 3, "the operator already has a validator")
ErrPubKeyTaken = register(SPACE, 4, "consensus public key already used by a validator")
ErrInvalidConsPubKey = register(SPACE, 5, "consensus public key must be 32 bytes (ed25519)")
ErrBadDenom = register(SPACE, 6, "amount is not in the bond denom")
ErrInvalidAmount = register(SPACE, 7, "amount must be positive")
ErrCommissionTooHigh = register(SPACE, 8, "commission exceeds 100%")
ErrCommissionChangeTooLarge = register(SPACE, 9, "commission rises more than max_commission_change_ppm")
ErrSelfBondBelowMin = register(SPACE, 10, "self bond is below min_self_delegation")
ErrInvalidMinSelfDelegation = register(SPACE, 11, "min_self_delegation must be a positive integer")
ErrNoDelegation = register(SPACE, 12, "delegation does not exist")
ErrInsufficientDelegation = register(SPACE, 13, "amount exceeds what the delegation is worth")
ErrMaxEntries = register(SPACE, 14, "too many unbonding or redelegation entries for this pair")
ErrSelfRedelegation = register(SPACE, 15, "source and destination validator are the same")
ErrTransitiveRedelegation = register(SPACE, 16, "redelegation from a validator whose stake is still redelegating in")
ErrInvalidExchangeRate = register(SPACE, 17, "validator has shares but no tokens (slashed to zero)")
ErrTinyAmount = register(SPACE, 18, "amount too small: it rounds to zero shares or tokens")
ErrInvalidMoniker = register(SPACE, 19, "moniker must be 1..70 characters")
ErrInvalidGenesis = register(SPACE, 20, "invalid staking genesis")
ErrInvalidSlash = register(SPACE, 21, "invalid slash")
