"""The incremental app hash equals the hash of the whole state computed from scratch."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from chain.core.apphash import StateAccumulator

entries = st.dictionaries(st.binary(min_size=1, max_size=4), st.binary(max_size=4), max_size=20)
change_lists = st.lists(
    st.tuples(st.binary(min_size=1, max_size=4), st.one_of(st.none(), st.binary(max_size=4))), max_size=30
)


@settings(max_examples=200, deadline=None)
@given(entries, change_lists)
def test_incremental_equals_scratch(initial: dict[bytes, bytes], changes: list[tuple[bytes, bytes | None]]) -> None:
    state = dict(initial)
    acc = StateAccumulator.of_items(sorted(state.items()))
    for k, new in changes:
        old = state.get(k)
        acc = acc.apply([(k, old, new)])
        if new is None:
            state.pop(k, None)
        else:
            state[k] = new
    assert acc.app_hash() == StateAccumulator.of_items(sorted(state.items())).app_hash()


def test_hash_is_order_free_and_value_sensitive() -> None:
    a = StateAccumulator.of_items([(b"k1", b"v1"), (b"k2", b"v2")])
    b = StateAccumulator.of_items([(b"k2", b"v2"), (b"k1", b"v1")])
    assert a.app_hash() == b.app_hash()
    assert StateAccumulator.of_items([(b"k1", b"v1"), (b"k2", b"v3")]).app_hash() != a.app_hash()
    # the key/value boundary is part of the element: ("ab","c") != ("a","bc")
    ab_c = StateAccumulator.of_items([(b"ab", b"c")])
    assert ab_c.app_hash() != StateAccumulator.of_items([(b"a", b"bc")]).app_hash()
    assert StateAccumulator.from_bytes(a.to_bytes()).app_hash() == a.app_hash()
