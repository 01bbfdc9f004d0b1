"""A tx built by the client decodes and verifies with the chain's own `decode_tx`."""

from __future__ import annotations

import pytest
from polylink.bank.v1 import tx_pb2 as bank_tx
from polylink.tx.v1 import tx_pb2

from chain.client.msgs import msg_multi_send, msg_send
from chain.client.signer import Signer
from chain.client.tx_builder import build_tx, min_fee
from chain.core.codec import encode, type_url
from chain.core.coins import Coins
from chain.core.errors import ChainError
from chain.core.tx import decode_tx, tx_hash

ALICE = Signer.from_hex("11" * 32)
BOB = Signer.from_hex("22" * 32)


def _tx(chain_id: str = "polylink-test", **kw: object) -> bytes:
    msg = msg_send(ALICE.address, BOB.address, "100upoly")
    args: dict[str, object] = {
        "chain_id": chain_id,
        "sequence": 7,
        "fee": 2000,
        "gas_limit": 200_000,
    }
    args.update(kw)
    return build_tx([msg], ALICE, **args)  # type: ignore[arg-type]


def test_decodes_and_verifies() -> None:
    raw = _tx(memo="hi", timeout_height=99)
    d = decode_tx(raw)
    d.verify_signature()
    assert d.signer == ALICE.address
    assert d.raw.chain_id == "polylink-test"
    assert d.auth.sequence == 7
    assert d.auth.gas_limit == 200_000
    assert (d.auth.fee.denom, d.auth.fee.amount) == ("upoly", "2000")
    assert d.auth.pub_key == ALICE.pub_key
    assert d.body.memo == "hi" and d.body.timeout_height == 99
    (anymsg,) = d.body.messages
    assert anymsg.type_url == type_url(bank_tx.MsgSend) == "/polylink.bank.v1.MsgSend"
    sent = bank_tx.MsgSend.FromString(anymsg.value)
    assert encode(sent) == anymsg.value  # deterministic encoding
    assert (sent.from_address, sent.to_address) == (ALICE.address, BOB.address)
    assert Coins.from_proto(sent.amount) == Coins({"upoly": 100})
    assert len(tx_hash(raw)) == 64


def test_deterministic_bytes() -> None:
    assert _tx() == _tx()  # ed25519 signatures are deterministic too


def test_chain_id_is_signed() -> None:
    a = tx_pb2.Tx.FromString(_tx("chain-a"))
    b = tx_pb2.Tx.FromString(_tx("chain-b"))
    assert a.body_bytes == b.body_bytes and a.auth_info_bytes == b.auth_info_bytes
    assert a.signature != b.signature
    # replaying chain-a's signature under chain-b's id fails verification
    forged = tx_pb2.Tx(
        chain_id="chain-b",
        body_bytes=a.body_bytes,
        auth_info_bytes=a.auth_info_bytes,
        signature=a.signature,
    )
    with pytest.raises(ChainError, match="signature"):
        decode_tx(encode(forged)).verify_signature()


def test_tampered_body_fails_verification() -> None:
    t = tx_pb2.Tx.FromString(_tx())
    body = tx_pb2.TxBody.FromString(t.body_bytes)
    body.memo = "tampered"
    t.body_bytes = encode(body)
    with pytest.raises(ChainError):
        decode_tx(encode(t)).verify_signature()


def test_build_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        build_tx([], ALICE, chain_id="c", sequence=0, fee=0)
    with pytest.raises(ValueError):
        _tx(gas_limit=0)
    with pytest.raises(ValueError):
        _tx(fee=-1)


@pytest.mark.parametrize(
    ("gas", "price", "fee"),
    [
        (200_000, 10_000, 2_000),
        (1, 10_000, 1),
        (0, 10_000, 0),
        (150, 10_000, 2),
        (100, 0, 0),
        (3, 333_334, 2),
    ],
)
def test_min_fee_rounds_up(gas: int, price: int, fee: int) -> None:
    assert min_fee(gas, price) == fee
    assert fee * 1_000_000 >= gas * price  # the ante rule
    assert fee == 0 or (fee - 1) * 1_000_000 < gas * price  # and the smallest such fee


def test_msg_checks() -> None:
    with pytest.raises(ChainError, match="invalid address"):
        msg_send(ALICE.address, "poly1notanaddress", "1upoly")
    with pytest.raises(ChainError, match="invalid coins"):
        msg_send(ALICE.address, BOB.address, "0upoly")
    with pytest.raises(ChainError, match="invalid coins"):
        msg_send(ALICE.address, BOB.address, "ten")


def test_multi_send_sums_inputs() -> None:
    carol = Signer.from_hex("33" * 32).address
    m = msg_multi_send(ALICE.address, [(BOB.address, "5upoly"), (carol, "7upoly,1uabc")])
    (inp,) = m.inputs
    assert inp.address == ALICE.address
    assert Coins.from_proto(inp.coins) == Coins({"upoly": 12, "uabc": 1})
    assert [o.address for o in m.outputs] == [BOB.address, carol]
    raw = build_tx([m], ALICE, chain_id="c", sequence=0, fee=0)
    d = decode_tx(raw)
    d.verify_signature()
    assert d.body.messages[0].type_url == "/polylink.bank.v1.MsgMultiSend"
