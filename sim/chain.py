"""SimChain: the real state machine (`PolyLinkApp`, in memory) driven block by block.

Everything a node runs runs here: InitChain from a genesis app_state with
gentxs, then per block FinalizeBlock (every module's BeginBlock, the signed
txs through the ante handler and the message router, every module's
EndBlock) and Commit, with the app's invariants asserted every
`invariant_period` blocks. What is left out is the network: no CometBFT, no
mempool, no sockets. The simulation is the proposer: it hands each block its
txs, a block hash (sha256 of the run's seed and the height, so each seed
draws other committees) and a last commit in which every validator signed.

Actors (users, workers, validators) see the chain only through queries
(`query`) and events, as the real processes do through `chain.client`, and
act only through signed txs (`tx`), so every rule of the chain applies to
them. A tx the chain refuses stops the run (`SimError`): a simulated actor
that sends one is a bug in the simulation, not a result.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from google.protobuf.message import Message
from polylink.base.v1 import coin_pb2
from polylink.staking.v1 import tx_pb2 as staking_tx

from chain.app.app import GENTX_KEY, BlockResult, PolyLinkApp
from chain.client.signer import Signer
from chain.client.tx_builder import build_tx, min_fee
from chain.core.address import address_bytes
from chain.core.coins import BOND_DENOM, Coins
from chain.core.consensus import Vote
from chain.core.context import Context, ExecMode
from chain.core.events import Event
from genesis.builder import build_app_state

M = TypeVar("M", bound=Message)

POLY = 1_000_000  # upoly
GENESIS_TIME_NS = 1_700_000_000 * 10**9
BLOCK_TIME_NS = 10**9
# The localnet's block limits (genesis/templates/localnet.json consensus_params.block).
MAX_BLOCK_GAS = 100_000_000
MAX_BLOCK_BYTES = 4_194_304
MIN_GAS_PRICE_PPM = 10_000  # auth's default
# Gas limits: enough for any message these simulations send, paid at the
# minimum gas price. A result's submit costs ~110k with the default tiqe params
# and ~250k with rating_window 1000 (opening its round reads every candidate's
# rating record, whose size grows with the window); a score commit ~25k.
TX_BASE_GAS = 100_000
GAS_PER_MSG = 400_000
GENTX_GAS = 400_000


class SimError(RuntimeError):
    """The simulation drove the chain somewhere it should not have (a refused tx)."""


def signer_of(name: str) -> Signer:
    """The deterministic key of a simulated account (never a real one)."""
    return Signer(hashlib.sha256(b"polylink-sim/" + name.encode()).digest())


class SimChain:
    def __init__(
        self,
        *,
        seed: int,
        validators: Mapping[str, int],
        accounts: Sequence[str],
        balance: int = 10**12 * POLY,
        overrides: Mapping[str, Any] | None = None,
        invariant_period: int = 0,
        chain_id: str = "polylink-sim",
    ) -> None:
        """`validators`: name -> power (self-bond = power POLY, created by gentxs);
        `accounts`: other funded names (users, workers, providers); every account holds
        `balance` upoly; `overrides`: partial module genesis JSON (params) merged over the
        modules' defaults."""
        self.seed = seed
        self.chain_id = chain_id
        self.app = PolyLinkApp(None, invariant_period=invariant_period)
        self.signers = {n: signer_of(n) for n in sorted({*validators, *accounts})}
        self._seq: dict[str, int] = {}
        self.txs_sent = 0
        funded = [(s.address, Coins({BOND_DENOM: balance})) for s in self.signers.values()]
        state: dict[str, Any] = dict(build_app_state(funded, overrides))
        self._cons: dict[str, bytes] = {}
        gentxs = []
        for name, power in sorted(validators.items()):
            pubkey = hashlib.sha256(b"polylink-sim/cons/" + name.encode()).digest()
            self._cons[name] = pubkey
            msg = staking_tx.MsgCreateValidator(
                operator_address=self.address(name),
                consensus_pubkey=pubkey,
                self_bond=coin_pb2.Coin(denom=BOND_DENOM, amount=str(power * POLY)),
                commission_ppm=0,
                moniker=name,
                min_self_delegation="1",
            )
            gentxs.append(base64.b64encode(self._build(name, [msg], GENTX_GAS)).decode())
        state[GENTX_KEY] = {"gen_txs": gentxs}
        self.app.init_chain(chain_id, json.dumps(state).encode(), 1, GENESIS_TIME_NS, MAX_BLOCK_GAS)
        self.powers = {address_bytes(u.pub_key): u.power for u in self.app.genesis_validators}

    # --- accounts and txs ------------------------------------------------------
    def address(self, name: str) -> str:
        return self.signers[name].address

    def _build(self, name: str, msgs: Sequence[Message], gas: int) -> bytes:
        seq = self._seq.get(name, 0)
        self._seq[name] = seq + 1
        fee = min_fee(gas, MIN_GAS_PRICE_PPM)
        return build_tx(msgs, self.signers[name], chain_id=self.chain_id, sequence=seq, fee=fee, gas_limit=gas)

    def tx(self, name: str, msgs: Sequence[Message]) -> bytes:
        """One signed tx of `name` carrying `msgs` (next sequence, minimum fee)."""
        return self._build(name, msgs, TX_BASE_GAS + GAS_PER_MSG * len(msgs))

    # --- blocks ----------------------------------------------------------------
    @property
    def height(self) -> int:
        """The last committed height."""
        return self.app.height

    def block_hash(self, height: int) -> bytes:
        return hashlib.sha256(b"polylink-sim" + self.seed.to_bytes(8, "big") + height.to_bytes(8, "big")).digest()

    def block(self, txs: Sequence[bytes]) -> BlockResult:
        """PrepareProposal, FinalizeBlock and Commit of the next height with `txs`; the block
        must hold them all (byte and gas limits) and every tx must succeed."""
        h = self.app.height + 1
        if len(self.app.prepare_proposal(txs, MAX_BLOCK_BYTES)) != len(txs):
            raise SimError(f"block {h}: {len(txs)} txs do not fit in one block")
        votes = [Vote(a, p, True) for a, p in sorted(self.powers.items())]
        r = self.app.finalize_block(h, GENESIS_TIME_NS + h * BLOCK_TIME_NS, self.block_hash(h), b"", txs, votes)
        failed = [(i, t.codespace, t.code, t.log) for i, t in enumerate(r.tx_results) if t.code]
        if failed:
            raise SimError(f"block {h}: txs refused {failed}")
        self.app.commit()
        self.txs_sent += len(txs)
        for u in r.validator_updates:
            a = address_bytes(u.pub_key)
            if u.power:
                self.powers[a] = u.power
            else:
                self.powers.pop(a, None)
        return r

    # --- reading -----------------------------------------------------------------
    def query(self, path: str, req: Message, cls: type[M]) -> M:
        """A gRPC-style query over the last committed state, as a client sends it."""
        resp = self.app.query(path, req.SerializeToString())
        if not isinstance(resp, cls):
            raise SimError(f"{path} answered {type(resp).__name__}, not {cls.__name__}")
        return resp

    def invariants(self) -> list[str]:
        """The app's broken invariants at the last committed state (none, or a bug). Unmetered,
        as the app's own per-block check: `check_invariants()`'s default query context stops
        at the query gas limit once the state holds a few thousand rounds."""
        return self.app.check_invariants(Context(self.app.committed, self.app.last_header, ExecMode.QUERY))


def events_of(r: BlockResult, type_: str) -> list[dict[str, str]]:
    """Attributes of the block's events of one type: BeginBlock/EndBlock ones, then each tx's."""
    evs: list[Event] = [*r.events, *(e for t in r.tx_results for e in t.events)]
    return [dict(e.attributes) for e in evs if e.type == type_]
