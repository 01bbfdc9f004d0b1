"""Keyring: permissions, round trip, no overwrite, name checks; Signer basics."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from chain.client.errors import KeyExistsError, KeyNotFoundError, KeyringError
from chain.client.keyring import Keyring
from chain.client.signer import Signer
from chain.core.address import address_of_pubkey, from_bech32

SEED = "01" * 32


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_add_creates_private_dir_and_file(tmp_path: Path) -> None:
    kr = Keyring(tmp_path / "home")
    info = kr.add("alice")
    assert mode(kr.dir) == 0o700
    f = kr.dir / "alice.json"
    assert mode(f) == 0o600
    record = json.loads(f.read_text())
    assert record["address"] == info.address
    assert record["pub_key"] == info.pub_key.hex()
    assert len(bytes.fromhex(record["priv_key"])) == 32
    from_bech32(info.address)  # a valid poly1... address


def test_file_is_0600_even_with_a_loose_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        kr = Keyring(tmp_path)
        kr.add("k")
    finally:
        os.umask(old)
    assert mode(kr.dir / "k.json") == 0o600
    assert mode(kr.dir) == 0o700


def test_round_trip_show_list_get_signer(tmp_path: Path) -> None:
    kr = Keyring(tmp_path)
    a = kr.add("alice")
    b = kr.add("bob", SEED)
    assert kr.show("alice") == a
    assert [k.name for k in kr.list()] == ["alice", "bob"]
    s = kr.get_signer("bob")
    assert s.address == b.address == address_of_pubkey(s.pub_key)
    sig = s.sign(b"hello")
    Ed25519PublicKey.from_public_bytes(b.pub_key).verify(sig, b"hello")
    # a fresh Keyring object reads the same keys back
    assert Keyring(tmp_path).get_signer("alice").address == a.address


def test_recover_is_deterministic(tmp_path: Path) -> None:
    x = Keyring(tmp_path / "x").add("k", SEED)
    y = Keyring(tmp_path / "y").add("k", "0x" + SEED.upper())
    assert x.address == y.address == Signer.from_hex(SEED).address
    assert Keyring(tmp_path / "x").get_signer("k").seed().hex() == SEED


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    kr = Keyring(tmp_path)
    first = kr.add("alice")
    with pytest.raises(KeyExistsError):
        kr.add("alice", SEED)
    assert kr.show("alice") == first


@pytest.mark.parametrize("name", ["", "../x", "a/b", ".hidden", "-x", "a" * 65, "sp ace"])
def test_rejects_bad_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(KeyringError):
        Keyring(tmp_path).add(name)


@pytest.mark.parametrize("seed", ["zz", "01" * 31, "01" * 33])
def test_rejects_bad_seeds(tmp_path: Path, seed: str) -> None:
    with pytest.raises(KeyringError):
        Keyring(tmp_path).add("k", seed)
    assert Keyring(tmp_path).list() == []


def test_missing_and_corrupt_keys(tmp_path: Path) -> None:
    kr = Keyring(tmp_path)
    assert kr.list() == []
    with pytest.raises(KeyNotFoundError):
        kr.show("nobody")
    kr.add("alice")
    f = kr.dir / "alice.json"
    record = json.loads(f.read_text())
    record["address"] = Signer.from_hex(SEED).address
    f.write_text(json.dumps(record))
    with pytest.raises(KeyringError, match="does not match"):
        kr.get_signer("alice")
    f.write_text("not json")
    with pytest.raises(KeyringError, match="not JSON"):
        kr.get_signer("alice")


def test_delete(tmp_path: Path) -> None:
    kr = Keyring(tmp_path)
    kr.add("alice")
    kr.delete("alice")
    assert kr.list() == []
    with pytest.raises(KeyNotFoundError):
        kr.delete("alice")
