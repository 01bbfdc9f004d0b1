"""The worker's TOML config (`polylink worker run --config FILE`) as typed, checked dataclasses.

Three tables:

- `[chain]`: `rpc` (CometBFT RPC URL), `home` (the directory holding
  `keyring/`), `key` (the keyring key that signs and earns);
- `[worker]`: what the worker registers on chain (`models`, `capacity`,
  `bond`, `endpoint`) and how the process runs (`concurrency`, `state_dir`,
  `metrics_*`, `poll_interval_s`, `log_*`, timeouts);
- `[engine]`: parsed by the engine package (`EngineConfig.from_dict`; its
  `kind` picks the engine).

Every problem is a `ConfigError` naming the table and key, so an operator can
fix the file without reading code. Relative paths are taken relative to the
config file's directory (not the process's working directory), `~` expanded.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chain.client.errors import KeyringError
from chain.client.keyring import check_name
from chain.client.rpc import DEFAULT_NODE
from chain.core.coins import BOND_DENOM, Coins
from chain.core.errors import ChainError
from worker.engines.base import EngineConfig, EngineConfigError

DEFAULT_BOND = f"100000000{BOND_DENOM}"
DEFAULT_METRICS_HOST = "127.0.0.1"
LOG_FORMATS = ("json", "text")
LOG_LEVELS = ("debug", "info", "warning", "error")
MAX_PORT = 65535


class ConfigError(ValueError):
    """The config file is missing, not TOML, or has a missing, unknown or bad key."""


@dataclass(frozen=True)
class ChainConfig:
    """How the worker reaches the chain and which key it signs with."""

    rpc: str
    home: Path
    key: str


@dataclass(frozen=True)
class ServiceConfig:
    """The `[worker]` table: the on-chain registration and the process's own knobs."""

    models: tuple[str, ...]
    # tokens per block the worker commits to serve (registered on chain).
    capacity: int
    state_dir: Path
    # generations run at once (the engine's share of the machine).
    concurrency: int = 1
    bond_amount: int = 100_000_000
    bond_denom: str = BOND_DENOM
    # at start and then every `bond_check_interval_s` while serving, bring a bond that slashing
    # took below `bond` back up to it (MsgUpdateWorker add_bond).
    top_up_bond: bool = True
    bond_check_interval_s: float = 30.0
    endpoint: str = ""
    # 0 = no metrics endpoint.
    metrics_port: int = 0
    metrics_host: str = DEFAULT_METRICS_HOST
    poll_interval_s: float = 2.0
    log_format: str = "json"
    log_level: str = "info"
    # on SIGINT/SIGTERM: how long in-flight tasks may finish before they are cancelled.
    shutdown_timeout_s: float = 30.0
    # how long to wait for one broadcast tx to land in a block.
    tx_timeout_s: float = 60.0
    # blocks after a broadcast that did not land before the same content is sent again.
    resend_grace_blocks: int = 3

    @property
    def bond(self) -> str:
        return f"{self.bond_amount}{self.bond_denom}"

    @property
    def state_file(self) -> Path:
        return self.state_dir / "worker.sqlite3"


@dataclass(frozen=True)
class WorkerConfig:
    chain: ChainConfig
    worker: ServiceConfig
    engine: EngineConfig
    path: Path | None = None


def read_toml(p: Path, command: str) -> dict[str, Any]:
    """The TOML document at `p` (a service's config); ConfigError says what is wrong and, for a
    missing file, how `polylink COMMAND init-config` writes one."""
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"config file {p} does not exist (write one with `polylink {command} init-config --out {p}`)"
        ) from None
    except OSError as e:
        raise ConfigError(f"cannot read config file {p}: {e}") from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ConfigError(f"{p} is not UTF-8 text: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p} is not valid TOML: {e}") from None


def load_config(path: str | Path) -> WorkerConfig:
    """Read and check a config file; raises ConfigError."""
    p = Path(path).expanduser()
    data = read_toml(p, "worker")
    try:
        cfg = parse_config(data, base_dir=p.resolve().parent)
    except ConfigError as e:
        raise ConfigError(f"{p}: {e}") from None
    return WorkerConfig(cfg.chain, cfg.worker, cfg.engine, p)


