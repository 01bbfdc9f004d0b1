"""Offline signing, the Cosmos way: an unsigned tx as JSON, signed on another machine, broadcast from a third.

    polylink tx bank send KEY TO 5upoly --generate-only > unsigned.json   # no private key read
    polylink tx sign unsigned.json --from KEY --chain-id ID --sequence N > signed.json   # offline
    polylink tx broadcast signed.json --wait

What the signer signs is what it reads: the messages travel as their JSON
(proto field names, each with its ``@type``), are parsed back into their
protobuf classes at signing time and encoded deterministically, so a
reviewer of ``unsigned.json`` sees exactly what the signature will cover.
The signed document carries the wire bytes (base64) and their hash.

Documents (``"type"`` tells them apart):
    unsigned: {"type": "polylink/unsigned-tx", "signer": ADDR, "body": {"messages": [...],
               "memo": ..., "timeout_height": N}, "auth_info": {"fee": {"denom", "amount"}, "gas_limit": N}}
    signed:   {"type": "polylink/signed-tx", "signer", "chain_id", "sequence", "txhash", "tx": BASE64, "body", ...}
"""

from __future__ import annotations

import base64
import importlib
from collections.abc import Sequence
from typing import Any

from google.protobuf import descriptor_pool, json_format, message_factory
from google.protobuf.message import Message
from polylink.tx.v1 import tx_pb2

from chain.client.errors import KeyringError
from chain.client.signer import Signer
from chain.client.tx_builder import build_tx
from chain.core.codec import to_json, type_url
from chain.core.coins import BOND_DENOM
from chain.core.tx import tx_hash

UNSIGNED = "polylink/unsigned-tx"
SIGNED = "polylink/signed-tx"


class OfflineTxError(KeyringError):
    """A tx document that cannot be signed or sent as it is (wrong type, signer, message or field)."""


def unsigned_tx(
    msgs: Sequence[Message], signer: str, *, gas_limit: int, fee: int, memo: str = "", timeout_height: int = 0
) -> dict[str, Any]:
    """The unsigned document for ``msgs`` from ``signer`` (an address): nothing secret in it."""
    return {
        "type": UNSIGNED,
        "signer": signer,
        "body": {
            "messages": [{"@type": type_url(m), **to_json(m)} for m in msgs],
            "memo": memo,
            "timeout_height": timeout_height,
        },
        "auth_info": {"fee": {"denom": BOND_DENOM, "amount": str(fee)}, "gas_limit": gas_limit},
    }


def _message_class(url: str) -> type[Message]:
    name = url.removeprefix("/")
    pool = descriptor_pool.Default()
    try:
        desc = pool.FindMessageTypeByName(name)
    except KeyError:
        # "/polylink.bank.v1.MsgSend" lives in polylink.bank.v1.tx_pb2
        package = name.rsplit(".", 1)[0]
        try:
            importlib.import_module(f"{package}.tx_pb2")
            desc = pool.FindMessageTypeByName(name)
        except (ImportError, KeyError):
            raise OfflineTxError(f"unknown message type {url!r}") from None
    return message_factory.GetMessageClass(desc)


def _table(doc: dict[str, Any], key: str) -> dict[str, Any]:
    v = doc.get(key, {})
    if not isinstance(v, dict):
        raise OfflineTxError(f"{key} must be a JSON object")
    return v


def messages_of(doc: dict[str, Any]) -> list[Message]:
    """The protobuf messages of an unsigned document (strict: unknown fields are refused)."""
    out = []
    messages = _table(doc, "body").get("messages", [])
    if not isinstance(messages, list):
        raise OfflineTxError("body.messages must be a list")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or "@type" not in m:
            raise OfflineTxError(f"body.messages[{i}] has no @type")
        fields = {k: v for k, v in m.items() if k != "@type"}
        cls = _message_class(str(m["@type"]))
        try:
            out.append(json_format.ParseDict(fields, cls(), ignore_unknown_fields=False))
        except json_format.ParseError as e:
            raise OfflineTxError(f"body.messages[{i}] ({m['@type']}): {e}") from None
    if not out:
        raise OfflineTxError("the document has no messages")
    return out


def sign_unsigned(doc: dict[str, Any], signer: Signer, *, chain_id: str, sequence: int) -> dict[str, Any]:
    """Sign an unsigned document with ``signer`` at ``sequence`` for ``chain_id``: the signed document."""
    if doc.get("type") != UNSIGNED:
        raise OfflineTxError(f"not an unsigned tx document (type {doc.get('type')!r}, want {UNSIGNED!r})")
    if doc.get("signer") != signer.address:
        raise OfflineTxError(f"the document is to be signed by {doc.get('signer')}, not by {signer.address}")
    auth = _table(doc, "auth_info")
    fee = _table(auth, "fee")
    if fee.get("denom", BOND_DENOM) != BOND_DENOM:
        raise OfflineTxError(f"fees are paid in {BOND_DENOM}, not {fee.get('denom')!r}")
    body = _table(doc, "body")
    try:
        tx = build_tx(
            messages_of(doc), signer, chain_id=chain_id, sequence=sequence, fee=int(fee.get("amount", 0)),
            gas_limit=int(auth.get("gas_limit", 0)), memo=str(body.get("memo", "")),
            timeout_height=int(body.get("timeout_height", 0)),
        )
    except (TypeError, ValueError) as e:
        raise OfflineTxError(f"cannot sign the document: {e}") from None
    return {
        "type": SIGNED,
        "signer": signer.address,
        "chain_id": chain_id,
        "sequence": sequence,
        "txhash": tx_hash(tx),
        "tx": base64.b64encode(tx).decode(),
        "body": body,
        "auth_info": auth,
    }


def tx_bytes_of(doc: dict[str, Any]) -> bytes:
    """The wire bytes of a signed document (checked to parse as a Tx and to match its recorded hash)."""
    if doc.get("type") != SIGNED:
        raise OfflineTxError(f"not a signed tx document (type {doc.get('type')!r}, want {SIGNED!r})")
    try:
        tx = base64.b64decode(str(doc["tx"]), validate=True)
        tx_pb2.Tx.FromString(tx)
    except (KeyError, ValueError) as e:
        raise OfflineTxError(f"the document's tx is not a base64 Tx: {e}") from None
    except Exception as e:  # protobuf's DecodeError
        raise OfflineTxError(f"the document's tx does not parse: {e}") from None
    if doc.get("txhash") not in (None, tx_hash(tx)):
        raise OfflineTxError("the document's txhash does not match its tx bytes")
    return tx
