"""Pagination over a store range, shared by every module's query server."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from polylink.base.v1 import query_pb2

from chain.core.store import KVStore

T = TypeVar("T")
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def paginate(
    store: KVStore,
    page: query_pb2.PageRequest | None,
    decode: Callable[[bytes, bytes], T],
    keep: Callable[[T], bool] | None = None,
) -> tuple[list[T], query_pb2.PageResponse]:
    """Items of `store` (already a prefix view) from page.key, at most page.limit.

    With `keep`, only the items it accepts count: a page holds up to `limit`
    kept items and next_key is the key of the next kept one.
    """
    limit = min(page.limit if page and page.limit else DEFAULT_LIMIT, MAX_LIMIT)
    start = page.key if page else b""
    out: list[T] = []
    for k, v in store.iterate(start):
        if keep is None:
            if len(out) == limit:
                return out, query_pb2.PageResponse(next_key=k)
            out.append(decode(k, v))
            continue
        item = decode(k, v)
        if not keep(item):
            continue
        if len(out) == limit:
            return out, query_pb2.PageResponse(next_key=k)
        out.append(item)
    return out, query_pb2.PageResponse()
