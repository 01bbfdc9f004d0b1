"""The genesis builder: canonical app_state, validation through the modules and InitChain, export -> import."""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import bech32
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from chain.app.app import PolyLinkApp
from chain.cli import genesis as genesis_cli
from chain.core.address import address_of_pubkey, module_address
from chain.core.coins import Coins
from genesis import builder
from genesis.cometbft import format_time, parse_time, validator_address
from genesis.errors import GenesisError

T0 = 1_767_225_600_123_456_789  # 2026-01-01T00:00:00.123456789Z
CHAIN = "test-chain"


def _pub(seed: bytes) -> bytes:
    key = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(seed).digest())
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _addr(n: int) -> str:
    return address_of_pubkey(_pub(b"user%d" % n))


def _node_home(root: Path, i: int) -> Path:
    """A node home with the priv_validator_key.json `cometbft init` would write (public part only)."""
    home = root / f"node{i}"
    (home / "config").mkdir(parents=True)
    pk = _pub(b"node%d" % i)
    key = {
        "address": validator_address(pk),
        "pub_key": {"type": "tendermint/PubKeyEd25519", "value": base64.b64encode(pk).decode()},
    }
    (home / "config" / "priv_validator_key.json").write_text(json.dumps(key))
    return home


@pytest.fixture
def homes(tmp_path: Path) -> list[Path]:
    return [_node_home(tmp_path, i) for i in range(3)]


def _doc(homes: list[Path], n_accounts: int = 3) -> dict[str, Any]:
    accounts = [(_addr(i), Coins({"upoly": 1_000 * (i + 1)})) for i in range(n_accounts)]
    return builder.build_genesis(CHAIN, accounts, homes, genesis_time_ns=T0)


# --- building ------------------------------------------------------------------
def test_new_genesis_has_every_module_param_and_the_template_consensus_params() -> None:
    doc = builder.new_genesis(CHAIN, genesis_time_ns=T0)
    t = builder.load_template("localnet")
    assert doc["chain_id"] == CHAIN and doc["validators"] == []
    assert doc["consensus_params"] == t["consensus_params"]
    assert doc["consensus_params"]["block"]["max_gas"] == "100000000"
    assert set(doc["app_state"]) == {
        "auth", "bank", "gov", "staking", "slashing", "registry", "inference", "tiqe", "rewards", "pricing"
    }  # fmt: skip
    auth = doc["app_state"]["auth"]["params"]
    assert auth["max_tx_bytes"] == "65536" and auth["tx_base_gas"] == "20000"  # defaults filled in
    assert doc["genesis_time"] == "2026-01-01T00:00:00.123456789Z"
    with pytest.raises(GenesisError, match="no validators"):
        builder.validate_genesis(doc)


def test_template_overrides_merge_over_module_defaults() -> None:
    state = builder.default_app_state({"auth": {"params": {"max_memo_characters": "7"}}})
    assert state["auth"]["params"]["max_memo_characters"] == "7"
    assert state["auth"]["params"]["max_tx_bytes"] == "65536"
    assert state["bank"] == builder.default_app_state()["bank"]


def test_build_is_canonical_and_validates(homes: list[Path]) -> None:
    doc = _doc(homes)
    auth, bank = doc["app_state"]["auth"], doc["app_state"]["bank"]
    assert [a["account_number"] for a in auth["accounts"]] == ["0", "1", "2"]
    assert [a["address"] for a in auth["accounts"]] == [_addr(0), _addr(1), _addr(2)]
    raw = [builder._addr(b["address"], "") for b in bank["balances"]]
    assert raw == sorted(raw)
    assert bank["supply"] == [{"denom": "upoly", "amount": "6000"}]
    assert [v["name"] for v in doc["validators"]] == ["node0", "node1", "node2"]
    assert {v["power"] for v in doc["validators"]} == {"10"}
    app_hash = builder.validate_genesis(doc)
    assert len(app_hash) == 32
    # exactly what the app computes from what CometBFT sends
    direct = PolyLinkApp(None).init_chain(
        CHAIN, json.dumps(doc["app_state"]).encode(), 1, T0, 100_000_000
    )
    assert app_hash == direct
    assert builder.validate_genesis(copy.deepcopy(doc)) == app_hash  # deterministic


def test_write_read_round_trip(tmp_path: Path, homes: list[Path]) -> None:
    doc = _doc(homes)
    builder.write_genesis(tmp_path / "g" / "genesis.json", doc)
    assert builder.read_genesis(tmp_path / "g" / "genesis.json") == doc


