"""Validator scorers beside a localnet: `polylink validator run` for the validator operators' keys.

Like `chain.localnet.workers`, the localnet only runs the command; it never
imports the validator package.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from chain.localnet.config import TomlValue, render_toml
from chain.localnet.net import Localnet
from chain.localnet.process import ProcRecord


@dataclass
class ScorerSpec:
    """One scorer: the validator operator's key (val0..), its node, and its `[scoring]` table.

    `behaviour` other than "honest" makes a Byzantine scorer (tests only)."""

    key: str
    node: int = 0
    scoring: Mapping[str, TomlValue] = field(default_factory=dict)
    behaviour: str = "honest"
    poll_interval_s: float = 1.0
    metrics_port: int = 0


# every scorer of a localnet shares one host with the nodes and workers: one thread per model, so
# llama.cpp's (OpenMP) and ONNX Runtime's thread teams do not oversubscribe the cores and spin
# against each other (measured: a 32-token reference took 9 s with 3 scorers on every core of 2)
LOCALNET_SCORING: Mapping[str, TomlValue] = {"n_threads": 1, "encoder_threads": 1}


def scorer_home(net: Localnet, key: str) -> Path:
    return net.home / "scorers" / key


def scorer_config_path(net: Localnet, key: str) -> Path:
    return scorer_home(net, key) / "validator.toml"


def render_config(net: Localnet, spec: ScorerSpec) -> str:
    tables: dict[str, Mapping[str, TomlValue]] = {
        "chain": {"rpc": net.rpc_url(spec.node), "home": str(net.home), "key": spec.key},
        "validator": {
            "state_dir": str(scorer_home(net, spec.key) / "state"),
            "poll_interval_s": spec.poll_interval_s,
            "metrics_port": spec.metrics_port,
            "log_format": "json",
            "behaviour": spec.behaviour,
            "allow_byzantine": spec.behaviour != "honest",
        },
        "scoring": {**LOCALNET_SCORING, **spec.scoring},
    }
    return render_toml(f"TIQE scorer of validator {spec.key} in the localnet in {net.home}", tables)


def service_name(key: str) -> str:
    return f"scorer-{key}"


def start_scorer(net: Localnet, spec: ScorerSpec) -> ProcRecord:
    """Write the config from `spec` and start the scorer (its state dir survives restarts)."""
    path = scorer_config_path(net, spec.key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_config(net, spec))
    return net.start_service(service_name(spec.key), [*net.polylink, "validator", "run", "--config", str(path)])


def stop_scorer(net: Localnet, key: str, *, kill: bool = False) -> list[int]:
    return net.stop_service(service_name(key), kill=kill)
