"""RegistryKeeper: the only code that reads or writes registry state.

Bonds: every worker's bond is held by module account `worker_bond_pool`
(invariant `registry/bond-pool`); it enters on MsgRegisterWorker /
MsgUpdateWorker, leaves to the community pool when slashed, and goes back to
the worker at the end of the block in which its unbonding completes.

Interface for the inference module (and TIQE later), see
docs/design/registry-inference-worker.md:
- `get_params`, `get_model`, `get_worker`;
- `eligible_workers(ctx, model_id, max_tokens, window_blocks)`: (address,
  weight) in address-byte order;
- `add_inflight` / `release_inflight`;
- `slash_worker` (bond -> community pool) and `jail_worker`;
- `get_stats`, `set_quality`, `set_fidelity`, `record_result`, `record_miss`.
A worker can be deleted (its unbonding completed) while inference still
holds an assignment of it: `release_inflight`, `slash_worker`, `jail_worker`
and the stats writers then do nothing, since per-block work must not fail.

Event amounts are plain integers of upoly.
"""

from __future__ import annotations

from polylink.base.v1.query_pb2 import PageRequest, PageResponse
from polylink.registry.v1 import types_pb2

from chain.core.address import from_bech32, to_bech32
from chain.core.codec import decode, encode
from chain.core.coins import BOND_DENOM, Coins
from chain.core.context import Context
from chain.core.events import Event, index_keys
from chain.core.query import paginate
from chain.core.store import KVStore, PrefixStore
from chain.modules.registry import keys
from chain.modules.registry.errors import ErrInvalidFraction, ErrInvalidQuality, ErrNoWorker
from chain.modules.registry.expected import AccountKeeper, BankKeeper
from chain.modules.registry.params import COMMUNITY_POOL, PPM, WORKER_BOND_POOL, default_params

Model = types_pb2.Model
Worker = types_pb2.Worker
WorkerModelStats = types_pb2.WorkerModelStats
ACTIVE = types_pb2.WORKER_STATUS_ACTIVE
UNBONDING = types_pb2.WORKER_STATUS_UNBONDING

index_keys("registry.model_registered", "model_id", "provider")
for _t in (
    "registry.worker_registered",
    "registry.worker_updated",
    "registry.worker_unregistered",
    "registry.worker_unbonded",
    "registry.worker_slashed",
    "registry.worker_jailed",
):
    index_keys(_t, "worker")


def bond_coins(amount: int) -> Coins:
    return Coins({BOND_DENOM: amount})


