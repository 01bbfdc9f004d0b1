"""polylink.tx.v1.Service: broadcast and look up txs through this node's CometBFT, simulate locally.

BroadcastTx and GetTx are thin proxies to the node's CometBFT RPC (through
`chain.client.rpc.CometRPC`, the project's one CometBFT client; the Cosmos SDK's
tx service likewise broadcasts through its client context). Simulate runs the
tx against a throwaway branch of the last committed state in this process.
A tx refused by CheckTx or failed in its block is not a gRPC error: its
(codespace, code, log) come back in the TxResponse, as from CometBFT.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import grpc
from polylink.tx.v1 import tx_pb2

from chain.app.app import PolyLinkApp
from chain.client.errors import NodeUnreachableError, RpcError
from chain.client.results import BroadcastResult, TxResult
from chain.client.rpc import CometRPC
from chain.grpc.status import RpcContext, abort, abort_internal, height_metadata, rpc_status

log = logging.getLogger("polylink.grpc")

SERVICE_NAME: str = tx_pb2.DESCRIPTOR.services_by_name["Service"].full_name
TX_HASH_LEN = 32


def tx_response(r: BroadcastResult | TxResult) -> tx_pb2.TxResponse:
    """CometBFT's answer as a TxResponse; a CheckTx-only answer has height 0 and no gas."""
    if isinstance(r, BroadcastResult):
        return tx_pb2.TxResponse(txhash=r.hash, codespace=r.codespace, code=r.code, log=r.log)
    return tx_pb2.TxResponse(
        height=r.height,
        txhash=r.hash,
        codespace=r.codespace,
        code=r.code,
        log=r.log,
        gas_wanted=r.gas_wanted,
        gas_used=r.gas_used,
    )


class TxService:
    """The Tx service (register with `tx_pb2_grpc.add_ServiceServicer_to_server`).

    `rpc` must be open (inside its `async with`) while the server runs.
    """

    def __init__(self, app: PolyLinkApp, rpc: CometRPC) -> None:
        self.app = app
        self.rpc = rpc

    async def BroadcastTx(
        self, request: tx_pb2.BroadcastTxRequest, context: RpcContext
    ) -> tx_pb2.BroadcastTxResponse:
        send: dict[int, Callable[[bytes], Awaitable[BroadcastResult | TxResult]]] = {
            tx_pb2.BROADCAST_MODE_SYNC: self.rpc.broadcast_tx_sync,
            tx_pb2.BROADCAST_MODE_ASYNC: self.rpc.broadcast_tx_async,
            tx_pb2.BROADCAST_MODE_COMMIT: self.rpc.broadcast_tx_commit,
        }
        if not request.tx_bytes:
            await abort(context, grpc.StatusCode.INVALID_ARGUMENT, "tx_bytes is empty")
        if request.mode not in send:
            await abort(
                context, grpc.StatusCode.INVALID_ARGUMENT, f"unknown broadcast mode {request.mode}"
            )
        try:
            r = await send[request.mode](request.tx_bytes)
        except (RpcError, NodeUnreachableError) as e:
            await abort(context, rpc_status(e), str(e))
        return tx_pb2.BroadcastTxResponse(tx_response=tx_response(r))

    async def Simulate(
        self, request: tx_pb2.SimulateRequest, context: RpcContext
    ) -> tx_pb2.SimulateResponse:
        height = self.app.height
        try:
            r = self.app.simulate(request.tx_bytes)
        except Exception as e:  # a failing tx comes back in-band; this is a node bug
            log.exception("simulate failed unexpectedly")
            await abort_internal(context, e)
        await context.send_initial_metadata(height_metadata(height))
        return tx_pb2.SimulateResponse(
            gas_used=r.gas_used, codespace=r.codespace, code=r.code, log=r.log
        )

    async def GetTx(
        self, request: tx_pb2.GetTxRequest, context: RpcContext
    ) -> tx_pb2.GetTxResponse:
        try:
            ok = len(bytes.fromhex(request.hash.removeprefix("0x"))) == TX_HASH_LEN
        except ValueError:
            ok = False
        if not ok:
            await abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                f"tx hash {request.hash!r} is not {TX_HASH_LEN} bytes of hex",
            )
        try:
            r = await self.rpc.tx(request.hash)
        except (RpcError, NodeUnreachableError) as e:
            await abort(context, rpc_status(e), str(e))
        if r is None:
            await abort(context, grpc.StatusCode.NOT_FOUND, f"tx {request.hash} not found")
        return tx_pb2.GetTxResponse(tx_response=tx_response(r))
