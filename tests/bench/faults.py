"""`make bench BENCH=faults`: a fault campaign on a real 4-validator localnet under steady signed load.

Several accounts send transfers without pause, each through whichever node is up. One node at a
time, a random fault strikes: kill -9 of its app, kill -9 of its CometBFT, a SIGSTOP/SIGCONT pause
of either for a few seconds, or a graceful restart from its data. After each fault the node is
brought back, and the campaign waits until every node has reached the same app hash at the same
height. A ledger keeps every tx that CometBFT reported committed (its hash, its sender, what it
moved). At the end every node must hold each of them, with the balances they imply to the unit.

Figures: faults survived, txs committed, txs lost (must be 0), p50/max seconds to recover (from
bringing the node back to all nodes at one app hash above the height the fault struck at).

FAULTS_N (default 50) and FAULTS_SEED (default 1) set the campaign; the e2e test runs a short one.
"""

from __future__ import annotations

import hashlib
import os
import random
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf.message import Message

from chain.client.errors import ClientError
from chain.client.msgs import msg_send
from chain.client.sync import SyncClient
from chain.core.coins import BOND_DENOM
from chain.localnet.net import Localnet
from chain.localnet.ports import find_free_base_port
from tests.e2e.chainutil import app_hashes, assert_live_power_above_two_thirds, heights

FAULTS = ("kill_app", "kill_cometbft", "pause_app", "pause_cometbft", "restart")
NODES = 4
SENDERS = 4
AMOUNT = 7  # upoly per transfer
FEE = 2000
TX_DEADLINE_S = 180.0  # one transfer must commit within this, faults or not
RECOVER_TIMEOUT_S = 180.0


@dataclass
class Ledger:
    """What CometBFT reported committed: {tx hash: (sender, height)}, and the per-sender count."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    txs: dict[str, tuple[str, int]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def add(self, txhash: str, sender: str, height: int) -> None:
        with self.lock:
            self.txs[txhash] = (sender, height)

    def count(self) -> int:
        with self.lock:
            return len(self.txs)


class Load:
    """SENDERS threads, each sending AMOUNT to one sink account, one tx at a time: sign once, then
    broadcast the same bytes to an up node until a node reports the tx in a block. The same bytes
    every time, so a tx can never execute twice nor be replaced by another one; a sender's
    sequence moves on only after its tx committed."""

    def __init__(self, net: Localnet, ledger: Ledger) -> None:
        self.net = net
        self.ledger = ledger
        self.down: set[int] = set()  # nodes a fault is about to hit or holds: senders avoid them
        self.lock = threading.Lock()
        self.stop = threading.Event()
        kr = net.keyring()
        self.senders = net.user_keys[:SENDERS]
        self.sink = kr.show(net.user_keys[SENDERS]).address
        self.threads = [threading.Thread(target=self._run, args=(k,), daemon=True) for k in range(SENDERS)]

    def up_nodes(self) -> list[int]:
        with self.lock:
            return [i for i in range(self.net.nodes) if i not in self.down]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def finish(self) -> None:
        """Stop after each sender's tx in flight has committed."""
        self.stop.set()
        for t in self.threads:
            t.join(timeout=TX_DEADLINE_S + 30)
        alive = [t.name for t in self.threads if t.is_alive()]
        if alive:
            self.ledger.errors.append(f"senders still running: {alive}")

    def _run(self, k: int) -> None:
        kr = self.net.keyring()
        key = self.senders[k]
        addr = kr.show(key).address
        clients = {i: SyncClient(self.net.rpc_url(i), keyring=kr, timeout=8.0) for i in range(self.net.nodes)}
        rng = random.Random(k)
        try:
            seq = clients[0].next_sequence(addr)
            while not self.stop.is_set():
                msg = msg_send(addr, self.sink, f"{AMOUNT}{BOND_DENOM}")
                tx = self._sign(clients, key, msg, seq, rng)
                txhash, height = self._commit(clients, tx, rng)
                self.ledger.add(txhash, key, height)
                seq += 1
        except Exception as e:  # reported in the figures: a sender that gives up fails the campaign
            self.ledger.errors.append(f"sender {key}: {type(e).__name__}: {e}")
        finally:
            for c in clients.values():
                c.close()

    def _sign(self, clients: dict[int, SyncClient], key: str, msg: Message, seq: int, rng: random.Random) -> bytes:
        deadline = time.monotonic() + TX_DEADLINE_S
        while True:
            nodes = self.up_nodes()
            try:
                return clients[rng.choice(nodes)].sign([msg], key, sequence=seq, fee=FEE)
            except (ClientError, OSError, TimeoutError) as e:  # the chosen node went down: try another
                if time.monotonic() > deadline:
                    raise TimeoutError(f"could not sign for {key} at sequence {seq}: {e}") from e
                time.sleep(0.5)

    def _commit(self, clients: dict[int, SyncClient], tx: bytes, rng: random.Random) -> tuple[str, int]:
        txhash = hashlib.sha256(tx).hexdigest().upper()
        deadline = time.monotonic() + TX_DEADLINE_S
        last = ""
        while time.monotonic() < deadline:
            c = clients[rng.choice(self.up_nodes())]
            try:
                r = c.broadcast(tx, "sync")
                if r.code != 0:  # e.g. a sequence refusal once it is in a block, or in this node's mempool
                    last = f"CheckTx {r.code}: {r.log}"
                res = c.wait(txhash, timeout=10.0)
                if res.code != 0:
                    raise RuntimeError(f"tx {txhash} failed in block {res.height}: {res.code} {res.log}")
                return txhash, res.height
            except (ClientError, OSError, TimeoutError) as e:  # node down or slow, or not in a block yet
                last = f"{type(e).__name__}: {e}"
                time.sleep(0.3)
        raise TimeoutError(f"tx {txhash} not committed in {TX_DEADLINE_S:.0f} s; last: {last}")


