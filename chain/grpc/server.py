"""The node's gRPC server and its lifecycle.

`GrpcServer` owns two I/O resources, the grpc.aio server and the HTTP client
to this node's CometBFT RPC: `start()` opens both, `stop()` closes both (also
`async with GrpcServer(...)`). It serves every module's Query service, the Tx
service, health checking (SERVING for "" and each service until shutdown
begins) and server reflection, so `grpcurl -plaintext HOST:9090 list` works.

It must run on the event loop that drives the ABCI server: handlers are
coroutines that call the synchronous app between two awaits, so a query or a
simulation never sees a block half-applied.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any, Self

import grpc
import httpx
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from polylink.tx.v1 import tx_pb2_grpc

from chain.app.app import PolyLinkApp
from chain.client.rpc import CometRPC
from chain.grpc.query_service import query_services
from chain.grpc.tx_service import SERVICE_NAME as TX_SERVICE_NAME
from chain.grpc.tx_service import TxService

SHUTDOWN_GRACE_S = 1.0


class GrpcServer(grpc.aio.Server):
    """A grpc.aio.Server that also owns the CometBFT RPC client its Tx service uses.

    Construct it inside the running event loop (grpc.aio binds to it).
    `address` is "HOST:PORT" (port 0 picks a free one; see `port` after start).
    `transport` replaces the HTTP transport to `rpc_url` (tests pass an
    `httpx.MockTransport`).
    """

    def __init__(
        self,
        app: PolyLinkApp,
        address: str,
        rpc_url: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.app = app
        self.address = address
        self.port = 0
        self.rpc = CometRPC(rpc_url, transport=transport)
        self._resources = AsyncExitStack()
        # grpc-stubs 1.53 predates grpc_health.v1.aio (the asyncio servicer grpcio ships)
        self.health = health.aio.HealthServicer()  # type: ignore[attr-defined]
        self._server = grpc.aio.server()
        self.service_names: list[str] = []
        self._register()

    def _register(self) -> None:
        for name, methods in sorted(query_services(self.app).items()):
            self._server.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler(name, methods),)
            )
            self.service_names.append(name)
        tx_servicer = TxService(self.app, self.rpc)
        tx_pb2_grpc.add_ServiceServicer_to_server(tx_servicer, self._server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._server)
        self.service_names += [TX_SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME]
        reflection.enable_server_reflection(self.service_names, self._server)

    # -- lifecycle ---------------------------------------------------------

    async def start(self) -> None:
        """Bind `address`, open the RPC client, start serving and report SERVING."""
        self.port = self._server.add_insecure_port(self.address)
        await self._resources.enter_async_context(self.rpc)
        try:
            await self._server.start()
        except BaseException:
            await self._resources.aclose()
            raise
        for name in ["", *self.service_names]:
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def stop(self, grace: float | None = None) -> None:
        """Report NOT_SERVING, finish in-flight calls within `grace` seconds, close the RPC client."""
        await self.health.enter_graceful_shutdown()
        try:
            await self._server.stop(grace)
        finally:
            await self._resources.aclose()

    async def wait_for_termination(self, timeout: float | None = None) -> bool:
        return bool(await self._server.wait_for_termination(timeout))

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop(SHUTDOWN_GRACE_S)

    # -- the rest of grpc.aio.Server, delegated ----------------------------

    def add_generic_rpc_handlers(self, handlers: Iterable[grpc.GenericRpcHandler[Any, Any]]) -> None:
        self._server.add_generic_rpc_handlers(tuple(handlers))

    def add_registered_method_handlers(
        self, service_name: str, method_handlers: Mapping[str, grpc.RpcMethodHandler[Any, Any]]
    ) -> None:
        # grpc-stubs 1.53 predates this method (grpcio >= 1.63 has it on grpc.aio.Server)
        self._server.add_registered_method_handlers(service_name, method_handlers)  # type: ignore[attr-defined]

    def add_insecure_port(self, address: str) -> int:
        return int(self._server.add_insecure_port(address))

    def add_secure_port(self, address: str, server_credentials: grpc.ServerCredentials) -> int:
        return int(self._server.add_secure_port(address, server_credentials))


async def start_grpc(
    app: PolyLinkApp,
    address: str,
    rpc_url: str,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> GrpcServer:
    """Start serving `app` on `address`; stop it with `await server.stop(grace)`.

    Call from the event loop that runs the ABCI server.
    """
    server = GrpcServer(app, address, rpc_url, transport=transport)
    await server.start()
    return server
