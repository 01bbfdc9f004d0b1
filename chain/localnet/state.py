"""localnet.json: what a localnet is (shape, ports, keys) and which processes it started.

Written atomically after every change, so `polylink localnet down` from any
shell finds every PID that `up` or `start-node` started, even after a crash
half-way through `up`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chain.localnet.ports import NodePorts
from chain.localnet.process import ProcRecord

STATE_FILE = "localnet.json"
PROCS = ("app", "cometbft")


@dataclass
class NodeRecord:
    index: int
    home: str
    node_id: str
    ports: NodePorts
    procs: dict[str, ProcRecord] = field(default_factory=dict)  # "app" / "cometbft"
    db: str = ""  # the app's SQLAlchemy state URL; "" = SQLite under the node home

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.index,
            "home": self.home,
            "node_id": self.node_id,
            "ports": self.ports.to_json(),
            "procs": {k: v.to_json() for k, v in sorted(self.procs.items())},
            **({"db": self.db} if self.db else {}),
        }

    @staticmethod
    def from_json(d: dict[str, Any]) -> NodeRecord:
        return NodeRecord(
            int(d["node"]),
            str(d["home"]),
            str(d["node_id"]),
            NodePorts(**d["ports"]),
            {k: ProcRecord.from_json(v) for k, v in (d.get("procs") or {}).items()},
            str(d.get("db") or ""),
        )


@dataclass
class LocalnetState:
    chain_id: str
    base_port: int
    kvstore: bool
    timeout_commit: str
    timeout_propose: str
    validators: list[str]  # keyring names of the validator operator keys
    users: list[str]  # keyring names of the funded user keys
    cometbft: str  # the binary
    polylink: list[str]  # the command that runs `polylink`
    nodes: list[NodeRecord]
    # off-chain processes started beside the nodes (workers, scorers, gateway), by name
    services: dict[str, ProcRecord] = field(default_factory=dict)
    # each app checks every invariant each N blocks and stops loudly on a violation (0 = never)
    invariant_period: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "base_port": self.base_port,
            "kvstore": self.kvstore,
            "timeout_commit": self.timeout_commit,
            "timeout_propose": self.timeout_propose,
            "validators": self.validators,
            "users": self.users,
            "cometbft": self.cometbft,
            "polylink": self.polylink,
            "nodes": [n.to_json() for n in self.nodes],
            "services": {k: v.to_json() for k, v in sorted(self.services.items())},
            "invariant_period": self.invariant_period,
        }

    @staticmethod
    def from_json(d: dict[str, Any]) -> LocalnetState:
        return LocalnetState(
            str(d["chain_id"]),
            int(d["base_port"]),
            bool(d["kvstore"]),
            str(d["timeout_commit"]),
            str(d["timeout_propose"]),
            [str(x) for x in d["validators"]],
            [str(x) for x in d["users"]],
            str(d["cometbft"]),
            [str(x) for x in d["polylink"]],
            [NodeRecord.from_json(n) for n in d["nodes"]],
            {k: ProcRecord.from_json(v) for k, v in (d.get("services") or {}).items()},
            int(d.get("invariant_period", 0)),
        )

    def save(self, home: Path) -> None:
        path = home / STATE_FILE
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        os.replace(tmp, path)

    @staticmethod
    def load(home: Path) -> LocalnetState:
        path = home / STATE_FILE
        try:
            return LocalnetState.from_json(json.loads(path.read_text()))
        except FileNotFoundError:
            raise FileNotFoundError(
                f"{path} does not exist: no localnet was created in {home}"
            ) from None
