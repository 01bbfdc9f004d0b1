"""The CometBFT half of a genesis document: time, consensus params, validators.

CometBFT reads `genesis.json` itself. These helpers write what it expects and
check what it would refuse, so a bad file fails here, once, with a clear
message, rather than in every node's log. CometBFT's JSON encodes int64 fields
as decimal strings ("power": "10"); a bare number is refused, so we refuse it
too.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import hashlib
import json
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from genesis.errors import GenesisError

PUBKEY_TYPE = "tendermint/PubKeyEd25519"
PUBKEY_LEN = 32
MAX_CHAIN_ID_LEN = 50  # CometBFT's types.MaxChainIDLen
MAX_BLOCK_BYTES = 100 * 1024 * 1024  # CometBFT's types.MaxBlockSizeBytes
_TIME_RE = re.compile(
    r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$"
)


def format_time(time_ns: int) -> str:
    """RFC 3339 in UTC with nanoseconds, the form CometBFT writes."""
    secs, nanos = divmod(time_ns, 1_000_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    return f"{base}.{nanos:09d}Z"


def parse_time(text: object) -> int:
    """Nanoseconds since the Unix epoch of an RFC 3339 time; raises GenesisError."""
    m = _TIME_RE.match(text) if isinstance(text, str) else None
    if not m:
        raise GenesisError(
            f"genesis_time {text!r} is not an RFC 3339 time such as 2025-01-01T00:00:00Z"
        )
    y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
    frac, zone = m.group(7) or "", m.group(8)
    try:
        secs = calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))
    except (ValueError, OverflowError) as e:
        raise GenesisError(f"genesis_time {text!r}: {e}") from None
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        secs -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return secs * 1_000_000_000 + int(frac.ljust(9, "0") or "0")


def validator_address(pub_key: bytes) -> str:
    """CometBFT's address of an ed25519 key: sha256(pubkey)[:20], upper-case hex."""
    return hashlib.sha256(pub_key).digest()[:20].hex().upper()


def read_validator_pubkey(node_home: Path) -> bytes:
    """The consensus public key in NODE_HOME/config/priv_validator_key.json (written by `cometbft init`)."""
    path = Path(node_home) / "config" / "priv_validator_key.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise GenesisError(
            f"{path} does not exist; run `cometbft init --home {node_home}` first"
        ) from None
    except (OSError, json.JSONDecodeError) as e:
        raise GenesisError(f"cannot read {path}: {e}") from None
    pk = data.get("pub_key") if isinstance(data, dict) else None
    if not isinstance(pk, dict):
        raise GenesisError(f"{path} has no pub_key")
    return _pubkey(pk, str(path))


def validator_entry(pub_key: bytes, power: int, name: str) -> dict[str, Any]:
    """One entry of genesis `validators`, as CometBFT writes it."""
    if power <= 0:
        raise GenesisError(f"validator power must be positive, got {power}")
    return {
        "address": validator_address(pub_key),
        "pub_key": {"type": PUBKEY_TYPE, "value": base64.b64encode(pub_key).decode()},
        "power": str(power),
        "name": name,
    }


def int_field(value: object, where: str) -> int:
    """An int64 field in CometBFT's JSON: a decimal string."""
    if not isinstance(value, str) or not re.fullmatch(r"-?[0-9]+", value):
        raise GenesisError(
            f"{where} must be a decimal string (CometBFT's int64 encoding), got {value!r}"
        )
    return int(value)


def check_doc(doc: Mapping[str, Any]) -> None:
    """Refuse what CometBFT would refuse in the document's own fields (not app_state)."""
    chain_id = doc.get("chain_id")
    if not isinstance(chain_id, str) or not chain_id.strip():
        raise GenesisError("chain_id is missing or empty")
    if len(chain_id) > MAX_CHAIN_ID_LEN:
        raise GenesisError(f"chain_id is longer than {MAX_CHAIN_ID_LEN} characters")
    parse_time(doc.get("genesis_time"))
    if int_field(doc.get("initial_height", "0"), "initial_height") < 0:
        raise GenesisError("initial_height must be >= 0")
    block = (doc.get("consensus_params") or {}).get("block")
    if not isinstance(block, dict):
        raise GenesisError("consensus_params.block is missing")
    max_bytes = int_field(block.get("max_bytes"), "consensus_params.block.max_bytes")
    if not 0 < max_bytes <= MAX_BLOCK_BYTES and max_bytes != -1:
        raise GenesisError(
            f"consensus_params.block.max_bytes must be in 1..{MAX_BLOCK_BYTES} or -1"
        )
    if int_field(block.get("max_gas"), "consensus_params.block.max_gas") < -1:
        raise GenesisError("consensus_params.block.max_gas must be >= -1 (-1 = unlimited)")
    vals = doc.get("validators", [])
    if not isinstance(vals, list):
        raise GenesisError("validators must be a list (empty when the app's staking creates them)")
    seen: set[bytes] = set()
    for i, v in enumerate(vals):
        where = f"validators[{i}]"
        if not isinstance(v, dict) or not isinstance(v.get("pub_key"), dict):
            raise GenesisError(f"{where} has no pub_key")
        pk = _pubkey(v["pub_key"], where)
        if pk in seen:
            raise GenesisError(f"{where} repeats the key of another validator")
        seen.add(pk)
        if int_field(v.get("power"), f"{where}.power") <= 0:
            raise GenesisError(f"{where}.power must be positive")
        addr = v.get("address", "")
        if addr and addr != validator_address(pk):
            raise GenesisError(
                f"{where}.address {addr} does not match its pub_key ({validator_address(pk)})"
            )
    if not isinstance(doc.get("app_state", {}), dict):
        raise GenesisError("app_state must be a JSON object")


def _pubkey(pk: Mapping[str, Any], where: str) -> bytes:
    if pk.get("type") != PUBKEY_TYPE:
        raise GenesisError(f"{where}: pub_key type {pk.get('type')!r} is not {PUBKEY_TYPE!r}")
    try:
        raw = base64.b64decode(str(pk.get("value", "")), validate=True)
    except binascii.Error as e:
        raise GenesisError(f"{where}: pub_key value is not base64: {e}") from None
    if len(raw) != PUBKEY_LEN:
        raise GenesisError(f"{where}: ed25519 pub_key must be {PUBKEY_LEN} bytes, got {len(raw)}")
    return raw
