"""The encrypted file keyring and offline signing documents (no network)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from polylink.bank.v1 import tx_pb2 as bank_tx
from polylink.base.v1 import coin_pb2

from chain.client.errors import KeyNotFoundError, KeyringError
from chain.client.keyring import Keyring
from chain.client.offline import OfflineTxError, sign_unsigned, tx_bytes_of, unsigned_tx
from chain.client.signer import Signer
from chain.client.tx_builder import build_tx
from chain.core.tx import decode_tx

SEED = "11" * 32


def _file_ring(home: Path, secret: str = "correct horse") -> Keyring:
    return Keyring(home, "file", passphrase=lambda: secret)


def test_the_file_backend_encrypts_the_seed_and_opens_only_with_its_passphrase(tmp_path: Path) -> None:
    info = _file_ring(tmp_path).add("cold", SEED)
    path = tmp_path / "keyring-file" / "cold.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    text = path.read_text()
    assert SEED not in text and "priv_key" not in text  # the seed is not on disk in the clear
    record = json.loads(text)
    assert record["crypto"]["kdf"] == "scrypt" and record["crypto"]["cipher"] == "aes-256-gcm"
    assert _file_ring(tmp_path).get_signer("cold").address == info.address == Signer.from_hex(SEED).address
    with pytest.raises(KeyringError, match="wrong passphrase"):
        _file_ring(tmp_path, "wrong horse").get_signer("cold")
    # the public part needs no passphrase; the private part needs one
    bare = Keyring(tmp_path, "file")
    assert bare.show("cold").address == info.address and [k.name for k in bare.list()] == ["cold"]
    with pytest.raises(KeyringError, match="needs a passphrase"):
        bare.get_signer("cold")
    with pytest.raises(KeyringError, match="must not be empty"):
        _file_ring(tmp_path, "").add("other")
    # the backends are apart: the test keyring does not see the file key
    with pytest.raises(KeyNotFoundError):
        Keyring(tmp_path).show("cold")


def test_an_altered_file_key_is_refused(tmp_path: Path) -> None:
    _file_ring(tmp_path).add("cold", SEED)
    path = tmp_path / "keyring-file" / "cold.json"
    record = json.loads(path.read_text())
    record["address"] = Signer(b"\x02" * 32).address  # bound as associated data
    os.chmod(path, 0o600)
    path.write_text(json.dumps(record))
    with pytest.raises(KeyringError, match="wrong passphrase for key 'cold' \\(or its file was altered\\)"):
        _file_ring(tmp_path).get_signer("cold")
    record = json.loads(path.read_text())
    record["crypto"]["n"] = 2**40
    path.write_text(json.dumps(record))
    with pytest.raises(KeyringError, match="corrupt"):
        _file_ring(tmp_path).get_signer("cold")
    with pytest.raises(KeyringError, match="unknown keyring backend"):
        Keyring(tmp_path, "os")


def _send(signer: Signer, amount: str = "5") -> bank_tx.MsgSend:
    return bank_tx.MsgSend(from_address=signer.address, to_address=Signer(b"\x03" * 32).address,
                           amount=[coin_pb2.Coin(denom="upoly", amount=amount)])


def test_an_unsigned_document_signs_to_the_same_bytes_as_a_direct_signature() -> None:
    signer = Signer.from_hex(SEED)
    doc = unsigned_tx([_send(signer)], signer.address, gas_limit=120_000, fee=1_500, memo="cold", timeout_height=9)
    doc = json.loads(json.dumps(doc))  # it travels as JSON
    assert doc["body"]["messages"][0]["@type"] == "/polylink.bank.v1.MsgSend"
    signed = sign_unsigned(doc, signer, chain_id="c-1", sequence=4)
    direct = build_tx([_send(signer)], signer, chain_id="c-1", sequence=4, fee=1_500, gas_limit=120_000,
                      memo="cold", timeout_height=9)
    assert tx_bytes_of(json.loads(json.dumps(signed))) == direct
    assert decode_tx(direct).signer == signer.address and signed["sequence"] == 4


def test_offline_documents_refuse_a_wrong_signer_an_edited_message_and_a_tampered_hash() -> None:
    signer, other = Signer.from_hex(SEED), Signer(b"\x05" * 32)
    doc = unsigned_tx([_send(signer)], signer.address, gas_limit=100_000, fee=1_000)
    with pytest.raises(OfflineTxError, match="to be signed by"):
        sign_unsigned(doc, other, chain_id="c-1", sequence=0)
    bad = json.loads(json.dumps(doc))
    bad["body"]["messages"][0]["amount_typo"] = []
    with pytest.raises(OfflineTxError, match="messages\\[0\\]"):
        sign_unsigned(bad, signer, chain_id="c-1", sequence=0)
    bad = json.loads(json.dumps(doc))
    bad["body"]["messages"][0]["@type"] = "/polylink.bank.v1.MsgNothing"
    with pytest.raises(OfflineTxError, match="unknown message type"):
        sign_unsigned(bad, signer, chain_id="c-1", sequence=0)
    for broken, why in (({**doc, "body": []}, "body must be"), ({**doc, "auth_info": {"fee": "1"}}, "fee must be"),
                        ({**doc, "auth_info": {"gas_limit": "lots"}}, "cannot sign")):
        with pytest.raises(OfflineTxError, match=why):
            sign_unsigned(broken, signer, chain_id="c-1", sequence=0)
    with pytest.raises(OfflineTxError, match="not a signed tx document"):
        tx_bytes_of(doc)
    signed = sign_unsigned(doc, signer, chain_id="c-1", sequence=0)
    signed["txhash"] = "00" * 32
    with pytest.raises(OfflineTxError, match="does not match"):
        tx_bytes_of(signed)
