"""registry invariants: the bond pool holds exactly the bonds; the indexes match the workers;
every worker's quality and fidelity EMAs lie in 0..10^6."""

from __future__ import annotations

from chain.app.module import Invariant
from chain.core.address import from_bech32, to_bech32
from chain.core.context import Context
from chain.core.store import PrefixStore
from chain.modules.registry import keys
from chain.modules.registry.keeper import UNBONDING, RegistryKeeper
from chain.modules.registry.params import PPM


def bond_pool(k: RegistryKeeper) -> Invariant:
    """worker_bond_pool balance == sum of the workers' bonds."""

    def check(ctx: Context) -> str | None:
        have, want = k.pool_balance(ctx), k.total_bonds(ctx)
        if have != want:
            return f"worker_bond_pool holds {have}upoly, the workers' bonds sum to {want}upoly"
        return None

    return check


def indexes(k: RegistryKeeper) -> Invariant:
    """The by-model index is exactly the workers' models; the unbonding queue is exactly the
    UNBONDING workers at their completion heights; stats belong to existing workers."""

    def check(ctx: Context) -> str | None:
        kv = ctx.kv(keys.NAMESPACE)
        ws = k.workers(ctx)
        want_index = sorted(keys.by_model_key(m, from_bech32(w.address)) for w in ws for m in w.models)
        have_index = [keys.BY_MODEL + key for key, _ in PrefixStore(kv, keys.BY_MODEL).iterate()]
        if have_index != want_index:
            return f"by-model index has {len(have_index)} entries, the workers' models make {len(want_index)}"
        want_queue = sorted(
            keys.unbonding_key(w.unbonding_completion_height, from_bech32(w.address)) for w in ws
            if w.status == UNBONDING
        )
        have_queue = [keys.UNBONDING + key for key, _ in PrefixStore(kv, keys.UNBONDING).iterate()]
        if have_queue != want_queue:
            return f"unbonding queue has {len(have_queue)} entries for {len(want_queue)} UNBONDING workers"
        addrs = {from_bech32(w.address) for w in ws}
        for key, _ in PrefixStore(kv, keys.STATS).iterate():
            if key[: keys.ADDR_LEN] not in addrs:
                return f"stats of {to_bech32(key[: keys.ADDR_LEN])}, which is not a worker"
        return None

    return check


def stats_in_bounds(k: RegistryKeeper) -> Invariant:
    """Each stats record's quality and fidelity EMAs are ppm (0..10^6)."""

    def check(ctx: Context) -> str | None:
        for s in k.all_stats(ctx):
            if s.quality_ema_ppm > PPM or s.fidelity_ema_ppm > PPM:
                return (
                    f"stats of {s.worker} for {s.model_id!r}: quality_ema_ppm {s.quality_ema_ppm}, "
                    f"fidelity_ema_ppm {s.fidelity_ema_ppm} (each must be <= {PPM})"
                )
        return None

    return check
