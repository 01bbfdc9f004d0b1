"""Errors raised by the client library, so callers can tell *where* a failure happened.

- `NodeUnreachableError`: the CometBFT RPC could not be reached (connection, timeout).
- `RpcError`: the node answered with a JSON-RPC error (bad params, tx not found, ...).
- `ChainQueryError`: an ABCI query reached the app and the app refused it with a
  registered (codespace, code) and a log.
- `TxRejectedError`: a tx was refused by CheckTx or failed in its block.
- `TxTimeoutError`: a tx was not found in a block before the deadline.
- `KeyringError` (and `KeyNotFoundError`, `KeyExistsError`): keyring failures.
"""

from __future__ import annotations


class ClientError(Exception):
    """Base class of every error the client library raises on purpose."""


class NodeUnreachableError(ClientError):
    """The node's RPC endpoint did not answer (refused, reset, timed out)."""


class RpcError(ClientError):
    """CometBFT answered a JSON-RPC call with an error object."""

    def __init__(self, method: str, code: int, message: str, data: str = "") -> None:
        self.method = method
        self.code = code
        self.message = message
        self.data = data
        super().__init__(f"{method}: {message}" + (f" ({data})" if data else ""))


class ChainCodeError(ClientError):
    """A failure the app reported with a registered (codespace, code) and a log."""

    def __init__(self, codespace: str, code: int, log: str) -> None:
        self.codespace = codespace
        self.code = code
        self.log = log
        super().__init__(f"{codespace}/{code}: {log}")

    def is_(self, codespace: str, code: int) -> bool:
        """True when this is the registered error (codespace, code)."""
        return self.codespace == codespace and self.code == code


class ChainQueryError(ChainCodeError):
    """An ABCI query answered with a non-zero code (e.g. tx/20: not found)."""

    def __init__(self, path: str, codespace: str, code: int, log: str) -> None:
        self.path = path
        super().__init__(codespace, code, log)


class TxRejectedError(ChainCodeError):
    """A tx refused by CheckTx (stage "check") or failed in its block (stage "deliver")."""

    def __init__(self, txhash: str, stage: str, codespace: str, code: int, log: str) -> None:
        self.txhash = txhash
        self.stage = stage
        super().__init__(codespace, code, log)


class TxTimeoutError(ClientError):
    """The tx was not seen in a committed block before the deadline."""

    def __init__(self, txhash: str, timeout: float) -> None:
        self.txhash = txhash
        self.timeout = timeout
        super().__init__(f"tx {txhash} not committed within {timeout:g}s")


class KeyringError(ClientError):
    """A keyring operation failed (bad name, unreadable file, ...)."""


class KeyNotFoundError(KeyringError):
    """No key with that name in the keyring."""


class KeyExistsError(KeyringError):
    """A key with that name exists already; the keyring never overwrites one."""
