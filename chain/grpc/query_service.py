"""Every query route of every module, served as a gRPC unary method.

Routes are read from the app's query router (`app.m.queries.routes`, keyed by
the method path "/polylink.bank.v1.Query/Balance"), so a new module's Query
service is served as soon as the module declares its routes; nobody writes a
servicer per method.

The request reaches the app as raw bytes and is decoded by `app.query`, the
same strict decoder ABCI Query uses (unknown fields rejected): a malformed
request is then INVALID_ARGUMENT with tx/2, where a gRPC-side deserializer
would fail it as INTERNAL before the app saw it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import grpc
from google.protobuf.message import Message

from chain.app.app import PolyLinkApp
from chain.core.codec import encode
from chain.core.errors import ChainError
from chain.grpc.status import RpcContext, abort_chain_error, abort_internal, height_metadata

log = logging.getLogger("polylink.grpc")

QueryMethod = Callable[[bytes, RpcContext], Awaitable[Message]]


def split_path(path: str) -> tuple[str, str]:
    """Split a method path: "/pkg.Service/Method" -> ("pkg.Service", "Method")."""
    service, sep, method = path.removeprefix("/").partition("/")
    if not path.startswith("/") or not sep or not service or not method or "/" in method:
        raise ValueError(f"query path {path!r} is not /<service>/<method>")
    return service, method


def query_method(app: PolyLinkApp, path: str) -> QueryMethod:
    """An async handler answering `path` from the app on the event loop.

    It must be a coroutine: grpc.aio runs plain functions in a thread pool,
    and the app may only be touched from the loop that drives ABCI.
    """

    async def handle(request: bytes, context: RpcContext) -> Message:
        # Read the height and answer in one synchronous step, so no Commit can
        # slip in between: the metadata names the height the answer is from.
        height = app.height
        try:
            resp = app.query(path, request)
        except ChainError as e:
            await context.send_initial_metadata(height_metadata(height))
            await abort_chain_error(context, e)
        except Exception as e:
            log.exception("query %s failed unexpectedly", path)
            await context.send_initial_metadata(height_metadata(height))
            await abort_internal(context, e)
        await context.send_initial_metadata(height_metadata(height))
        return resp

    return handle


def query_services(app: PolyLinkApp) -> dict[str, dict[str, grpc.RpcMethodHandler[bytes, Message]]]:
    """{service full name: {method name: handler}} for every query route of the app."""
    services: dict[str, dict[str, grpc.RpcMethodHandler[bytes, Message]]] = {}
    for path in sorted(app.m.queries.routes):
        service, method = split_path(path)
        services.setdefault(service, {})[method] = grpc.unary_unary_rpc_method_handler(
            query_method(app, path),
            request_deserializer=None,  # raw bytes: app.query decodes them
            response_serializer=encode,
        )
    return services
