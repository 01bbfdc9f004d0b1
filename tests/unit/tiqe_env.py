"""An in-memory chain with the app's real module wiring (`chain.app.app.Modules`) for the tiqe tests.

Every keeper is the real one (staking, slashing, registry, inference, tiqe,
wired as the app wires them, the scorer bound), but messages skip the tx
envelope: `deliver(msg)` runs the route's stateless check and handler in a
branch kept only on success, at the current height. `end_block()` runs every
module's end_block in the app's order, moves to the next height and runs
every module's begin_block there (tiqe closes due windows in its begin_block).
Block hashes are sha256("block" || height).

Genesis: `validators` (name -> power) are created with the staking keeper and
bonded by the genesis end_block; one model (price 1000 upoly / 1000 tokens)
and `workers` are registered through registry messages at height 1.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from google.protobuf.message import Message
from polylink.base.v1 import coin_pb2
from polylink.inference.v1 import tx_pb2 as inf_tx
from polylink.inference.v1 import types_pb2 as inf_types
from polylink.registry.v1 import tx_pb2 as reg_tx
from polylink.tiqe.v1 import tx_pb2, types_pb2

from chain.app.app import Modules
from chain.app.module import AppModule
from chain.core.address import address_bytes, module_address, to_bech32
from chain.core.codec import type_url
from chain.core.coins import BOND_DENOM
from chain.core.context import BlockHeader, Context, ExecMode
from chain.core.errors import ChainError
from chain.core.events import Event
from chain.core.store import MemStore
from chain.modules.inference.keeper import commitment_of
from chain.modules.tiqe.keeper import score_commitment

T = TypeVar("T")
CHAIN = "tiqe-test"
PPM = 1_000_000
POLY = 1_000_000
MODEL = "tiny"
PRICE = 1000
START = 10_000 * POLY
WORKER_BOND = 1_000
ESCROW_ADDR = module_address("escrow")
COMMUNITY_ADDR = module_address("community_pool")
POOL_ADDR = module_address("worker_bond_pool")
# the localnet's jail periods; every other param keeps its default
LOCAL_TIQE = {"no_reveal_jail_blocks": "10", "worker_jail_blocks": "20"}


def addr(name: str) -> str:
    return to_bech32(hashlib.sha256(b"acct:" + name.encode()).digest()[:20])


def pubkey(name: str) -> bytes:
    return hashlib.sha256(b"cons:" + name.encode()).digest()


def cons(name: str) -> bytes:
    return address_bytes(pubkey(name))


def block_hash(height: int) -> bytes:
    return hashlib.sha256(b"block" + height.to_bytes(8, "big")).digest()


USER = addr("user")
PROVIDER = addr("provider")


class Env:
    def __init__(
        self,
        validators: dict[str, int] | None = None,
        workers: Sequence[str] = ("w0",),
        tiqe: dict[str, str] | None = None,
        inference: dict[str, str] | None = None,
        rewards: dict[str, str] | None = None,
        store: MemStore | None = None,
        height: int = 1,
    ) -> None:
        """`validators`: name -> power (default val0..val3 with 10 each); `tiqe`/`inference`:
        param overrides (JSON values) merged over the localnet values; `rewards`: over the
        defaults with no block emission (these tests count balances exactly)."""
        self.store = store or MemStore()
        self.m = Modules()
        self.mods: dict[str, AppModule] = {mod.name: mod for mod in self.m.all}
        self.height = height
        self.events: list[Event] = []
        self.vals = validators if validators is not None else {f"val{i}": 10 for i in range(4)}
        self.workers = [addr(w) for w in workers]
        if store is not None:
            return
        accounts = [USER, PROVIDER, *self.workers, *(addr(v) for v in self.vals)]
        coins = [{"denom": BOND_DENOM, "amount": str(START)}]
        balances = [{"address": a, "coins": coins} for a in sorted(set(accounts))]
        state: dict[str, dict[str, object]] = {
            "bank": {"balances": balances},
            "registry": {"params": {"min_worker_bond": str(WORKER_BOND)}},
            "tiqe": {"params": {**LOCAL_TIQE, **(tiqe or {})}},
            "inference": {"params": inference or {}},
            "rewards": {"params": {"block_reward": "0", **(rewards or {})}},
        }
        ctx = Context(self.store, BlockHeader(CHAIN, height - 1), ExecMode.GENESIS)
        for mod in self.m.all:
            gs = mod.genesis_from_json(state[mod.name]) if mod.name in state else mod.default_genesis()
            mod.validate_genesis(gs)
            mod.init_genesis(ctx, gs)
        for name, power in sorted(self.vals.items()):
            self.m.staking.create_validator(ctx, addr(name), pubkey(name), power * POLY, 0, name, 1)
        for mod in self.m.all:
            mod.end_block(ctx)
        if workers:
            self.deliver(
                reg_tx.MsgRegisterModel(
                    provider=PROVIDER, model_id=MODEL, sha256="ab" * 32, context_length=4096, base_price=str(PRICE)
                )
            )
            for w in self.workers:
                self.register_worker(w)

    # --- running -------------------------------------------------------------
    def ctx(self, mode: ExecMode = ExecMode.FINALIZE) -> Context:
        return Context(self.store, BlockHeader(CHAIN, self.height, hash=block_hash(self.height)), mode)

    def q(self) -> Context:
        return self.ctx(ExecMode.QUERY)

    def run(self, fn: Callable[[Context], T]) -> T:
        """Run fn like a tx: its writes stay only if it returns (a ChainError discards them)."""
        ctx, cache = self.ctx().branch()
        out = fn(ctx)
        cache.write()
        self.events.extend(ctx.events.events)
        return out

    def deliver(self, msg: Message) -> Any:
        route = self.m.msgs.routes[type_url(type(msg))]
        route.validate_basic(msg)
        return self.run(lambda ctx: route.handler(ctx, msg))

    def try_deliver(self, msg: Message) -> Any:
        try:
            return self.deliver(msg)
        except ChainError as e:
            return e

    def end_block(self) -> None:
        """Close this block (every module's end_block) and open the next (every module's
        begin_block: tiqe closes the windows that ended with this block there)."""
        ctx = self.ctx()
        for mod in self.m.all:
            mod.end_block(ctx)
        self.events.extend(ctx.events.events)
        self.height += 1
        ctx = self.ctx()
        for mod in self.m.all:
            mod.begin_block(ctx)
        self.events.extend(ctx.events.events)

    def advance(self, blocks: int) -> None:
        for _ in range(blocks):
            self.end_block()

    def invariants(self) -> list[str]:
        """Broken invariants where the app checks them: at the end of the current block (every
        end_block run on a throwaway branch; mid-block, staking's last powers may lag a slash)."""
        ctx, _ = self.ctx().branch()
        for mod in self.m.all:
            mod.end_block(ctx)
        q = Context(ctx.store, ctx.header, ExecMode.QUERY)
        return [f"{n}: {msg}" for mod in self.m.all for n, inv in mod.invariants() if (msg := inv(q))]

    def events_of(self, type_: str) -> list[dict[str, str]]:
        return [dict(e.attributes) for e in self.events if e.type == type_]

    # --- registry and inference ---------------------------------------------------
    def register_worker(self, w: str) -> None:
        bond = coin_pb2.Coin(denom=BOND_DENOM, amount=str(WORKER_BOND * 1000))
        self.deliver(reg_tx.MsgRegisterWorker(worker=w, endpoint="http://w", models=[MODEL], capacity=1000, bond=bond))

    def ask(self, redundancy: int = 1, max_tokens: int = 100, max_price: int = PRICE) -> int:
        msg = inf_tx.MsgRequestInference(
            requester=USER,
            model_id=MODEL,
            prompt="What is 2+2?",
            max_tokens=max_tokens,
            max_price=str(max_price),
            redundancy=redundancy,
        )
        return int(self.deliver(msg).request_id)

    def assigned(self, rid: int) -> list[str]:
        r = self.request(rid)
        return [a.worker for a in r.assignments if a.attempt == r.reassignments]

    def answer(self, responses: dict[str, str] | None = None, redundancy: int = 1, tokens: int = 10) -> int:
        """A request answered by its assigned workers in this block (assignment in the block
        before): returns its id; its results are then SCORING (or final if unscoreable)."""
        rid = self.ask(redundancy)
        self.end_block()
        ws = self.assigned(rid)
        if redundancy == 1:
            (w,) = ws
            text = (responses or {}).get(w, "4")
            self.deliver(inf_tx.MsgSubmitResult(worker=w, request_id=rid, response=text, completion_tokens=tokens))
            return rid
        for w in ws:
            text = (responses or {}).get(w, "4")
            self.deliver(
                inf_tx.MsgCommitResult(worker=w, request_id=rid, commitment=commitment_of(text, b"s", w))
            )
        for w in ws:
            text = (responses or {}).get(w, "4")
            self.deliver(
                inf_tx.MsgRevealResult(worker=w, request_id=rid, response=text, salt=b"s", completion_tokens=tokens)
            )
        return rid

    def request(self, rid: int) -> inf_types.Request:
        return self.m.inference.must_get_request(self.q(), rid)

    def result(self, res_id: int) -> inf_types.Result:
        res = self.m.inference.get_result(self.q(), res_id)
        assert res is not None
        return res

    def result_ids(self, rid: int) -> list[int]:
        return [x.id for x in self.m.inference.results_of(self.q(), self.request(rid))]

    def balance(self, address: str) -> int:
        return self.m.bank.get_balance(self.q(), address, BOND_DENOM)

    # --- tiqe ----------------------------------------------------------------
    def round(self, result_id: int) -> types_pb2.Round:
        return self.m.tiqe.must_get_round(self.q(), result_id)

    def committee(self, result_id: int) -> list[str]:
        return [m.validator for m in self.round(result_id).members]

    def rating(self, validator: str) -> types_pb2.ValidatorRating:
        return self.m.tiqe.get_rating(self.q(), validator)

    def commit(
        self, validator: str, result_id: int, score: int, salt: bytes = b"salt", fidelity: int = PPM
    ) -> Any:
        """Commit quality `score` and `fidelity` (default 10^6: the registered model's answer)."""
        c = score_commitment(score, fidelity, salt, validator)
        return self.deliver(tx_pb2.MsgCommitScore(validator=validator, result_id=result_id, commitment=c))

    def reveal(
        self, validator: str, result_id: int, score: int, salt: bytes = b"salt", fidelity: int = PPM
    ) -> Any:
        return self.deliver(
            tx_pb2.MsgRevealScore(
                validator=validator, result_id=result_id, quality_ppm=score, fidelity_ppm=fidelity, salt=salt
            )
        )

    def score(self, result_id: int, scores: Mapping[str, int | tuple[int, int]]) -> None:
        """Every named member commits, then reveals, in this block (the reveal window opens
        only when the whole committee committed: name them all, or close the window first).
        A score is a quality (fidelity 10^6) or a (quality, fidelity) pair."""
        pairs = {v: (s, PPM) if isinstance(s, int) else s for v, s in scores.items()}
        for v, (q, f) in pairs.items():
            self.commit(v, result_id, q, fidelity=f)
        for v, (q, f) in pairs.items():
            self.reveal(v, result_id, q, fidelity=f)

    def validator(self, name_or_addr: str) -> Any:
        op = name_or_addr if name_or_addr.startswith("poly1") else addr(name_or_addr)
        v = self.m.staking.get_validator(self.q(), op)
        assert v is not None
        return v
