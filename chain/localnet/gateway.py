"""The gateway beside a localnet: write its config and run `polylink gateway run` as a service.

Like `chain.localnet.workers`, the localnet only runs the command (it never
imports the gateway package); `down` stops it by PID with everything else.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from chain.localnet.config import TomlValue, render_toml
from chain.localnet.net import Localnet, LocalnetError
from chain.localnet.process import ProcRecord, is_running

SERVICE = "gateway"
LISTENING = '"gateway.listening"'


@dataclass
class GatewaySpec:
    """The gateway: the funded key that signs and pays, its node, where it listens, its API keys,
    and any other `[gateway]` settings (max_tokens, timeout_s, ...)."""

    key: str
    node: int = 0
    port: int = 0  # 0: the OS picks a free one (gateway_url reads it from the log)
    api_keys: Sequence[str] = ()
    settings: Mapping[str, TomlValue] = field(default_factory=dict)


def gateway_config_path(net: Localnet) -> Path:
    return net.home / "gateway" / "gateway.toml"


def gateway_log_path(net: Localnet) -> Path:
    return net.home / "services" / f"{SERVICE}.log"


def render_config(net: Localnet, spec: GatewaySpec) -> str:
    tables: dict[str, Mapping[str, TomlValue]] = {
        "chain": {"rpc": net.rpc_url(spec.node), "home": str(net.home), "key": spec.key},
        "gateway": {
            "host": "127.0.0.1",
            "port": spec.port,
            "api_keys": list(spec.api_keys),
            "log_format": "json",
            **spec.settings,
        },
    }
    return render_toml(f"gateway of the localnet in {net.home}", tables)


def start_gateway(net: Localnet, spec: GatewaySpec) -> ProcRecord:
    """Write the config from `spec` and start the gateway (a running one is left alone)."""
    path = gateway_config_path(net)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_config(net, spec))
    return net.start_service(SERVICE, [*net.polylink, "gateway", "run", "--config", str(path)])


def gateway_url(net: Localnet, timeout: float = 60.0) -> str:
    """The base URL (http://127.0.0.1:PORT) once the running gateway logs that it listens.

    Only the log since its latest start counts; raises LocalnetError if it exits or is too slow."""
    log = gateway_log_path(net)
    rec = net.services().get(SERVICE)
    deadline = time.monotonic() + timeout
    while True:
        text = log.read_text() if log.exists() else ""
        start = text.rfind("\n==> ")  # spawn() writes this header before each start
        for line in text[max(start, 0) :].splitlines():
            if LISTENING in line:
                return str(json.loads(line)["url"])
        if not is_running(rec):
            raise LocalnetError(f"the gateway is not running; see {log}")
        if time.monotonic() > deadline:
            raise LocalnetError(f"the gateway did not listen within {timeout:g} s; see {log}")
        time.sleep(0.2)


def stop_gateway(net: Localnet, *, kill: bool = False) -> list[int]:
    return net.stop_service(SERVICE, kill=kill)
