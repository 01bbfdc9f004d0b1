"""PolyLinkApp: the state machine CometBFT drives through ABCI.

Lifecycle of state:
  committed (SQLStore)  <- Commit writes the block branch in one transaction
     |-- check branch   (CheckTx; reset at every Commit, then CometBFT rechecks)
     `-- block branch   (InitChain + FinalizeBlock; app hash computed here,
                         nothing persisted until Commit)
Every tx runs in its own branch of the block branch: ante first, then the
messages in a nested branch; a failed message discards its branch but keeps
the ante's writes (fee, sequence).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from google.protobuf.message import Message

from chain.app.ante import SigCache, ante
from chain.app.ante import recheck as recheck_tx
from chain.app.module import AppModule, ParamsSpec
from chain.app.router import MsgRouter, QueryRouter
from chain.core.apphash import StateAccumulator
from chain.core.codec import decode, encode, to_json
from chain.core.consensus import Evidence, ValidatorUpdate, Vote
from chain.core.context import BlockHeader, Context, ExecMode
from chain.core.errors import ChainError, ErrInvalidRequest, ErrUnauthorized
from chain.core.events import Event
from chain.core.gas import GasMeter
from chain.core.store import CacheStore, KVStore, MemStore
from chain.core.tx import decode_tx
from chain.modules.auth.keeper import AccountKeeper
from chain.modules.auth.module import AuthModule
from chain.modules.auth.params import gas_schedule
from chain.modules.bank.keeper import BankKeeper
from chain.modules.bank.module import BankModule
from chain.modules.gov.keeper import GovKeeper
from chain.modules.gov.module import GovModule
from chain.modules.inference.keeper import InferenceKeeper
from chain.modules.inference.module import InferenceModule
from chain.modules.pricing.keeper import PricingKeeper
from chain.modules.pricing.module import PricingModule
from chain.modules.registry.keeper import RegistryKeeper
from chain.modules.registry.module import RegistryModule
from chain.modules.rewards.keeper import RewardsKeeper
from chain.modules.rewards.module import RewardsModule
from chain.modules.slashing.keeper import SlashingKeeper
from chain.modules.slashing.module import SlashingModule
from chain.modules.staking.keeper import StakingKeeper
from chain.modules.staking.module import StakingModule
from chain.modules.tiqe.keeper import TiqeKeeper
from chain.modules.tiqe.module import TiqeModule
from chain.storage.sql import SQLStore

log = logging.getLogger("polylink.app")

APP_VERSION = 1
MODULE_ACCOUNTS = [
    "bonded_pool", "community_pool", "escrow", "fee_collector", "gov", "not_bonded_pool", "worker_bond_pool",
]
# app_state key of the genesis txs (MsgCreateValidator, gentx-style), run after every module's genesis
GENTX_KEY = "genutil"
QUERY_GAS_LIMIT = 50_000_000


@dataclass
class TxResult:
    code: int = 0
    codespace: str = ""
    log: str = ""
    gas_wanted: int = 0
    gas_used: int = 0
    events: list[Event] = field(default_factory=list)
    data: bytes = b""

    @staticmethod
    def error(e: ChainError, gas_wanted: int = 0, gas_used: int = 0, events: list[Event] | None = None) -> TxResult:
        return TxResult(e.code, e.codespace, e.log, gas_wanted, gas_used, events or [])


@dataclass
class BlockResult:
    tx_results: list[TxResult]
    events: list[Event]
    app_hash: bytes
    validator_updates: list[ValidatorUpdate] = field(default_factory=list)



class Modules:
    """The module manager: keepers wired together, in genesis order."""

    def __init__(self) -> None:
        self.auth = AccountKeeper(MODULE_ACCOUNTS)
        self.bank = BankKeeper(self.auth)
        self.staking = StakingKeeper(self.auth, self.bank)
        self.slashing = SlashingKeeper(self.staking)
        self.gov = GovKeeper(self.auth, self.bank, self.staking)
        self.registry = RegistryKeeper(self.auth, self.bank)
        self.inference = InferenceKeeper(self.auth, self.bank, self.registry)
        self.tiqe = TiqeKeeper(self.auth, self.bank, self.staking, self.slashing, self.registry, self.inference)
        self.inference.set_scorer(self.tiqe)
        self.rewards = RewardsKeeper(self.auth, self.bank, self.staking)
        self.inference.set_rewards(self.rewards)
        self.pricing = PricingKeeper(self.registry)
        self.inference.set_pricer(self.pricing)
        # Genesis, BeginBlock and EndBlock run in this order: gov first (an upgrade
        # halts before anything else; proposals execute before staking computes the
        # validator set), staking's EndBlock reports the set, slashing's BeginBlock
        # reads the last commit; tiqe follows inference (its BeginBlock closes the scoring
        # windows that ended with the block before, ahead of staking's EndBlock); rewards'
        # BeginBlock pays the block's emission to the validators bonded at its start; pricing's
        # EndBlock follows inference's, so a block's requests (and reassignments' workers) are in.
        self.all: list[AppModule] = [
            AuthModule(self.auth),
            BankModule(self.bank),
            GovModule(self.gov),
            StakingModule(self.staking),
            SlashingModule(self.slashing),
            RegistryModule(self.registry),
            InferenceModule(self.inference),
            TiqeModule(self.tiqe),
            RewardsModule(self.rewards),
            PricingModule(self.pricing),
        ]
        self.msgs = MsgRouter(self.all)
        self.queries = QueryRouter(self.all)
        self.params: dict[str, ParamsSpec] = {
            m.name: spec for m in self.all if (spec := m.params_spec()) is not None
        }
        self.gov.bind(self.msgs, self.params)


class PolyLinkApp:
    def __init__(self, store: SQLStore | None, *, invariant_period: int = 0) -> None:
        """`store` None runs on memory only (tests, simulations)."""
        self.store = store
        self.m = Modules()
        self.invariant_period = invariant_period
        self.sigs = SigCache()
        self._mem = MemStore()
        last = store.last_commit() if store else None
        self.height = last.height if last else 0
        self.app_hash = last.app_hash if last else b""
        acc = store.get_meta("accumulator") if store else None
        self.acc = StateAccumulator.from_bytes(acc) if acc else StateAccumulator()
        self.chain_id = (store.get_meta("chain_id") or b"").decode() if store else ""
        mg = store.get_meta("max_block_gas") if store else None
        self.max_block_gas = int(mg) if mg else -1
        self.last_header = BlockHeader(self.chain_id, self.height)
        self.block: CacheStore | None = None
        # InitChain's branch and meta, kept until the first Commit persists them
        self._genesis: tuple[CacheStore, dict[str, bytes]] | None = None
        self._pending: tuple[int, bytes, StateAccumulator] | None = None
        self.check = CacheStore(self.committed)
        self.genesis_validators: list[ValidatorUpdate] = []

    @property
    def committed(self) -> KVStore:
        return self.store if self.store is not None else self._mem

    # --- genesis -----------------------------------------------------------
    def init_chain(
        self, chain_id: str, app_state: bytes, initial_height: int, time_ns: int, max_block_gas: int
    ) -> bytes:
        """Run every module's genesis in the block branch; returns the genesis app hash."""
        self.chain_id = chain_id
        self.max_block_gas = max_block_gas
        self.block = CacheStore(self.committed)
        header = BlockHeader(chain_id, max(initial_height, 1) - 1, time_ns)
        ctx = Context(self.block, header, ExecMode.GENESIS)
        state = json.loads(app_state or b"{}")
        if not isinstance(state, dict):
            raise ErrInvalidRequest.wrap("app_state must be a JSON object")
        known = {m.name for m in self.m.all} | {GENTX_KEY}
        unknown = sorted(set(state) - known)
        if unknown:
            raise ErrInvalidRequest.wrap(f"app_state has unknown modules {unknown}")
        for mod in self.m.all:
            gs = mod.genesis_from_json(state[mod.name]) if mod.name in state else mod.default_genesis()
            mod.validate_genesis(gs)
            mod.init_genesis(ctx, gs)
        self._run_gentxs(ctx, state.get(GENTX_KEY) or {})
        # the genesis validator set comes from app state (staking), not genesis.json
        self.genesis_validators = [u for mod in self.m.all for u in mod.end_block(ctx)]
        self._assert_invariants(ctx)
        self._genesis = (self.block, {"chain_id": chain_id.encode(), "max_block_gas": str(max_block_gas).encode()})
        self.check = CacheStore(self.block)  # CheckTx before block 1 sees the genesis state
        return self._stage(header.height)

    def _run_gentxs(self, ctx: Context, section: object) -> None:
        """Signed genesis txs (e.g. each validator's MsgCreateValidator), in order; any failure
        makes the genesis invalid."""
        if not isinstance(section, dict) or not isinstance(section.get("gen_txs", []), list):
            raise ErrInvalidRequest.wrap(f'app_state.{GENTX_KEY} must be {{"gen_txs": [base64 tx, ...]}}')
        for i, b64 in enumerate(section.get("gen_txs", [])):
            try:
                raw = base64.b64decode(str(b64), validate=True)
            except ValueError:
                raise ErrInvalidRequest.wrap(f"gen_txs[{i}] is not base64") from None
            r = self.run_tx(ctx, raw, hashlib.sha256(raw).digest())
            if r.code:
                raise ErrInvalidRequest.wrap(f"gen_txs[{i}] failed: {r.codespace}/{r.code} {r.log}")

    def export_genesis(self) -> dict[str, object]:
        """Every module's state at the last committed height, as app_state JSON."""
        ctx = self.query_context()
        return {m.name: to_json(m.export_genesis(ctx)) for m in self.m.all}

    # --- txs ---------------------------------------------------------------
    def run_tx(self, parent: Context, tx_bytes: bytes, tx_key: bytes) -> TxResult:
        try:
            tx = decode_tx(tx_bytes)
        except ChainError as e:
            return TxResult.error(e)
        gas_wanted = tx.auth.gas_limit
        meter = GasMeter(gas_wanted)
        actx, acache = parent.branch()
        actx.gas = meter
        try:
            # charged at the default schedule, like every tx; inside the try: a gas limit too small for
            # this one read is an out-of-gas refusal, not an exception out of the block (found by fuzzing)
            params = self.m.auth.get_params(actx)
            actx.gas_schedule = gas_schedule(params)
            msgs = []
            for a in tx.body.messages:
                route, msg = self.m.msgs.unpack(a)
                route.validate_basic(msg)
                if route.signer(msg) != tx.signer:
                    raise ErrUnauthorized.wrap(f"{a.type_url} must be signed by {route.signer(msg)}")
                msgs.append((route, msg))
            ante(actx, tx, tx_key, params, self.m.auth, self.m.bank, self.sigs, self.max_block_gas)
        except ChainError as e:
            return TxResult.error(e, gas_wanted, meter.used())
        acache.write()
        events = list(actx.events.events)
        mctx, mcache = parent.branch()
        mctx.gas = meter
        mctx.gas_schedule = actx.gas_schedule
        datas: list[bytes] = []
        try:
            for route, msg in msgs:
                datas.append(encode(route.handler(mctx, msg)))
        except ChainError as e:
            return TxResult.error(e, gas_wanted, meter.used(), events)
        mcache.write()
        events.extend(mctx.events.events)
        return TxResult(0, "", "", gas_wanted, meter.used(), events, b"".join(datas))

    def check_tx(self, tx_bytes: bytes, recheck: bool) -> TxResult:
        header = BlockHeader(self.chain_id, self.height + 1, self.last_header.time_ns)
        if recheck:
            ctx = Context(self.check, header, ExecMode.RECHECK)
            try:
                tx = decode_tx(tx_bytes)
                recheck_tx(ctx, tx, self.m.auth, self.m.bank)
            except ChainError as e:
                return TxResult.error(e)
            return TxResult(gas_wanted=tx.auth.gas_limit)
        # A tx CheckTx refuses never enters the mempool, so nothing of it may stay in the
        # check state (not even the ante's sequence bump, or the sender's next tx would be
        # refused for a sequence no block will ever use).
        ctx, branch = Context(self.check, header, ExecMode.CHECK).branch()
        r = self.run_tx(ctx, tx_bytes, hashlib.sha256(tx_bytes).digest())
        if r.code == 0:
            branch.write()
        return r

    # --- blocks ------------------------------------------------------------
    def prepare_proposal(self, txs: Sequence[bytes], max_tx_bytes: int) -> list[bytes]:
        """Take mempool txs in order within the byte and gas limits; drop undecodable ones."""
        out: list[bytes] = []
        size = gas = 0
        for t in txs:
            try:
                g = decode_tx(t).auth.gas_limit
            except ChainError:
                continue
            if size + len(t) > max_tx_bytes:
                break
            if self.max_block_gas > 0 and gas + g > self.max_block_gas:
                continue
            out.append(t)
            size += len(t)
            gas += g
        return out

    def process_proposal(self, txs: Sequence[bytes]) -> bool:
        """Reject a block whose declared gas exceeds the block max gas."""
        if self.max_block_gas <= 0:
            return True
        gas = 0
        for t in txs:
            try:
                gas += decode_tx(t).auth.gas_limit
            except ChainError:
                continue
        return gas <= self.max_block_gas

    def finalize_block(
        self,
        height: int,
        time_ns: int,
        block_hash: bytes,
        proposer: bytes,
        txs: Sequence[bytes],
        votes: Sequence[Vote] = (),
        misbehavior: Sequence[Evidence] = (),
    ) -> BlockResult:
        # Always a fresh branch (on top of genesis before the first Commit): a
        # FinalizeBlock repeated after a CometBFT restart must not see the writes
        # of the attempt whose Commit never came.
        self.block = CacheStore(self._genesis[0] if self._genesis else self.committed)
        header = BlockHeader(
            self.chain_id, height, time_ns, block_hash, proposer, tuple(votes), tuple(misbehavior)
        )
        ctx = Context(self.block, header, ExecMode.FINALIZE)
        for mod in self.m.all:
            mod.begin_block(ctx)
        results = [self.run_tx(ctx, t, hashlib.sha256(t).digest()) for t in txs]
        updates = [u for mod in self.m.all for u in mod.end_block(ctx)]
        if self.invariant_period and height % self.invariant_period == 0:
            self._assert_invariants(ctx)
        self.last_header = header
        return BlockResult(results, list(ctx.events.events), self._stage(height), updates)

    def _stage(self, height: int) -> bytes:
        """Compute the app hash of the block branch (over genesis, if pending); keep it for Commit."""
        assert self.block is not None
        committed = self.committed
        changes = [(k, committed.get(k), v) for k, v in self._changes()]
        acc = self.acc.apply(changes)
        self._pending = (height, acc.app_hash(), acc)
        return self._pending[1]

    def _changes(self) -> list[tuple[bytes, bytes | None]]:
        """Everything the next Commit writes: genesis (if pending) then the block, merged."""
        assert self.block is not None
        if self._genesis is None or self.block is self._genesis[0]:
            return self.block.changes()
        merged = dict(self._genesis[0].changes())
        merged.update(self.block.changes())
        return sorted(merged.items())

    def reset_check_state(self) -> None:
        """A new CometBFT connection (a restarted node): its mempool is gone, so the check
        branch's pending sequences go too. A staged block is left alone: FinalizeBlock
        always starts a fresh branch, so a stale one can never be committed."""
        self.check = CacheStore(self._genesis[0] if self._genesis else self.committed)

    def commit(self) -> int:
        """Persist the block branch (and genesis, the first time), height and app hash atomically."""
        if self._pending is None or self.block is None:
            raise RuntimeError("Commit without FinalizeBlock")
        height, app_hash, acc = self._pending
        meta = {
            **(self._genesis[1] if self._genesis else {}),
            "height": str(height).encode(), "app_hash": app_hash, "accumulator": acc.to_bytes(),
        }
        if self.store is not None:
            self.store.commit(self._changes(), meta)
        else:
            if self._genesis and self.block is not self._genesis[0]:
                self.block.write()  # into the genesis branch
                self._genesis[0].write()
            else:
                self.block.write()
        self.height, self.app_hash, self.acc = height, app_hash, acc
        self.block = None
        self._genesis = None
        self._pending = None
        self.check = CacheStore(self.committed)
        return 0

    # --- queries -----------------------------------------------------------
    def query_context(self) -> Context:
        return Context(self.committed, self.last_header, ExecMode.QUERY, GasMeter(QUERY_GAS_LIMIT))

    def query(self, path: str, data: bytes) -> Message:
        """Answer a gRPC-style query path over the last committed state."""
        route = self.m.queries.get(path)
        req = decode(route.request_cls, data, path)
        return route.handler(self.query_context(), req)

    def simulate(self, tx_bytes: bytes) -> TxResult:
        """Run a tx against a throwaway branch of the committed state."""
        header = BlockHeader(self.chain_id, self.height + 1, self.last_header.time_ns)
        ctx = Context(CacheStore(self.committed), header, ExecMode.SIMULATE)
        return self.run_tx(ctx, tx_bytes, hashlib.sha256(tx_bytes).digest())

    # --- invariants --------------------------------------------------------
    def check_invariants(self, ctx: Context | None = None) -> list[str]:
        """Every broken invariant over `ctx` (default: the last committed state, unmetered: an
        invariant walks whole stores, which a query's gas limit would cut short)."""
        ctx = ctx or Context(self.committed, self.last_header, ExecMode.QUERY)
        broken = []
        for mod in self.m.all:
            for name, inv in mod.invariants():
                msg = inv(ctx)
                if msg:
                    broken.append(f"{name}: {msg}")
        return broken

    def _assert_invariants(self, ctx: Context) -> None:
        broken = self.check_invariants(Context(ctx.store, ctx.header, ExecMode.QUERY))
        if broken:
            # a broken invariant is a bug: stop loudly rather than diverge silently
            raise RuntimeError("invariant broken: " + "; ".join(broken))
