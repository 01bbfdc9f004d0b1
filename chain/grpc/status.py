"""How failures become gRPC statuses.

A registered chain error keeps its (codespace, code) in the trailing metadata
("x-codespace", "x-code") and its log as the status details, so a gRPC client
learns exactly what the ABCI Query path would have told it. The status code
itself follows gRPC's meanings: the caller's input is wrong (INVALID_ARGUMENT),
the thing asked for does not exist (NOT_FOUND), or the state does not allow it
(FAILED_PRECONDITION, the default for any other registered error).
"""

from __future__ import annotations

from typing import Any, NoReturn, TypeAlias

import grpc

from chain.client.errors import NodeUnreachableError, RpcError
from chain.core.coins import ErrInvalidCoins
from chain.core.errors import (
    ChainError,
    ErrInternal,
    ErrInvalidAddress,
    ErrInvalidPubKey,
    ErrInvalidRequest,
    ErrNotFound,
    ErrorKind,
    ErrOutOfGas,
    ErrTxDecode,
    ErrUnknownRequest,
)

Metadata = tuple[tuple[str, str], ...]
RpcContext: TypeAlias = grpc.aio.ServicerContext[Any, Any]

HEIGHT_KEY = "x-block-height"
CODESPACE_KEY = "x-codespace"
CODE_KEY = "x-code"

_CODES: dict[ErrorKind, grpc.StatusCode] = {
    ErrNotFound: grpc.StatusCode.NOT_FOUND,
    ErrTxDecode: grpc.StatusCode.INVALID_ARGUMENT,
    ErrInvalidAddress: grpc.StatusCode.INVALID_ARGUMENT,
    ErrInvalidRequest: grpc.StatusCode.INVALID_ARGUMENT,
    ErrUnknownRequest: grpc.StatusCode.INVALID_ARGUMENT,
    ErrInvalidPubKey: grpc.StatusCode.INVALID_ARGUMENT,
    ErrInvalidCoins: grpc.StatusCode.INVALID_ARGUMENT,
    ErrOutOfGas: grpc.StatusCode.RESOURCE_EXHAUSTED,  # the query gas limit
    ErrInternal: grpc.StatusCode.INTERNAL,
}

# CometBFT reports these RPC failures only as text in the JSON-RPC error's data
# (v0.38: mempool/errors.go, rpc/core/mempool.go, rpc/core/tx.go).
_RPC_CODES: tuple[tuple[str, grpc.StatusCode], ...] = (
    ("not found", grpc.StatusCode.NOT_FOUND),
    ("already exists", grpc.StatusCode.ALREADY_EXISTS),
    ("mempool is full", grpc.StatusCode.RESOURCE_EXHAUSTED),
    ("considered as full", grpc.StatusCode.UNAVAILABLE),  # rechecking after a block
    ("too large", grpc.StatusCode.INVALID_ARGUMENT),
    ("timed out", grpc.StatusCode.DEADLINE_EXCEEDED),
    ("confirmation not received", grpc.StatusCode.DEADLINE_EXCEEDED),
    ("indexing is disabled", grpc.StatusCode.FAILED_PRECONDITION),
)


def status_code(err: ChainError) -> grpc.StatusCode:
    """The gRPC status code of a registered chain error."""
    return _CODES.get(err.kind, grpc.StatusCode.FAILED_PRECONDITION)


def height_metadata(height: int) -> Metadata:
    return ((HEIGHT_KEY, str(height)),)


def error_metadata(codespace: str, code: int) -> Metadata:
    return ((CODESPACE_KEY, codespace), (CODE_KEY, str(code)))


def rpc_status(err: RpcError | NodeUnreachableError) -> grpc.StatusCode:
    """The gRPC status code for a failed call to this node's CometBFT RPC."""
    if isinstance(err, NodeUnreachableError):
        return grpc.StatusCode.UNAVAILABLE
    text = f"{err.message} {err.data}".lower()
    for needle, code in _RPC_CODES:
        if needle in text:
            return code
    return grpc.StatusCode.UNKNOWN


async def abort(
    context: RpcContext, code: grpc.StatusCode, details: str, metadata: Metadata = ()
) -> NoReturn:
    """End the RPC with a non-OK status (grpc raises to unwind the handler)."""
    await context.abort(code, details, metadata)
    raise AssertionError("context.abort returned")


async def abort_chain_error(context: RpcContext, err: ChainError) -> NoReturn:
    """End the RPC with `err`'s status, log and (codespace, code)."""
    await abort(context, status_code(err), err.log, error_metadata(err.codespace, err.code))


async def abort_internal(context: RpcContext, exc: Exception) -> NoReturn:
    """End the RPC for an unexpected exception: a node bug, reported as tx/1 like ABCI Query."""
    await abort(
        context,
        grpc.StatusCode.INTERNAL,
        f"{ErrInternal.description}: {exc!r}",
        error_metadata(ErrInternal.codespace, ErrInternal.code),
    )
