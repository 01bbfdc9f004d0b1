"""Localnet: N validators on loopback, each a CometBFT node plus a PolyLink app process.

One object owns a network's lifecycle (use it as a context manager, or call
`up()` and `down()`):

    create()  `cometbft init` per node, patch config.toml, make the keyring
              (val0.., user0..), build and validate one genesis.json for all
    start()   every app process, then every CometBFT, each in its own
              session with output appended to NODE_HOME/{app,cometbft}.log;
              waits until every node's RPC reports height >= 2
    down()    stops every process it started, by recorded PID

Everything it needs to find its processes again lives in HOME/localnet.json,
so a later `Localnet.load(home)` (or `polylink localnet down`) from any
shell can stop them. With `kvstore=True` the same network shape runs
CometBFT's built-in kvstore app (proxy_app = "kvstore") and no app process:
the baseline the benchmarks compare against.

Sync methods use `asyncio.run` for their RPC calls; from async code call
`status_async()` or run the others in a thread (`asyncio.to_thread`).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from chain.client.errors import ClientError
from chain.client.keyring import Keyring
from chain.client.rpc import CometRPC
from chain.core.coins import BOND_DENOM, Coins
from chain.localnet.config import check_duration, node_config, patch_toml
from chain.localnet.ports import (
    DEFAULT_BASE_PORT,
    HOST,
    UNIX_PATH_MAX,
    NodePorts,
    check_base_port,
    is_listening,
    is_listening_unix,
    port_free,
)
from chain.localnet.process import ProcRecord, is_running, log_tail, spawn, stop, wait_gone
from chain.localnet.state import STATE_FILE, LocalnetState, NodeRecord
from genesis import builder
from genesis.errors import GenesisError

DEFAULT_NODES = 4
DEFAULT_READY_TIMEOUT = 120.0
APP_LISTEN_TIMEOUT = 60.0
READY_HEIGHT = 2
FUNDS = Coins({BOND_DENOM: 10**12})  # every genesis key gets 1,000,000 POLY
POLL_S = 0.2
_REPO = Path(__file__).resolve().parents[2]


class LocalnetError(RuntimeError):
    """The localnet could not be created, started or stopped; the message names the log to read."""


def find_cometbft() -> str:
    """$POLYLINK_COMETBFT, else the repository's .tools/bin/cometbft (make setup), else PATH."""
    for cand in (
        os.environ.get("POLYLINK_COMETBFT"),
        str(_REPO / ".tools" / "bin" / "cometbft"),
        shutil.which("cometbft"),
    ):
        if cand and os.access(cand, os.X_OK):
            return str(Path(cand).resolve())
    raise LocalnetError(
        "cometbft not found: run `make setup` (builds .tools/bin/cometbft) or set POLYLINK_COMETBFT"
    )


def default_polylink() -> list[str]:
    """This interpreter running the CLI module: what /proc/PID/cmdline will show, exactly."""
    return [sys.executable, "-m", "chain.cli.main"]


