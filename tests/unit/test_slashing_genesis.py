"""slashing genesis (validate/init/export round trip), queries and invariants."""

from __future__ import annotations

import pytest
from polylink.base.v1 import query_pb2 as base_q
from polylink.slashing.v1 import genesis_pb2, query_pb2, types_pb2

from chain.core.codec import encode, to_json
from chain.core.consensus import Evidence
from chain.core.errors import ChainError, ErrInvalidAddress, ErrInvalidRequest
from chain.core.store import MemStore
from chain.modules.slashing import genesis, keys
from chain.modules.slashing.errors import ErrInvalidGenesis, ErrNoSigningInfo, ErrNoValidator
from chain.modules.slashing.invariants import missed_blocks
from chain.modules.slashing.keeper import SlashingKeeper
from chain.modules.slashing.module import SlashingModule
from chain.modules.slashing.query_server import QueryServer
from tests.unit.slashing_fake import Chain, FakeValidator, cons


def busy_chain() -> tuple[Chain, list[FakeValidator]]:
    """Three validators: one that misses now and then, one jailed for downtime, one tombstoned."""
    c = Chain()
    vs = [c.staking.add(s, p) for s, p in (("a", 10), ("b", 5), ("c", 3))]
    for h in range(1, 31):
        c.block(h, [(vs[0], h % 3 != 0), (vs[1], False), (vs[2], True)])
    c.block(31, [(vs[0], False)], evidence=(Evidence("duplicate_vote", cons(vs[2]), 3, 30, 0, 18),))
    return c, vs


def test_default_genesis_is_valid_and_round_trips() -> None:
    gs = genesis.default_genesis()
    genesis.validate_genesis(gs)
    c = Chain()
    genesis.init_genesis(c.k, c.ctx(0), gs)
    assert genesis.export_genesis(c.k, c.ctx(0)) == gs


def test_round_trip() -> None:
    c, _ = busy_chain()
    gs = genesis.export_genesis(c.k, c.ctx(31))
    genesis.validate_genesis(gs)
    assert [i.address for i in gs.signing_infos] == sorted(i.address for i in gs.signing_infos)
    assert len(gs.signing_infos) == 3 and any(i.tombstoned for i in gs.signing_infos)
    assert gs.missed_blocks  # validator a has set bits
    # through JSON, as in genesis.json, into a fresh store: same export, same bytes
    mod = SlashingModule(SlashingKeeper(c.staking))
    gs2 = mod.genesis_from_json(to_json(gs))
    mod.validate_genesis(gs2)
    store = MemStore()
    c2 = Chain()
    c2.store, c2.k = store, mod.keeper
    mod.init_genesis(c2.ctx(0), gs2)
    assert mod.export_genesis(c2.ctx(0)) == gs
    assert store.items() == [(k, v) for k, v in c.store.items() if k.startswith(keys.NAMESPACE)]
    assert missed_blocks(mod.keeper)(c2.ctx(0)) is None


def test_init_normalizes_address_case() -> None:
    c, _ = busy_chain()
    gs = genesis.export_genesis(c.k, c.ctx(31))
    lower = genesis_pb2.GenesisState()
    lower.CopyFrom(gs)
    for i in lower.signing_infos:
        i.address = i.address.lower()
    for m in lower.missed_blocks:
        m.address = m.address.lower()
    genesis.validate_genesis(lower)
    c2 = Chain()
    genesis.init_genesis(c2.k, c2.ctx(0), lower)
    assert genesis.export_genesis(c2.k, c2.ctx(0)) == gs


def _broken(edit: str) -> genesis_pb2.GenesisState:
    c, _ = busy_chain()
    gs = genesis.export_genesis(c.k, c.ctx(31))
    mb = gs.missed_blocks[0]
    if edit == "bad address":
        gs.signing_infos[0].address = "zz"
    elif edit == "duplicate info":
        gs.signing_infos.append(gs.signing_infos[0])
    elif edit == "orphan bits":
        del gs.signing_infos[:]
    elif edit == "duplicate bits":
        gs.missed_blocks.append(mb)
    elif edit == "empty bits":
        gs.missed_blocks.add(address=gs.signing_infos[2].address)
    elif edit == "unsorted bits":
        mb.missed_indices[:] = list(reversed(mb.missed_indices))
    elif edit == "bit outside window":
        mb.missed_indices[-1] = gs.params.signed_blocks_window
    elif edit == "counter mismatch":
        mb.missed_indices.pop()
    elif edit == "counter without bits":
        del gs.missed_blocks[:]
    elif edit == "counter over window":
        gs.signing_infos[0].missed_blocks_counter = gs.params.signed_blocks_window + 1
    return gs


@pytest.mark.parametrize(
    "edit",
    [
        "bad address", "duplicate info", "orphan bits", "duplicate bits", "empty bits", "unsorted bits",
        "bit outside window", "counter mismatch", "counter without bits", "counter over window",
    ],
)
def test_invalid_genesis(edit: str) -> None:
    with pytest.raises(ChainError) as ei:
        genesis.validate_genesis(_broken(edit))
    assert ei.value.kind is ErrInvalidGenesis