def _converged(net: Localnet, above: int, timeout: float) -> int:
    """Wait until every node has a block above ``above`` + 1 and all agree on the app hash at one height
    above ``above``; returns that height. Raises TimeoutError with the heights seen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        hs = heights(net)
        h = min(hs) - 1  # the app hash after block h is in block h+1's header: every node has it
        if h > above:
            table = app_hashes(net, h, h)
            seen = {node: t[h] for node, t in table.items()}
            if len(set(seen.values())) != 1:
                raise AssertionError(f"app hashes differ at height {h}: {seen}")
            return h
        time.sleep(0.2)
    raise TimeoutError(f"nodes did not converge above height {above} in {timeout:.0f} s: {heights(net)}")


def _inject(net: Localnet, node: int, fault: str, rng: random.Random) -> None:
    """Strike ``node`` with ``fault`` and bring it back (the recovery clock starts when this returns)."""
    if fault == "kill_app":
        net.stop_node(node, cometbft=False, kill=True)
        time.sleep(rng.uniform(0.5, 3.0))
        net.start_node(node)  # restarts its CometBFT too: it exits once its app is gone
    elif fault == "kill_cometbft":
        net.stop_node(node, app=False, kill=True)
        time.sleep(rng.uniform(0.5, 3.0))
        net.start_node(node)
    elif fault in ("pause_app", "pause_cometbft"):
        proc = fault.split("_", 1)[1]
        net.pause_node(node, proc)
        try:
            time.sleep(rng.uniform(2.0, 5.0))
        finally:
            net.resume_node(node, proc)
    elif fault == "restart":
        net.stop_node(node)  # SIGTERM: a clean stop, then a start from the node's data
        net.start_node(node)
    else:
        raise ValueError(f"unknown fault {fault!r}; one of {FAULTS}")


def campaign(home: Path, n_faults: int, seed: int, progress: Callable[[str], None] = print,
             faults: tuple[str, ...] = FAULTS) -> dict[str, object]:
    """Run the campaign in ``home``; returns its figures (see the module doc). Never leaves a process behind."""
    rng = random.Random(seed)
    net = Localnet(home, nodes=NODES, base_port=find_free_base_port(NODES), accounts=SENDERS + 1)
    ledger = Ledger()
    survived = 0
    recover_s: list[float] = []
    log: list[str] = []
    try:
        net.create()
        # the campaign is about crash recovery, not downtime slashing: a window no fault sequence can jail in
        net.set_genesis_params("slashing", signed_blocks_window="1000", min_signed_ppm="50000")
        net.up()
        with SyncClient(net.rpc_url(0), keyring=net.keyring()) as c:
            before = {k: c.balance(net.keyring().show(k).address) for k in net.user_keys[: SENDERS + 1]}
        load = Load(net, ledger)
        load.start()
        try:
            # a balanced draw: each kind of fault equally often, in random order, on random nodes
            plan = [faults[k % len(faults)] for k in range(n_faults)]
            rng.shuffle(plan)
            for k, fault in enumerate(plan):
                if ledger.errors:
                    break
                node = rng.randrange(NODES)
                assert_live_power_above_two_thirds(net, [node], (node + 1) % NODES)
                top = max(heights(net))
                with load.lock:
                    load.down.add(node)
                _inject(net, node, fault, rng)
                t0 = time.monotonic()
                h = _converged(net, top, RECOVER_TIMEOUT_S)
                dt = time.monotonic() - t0
                with load.lock:
                    load.down.discard(node)
                survived += 1
                recover_s.append(dt)
                line = (f"fault {k + 1}/{n_faults}: {fault} on node{node} at height {top}; "
                        f"one app hash at {h} after {dt:.1f} s; {ledger.count()} txs committed")
                log.append(line)
                progress(line)
        finally:
            load.finish()
        lost, checked = _final_check(net, ledger, before)
    finally:
        net.down()
        left = list(net.pids())
        if left:
            raise RuntimeError(f"processes left running: {left}")
    return {
        "faults_planned": n_faults,
        "faults_survived": survived,
        "txs_committed": len(ledger.txs),
        "txs_lost": lost,
        "balances_checked": checked,
        "recover_p50_s": round(statistics.median(recover_s), 2) if recover_s else None,
        "recover_max_s": round(max(recover_s), 2) if recover_s else None,
        "errors": ledger.errors,
        "seed": seed,
        "log": log,
    }


def _final_check(net: Localnet, ledger: Ledger, before: dict[str, int]) -> tuple[int, int]:
    """Every node holds every ledger tx at its height with code 0, and every sender's and the sink's
    balance is exactly what the ledger implies; returns (txs lost, balances checked). Mismatched
    balances are errors in the ledger (a tx executed that nobody reported, or one lost)."""
    top = _converged(net, 0, RECOVER_TIMEOUT_S)
    kr = net.keyring()
    sent: dict[str, int] = {}
    for sender, _ in ledger.txs.values():
        sent[sender] = sent.get(sender, 0) + 1
    sink_key = net.user_keys[SENDERS]
    lost: set[str] = set()
    checked = 0
    for i in range(net.nodes):
        with SyncClient(net.rpc_url(i), keyring=kr, timeout=30.0) as c:
            for txhash, (_, height) in ledger.txs.items():
                try:
                    r = c.wait(txhash, timeout=5.0)
                except (ClientError, TimeoutError):
                    lost.add(txhash)
                    continue
                if r.code != 0 or r.height != height:
                    lost.add(txhash)
            for key, b0 in before.items():
                n = sent.get(key, 0)
                want = b0 + AMOUNT * sum(sent.values()) if key == sink_key else b0 - n * (AMOUNT + FEE)
                got = c.balance(kr.show(key).address)
                checked += 1
                if got != want:
                    ledger.errors.append(f"node{i}: {key} holds {got}, the ledger says {want} (at height >= {top})")
    return len(lost), checked


def run() -> dict[str, object]:
    n = int(os.environ.get("FAULTS_N", "50"))
    seed = int(os.environ.get("FAULTS_SEED", "1"))
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="polylink-faults-") as d:
        figures = campaign(Path(d), n, seed)
    figures["seconds"] = round(time.monotonic() - t0, 1)
    return figures
