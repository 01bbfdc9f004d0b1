"""The committed state in a SQL database, written once per block in one transaction.

Two tables: `kv` (key -> value, compared as raw bytes, so key order is the
same in SQLite's memcmp and PostgreSQL's bytea) and `meta` (last committed
height, app hash, the app-hash accumulator, chain id). `commit()` writes a
block's changes and the new meta together, so after a crash the database
holds either the whole block or none of it, and Info reports exactly what
is there.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from sqlalchemy import (
    Column,
    LargeBinary,
    MetaData,
    String,
    Table,
    create_engine,
    delete,
    event,
    insert,
    select,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry

_md = MetaData()
kv_table = Table(
    "kv",
    _md,
    Column("k", LargeBinary, primary_key=True),
    Column("v", LargeBinary, nullable=False),
)
meta_table = Table(
    "meta",
    _md,
    Column("name", String(64), primary_key=True),
    Column("value", LargeBinary, nullable=False),
)

READ_CACHE_MAX = 500_000


@dataclass(frozen=True)
class CommitInfo:
    height: int
    app_hash: bytes


def _sqlite_pragmas(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.close()


class SQLStore:
    """Committed state: reads (with a read-through cache) and the atomic block commit."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = create_engine(url, future=True)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        _md.create_all(self.engine)
        self._conn: Connection = self.engine.connect()
        self._cache: dict[bytes, bytes | None] = {}

    def close(self) -> None:
        self._conn.close()
        self.engine.dispose()

    # --- reads (committed state) ----------------------------------------
    def get(self, key: bytes) -> bytes | None:
        try:
            return self._cache[key]
        except KeyError:
            pass
        row = self._conn.execute(select(kv_table.c.v).where(kv_table.c.k == key)).first()
        v = None if row is None else bytes(row[0])
        if len(self._cache) >= READ_CACHE_MAX:
            self._cache.clear()
        self._cache[key] = v
        return v

    def set(self, key: bytes, value: bytes) -> None:
        raise RuntimeError("the committed store is written only by commit()")

    def delete(self, key: bytes) -> None:
        raise RuntimeError("the committed store is written only by commit()")

    def iterate(
        self, start: bytes = b"", end: bytes | None = None, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        q = select(kv_table.c.k, kv_table.c.v).where(kv_table.c.k >= start)
        if end is not None:
            q = q.where(kv_table.c.k < end)
        q = q.order_by(kv_table.c.k.desc() if reverse else kv_table.c.k)
        # materialize: the caller may commit while iterating a query result
        rows = self._conn.execute(q).all()
        for k, v in rows:
            yield bytes(k), bytes(v)

    # --- meta --------------------------------------------------------------
    def get_meta(self, name: str) -> bytes | None:
        row = self._conn.execute(select(meta_table.c.value).where(meta_table.c.name == name)).first()
        return None if row is None else bytes(row[0])

    def last_commit(self) -> CommitInfo:
        h = self.get_meta("height")
        return CommitInfo(0 if h is None else int(h), self.get_meta("app_hash") or b"")

    # --- the block commit ----------------------------------------------
    def commit(
        self, changes: Sequence[tuple[bytes, bytes | None]], meta: dict[str, bytes]
    ) -> None:
        """Apply a block's changes (key order, None = delete) and meta in one transaction."""
        conn = self._conn
        if conn.in_transaction():
            conn.commit()  # end the implicit read transaction
        with conn.begin():
            dels = [k for k, v in changes if v is None]
            sets = [(k, v) for k, v in changes if v is not None]
            if dels or sets:
                keys = [k for k, _ in changes]
                for i in range(0, len(keys), 500):
                    conn.execute(delete(kv_table).where(kv_table.c.k.in_(keys[i : i + 500])))
            if sets:
                conn.execute(insert(kv_table), [{"k": k, "v": v} for k, v in sets])
            names = sorted(meta)
            conn.execute(delete(meta_table).where(meta_table.c.name.in_(names)))
            conn.execute(insert(meta_table), [{"name": n, "value": meta[n]} for n in names])
        for k, v in changes:
            self._cache[k] = v