def test_invalid_params() -> None:
    gs = genesis.default_genesis()
    for field, value in [
        ("signed_blocks_window", 0), ("min_signed_ppm", 1_000_001), ("slash_fraction_downtime_ppm", 1_000_001),
        ("slash_fraction_double_sign_ppm", 1_000_001), ("max_evidence_age_blocks", 0),
    ]:
        bad = genesis_pb2.GenesisState()
        bad.CopyFrom(gs)
        setattr(bad.params, field, value)
        with pytest.raises(ChainError) as ei:
            genesis.validate_genesis(bad)
        assert ei.value.kind is ErrInvalidRequest, field
        c = Chain()
        with pytest.raises(ChainError):  # governance goes through the same validation
            SlashingModule(c.k).params_spec().set(c.ctx(1), bad.params)


def test_params_spec_round_trip() -> None:
    c = Chain()
    spec = SlashingModule(c.k).params_spec()
    p = types_pb2.Params()
    p.CopyFrom(spec.get(c.ctx(1)))  # type: ignore[arg-type]
    p.downtime_jail_blocks = 77
    spec.set(c.ctx(1), p)
    assert c.k.get_params(c.ctx(2)).downtime_jail_blocks == 77


def test_invariant_catches_a_broken_counter_and_stray_bits() -> None:
    c, vs = busy_chain()
    check = missed_blocks(c.k)
    assert check(c.ctx(31)) is None
    info = c.k.get_signing_info(c.ctx(31), cons(vs[0]))
    assert info is not None
    info.missed_blocks_counter += 1
    c.k.set_signing_info(c.ctx(31), cons(vs[0]), info)
    assert "set bits" in (check(c.ctx(31)) or "")
    info.missed_blocks_counter -= 1
    c.k.set_signing_info(c.ctx(31), cons(vs[0]), info)
    c.k.set_missed(c.ctx(31), b"\x09" * 20, 0, True)
    assert "no signing info" in (check(c.ctx(31)) or "")


def test_queries() -> None:
    c, vs = busy_chain()
    q = QueryServer(c.k)
    ctx = c.ctx(31)
    want = c.k.get_signing_info(ctx, cons(vs[0]))
    by_hex = q.signing_info(ctx, query_pb2.QuerySigningInfoRequest(cons_address=cons(vs[0]).hex()))
    by_op = q.signing_info(ctx, query_pb2.QuerySigningInfoRequest(validator_address=vs[0].operator_address))
    assert by_hex.val_signing_info == want == by_op.val_signing_info
    for req, err in [
        (query_pb2.QuerySigningInfoRequest(), ErrInvalidRequest),
        (query_pb2.QuerySigningInfoRequest(cons_address="AB", validator_address=vs[0].operator_address),
         ErrInvalidRequest),
        (query_pb2.QuerySigningInfoRequest(cons_address="xyz"), ErrInvalidAddress),
        (query_pb2.QuerySigningInfoRequest(cons_address="00" * 20), ErrNoSigningInfo),
        (query_pb2.QuerySigningInfoRequest(validator_address=c.staking.add("new", 1).operator_address),
         ErrNoSigningInfo),
    ]:
        with pytest.raises(ChainError) as ei:
            q.signing_info(ctx, req)
        assert ei.value.kind is err
    del c.staking.validators[vs[1].operator_address]
    with pytest.raises(ChainError) as ei:
        q.signing_info(ctx, query_pb2.QuerySigningInfoRequest(validator_address=vs[1].operator_address))
    assert ei.value.kind is ErrNoValidator
    # two pages
    p1 = q.signing_infos(ctx, query_pb2.QuerySigningInfosRequest(pagination=base_q.PageRequest(limit=2)))
    p2 = q.signing_infos(
        ctx, query_pb2.QuerySigningInfosRequest(pagination=base_q.PageRequest(key=p1.pagination.next_key))
    )
    assert len(p1.info) == 2 and len(p2.info) == 1 and not p2.pagination.next_key
    assert [encode(i) for i in [*p1.info, *p2.info]] == [encode(i) for _, i in c.k.iterate_signing_infos(ctx)]
    assert q.params(ctx, query_pb2.QueryParamsRequest()).params == c.k.get_params(ctx)


def test_query_routes() -> None:
    paths = [r.path for r in SlashingModule(Chain().k).query_routes()]
    assert paths == [
        "/polylink.slashing.v1.Query/Params",
        "/polylink.slashing.v1.Query/SigningInfo",
        "/polylink.slashing.v1.Query/SigningInfos",
    ]


def test_end_block_returns_no_updates() -> None:
    c = Chain()
    assert SlashingModule(c.k).end_block(c.ctx(1)) == []
