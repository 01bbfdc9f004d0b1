"""The validator's TOML config (`polylink validator run --config FILE`) as typed, checked dataclasses.

Three tables:

- `[chain]`: `rpc` (CometBFT RPC URL), `home` (the directory holding
  `keyring/`), `key` (the validator's *operator* key: it signs the commits
  and reveals);
- `[validator]`: how the process runs (`state_dir`, `concurrency`,
  `poll_interval_s`, `metrics_*`, `log_*`, timeouts) and `behaviour`:
  "honest" (the default) or one of the Byzantine modes that exist only for
  the adversarial tests ("zero", "max", "random", "no_reveal", "copy"), which
  are refused unless `allow_byzantine = true`;
- `[scoring]`: handed as is to the scoring pipeline's parser
  (`validator.scoring.ScoringConfig.from_dict`), imported only when a config
  is checked so this module stays light.

Every problem is a `ConfigError` naming the table and key. The key readers
are the worker's (`worker.config`): one way to read a service config.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chain.client.rpc import DEFAULT_NODE
from worker.config import (
    DEFAULT_METRICS_HOST,
    LOG_FORMATS,
    LOG_LEVELS,
    MAX_PORT,
    ChainConfig,
    ConfigError,
    _only_keys,
    _path,
    _Table,
    _table,
    read_toml,
)

if TYPE_CHECKING:
    from validator.scoring.config import ScoringConfig

HONEST = "honest"
# Byzantine behaviours: only for the adversarial tests, never for a real validator.
BYZANTINE = ("zero", "max", "random", "no_reveal", "copy")
BEHAVIOURS = (HONEST, *BYZANTINE)
STATE_FILE = "validator.sqlite3"

__all__ = [
    "BEHAVIOURS",
    "BYZANTINE",
    "HONEST",
    "ChainConfig",
    "ConfigError",
    "ServiceConfig",
    "ValidatorConfig",
    "load_config",
    "parse_config",
    "parse_scoring",
]


@dataclass(frozen=True)
class ServiceConfig:
    """The `[validator]` table: the scorer process's own knobs."""

    state_dir: Path
    # answers scored at once (the scoring pipeline's share of the machine); txs take no slot.
    concurrency: int = 2
    poll_interval_s: float = 2.0
    # 0 = no metrics endpoint.
    metrics_port: int = 0
    metrics_host: str = DEFAULT_METRICS_HOST
    log_format: str = "json"
    log_level: str = "info"
    behaviour: str = HONEST
    allow_byzantine: bool = False
    # on SIGINT/SIGTERM: how long in-flight tasks may finish before they are cancelled.
    shutdown_timeout_s: float = 30.0
    # how long to wait for one broadcast tx to land in a block.
    tx_timeout_s: float = 60.0
    # blocks after a broadcast that did not land before the same content is sent again.
    resend_grace_blocks: int = 3
    # prepare each new request's prompt (its reference answer) while the worker answers (validator.prepare).
    prepare: bool = True

    @property
    def state_file(self) -> Path:
        return self.state_dir / STATE_FILE

    @property
    def byzantine(self) -> bool:
        return self.behaviour != HONEST


@dataclass(frozen=True)
class ValidatorConfig:
    chain: ChainConfig
    validator: ServiceConfig
    # the `[scoring]` table as written (the scorer factory parses it again with its base dir).
    scoring: Mapping[str, Any] = field(default_factory=dict)
    # the directory relative paths in `[scoring]` are taken from (the config file's).
    base_dir: Path = field(default_factory=Path.cwd)
    path: Path | None = None


def load_config(path: str | Path, *, check_scoring: bool = True) -> ValidatorConfig:
    """Read and check a config file; raises ConfigError.

    `check_scoring=False` skips the `[scoring]` parser (commands such as
    `status` that never score need not import the pipeline)."""
    p = Path(path).expanduser()
    data = read_toml(p, "validator")
    try:
        cfg = parse_config(data, base_dir=p.resolve().parent, check_scoring=check_scoring)
    except ConfigError as e:
        raise ConfigError(f"{p}: {e}") from None
    return ValidatorConfig(cfg.chain, cfg.validator, cfg.scoring, cfg.base_dir, p)


def parse_config(
    data: Mapping[str, Any], *, base_dir: Path | None = None, check_scoring: bool = True
) -> ValidatorConfig:
    """Check a parsed TOML document; relative paths are taken relative to `base_dir`."""
    base = base_dir if base_dir is not None else Path.cwd()
    _only_keys("", data, {"chain", "validator", "scoring"})
    chain = _Table("chain", _table(data, "chain"))
    svc = _Table("validator", _table(data, "validator") if "validator" in data else {})
    scoring = _table(data, "scoring") if "scoring" in data else {}

    chain_cfg = ChainConfig(
        rpc=chain.str_("rpc", DEFAULT_NODE, nonempty=True),
        home=_path(base, chain.str_("home", "~/.polylink", nonempty=True)),
        key=chain.key_name("key"),
    )
    chain.done()

    service = ServiceConfig(
        state_dir=_path(base, svc.str_("state_dir", "state", nonempty=True)),
        concurrency=svc.int_("concurrency", 2, minimum=1),
        poll_interval_s=svc.float_("poll_interval_s", 2.0, positive=True),
        metrics_port=svc.int_("metrics_port", 0, minimum=0, maximum=MAX_PORT),
        metrics_host=svc.str_("metrics_host", DEFAULT_METRICS_HOST, nonempty=True),
        log_format=svc.choice("log_format", "json", LOG_FORMATS),
        log_level=svc.choice("log_level", "info", LOG_LEVELS),
        behaviour=svc.choice("behaviour", HONEST, BEHAVIOURS),
        allow_byzantine=svc.bool_("allow_byzantine", False),
        shutdown_timeout_s=svc.float_("shutdown_timeout_s", 30.0, positive=True),
        tx_timeout_s=svc.float_("tx_timeout_s", 60.0, positive=True),
        resend_grace_blocks=svc.int_("resend_grace_blocks", 3, minimum=1),
        prepare=svc.bool_("prepare", True),
    )
    svc.done()
    if service.byzantine and not service.allow_byzantine:
        raise ConfigError(
            f"[validator] behaviour = {service.behaviour!r} is a Byzantine mode for the adversarial tests: "
            "it gets this validator slashed and jailed; set allow_byzantine = true to run it anyway, "
            'or use behaviour = "honest"'
        )

    cfg = ValidatorConfig(chain_cfg, service, dict(scoring), base)
    if check_scoring:
        parse_scoring(cfg)
    return cfg


def parse_scoring(cfg: ValidatorConfig) -> ScoringConfig:
    """The `[scoring]` table through the pipeline's own parser (`ScoringConfig.from_dict`, whose
    errors are ConfigErrors naming the key). Imported here, not at module level, so that reading
    a config never needs more of the pipeline than its parser."""
    from validator.scoring.config import ScoringConfig

    return ScoringConfig.from_dict(cfg.scoring, base_dir=cfg.base_dir)
