"""slashing invariants: each window's counter equals its bitmap's set bits and fits the window."""

from __future__ import annotations

from chain.app.module import Invariant
from chain.core.context import Context
from chain.modules.slashing import keys
from chain.modules.slashing.keeper import SlashingKeeper


def missed_blocks(k: SlashingKeeper) -> Invariant:
    def check(ctx: Context) -> str | None:
        window = k.get_params(ctx).signed_blocks_window
        infos = dict(k.iterate_signing_infos(ctx))
        bits = dict(k.iterate_missed(ctx))
        for addr, idx in bits.items():
            if addr not in infos:
                return f"{keys.cons_addr_hex(addr)} has missed blocks but no signing info"
            if idx[-1] >= window:
                return f"{keys.cons_addr_hex(addr)} has a missed block at slot {idx[-1]} >= window {window}"
        for addr, info in infos.items():
            n = len(bits.get(addr, []))
            if info.missed_blocks_counter != n:
                return f"{info.address}: missed_blocks_counter {info.missed_blocks_counter} != {n} set bits"
            if n > window:
                return f"{info.address}: {n} missed blocks > window {window}"
        return None

    return check
