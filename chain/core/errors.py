"""Registered errors: every failure that reaches a tx result has a (codespace, code).

Codes are part of consensus (they enter the block's results hash), so each
(codespace, code) is registered once, at import time, and never reused.
"""

from __future__ import annotations

from typing import ClassVar

_REGISTRY: dict[tuple[str, int], ErrorKind] = {}


class ChainError(Exception):
    """A failure with a registered (codespace, code) and a log that says why."""

    def __init__(self, kind: ErrorKind, detail: str = "") -> None:
        self.kind = kind
        self.detail = detail
        super().__init__(self.log)

    @property
    def codespace(self) -> str:
        return self.kind.codespace

    @property
    def code(self) -> int:
        return self.kind.code

    @property
    def log(self) -> str:
        return f"{self.detail}: {self.kind.description}" if self.detail else self.kind.description


class ErrorKind:
    """One registered error; `kind.wrap("why")` builds the exception to raise."""

    reserved: ClassVar[frozenset[int]] = frozenset({0})

    def __init__(self, codespace: str, code: int, description: str) -> None:
        if code in self.reserved:
            raise ValueError(f"code {code} is reserved (0 means success)")
        key = (codespace, code)
        if key in _REGISTRY:
            raise ValueError(f"error {codespace}/{code} registered twice")
        self.codespace = codespace
        self.code = code
        self.description = description
        _REGISTRY[key] = self

    def wrap(self, detail: str = "") -> ChainError:
        return ChainError(self, detail)

    def __repr__(self) -> str:
        return f"ErrorKind({self.codespace}/{self.code} {self.description!r})"


def register(codespace: str, code: int, description: str) -> ErrorKind:
    return ErrorKind(codespace, code, description)


def registered() -> list[ErrorKind]:
    """Every registered error, sorted by (codespace, code)."""
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


# The "tx" codespace: envelope, signature, sequence, fee and gas failures.
SPACE = "tx"
ErrInternal = register(SPACE, 1, "internal error")
ErrTxDecode = register(SPACE, 2, "tx parse error")
ErrInvalidSequence = register(SPACE, 3, "invalid sequence")
ErrInvalidSignature = register(SPACE, 4, "signature verification failed")
ErrInsufficientFee = register(SPACE, 5, "insufficient fee")
ErrInsufficientFunds = register(SPACE, 6, "insufficient funds to pay the fee")
ErrInvalidAddress = register(SPACE, 7, "invalid address")
ErrWrongChainID = register(SPACE, 8, "wrong chain-id")
ErrUnknownRequest = register(SPACE, 9, "unknown message type")
ErrInvalidRequest = register(SPACE, 10, "invalid request")
ErrOutOfGas = register(SPACE, 11, "out of gas")
ErrMemoTooLarge = register(SPACE, 12, "memo too large")
ErrTxTooLarge = register(SPACE, 13, "tx too large")
ErrTxTimeout = register(SPACE, 14, "tx timeout height passed")
ErrUnauthorized = register(SPACE, 15, "unauthorized: message signer is not the tx signer")
ErrInvalidPubKey = register(SPACE, 16, "invalid public key")
ErrNoMessages = register(SPACE, 17, "tx has no messages")
ErrInvalidGasLimit = register(SPACE, 18, "invalid gas limit")
ErrBlockGasExceeded = register(SPACE, 19, "tx gas limit exceeds the block's max gas")
ErrNotFound = register(SPACE, 20, "not found")