class Localnet:
    """A local network in `home`; see the module docstring for the lifecycle."""

    def __init__(
        self,
        home: str | os.PathLike[str],
        *,
        nodes: int = DEFAULT_NODES,
        base_port: int = DEFAULT_BASE_PORT,
        accounts: int = 0,
        timeout_commit: str = "200ms",
        timeout_propose: str = "1s",
        kvstore: bool = False,
        chain_id: str | None = None,
        template: str = builder.DEFAULT_TEMPLATE,
        cometbft: str | None = None,
        polylink: Sequence[str] | None = None,
        gentxs: bool = True,
        invariant_period: int = 0,
    ) -> None:
        """Describe a network; nothing happens on disk until create() or up().

        `invariant_period` N > 0: every app checks every module invariant (supply, escrow,
        bonded pool, ...) each N blocks and stops on a violation, which halts the chain.

        If `home` already holds a localnet, its localnet.json wins over these arguments.
        """
        self.home = Path(home).expanduser().resolve()
        # validators from staking gentxs (our app), or listed in genesis.json (apps
        # without staking: CometBFT's kvstore, in-process or over the socket)
        self.gentxs = gentxs and not kvstore
        self.template = template
        self.accounts = accounts
        self.state: LocalnetState | None = None
        if (self.home / STATE_FILE).exists():
            self.state = LocalnetState.load(self.home)
            return
        if nodes < 1:
            raise LocalnetError("a localnet needs at least 1 node")
        if accounts < 0:
            raise LocalnetError("--accounts must be >= 0")
        try:
            check_base_port(base_port, nodes)
            check_duration(timeout_commit, "timeout_commit")
            check_duration(timeout_propose, "timeout_propose")
        except ValueError as e:
            raise LocalnetError(str(e)) from None
        self._plan = LocalnetState(
            chain_id=chain_id
            or str(builder.load_template(template).get("chain_id", "polylink-localnet")),
            base_port=base_port,
            kvstore=kvstore,
            timeout_commit=timeout_commit,
            timeout_propose=timeout_propose,
            validators=[f"val{i}" for i in range(nodes)],
            users=[f"user{j}" for j in range(accounts)],
            cometbft=cometbft or "",
            polylink=list(polylink or default_polylink()),
            nodes=[
                NodeRecord(i, str(self.home / f"node{i}"), "", NodePorts.of(base_port, i))
                for i in range(nodes)
            ],
            invariant_period=invariant_period,
        )

    @classmethod
    def load(cls, home: str | os.PathLike[str]) -> Localnet:
        """The localnet already created in `home` (raises LocalnetError if there is none)."""
        net = cls(home)
        if net.state is None:
            raise LocalnetError(
                f"no localnet in {net.home} (no {STATE_FILE}); create one with `polylink localnet up`"
            )
        return net

    # --- what it is ------------------------------------------------------
    @property
    def _s(self) -> LocalnetState:
        return self.state if self.state is not None else self._plan

    @property
    def created(self) -> bool:
        return self.state is not None

    @property
    def nodes(self) -> int:
        return len(self._s.nodes)

    @property
    def chain_id(self) -> str:
        return self._s.chain_id

    @property
    def kvstore(self) -> bool:
        return self._s.kvstore

    @property
    def polylink(self) -> list[str]:
        """The command that runs `polylink` for this localnet's processes."""
        return list(self._s.polylink)

    @property
    def keyring_dir(self) -> Path:
        """HOME/keyring: val0.. (validator operators) and user0.. (funded users), all funded in genesis."""
        return self.home / "keyring"

    def keyring(self) -> Keyring:
        return Keyring(self.home)

    @property
    def validator_keys(self) -> list[str]:
        return list(self._s.validators)

    @property
    def user_keys(self) -> list[str]:
        return list(self._s.users)

    @property
    def genesis_path(self) -> Path:
        return self.home / "genesis.json"

    def node_home(self, i: int) -> Path:
        return Path(self._node(i).home)

    def ports(self, i: int) -> NodePorts:
        return self._node(i).ports

    def rpc_url(self, i: int) -> str:
        return f"http://{HOST}:{self.ports(i).rpc}"

    def grpc_addr(self, i: int) -> str:
        """The app's gRPC address (nothing listens there in kvstore mode)."""
        return f"{HOST}:{self.ports(i).grpc}"

    def abci_addr(self, i: int) -> str:
        """Where node i's app serves ABCI: the node's own CometBFT ``proxy_app`` (a unix socket in the node
        home since 2026-12-07; a localnet created before keeps its loopback TCP port)."""
        return _proxy_app(Path(self._node(i).home))

    def log_path(self, i: int, proc: str) -> Path:
        """NODE_HOME/app.log or NODE_HOME/cometbft.log."""
        return self.node_home(i) / f"{proc}.log"

    def _node(self, i: int) -> NodeRecord:
        if not 0 <= i < self.nodes:
            raise LocalnetError(
                f"node {i} does not exist (this localnet has nodes 0..{self.nodes - 1})"
            )
        return self._s.nodes[i]

    def _procs(self) -> tuple[str, ...]:
        return ("cometbft",) if self.kvstore else ("app", "cometbft")

    # --- create ----------------------------------------------------------
    def create(self) -> None:
        """Init every node home, the keyring and one genesis.json; records it all in localnet.json."""
        if self.created:
            raise LocalnetError(f"{self.home} already holds a localnet")
        if self.home.exists() and any(self.home.iterdir()):
            raise LocalnetError(f"{self.home} is not empty; give an empty or new directory")
        s = self._plan
        s.cometbft = s.cometbft or find_cometbft()
        self.home.mkdir(parents=True, exist_ok=True)
        for n in s.nodes:
            self._cometbft("init", "--home", n.home)
            n.node_id = self._cometbft("show-node-id", "--home", n.home).strip()
        proxy = "kvstore" if s.kvstore else None
        for n in s.nodes:
            peers = [f"{m.node_id}@{HOST}:{m.ports.p2p}" for m in s.nodes if m.index != n.index]
            cfg = Path(n.home) / "config" / "config.toml"
            values = node_config(
                moniker=f"node{n.index}",
                ports=n.ports,
                peers=peers,
                proxy_app=proxy or abci_socket(Path(n.home)),
                timeout_commit=s.timeout_commit,
                timeout_propose=s.timeout_propose,
            )
            cfg.write_text(patch_toml(cfg.read_text(), values))
        kr = self.keyring()
        funded = [(kr.add(name).address, FUNDS) for name in s.validators + s.users]
        try:
            operators = [kr.get_signer(v) for v in s.validators] if self.gentxs else None
            doc = builder.build_genesis(
                s.chain_id, funded, [Path(n.home) for n in s.nodes], template=self.template,
                operators=operators,
            )
            builder.validate_genesis(doc)
        except GenesisError as e:
            raise LocalnetError(f"genesis: {e}") from None
        builder.write_genesis(self.genesis_path, doc)
        for n in s.nodes:
            shutil.copyfile(self.genesis_path, Path(n.home) / "config" / "genesis.json")
        self.state = s
        self._save()

    def set_genesis_params(self, module: str, **params: str) -> None:
        """Override module params in the genesis of a created, never started localnet (every
        node's copy), e.g. shorter TIQE windows for a test that runs no scorers."""
        if self.state is None:
            raise LocalnetError(f"no localnet in {self.home}; create() first")
        if any(n.procs for n in self.state.nodes):
            raise LocalnetError("genesis params can only change before the localnet first starts")
        paths = [self.genesis_path, *(Path(n.home) / "config" / "genesis.json" for n in self.state.nodes)]
        for path in paths:
            doc = json.loads(path.read_text())
            doc["app_state"].setdefault(module, {}).setdefault("params", {}).update(params)
            path.write_text(json.dumps(doc, indent=2) + "\n")

    def set_node_db(self, i: int, url: str) -> None:
        """Keep node i's app state in the database at SQLAlchemy ``url`` (PostgreSQL, say) instead of
        SQLite under its home; only before the localnet first starts (the state starts at genesis)."""
        if self.state is None:
            raise LocalnetError(f"no localnet in {self.home}; create() first")
        if any(n.procs for n in self.state.nodes):
            raise LocalnetError("a node's database can only be chosen before the localnet first starts")
        self._node(i).db = url
        self._save()

    def add_full_node(self, *, wait: bool = True, timeout: float = DEFAULT_READY_TIMEOUT) -> int:
        """Init and start one more node (a full node, not a validator) peered with the others;
        returns its index. It syncs from genesis; staking can make it a validator later."""
        s = self._s
        i = len(s.nodes)
        n = NodeRecord(i, str(self.home / f"node{i}"), "", NodePorts.of(s.base_port, i))
        try:
            check_base_port(s.base_port, i + 1)
        except ValueError as e:
            raise LocalnetError(str(e)) from None
        busy = [p for p in n.ports.all() if not port_free(p)]
        if busy:
            raise LocalnetError(f"node{i}: ports {busy} are in use")
        self._cometbft("init", "--home", n.home)
        n.node_id = self._cometbft("show-node-id", "--home", n.home).strip()
        cfg = Path(n.home) / "config" / "config.toml"
        values = node_config(
            moniker=f"node{i}",
            ports=n.ports,
            peers=[f"{m.node_id}@{HOST}:{m.ports.p2p}" for m in s.nodes],
            proxy_app="kvstore" if s.kvstore else abci_socket(Path(n.home)),
            timeout_commit=s.timeout_commit,
            timeout_propose=s.timeout_propose,
        )
        cfg.write_text(patch_toml(cfg.read_text(), values))
        shutil.copyfile(self.genesis_path, Path(n.home) / "config" / "genesis.json")
        s.nodes.append(n)
        self._save()
        self.start_node(i, wait=wait, timeout=timeout)
        return i

    def _cometbft(self, *args: str) -> str:
        cmd = [self._s.cometbft, *args]
        try:
            r = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise LocalnetError(f"{' '.join(cmd)} failed: {e}") from None
        if r.returncode != 0:
            raise LocalnetError(
                f"{' '.join(cmd)} exited {r.returncode}: {r.stderr.strip() or r.stdout.strip()}"
            )
        return r.stdout

    def _save(self) -> None:
        assert self.state is not None
        self.state.save(self.home)

    # --- start / stop ----------------------------------------------------
    def up(self, *, wait: bool = True, timeout: float = DEFAULT_READY_TIMEOUT) -> None:
        """create() unless already created, then start(); on failure stops what it started."""
        if not self.created:
            self.create()
        try:
            self.start(wait=wait, timeout=timeout)
        except BaseException:
            self.down()
            raise

    def start(self, *, wait: bool = True, timeout: float = DEFAULT_READY_TIMEOUT) -> None:
        """Start every process not running: all apps first, then all CometBFT nodes."""
        self.start_nodes(range(self.nodes), wait=wait, timeout=timeout, min_height=READY_HEIGHT)

    def start_node(
        self, i: int, *, wait: bool = True, timeout: float = DEFAULT_READY_TIMEOUT
    ) -> None:
        """Start node i's processes that are not running; with wait, until its RPC answers.

        If the app is down, a still-running CometBFT is restarted too: it never
        reconnects to a new app process (it exits once it notices the loss).
        """
        self.start_nodes([i], wait=wait, timeout=timeout, min_height=0)

    def start_nodes(
        self,
        indices: Sequence[int] | range,
        *,
        wait: bool = True,
        timeout: float = DEFAULT_READY_TIMEOUT,
        min_height: int = READY_HEIGHT,
    ) -> None:
        if self.state is None:
            raise LocalnetError(f"no localnet in {self.home}; create() or up() first")
        nodes = [self._node(i) for i in indices]
        deadline = time.monotonic() + timeout
        if not self.kvstore:
            # CometBFT never reconnects to a restarted app: a node whose app is down restarts whole
            stop(
                [
                    n.procs["cometbft"]
                    for n in nodes
                    if "cometbft" in n.procs and not is_running(n.procs.get("app"))
                ]
            )
            started = [n for n in nodes if self._spawn(n, "app")]
            for n in started:
                self._wait_listening(n, deadline)
        for n in nodes:
            self._spawn(n, "cometbft")
        if wait:
            self.wait_ready(
                min_height=min_height,
                timeout=max(1.0, deadline - time.monotonic()),
                nodes=[n.index for n in nodes],
            )

    def _spawn(self, n: NodeRecord, proc: str) -> bool:
        """Start `proc` of node n unless it runs; True if started."""
        prev = n.procs.get(proc)
        if is_running(prev):
            return False
        if prev is not None and not wait_gone([prev], 10.0):  # it may still be closing its sockets
            raise LocalnetError(
                f"node{n.index} {proc} (pid {prev.pid}) is still exiting; try again"
            )
        abci_addr = _proxy_app(Path(n.home))
        wanted = {
            "app": [("grpc", n.ports.grpc)] + ([("abci", n.ports.abci)] if abci_addr.startswith("tcp://") else []),
            "cometbft": [("p2p", n.ports.p2p), ("rpc", n.ports.rpc)],
        }[proc]
        end = time.monotonic() + 5.0
        while (
            busy := [f"{name} port {p}" for name, p in wanted if not port_free(p)]
        ) and time.monotonic() < end:
            time.sleep(POLL_S)
        if busy:
            raise LocalnetError(
                f"node{n.index} {proc}: {', '.join(busy)} in use by another process; "
                "stop it or choose another --base-port"
            )
        s = self._s
        if proc == "app":
            cmd = [
                *s.polylink,
                "node",
                "start",
                "--home",
                n.home,
                "--abci",
                abci_addr,
                "--grpc",
                f"{HOST}:{n.ports.grpc}",
                "--rpc",
                f"http://{HOST}:{n.ports.rpc}",
                *(["--invariant-period", str(s.invariant_period)] if s.invariant_period else []),
                *(["--db", n.db] if n.db else []),
            ]
        else:
            cmd = [s.cometbft, "start", "--home", n.home]
        n.procs[proc] = spawn(cmd, cwd=Path(n.home), log=Path(n.home) / f"{proc}.log")
        self._save()
        return True

    def _wait_listening(self, n: NodeRecord, deadline: float) -> None:
        """Wait until node n's app accepts ABCI connections (CometBFT retries only every 3 s)."""
        rec = n.procs["app"]
        end = min(deadline, time.monotonic() + APP_LISTEN_TIMEOUT)
        addr = _proxy_app(Path(n.home))
        if addr.startswith("unix://"):
            where = addr
            sock = Path(addr[len("unix://"):])

            def listening() -> bool:
                return is_listening_unix(sock)
        else:
            where = f"{HOST}:{n.ports.abci}"

            def listening() -> bool:
                return is_listening(n.ports.abci)

        while not listening():
            if not is_running(rec):
                raise LocalnetError(self._died(n, "app"))
            if time.monotonic() > end:
                raise LocalnetError(
                    f"node{n.index} app did not listen on {where} in time; see {rec.log}\n"
                    + log_tail(rec.log)
                )
            time.sleep(0.05)

    def _died(self, n: NodeRecord, proc: str) -> str:
        rec = n.procs.get(proc)
        if rec is None:
            return f"node{n.index} {proc} was never started"
        return f"node{n.index} {proc} (pid {rec.pid}) exited; see {rec.log}:\n{log_tail(rec.log)}"

    def stop_node(
        self, i: int, *, app: bool = True, cometbft: bool = True, kill: bool = False
    ) -> list[int]:
        """Stop node i's CometBFT and/or app (SIGTERM, or SIGKILL with kill); returns the PIDs signalled."""
        n = self._node(i)
        pids: list[int] = []
        for p, want in (
            ("cometbft", cometbft),
            ("app", app),
        ):  # CometBFT first: it must not see its app vanish
            if want and p in n.procs:
                pids += [r.pid for r in stop([n.procs[p]], kill=kill)]
        return pids

    def pause_node(self, i: int, proc: str) -> int:
        """SIGSTOP node i's ``proc`` ("app" or "cometbft"): it keeps its sockets and state but runs
        nothing until ``resume_node``; returns the PID (for fault tests)."""
        return self._signal_proc(i, proc, signal.SIGSTOP)

    def resume_node(self, i: int, proc: str) -> int:
        """SIGCONT node i's ``proc`` after ``pause_node``; returns the PID."""
        return self._signal_proc(i, proc, signal.SIGCONT)

    def _signal_proc(self, i: int, proc: str, sig: signal.Signals) -> int:
        if proc not in self._procs():
            raise LocalnetError(f"node{i} has no {proc!r} process; one of {list(self._procs())}")
        rec = self._node(i).procs.get(proc)
        if rec is None or not is_running(rec):
            raise LocalnetError(f"node{i} {proc} is not running")
        os.kill(rec.pid, sig)  # is_running just matched the PID to our command line
        return rec.pid

    # --- services (off-chain processes beside the nodes) ------------------
    def start_service(
        self, name: str, cmd: Sequence[str], *, env: Mapping[str, str] | None = None
    ) -> ProcRecord:
        """Start an off-chain process (a worker, a scorer, a gateway) under `name`, logging to
        HOME/services/NAME.log; `down` stops it with the nodes. A running one is left alone."""
        s = self._s
        prev = s.services.get(name)
        if is_running(prev):
            assert prev is not None
            return prev
        log = self.home / "services" / f"{name}.log"
        rec = spawn(cmd, cwd=self.home, log=log, env=env)
        s.services[name] = rec
        self._save()
        return rec

    def stop_service(self, name: str, *, kill: bool = False) -> list[int]:
        """Stop service `name` (SIGTERM, or SIGKILL with kill); returns the PIDs signalled."""
        rec = self._s.services.get(name)
        if rec is None:
            raise LocalnetError(f"no service {name!r} in {self.home}")
        return [r.pid for r in stop([rec], kill=kill)]

    def services(self) -> dict[str, ProcRecord]:
        return dict(self._s.services)

    def down(self) -> list[int]:
        """Stop every process this localnet started (services, then CometBFT nodes, then apps);
        returns the PIDs signalled."""
        if self.state is None:
            return []
        pids = [r.pid for r in stop(list(self.state.services.values()))]
        pids += [
            r.pid
            for r in stop(
                [n.procs[p] for n in self.state.nodes for p in ("cometbft",) if p in n.procs]
            )
        ]
        pids += [
            r.pid
            for r in stop([n.procs[p] for n in self.state.nodes for p in ("app",) if p in n.procs])
        ]
        return pids

    def running(self, i: int) -> dict[str, bool]:
        """{"app": bool, "cometbft": bool} for node i (kvstore nodes have no app)."""
        n = self._node(i)
        return {p: is_running(n.procs.get(p)) for p in self._procs()}

    def pids(self) -> Iterator[int]:
        """PIDs of every process of this localnet that is running now."""
        for n in self._s.nodes:
            for rec in n.procs.values():
                if is_running(rec):
                    yield rec.pid
        for rec in self._s.services.values():
            if is_running(rec):
                yield rec.pid

    def __enter__(self) -> Self:
        self.up()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.down()

    # --- observe ---------------------------------------------------------
    async def status_async(self) -> list[dict[str, Any]]:
        """One dict per node: {"node", "height", "app_hash", "rpc", "running"}; height None if RPC is silent."""

        async def one(i: int) -> dict[str, Any]:
            height: int | None = None
            app_hash: str | None = None
            try:
                async with CometRPC(self.rpc_url(i), timeout=2.0) as rpc:
                    st = await rpc.status()
                height, app_hash = st.latest_height, st.latest_app_hash.lower()
            except ClientError:
                pass
            return {
                "node": i,
                "height": height,
                "app_hash": app_hash,
                "rpc": self.rpc_url(i),
                "running": all(self.running(i).values()),
            }

        return list(await asyncio.gather(*(one(i) for i in range(self.nodes))))

    def status(self) -> list[dict[str, Any]]:
        return asyncio.run(self.status_async())

    def wait_ready(
        self,
        *,
        min_height: int = READY_HEIGHT,
        timeout: float = DEFAULT_READY_TIMEOUT,
        nodes: Sequence[int] | None = None,
    ) -> None:
        """Wait until each node's RPC answers with height >= min_height; fail fast if a process dies."""
        idx = list(range(self.nodes)) if nodes is None else list(nodes)
        deadline = time.monotonic() + timeout
        while True:
            for i in idx:
                for p, ok in self.running(i).items():
                    if not ok:
                        raise LocalnetError(self._died(self._node(i), p))
            heights = {s["node"]: s["height"] for s in self.status() if s["node"] in idx}
            if all(h is not None and h >= min_height for h in heights.values()):
                return
            if time.monotonic() > deadline:
                seen = ", ".join(
                    f"node{i}: " + ("RPC silent" if h is None else f"height {h}")
                    for i, h in sorted(heights.items())
                )
                logs = ", ".join(str(self.log_path(i, "cometbft")) for i in idx)
                raise LocalnetError(
                    f"timed out after {timeout:.0f}s waiting for height >= {min_height} ({seen}); "
                    f"see {logs}"
                )
            time.sleep(POLL_S)


def abci_socket(home: Path) -> str:
    """The ABCI address of a node's app: ``unix://HOME/abci.sock`` (the app makes it 0600)."""
    path = home.resolve() / "abci.sock"
    if len(str(path)) > UNIX_PATH_MAX:
        raise LocalnetError(
            f"the ABCI socket path {path} is longer than a unix socket allows ({UNIX_PATH_MAX} bytes); "
            "choose a shorter localnet home"
        )
    return f"unix://{path}"


def _proxy_app(home: Path) -> str:
    """The ``proxy_app`` of the node's CometBFT config, where its app must listen."""
    with open(home / "config" / "config.toml", "rb") as f:
        return str(tomllib.load(f)["proxy_app"])