class RegistryKeeper:
    def __init__(self, ak: AccountKeeper, bk: BankKeeper) -> None:
        self.ak = ak
        self.bk = bk

    def _kv(self, ctx: Context) -> KVStore:
        return ctx.kv(keys.NAMESPACE)

    # --- params ----------------------------------------------------------
    def get_params(self, ctx: Context) -> types_pb2.Params:
        raw = self._kv(ctx).get(keys.PARAMS)
        return default_params() if raw is None else decode(types_pb2.Params, raw)

    def set_params(self, ctx: Context, p: types_pb2.Params) -> None:
        """Store params (validated by the caller)."""
        self._kv(ctx).set(keys.PARAMS, encode(p))

    # --- models ----------------------------------------------------------
    def get_model(self, ctx: Context, model_id: str) -> Model | None:
        raw = self._kv(ctx).get(keys.model_key(model_id))
        return None if raw is None else decode(Model, raw)

    def set_model(self, ctx: Context, m: Model) -> None:
        self._kv(ctx).set(keys.model_key(m.model_id), encode(m))

    def models(self, ctx: Context) -> list[Model]:
        """Every model, ascending by model id."""
        return [decode(Model, raw) for _, raw in PrefixStore(self._kv(ctx), keys.MODEL).iterate()]

    def models_page(self, ctx: Context, page: PageRequest | None) -> tuple[list[Model], PageResponse]:
        """One page of the models, ascending by model id (the page key is a model id)."""
        return paginate(PrefixStore(self._kv(ctx), keys.MODEL), page, lambda _k, raw: decode(Model, raw))

    # --- workers ---------------------------------------------------------
    def get_worker(self, ctx: Context, addr: str) -> Worker | None:
        raw = self._kv(ctx).get(keys.worker_key(from_bech32(addr)))
        return None if raw is None else decode(Worker, raw)

    def must_worker(self, ctx: Context, addr: str) -> Worker:
        w = self.get_worker(ctx, addr)
        if w is None:
            raise ErrNoWorker.wrap(addr)
        return w

    def set_worker(self, ctx: Context, w: Worker) -> None:
        """Write an existing worker whose models did not change (see `add_worker`, `set_models`)."""
        self._kv(ctx).set(keys.worker_key(from_bech32(w.address)), encode(w))

    def add_worker(self, ctx: Context, w: Worker) -> None:
        """Write a new worker and its by-model index entries."""
        kv = self._kv(ctx)
        raw = from_bech32(w.address)
        for m in w.models:
            kv.set(keys.by_model_key(m, raw), b"")
        self.set_worker(ctx, w)

    def set_models(self, ctx: Context, w: Worker, models: list[str]) -> None:
        """Replace the worker's models (stored sorted) and its index entries; the caller
        writes `w`."""
        kv = self._kv(ctx)
        raw = from_bech32(w.address)
        new = sorted(models)
        for m in sorted(set(w.models) - set(new)):
            kv.delete(keys.by_model_key(m, raw))
        for m in sorted(set(new) - set(w.models)):
            kv.set(keys.by_model_key(m, raw), b"")
        del w.models[:]
        w.models.extend(new)

    def delete_worker(self, ctx: Context, w: Worker) -> None:
        """Remove a worker, its index entries and every stats record it has."""
        kv = self._kv(ctx)
        raw = from_bech32(w.address)
        for m in w.models:
            kv.delete(keys.by_model_key(m, raw))
        stats = [k for k, _ in PrefixStore(kv, keys.stats_prefix(raw)).iterate()]
        for model in stats:
            kv.delete(keys.stats_prefix(raw) + model)
        if w.status == UNBONDING:
            kv.delete(keys.unbonding_key(w.unbonding_completion_height, raw))
        kv.delete(keys.worker_key(raw))

    def workers(self, ctx: Context) -> list[Worker]:
        """Every worker, in address-byte order."""
        return [decode(Worker, raw) for _, raw in PrefixStore(self._kv(ctx), keys.WORKER).iterate()]

    def workers_serving(self, ctx: Context, model_id: str) -> list[Worker]:
        """The workers whose models include `model_id` (any status), in address-byte order."""
        kv = self._kv(ctx)
        out = []
        for raw_addr, _ in PrefixStore(kv, keys.by_model_prefix(model_id)).iterate():
            raw = kv.get(keys.worker_key(raw_addr))
            assert raw is not None, f"by-model index names a missing worker {to_bech32(raw_addr)}"
            out.append(decode(Worker, raw))
        return out

    def begin_unbonding(self, ctx: Context, w: Worker) -> int:
        """ACTIVE -> UNBONDING (checked by the caller); returns the completion height."""
        completion = ctx.height + self.get_params(ctx).unbonding_blocks
        w.status = UNBONDING
        w.unbonding_completion_height = completion
        self.set_worker(ctx, w)
        self.enqueue_unbonding(ctx, w)
        return completion

    def enqueue_unbonding(self, ctx: Context, w: Worker) -> None:
        """Queue an UNBONDING worker for `end_block` at its completion height."""
        self._kv(ctx).set(keys.unbonding_key(w.unbonding_completion_height, from_bech32(w.address)), b"")

    def total_bonds(self, ctx: Context) -> int:
        return sum(int(w.bond) for w in self.workers(ctx))

    def pool_balance(self, ctx: Context) -> int:
        return self.bk.get_balance(ctx, self.ak.module_address(WORKER_BOND_POOL), BOND_DENOM)

    # --- selection (inference) ---------------------------------------------
    def eligible_workers(
        self, ctx: Context, model_id: str, max_tokens: int, window_blocks: int
    ) -> list[tuple[str, int]]:
        """(address, weight) of the workers that may take a request of `max_tokens` for the
        model, in address-byte order: ACTIVE, not jailed (height >= jailed_until_height),
        serving the model, bond >= min_worker_bond, and with room (`inflight_tokens +
        max_tokens <= capacity * window_blocks`: capacity is tokens per block and an
        assignment stays open at most `window_blocks`). weight = bond * quality_ema_ppm;
        workers whose weight is 0 are left out."""
        out: list[tuple[str, int]] = []
        for w in self.active_workers(ctx, model_id):
            if w.inflight_tokens + max_tokens > w.capacity * window_blocks:
                continue
            weight = int(w.bond) * self.get_stats(ctx, w.address, model_id).quality_ema_ppm
            if weight > 0:
                out.append((w.address, weight))
        return out

    def active_workers(self, ctx: Context, model_id: str) -> list[Worker]:
        """The workers serving the model that may take work now, in address-byte order: ACTIVE,
        not jailed (height >= jailed_until_height) and bond >= min_worker_bond."""
        min_bond = int(self.get_params(ctx).min_worker_bond)
        return [
            w
            for w in self.workers_serving(ctx, model_id)
            if w.status == ACTIVE and ctx.height >= w.jailed_until_height and int(w.bond) >= min_bond
        ]

    def active_capacity(self, ctx: Context, model_id: str) -> int:
        """Tokens per block the model's active workers commit to serve (pricing's supply)."""
        return sum(w.capacity for w in self.active_workers(ctx, model_id))

    def add_inflight(self, ctx: Context, addr: str, tokens: int) -> None:
        """Count `tokens` of a new open assignment against the worker's capacity.
        Raises ErrNoWorker (a caller bug: assignments go only to existing workers)."""
        w = self.must_worker(ctx, addr)
        w.inflight_tokens += tokens
        self.set_worker(ctx, w)

    def release_inflight(self, ctx: Context, addr: str, tokens: int) -> None:
        """Release `tokens` of a closed assignment (never below 0; a deleted worker is ignored)."""
        w = self.get_worker(ctx, addr)
        if w is None:
            return
        w.inflight_tokens = max(w.inflight_tokens - tokens, 0)
        self.set_worker(ctx, w)

    # --- penalties -------------------------------------------------------
    def slash_worker(self, ctx: Context, addr: str, fraction_ppm: int, reason: str) -> int:
        """Take bond * fraction_ppm // 10**6 (floor: rounding favours the worker) from the
        worker's bond, ACTIVE or UNBONDING, into the community pool; returns the amount
        (0 for a worker that no longer exists). Emits `registry.worker_slashed`."""
        if not 0 <= fraction_ppm <= PPM:
            raise ErrInvalidFraction.wrap(str(fraction_ppm))
        w = self.get_worker(ctx, addr)
        if w is None:
            return 0
        bond = int(w.bond)
        amount = bond * fraction_ppm // PPM
        if amount:
            w.bond = str(bond - amount)
            self.set_worker(ctx, w)
            community = self.ak.module_address(COMMUNITY_POOL)
            self.bk.send_from_module(ctx, WORKER_BOND_POOL, community, bond_coins(amount))
        ctx.emit(Event.of("registry.worker_slashed", worker=addr, amount=amount, reason=reason))
        return amount

    def take_bond(self, ctx: Context, addr: str, amount: int, to_address: str) -> int:
        """Move up to `amount` of the worker's bond to `to_address` (a swarm ticket into
        inference's escrow); returns what was taken (0 for an unknown worker)."""
        w = self.get_worker(ctx, addr)
        if w is None or amount <= 0:
            return 0
        take = min(amount, int(w.bond))
        if take:
            w.bond = str(int(w.bond) - take)
            self.set_worker(ctx, w)
            self.bk.send_from_module(ctx, WORKER_BOND_POOL, to_address, bond_coins(take))
        return take

    def bond_pool_address(self) -> str:
        return self.ak.module_address(WORKER_BOND_POOL)

    def add_bond(self, ctx: Context, addr: str, amount: int) -> bool:
        """Credit `amount` to the worker's bond; the coins must already sit in worker_bond_pool.
        False (nothing credited) when the worker no longer exists."""
        w = self.get_worker(ctx, addr)
        if w is None:
            return False
        w.bond = str(int(w.bond) + amount)
        self.set_worker(ctx, w)
        return True

    def jail_worker(self, ctx: Context, addr: str, until_height: int, reason: str) -> None:
        """No new work for the worker before `until_height` (a later existing release height
        wins; a worker that no longer exists is ignored). Emits `registry.worker_jailed`."""
        w = self.get_worker(ctx, addr)
        if w is None:
            return
        w.jailed_until_height = max(w.jailed_until_height, until_height)
        self.set_worker(ctx, w)
        ctx.emit(
            Event.of("registry.worker_jailed", worker=addr, until_height=w.jailed_until_height, reason=reason)
        )

    # --- stats -----------------------------------------------------------
    def get_stats(self, ctx: Context, addr: str, model_id: str) -> WorkerModelStats:
        """The worker's record for the model; a fresh one when missing, both EMAs (quality and
        fidelity) at initial_quality_ppm: a new worker starts in the middle on both, neither
        trusted nor suspected."""
        raw = self._kv(ctx).get(keys.stats_key(from_bech32(addr), model_id))
        if raw is not None:
            return decode(WorkerModelStats, raw)
        q = self.get_params(ctx).initial_quality_ppm
        return WorkerModelStats(worker=addr, model_id=model_id, quality_ema_ppm=q, fidelity_ema_ppm=q)

    def has_stats(self, ctx: Context, addr: str, model_id: str) -> bool:
        return self._kv(ctx).get(keys.stats_key(from_bech32(addr), model_id)) is not None

    def set_stats(self, ctx: Context, s: WorkerModelStats) -> None:
        self._kv(ctx).set(keys.stats_key(from_bech32(s.worker), s.model_id), encode(s))

    def all_stats(self, ctx: Context) -> list[WorkerModelStats]:
        """Every stats record, by (worker address bytes, model id)."""
        return [decode(WorkerModelStats, v) for _, v in PrefixStore(self._kv(ctx), keys.STATS).iterate()]

    def _update_stats(self, ctx: Context, addr: str, model_id: str) -> WorkerModelStats | None:
        """The stats to change, or None when the worker no longer exists (nothing is recorded)."""
        if self.get_worker(ctx, addr) is None:
            return None
        return self.get_stats(ctx, addr, model_id)

    def set_quality(self, ctx: Context, addr: str, model_id: str, ppm: int) -> None:
        """The worker's quality EMA for the model (0..10^6; it weighs assignment)."""
        if not 0 <= ppm <= PPM:
            raise ErrInvalidQuality.wrap(str(ppm))
        s = self._update_stats(ctx, addr, model_id)
        if s is not None:
            s.quality_ema_ppm = ppm
            self.set_stats(ctx, s)

    def set_fidelity(self, ctx: Context, addr: str, model_id: str, ppm: int) -> None:
        """The worker's fidelity EMA for the model (0..10^6; it decides substitution, never assignment)."""
        if not 0 <= ppm <= PPM:
            raise ErrInvalidQuality.wrap(f"fidelity {ppm}")
        s = self._update_stats(ctx, addr, model_id)
        if s is not None:
            s.fidelity_ema_ppm = ppm
            self.set_stats(ctx, s)

    def record_result(self, ctx: Context, addr: str, model_id: str) -> None:
        s = self._update_stats(ctx, addr, model_id)
        if s is not None:
            s.results += 1
            self.set_stats(ctx, s)

    def record_miss(self, ctx: Context, addr: str, model_id: str) -> None:
        s = self._update_stats(ctx, addr, model_id)
        if s is not None:
            s.misses += 1
            self.set_stats(ctx, s)

    # --- per block -------------------------------------------------------
    def end_block(self, ctx: Context) -> None:
        """Every UNBONDING worker whose completion height <= the current one gets what is
        left of its bond back; the worker and its stats are deleted. A worker that still
        has open assignments (inflight_tokens > 0) waits, one block at a time, until they
        close: its bond must stay slashable for a deadline it may yet miss."""
        kv = self._kv(ctx)
        due = [k for k, _ in PrefixStore(kv, keys.UNBONDING).iterate(b"", keys.height_bytes(ctx.height + 1))]
        for key in due:
            kv.delete(keys.UNBONDING + key)
            addr = to_bech32(key[8:])
            w = self.get_worker(ctx, addr)
            if w is None or w.status != UNBONDING or w.unbonding_completion_height > ctx.height:
                continue  # defensive: a stale queue entry
            if w.inflight_tokens > 0:
                w.unbonding_completion_height = ctx.height + 1
                self.set_worker(ctx, w)
                self.enqueue_unbonding(ctx, w)
                continue
            amount = int(w.bond)
            self.delete_worker(ctx, w)
            if amount:
                self.bk.send_from_module(ctx, WORKER_BOND_POOL, addr, bond_coins(amount))
            ctx.emit(Event.of("registry.worker_unbonded", worker=addr, amount=amount))
