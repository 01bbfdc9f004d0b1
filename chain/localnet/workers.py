"""Workers beside a localnet: write a worker's config and run `polylink worker run` as a service.

The localnet only runs the `polylink worker` command (it never imports the
worker package), so the dependency points the usual way: tools run
processes, the worker reaches the chain through `chain.client`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from chain.localnet.config import TomlValue, render_toml
from chain.localnet.net import Localnet
from chain.localnet.process import ProcRecord


@dataclass
class WorkerSpec:
    """One worker: its keyring key, what it serves, and its engine table (`[engine]` of the config)."""

    key: str
    models: Sequence[str]
    engine: Mapping[str, TomlValue] = field(default_factory=lambda: {"kind": "llamacpp"})
    capacity: int = 1000
    concurrency: int = 1
    bond: str = "100000000upoly"
    # top a slashed bond back up while serving (the worker's default); off where a test measures a slash
    top_up_bond: bool = True
    node: int = 0
    metrics_port: int = 0
    poll_interval_s: float = 2.0


def worker_home(net: Localnet, key: str) -> Path:
    return net.home / "workers" / key


def worker_config_path(net: Localnet, key: str) -> Path:
    return worker_home(net, key) / "worker.toml"


def render_config(net: Localnet, spec: WorkerSpec) -> str:
    """The worker's TOML config: its chain (node RPC, keyring, key), its service and its engine."""
    home = worker_home(net, spec.key)
    tables: dict[str, Mapping[str, TomlValue]] = {
        "chain": {"rpc": net.rpc_url(spec.node), "home": str(net.home), "key": spec.key},
        "worker": {
            "models": list(spec.models),
            "capacity": spec.capacity,
            "concurrency": spec.concurrency,
            "bond": spec.bond,
            "top_up_bond": spec.top_up_bond,
            "endpoint": f"local://{spec.key}",
            "state_dir": str(home / "state"),
            "metrics_port": spec.metrics_port,
            "poll_interval_s": spec.poll_interval_s,
            "log_format": "json",
        },
        "engine": spec.engine,
    }
    return render_toml(f"worker {spec.key} of the localnet in {net.home}", tables)


def service_name(key: str) -> str:
    return f"worker-{key}"


def start_worker(net: Localnet, spec: WorkerSpec) -> ProcRecord:
    """Write the config from `spec` and start the worker (its state dir survives restarts)."""
    path = worker_config_path(net, spec.key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_config(net, spec))
    return net.start_service(service_name(spec.key), [*net.polylink, "worker", "run", "--config", str(path)])


def stop_worker(net: Localnet, key: str, *, kill: bool = False) -> list[int]:
    return net.stop_service(service_name(key), kill=kill)
