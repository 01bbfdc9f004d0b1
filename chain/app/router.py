"""Message and query routers, built once from the modules' declared routes."""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf import any_pb2
from google.protobuf.message import Message

from chain.app.module import AppModule, MsgRoute, QueryRoute
from chain.core.codec import decode, type_url
from chain.core.errors import ErrUnknownRequest


class MsgRouter:
    def __init__(self, modules: Sequence[AppModule]) -> None:
        self.routes: dict[str, MsgRoute] = {}
        for m in modules:
            for r in m.msg_routes():
                url = type_url(r.cls)
                if url in self.routes:
                    raise ValueError(f"message {url} routed twice")
                self.routes[url] = r

    def unpack(self, a: any_pb2.Any) -> tuple[MsgRoute, Message]:
        route = self.routes.get(a.type_url)
        if route is None:
            raise ErrUnknownRequest.wrap(a.type_url)
        return route, decode(route.cls, a.value, a.type_url)


class QueryRouter:
    def __init__(self, modules: Sequence[AppModule]) -> None:
        self.routes: dict[str, QueryRoute] = {}
        for m in modules:
            for r in m.query_routes():
                if r.path in self.routes:
                    raise ValueError(f"query {r.path} routed twice")
                self.routes[r.path] = r

    def get(self, path: str) -> QueryRoute:
        route = self.routes.get(path)
        if route is None:
            raise ErrUnknownRequest.wrap(f"query path {path}")
        return route
