"""CacheStore branches behave like a plain dict at every depth, and iteration is merged in order."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from chain.core.store import CacheStore, MemStore, PrefixStore, prefix_end

keys = st.binary(min_size=1, max_size=3)
ops = st.lists(
    st.tuples(st.sampled_from(["set", "del", "branch", "write", "discard"]), keys, st.binary(max_size=3)),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(ops, st.binary(max_size=2), st.one_of(st.none(), st.binary(max_size=2)))
def test_branches_match_dict_model(program: list[tuple[str, bytes, bytes]], start: bytes, end: bytes | None) -> None:
    root = MemStore()
    stack: list[tuple[CacheStore, dict[bytes, bytes]]] = []
    model: dict[bytes, bytes] = {}
    top: MemStore | CacheStore = root
    for op, k, v in program:
        if op == "set":
            top.set(k, v)
            model[k] = v
        elif op == "del":
            top.delete(k)
            model.pop(k, None)
        elif op == "branch":
            stack.append((CacheStore(top), dict(model)))
            top = stack[-1][0]
        elif op == "write" and stack:
            cache, _ = stack.pop()
            cache.write()
            top = stack[-1][0] if stack else root
        elif op == "discard" and stack:
            _, saved = stack.pop()
            model = saved
            top = stack[-1][0] if stack else root
        want = sorted((kk, vv) for kk, vv in model.items() if kk >= start and (end is None or kk < end))
        assert list(top.iterate(start, end)) == want
        assert list(top.iterate(start, end, reverse=True)) == want[::-1]
        assert top.get(k) == model.get(k)


def test_prefix_store_isolates_namespaces() -> None:
    root = MemStore()
    a, b = PrefixStore(root, b"a/"), PrefixStore(root, b"b/")
    a.set(b"x", b"1")
    b.set(b"x", b"2")
    assert a.get(b"x") == b"1" and b.get(b"x") == b"2"
    assert list(a.iterate()) == [(b"x", b"1")]
    assert prefix_end(b"a\xff") == b"b"
    assert prefix_end(b"\xff\xff") is None


def test_changes_are_sorted_and_discard_forgets() -> None:
    c = CacheStore(MemStore({b"b": b"0"}))
    c.set(b"c", b"1")
    c.delete(b"b")
    c.set(b"a", b"2")
    assert c.changes() == [(b"a", b"2"), (b"b", None), (b"c", b"1")]
    c.discard()
    assert c.changes() == [] and c.get(b"b") == b"0"
