"""The gateway's TOML config (`polylink gateway run --config FILE`) as typed, checked dataclasses.

Two tables:

- `[chain]`: `rpc`, `home` (the directory holding `keyring/`), `key` (the
  funded key that signs and pays for every request), as for the worker;
- `[gateway]`: where it listens, its API keys, and the defaults of each call
  (`max_tokens`, `min_quality`, `redundancy`, `timeout_s`, price cap).

Problems are `ConfigError`s naming the table and key (the worker's config
reader, so both files read the same way). Relative paths are relative to the
config file's folder.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chain.client.rpc import DEFAULT_NODE
from worker.config import (
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

PPM = 1_000_000
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000

__all__ = ["ChainConfig", "ConfigError", "GatewayConfig", "ServiceConfig", "load_config", "parse_config"]


@dataclass(frozen=True)
class ServiceConfig:
    """The `[gateway]` table."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    # Bearer keys accepted on /v1/*; empty: no key needed (loopback use).
    api_keys: tuple[str, ...] = ()
    # model ids this gateway serves; empty: every registered model.
    models: tuple[str, ...] = ()
    # max_tokens of a call that gives none.
    max_tokens: int = 256
    # answers below this quality (ppm) are refused with 422 (0: only TIQE's own verdict counts).
    min_quality_ppm: int = 0
    # workers per request (n > 1: a swarm, commit-then-reveal; the best-scored answer wins).
    redundancy: int = 1
    # from the call to the verified answer; past it the call gets 504 (the request goes on on chain).
    timeout_s: float = 120.0
    # the most a request may cost per 1000 tokens (upoly); "": the current price x (1 + headroom).
    max_price: str = ""
    # slack over the current price (ppm) so a price step between quote and block does not fail the request.
    price_headroom_ppm: int = 250_000
    # how often a waiting call re-reads its request when no new-block event arrives.
    poll_interval_s: float = 1.0
    # completion calls per API key (per client address without keys): a bucket of rate_limit_burst calls
    # refilled at rate_limit_per_minute; past it 429 with Retry-After. 0: no limit.
    rate_limit_per_minute: float = 120.0
    rate_limit_burst: int = 30
    dashboard: bool = True
    # requests per dashboard page (its API accepts up to 100).
    dashboard_page_size: int = 20
    log_format: str = "json"
    log_level: str = "info"


@dataclass(frozen=True)
class GatewayConfig:
    chain: ChainConfig
    gateway: ServiceConfig
    path: Path | None = None


def load_config(path: str | Path) -> GatewayConfig:
    """Read and check a config file; raises ConfigError."""
    p = Path(path).expanduser()
    data = read_toml(p, "gateway")
    try:
        cfg = parse_config(data, base_dir=p.resolve().parent)
    except ConfigError as e:
        raise ConfigError(f"{p}: {e}") from None
    return GatewayConfig(cfg.chain, cfg.gateway, p)


def parse_config(data: Mapping[str, Any], *, base_dir: Path | None = None) -> GatewayConfig:
    """Check a parsed TOML document; relative paths are taken relative to `base_dir`."""
    base = base_dir if base_dir is not None else Path.cwd()
    _only_keys("", data, {"chain", "gateway"})
    chain = _Table("chain", _table(data, "chain"))
    gw = _Table("gateway", data.get("gateway") or {})

    chain_cfg = ChainConfig(
        rpc=chain.str_("rpc", DEFAULT_NODE, nonempty=True),
        home=_path(base, chain.str_("home", "~/.polylink", nonempty=True)),
        key=chain.key_name("key"),
    )
    chain.done()

    svc = ServiceConfig(
        host=gw.str_("host", DEFAULT_HOST, nonempty=True),
        port=gw.int_("port", DEFAULT_PORT, minimum=0, maximum=MAX_PORT),
        api_keys=_strings(gw, "api_keys"),
        models=_strings(gw, "models"),
        max_tokens=gw.int_("max_tokens", 256, minimum=1),
        min_quality_ppm=_fraction_ppm(gw, "min_quality", 0.0),
        redundancy=gw.int_("redundancy", 1, minimum=1),
        timeout_s=gw.float_("timeout_s", 120.0, positive=True),
        max_price=_price(gw, "max_price"),
        price_headroom_ppm=_fraction_ppm(gw, "price_headroom", 0.25, maximum=10.0),
        poll_interval_s=gw.float_("poll_interval_s", 1.0, positive=True),
        rate_limit_per_minute=gw.float_("rate_limit_per_minute", 120.0, positive=False),
        rate_limit_burst=gw.int_("rate_limit_burst", 30, minimum=1),
        dashboard=gw.bool_("dashboard", True),
        dashboard_page_size=gw.int_("dashboard_page_size", 20, minimum=1, maximum=100),
        log_format=gw.choice("log_format", "json", LOG_FORMATS),
        log_level=gw.choice("log_level", "info", LOG_LEVELS),
    )
    gw.done()
    if svc.rate_limit_per_minute < 0:
        raise ConfigError(f"gateway.rate_limit_per_minute must be >= 0 (0: no limit), got {svc.rate_limit_per_minute}")
    return GatewayConfig(chain_cfg, svc)


def _strings(t: _Table, key: str) -> tuple[str, ...]:
    v = t._get(key, [])
    if not isinstance(v, list) or not all(isinstance(s, str) and s for s in v):
        raise t._bad(key, "a list of non-empty strings", v)
    if len(set(v)) != len(v):
        raise t._bad(key, "a list without duplicates", v)
    return tuple(v)


def _fraction_ppm(t: _Table, key: str, default: float, *, maximum: float = 1.0) -> int:
    v = t._get(key, default)
    if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= maximum:
        raise t._bad(key, f"a number in 0..{maximum:g}", v)
    return round(float(v) * PPM)


def _price(t: _Table, key: str) -> str:
    v = t.str_(key, "")
    if v and (not v.isdigit() or (len(v) > 1 and v[0] == "0")):
        raise t._bad(key, 'a whole number of upoly per 1000 tokens (or "" for the current price)', v)
    return v