def parse_config(data: Mapping[str, Any], *, base_dir: Path | None = None) -> WorkerConfig:
    """Check a parsed TOML document; relative paths are taken relative to `base_dir`."""
    base = base_dir if base_dir is not None else Path.cwd()
    _only_keys("", data, {"chain", "worker", "engine"})
    chain = _Table("chain", _table(data, "chain"))
    worker = _Table("worker", _table(data, "worker"))
    engine = _table(data, "engine")

    chain_cfg = ChainConfig(
        rpc=chain.str_("rpc", DEFAULT_NODE, nonempty=True),
        home=_path(base, chain.str_("home", "~/.polylink", nonempty=True)),
        key=chain.key_name("key"),
    )
    chain.done()

    amount, denom = worker.coin("bond", DEFAULT_BOND)
    svc = ServiceConfig(
        models=worker.models("models"),
        capacity=worker.int_("capacity", None, minimum=1),
        state_dir=_path(base, worker.str_("state_dir", "state", nonempty=True)),
        concurrency=worker.int_("concurrency", 1, minimum=1),
        bond_amount=amount,
        bond_denom=denom,
        top_up_bond=worker.bool_("top_up_bond", True),
        bond_check_interval_s=worker.float_("bond_check_interval_s", 30.0, positive=True),
        endpoint=worker.str_("endpoint", ""),
        metrics_port=worker.int_("metrics_port", 0, minimum=0, maximum=MAX_PORT),
        metrics_host=worker.str_("metrics_host", DEFAULT_METRICS_HOST, nonempty=True),
        poll_interval_s=worker.float_("poll_interval_s", 2.0, positive=True),
        log_format=worker.choice("log_format", "json", LOG_FORMATS),
        log_level=worker.choice("log_level", "info", LOG_LEVELS),
        shutdown_timeout_s=worker.float_("shutdown_timeout_s", 30.0, positive=True),
        tx_timeout_s=worker.float_("tx_timeout_s", 60.0, positive=True),
        resend_grace_blocks=worker.int_("resend_grace_blocks", 3, minimum=1),
    )
    worker.done()

    try:
        engine_cfg = EngineConfig.from_dict(engine, base_dir=base)
    except EngineConfigError as e:
        msg = str(e)
        raise ConfigError(msg if "[engine]" in msg else f"[engine] {msg}") from None
    return WorkerConfig(chain_cfg, svc, engine_cfg)


def _table(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    v = data.get(name)
    if v is None:
        raise ConfigError(f"table [{name}] is missing")
    if not isinstance(v, Mapping):
        raise ConfigError(f"[{name}] must be a table, got {type(v).__name__}")
    return v


def _only_keys(where: str, data: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        place = f"[{where}] " if where else "top level "
        raise ConfigError(
            f"unknown key{'s' if len(unknown) > 1 else ''} in {place}{', '.join(unknown)} "
            f"(allowed: {', '.join(sorted(allowed))})"
        )


def _path(base: Path, text: str) -> Path:
    p = Path(text).expanduser()
    return p if p.is_absolute() else base / p


class _Table:
    """Reads typed keys from one table and remembers which it read, so leftovers are unknown keys."""

    def __init__(self, name: str, data: Mapping[str, Any]) -> None:
        self.name = name
        self.data = data
        self.seen: set[str] = set()

    def _get(self, key: str, default: Any) -> Any:
        self.seen.add(key)
        if key not in self.data:
            if default is None:
                raise ConfigError(f"[{self.name}] {key} is missing")
            return default
        return self.data[key]

    def _bad(self, key: str, want: str, got: Any) -> ConfigError:
        return ConfigError(f"[{self.name}] {key} must be {want}, got {got!r}")

    def str_(self, key: str, default: str | None, *, nonempty: bool = False) -> str:
        v = self._get(key, default)
        if not isinstance(v, str):
            raise self._bad(key, "a string", v)
        if nonempty and not v.strip():
            raise self._bad(key, "a non-empty string", v)
        return v

    def int_(self, key: str, default: int | None, *, minimum: int, maximum: int | None = None) -> int:
        v = self._get(key, default)
        if isinstance(v, bool) or not isinstance(v, int):
            raise self._bad(key, "an integer", v)
        if v < minimum or (maximum is not None and v > maximum):
            rng = f">= {minimum}" if maximum is None else f"in {minimum}..{maximum}"
            raise self._bad(key, f"an integer {rng}", v)
        return v

    def float_(self, key: str, default: float, *, positive: bool) -> float:
        v = self._get(key, default)
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise self._bad(key, "a number", v)
        f = float(v)
        if not math.isfinite(f) or (positive and f <= 0):
            raise self._bad(key, "a positive number", v)
        return f

    def bool_(self, key: str, default: bool) -> bool:
        v = self._get(key, default)
        if not isinstance(v, bool):
            raise self._bad(key, "true or false", v)
        return v

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        v = self._get(key, default)
        if v not in choices:
            raise self._bad(key, "one of " + ", ".join(repr(c) for c in choices), v)
        return str(v)

    def key_name(self, key: str) -> str:
        v = self.str_(key, None, nonempty=True)
        try:
            return check_name(v)
        except KeyringError as e:
            raise ConfigError(f"[{self.name}] {key}: {e}") from None

    def models(self, key: str) -> tuple[str, ...]:
        v = self._get(key, None)
        if not isinstance(v, list) or not v or not all(isinstance(m, str) and m for m in v):
            raise self._bad(key, "a non-empty list of model ids", v)
        if len(set(v)) != len(v):
            raise self._bad(key, "a list without duplicates", v)
        # the chain stores a worker's models sorted; keep the same order here.
        return tuple(sorted(v))

    def coin(self, key: str, default: str) -> tuple[int, str]:
        v = self.str_(key, default, nonempty=True)
        try:
            items = Coins.parse(v).items()
        except ChainError as e:
            raise ConfigError(f"[{self.name}] {key}: {e.log}") from None
        if len(items) != 1:
            raise self._bad(key, f"one positive amount such as {DEFAULT_BOND}", v)
        denom, amount = items[0]
        return amount, denom

    def done(self) -> None:
        _only_keys(self.name, self.data, self.seen)
