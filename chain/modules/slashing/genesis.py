"""slashing genesis: validate, init and export (init and export mirror each other)."""

from __future__ import annotations

from itertools import pairwise

from polylink.slashing.v1 import genesis_pb2, types_pb2

from chain.core.context import Context
from chain.core.errors import ChainError
from chain.modules.slashing import keys
from chain.modules.slashing.errors import ErrInvalidGenesis
from chain.modules.slashing.keeper import SlashingKeeper
from chain.modules.slashing.params import default_params, validate_params


def default_genesis() -> genesis_pb2.GenesisState:
    return genesis_pb2.GenesisState(params=default_params())


def _addr(text: str, what: str) -> bytes:
    try:
        return keys.parse_cons_addr(text)
    except ChainError as e:
        raise ErrInvalidGenesis.wrap(f"{what}: {e.log}") from None


def validate_genesis(gs: genesis_pb2.GenesisState) -> None:
    validate_params(gs.params)
    window = gs.params.signed_blocks_window
    counters: dict[bytes, int] = {}
    for info in gs.signing_infos:
        raw = _addr(info.address, "signing info")
        if raw in counters:
            raise ErrInvalidGenesis.wrap(f"duplicate signing info for {info.address}")
        if info.missed_blocks_counter > window:
            raise ErrInvalidGenesis.wrap(f"{info.address}: missed_blocks_counter > signed_blocks_window")
        counters[raw] = info.missed_blocks_counter
    seen: set[bytes] = set()
    for mb in gs.missed_blocks:
        raw = _addr(mb.address, "missed blocks")
        if raw not in counters:
            raise ErrInvalidGenesis.wrap(f"missed blocks for {mb.address}, which has no signing info")
        if raw in seen:
            raise ErrInvalidGenesis.wrap(f"duplicate missed blocks for {mb.address}")
        seen.add(raw)
        idx = list(mb.missed_indices)
        if not idx:
            raise ErrInvalidGenesis.wrap(f"empty missed blocks for {mb.address}")
        if any(b <= a for a, b in pairwise(idx)) or idx[-1] >= window:
            raise ErrInvalidGenesis.wrap(f"{mb.address}: missed indices must ascend, each < signed_blocks_window")
        if len(idx) != counters[raw]:
            raise ErrInvalidGenesis.wrap(f"{mb.address}: {len(idx)} missed indices, counter says {counters[raw]}")
    for raw, n in sorted(counters.items()):
        if n and raw not in seen:
            raise ErrInvalidGenesis.wrap(f"{keys.cons_addr_hex(raw)}: counter {n} but no missed blocks")


def init_genesis(k: SlashingKeeper, ctx: Context, gs: genesis_pb2.GenesisState) -> None:
    k.set_params(ctx, gs.params)
    for info in sorted(gs.signing_infos, key=lambda i: keys.parse_cons_addr(i.address)):
        raw = keys.parse_cons_addr(info.address)
        stored = types_pb2.ValidatorSigningInfo()
        stored.CopyFrom(info)
        stored.address = keys.cons_addr_hex(raw)
        k.set_signing_info(ctx, raw, stored)
    for mb in sorted(gs.missed_blocks, key=lambda m: keys.parse_cons_addr(m.address)):
        raw = keys.parse_cons_addr(mb.address)
        for index in mb.missed_indices:
            k.set_missed(ctx, raw, index, True)


def export_genesis(k: SlashingKeeper, ctx: Context) -> genesis_pb2.GenesisState:
    return genesis_pb2.GenesisState(
        params=k.get_params(ctx),
        signing_infos=[info for _, info in k.iterate_signing_infos(ctx)],
        missed_blocks=[
            types_pb2.ValidatorMissedBlocks(address=keys.cons_addr_hex(a), missed_indices=idx)
            for a, idx in k.iterate_missed(ctx)
        ],
    )
