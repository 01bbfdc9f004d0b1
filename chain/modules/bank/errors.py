"""Registered errors of the bank module."""

from chain.core.errors import register

SPACE = "bank"
ErrInsufficientFunds = register(SPACE, 2, "insufficient funds")
ErrSendDisabled = register(SPACE, 3, "sends are disabled")
ErrBlockedRecipient = register(SPACE, 4, "recipient may not receive funds by message")
ErrInputOutputMismatch = register(SPACE, 5, "sum of inputs != sum of outputs")
ErrNoOutputs = register(SPACE, 6, "no outputs")
ErrTooManyOutputs = register(SPACE, 7, "too many outputs")
ErrMultipleInputs = register(SPACE, 8, "multi-send takes exactly one input")
ErrEmptyAmount = register(SPACE, 9, "amount is empty")
ErrInvalidGenesis = register(SPACE, 10, "invalid bank genesis")