# --- bad input -------------------------------------------------------------------
def test_add_account_rejects_bad_input() -> None:
    state = builder.build_app_state([(_addr(0), Coins({"upoly": 5}))])
    with pytest.raises(GenesisError, match="already in genesis"):
        builder.add_account(state, _addr(0), Coins({"upoly": 1}))
    with pytest.raises(GenesisError, match="bech32"):
        builder.add_account(state, "poly1notanaddress", Coins({"upoly": 1}))
    with pytest.raises(GenesisError, match="prefix"):
        other = bech32.bech32_encode("cosmos", bech32.convertbits(list(b"\x01" * 20), 8, 5))
        builder.add_account(state, other, Coins({"upoly": 1}))
    with pytest.raises(GenesisError, match="module account"):
        builder.add_account(state, module_address("fee_collector"), Coins({"upoly": 1}))
    with pytest.raises(GenesisError, match="positive balance"):
        builder.add_account(state, _addr(1), Coins())


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda d: d["app_state"].update(nosuchmodule={}), "unknown modules"),
        (lambda d: d["app_state"]["auth"]["params"].update(max_tx_bytes="10"), "max_tx_bytes"),
        (lambda d: d["app_state"]["auth"]["params"].update(no_such_param="1"), "no_such_param"),
        (lambda d: d["app_state"]["bank"]["supply"][0].update(amount="1"), "supply"),
        (
            lambda d: d["app_state"]["bank"]["balances"].append(
                d["app_state"]["bank"]["balances"][0]
            ),
            "duplicate",
        ),
        (
            lambda d: d["app_state"]["auth"]["accounts"][1].update(account_number="0"),
            "duplicate account number",
        ),
        (lambda d: d["app_state"]["bank"]["balances"][0]["coins"][0].update(amount="-5"), "amount"),
        (lambda d: d["validators"][0].update(power=10), "decimal string"),
        (lambda d: d["validators"][0].update(power="0"), "positive"),
        (lambda d: d["validators"][1].update(pub_key=d["validators"][0]["pub_key"]), "repeats"),
        (lambda d: d["validators"][0]["pub_key"].update(value="AAAA"), "32 bytes"),
        (lambda d: d["validators"][0].update(address="00" * 20), "does not match"),
        (lambda d: d.update(chain_id="x" * 51), "longer than"),
        (lambda d: d.update(chain_id=""), "chain_id"),
        (lambda d: d.update(genesis_time="yesterday"), "RFC 3339"),
        (lambda d: d["consensus_params"]["block"].update(max_gas="-2"), "max_gas"),
        (lambda d: d.update(app_state=[]), "JSON object"),
    ],
)
def test_validate_rejects(homes: list[Path], mutate: Any, match: str) -> None:
    doc = _doc(homes)
    mutate(doc)
    with pytest.raises(GenesisError, match=match):
        builder.validate_genesis(doc)


def test_with_validator_errors(tmp_path: Path, homes: list[Path]) -> None:
    doc = builder.with_validator(builder.new_genesis(CHAIN), homes[0])
    with pytest.raises(GenesisError, match="already in genesis"):
        builder.with_validator(doc, homes[0])
    with pytest.raises(GenesisError, match="cometbft init"):
        builder.with_validator(doc, tmp_path / "missing")
    with pytest.raises(GenesisError, match="positive"):
        builder.with_validator(doc, homes[1], power=0)


def test_unknown_template() -> None:
    assert "localnet" in builder.template_names()
    with pytest.raises(GenesisError, match="no genesis template"):
        builder.new_genesis(CHAIN, template="nope")


def test_time_round_trip() -> None:
    assert parse_time(format_time(T0)) == T0
    assert parse_time("2026-01-01T00:00:00Z") == 1_767_225_600 * 10**9
    assert parse_time("2026-01-01T02:00:00.5+02:00") == 1_767_225_600 * 10**9 + 500_000_000


# --- export -> import ------------------------------------------------------------
def test_export_import_round_trip(homes: list[Path]) -> None:
    doc = _doc(homes, n_accounts=5)
    a = PolyLinkApp(None)
    genesis_hash = a.init_chain(CHAIN, json.dumps(doc["app_state"]).encode(), 1, T0, 100_000_000)
    r = a.finalize_block(1, T0 + 10**9, b"\x01" * 32, b"\x02" * 20, [])
    a.commit()
    assert a.height == 1 and a.app_hash == r.app_hash
    exported = a.export_genesis()
    assert builder.canonical_app_state(exported) == exported  # exports are already canonical
    builder.validate_app_state(exported)

    b = PolyLinkApp(None)
    imported_hash = b.init_chain(
        CHAIN, json.dumps(exported).encode(), 2, T0 + 2 * 10**9, 100_000_000
    )
    assert imported_hash == a.app_hash
    assert genesis_hash == a.app_hash  # an empty block changes nothing
    b.finalize_block(2, T0 + 3 * 10**9, b"\x03" * 32, b"\x02" * 20, [])
    b.commit()
    assert b.export_genesis() == exported
    # and through a whole document written by the builder
    doc2 = dict(doc, app_state=exported, initial_height="2")
    assert builder.validate_genesis(doc2) == a.app_hash


# --- CLI -------------------------------------------------------------------------
def _cli(*argv: str) -> int:
    p = argparse.ArgumentParser()
    genesis_cli.register(p)
    a = p.parse_args(list(argv))
    return int(a.func(a))


def test_cli_init_add_validate(
    tmp_path: Path, homes: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    g = str(tmp_path / "genesis.json")
    assert (
        _cli("init", "--chain-id", CHAIN, "--out", g, "--genesis-time", "2026-01-01T00:00:00Z") == 0
    )
    assert _cli("init", "--chain-id", CHAIN, "--out", g) == 1  # refuses to overwrite
    assert _cli("validate", g) == 1
    assert "no validators" in capsys.readouterr().err
    for h in homes:
        assert _cli("add-validator", "--genesis", g, "--node-home", str(h)) == 0
    assert _cli("add-account", "--genesis", g, _addr(0), "100upoly,5uabc") == 0
    assert _cli("add-account", "--genesis", g, _addr(0), "1upoly") == 1
    assert _cli("add-account", "--genesis", g, _addr(1), "12 upoly") == 1
    capsys.readouterr()
    assert _cli("validate", g) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is True and out["chain_id"] == CHAIN
    assert out["validators"] == 3 and out["accounts"] == 1
    doc = builder.read_genesis(Path(g))
    assert bytes.fromhex(out["app_hash"]) == builder.validate_genesis(doc)
    assert doc["app_state"]["bank"]["supply"] == [
        {"denom": "uabc", "amount": "5"},
        {"denom": "upoly", "amount": "100"},
    ]
