"""The committed store behaves the same on SQLite and on a real PostgreSQL (started by the test session):
key order is raw byte order, a block's commit is all or nothing, and the same blocks give the same app
hash on both."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError

from chain.app.app import PolyLinkApp
from chain.storage.sql import SQLStore
from tests.unit.test_app_lifecycle import CHAIN, GENESIS, block, reference_hashes, send

KEYS = [b"", b"\x00", b"\x00\x00", b"\x00\x01", b"\x7f", b"\x80", b"a", b"a\x00", b"ab", b"\xff", b"\xff\xff"]


def test_keys_iterate_in_raw_byte_order_with_ranges_and_reverse(store_url: str) -> None:
    s = SQLStore(store_url)
    try:
        s.commit([(k, b"v" + k) for k in sorted(KEYS, reverse=True)], {"height": b"1"})
        assert [k for k, _ in s.iterate()] == sorted(KEYS)
        assert [k for k, _ in s.iterate(reverse=True)] == sorted(KEYS, reverse=True)
        inside = [k for k in sorted(KEYS) if b"\x00\x01" <= k < b"\xff"]
        assert [k for k, _ in s.iterate(b"\x00\x01", b"\xff")] == inside
        assert s.get(b"\x80") == b"v\x80" and s.get(b"\x81") is None
    finally:
        s.close()


def test_a_failed_commit_leaves_the_last_block_whole(store_url: str) -> None:
    s = SQLStore(store_url)
    try:
        s.commit([(b"k1", b"one")], {"height": b"1", "app_hash": b"h1"})
        # the same key twice in one insert violates the primary key: the whole block must roll back
        with pytest.raises(IntegrityError):
            s.commit([(b"k2", b"two"), (b"k3", b"x"), (b"k3", b"y")], {"height": b"2", "app_hash": b"h2"})
    finally:
        s.close()
    again = SQLStore(store_url)  # what a restarted node would read
    try:
        assert (again.last_commit().height, again.last_commit().app_hash) == (1, b"h1")
        assert again.get(b"k2") is None and again.get(b"k1") == b"one"
    finally:
        again.close()


def test_the_same_blocks_give_the_same_app_hash_and_state_on_either_backend(store_url: str) -> None:
    ref = reference_hashes()
    app = PolyLinkApp(SQLStore(store_url))
    app.init_chain(CHAIN, GENESIS, 1, 0, -1)
    for h in (1, 2, 3):
        assert block(app, h, [send(h - 1)]) == ref[h - 1]
        app.commit()
    rows = list(app.store.iterate())  # type: ignore[union-attr]
    app.store.close()  # type: ignore[union-attr]
    mem = PolyLinkApp(None)
    mem.init_chain(CHAIN, GENESIS, 1, 0, -1)
    for h in (1, 2, 3):
        block(mem, h, [send(h - 1)])
        mem.commit()
    assert rows and rows == list(mem.committed.iterate())
