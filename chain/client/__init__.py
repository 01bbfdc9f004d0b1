"""The chain client: sign, broadcast, wait, query, subscribe.

Used by the CLI, workers, validators, the gateway and tests; they reach the
chain only through this package. Layers, bottom up:

- `signer.Signer`, `keyring.Keyring`: ed25519 keys, stored unencrypted (test backend).
- `tx_builder.build_tx`, `msgs`: pure tx construction and signing.
- `rpc.CometRPC`: CometBFT JSON-RPC over httpx + event websocket.
- `client.Client` (async) and `sync.SyncClient` (blocking): typed queries,
  signing with a local sequence counter, broadcasting and waiting.
"""

from chain.client.client import Client
from chain.client.errors import (
    ChainCodeError,
    ChainQueryError,
    ClientError,
    KeyExistsError,
    KeyNotFoundError,
    KeyringError,
    NodeUnreachableError,
    RpcError,
    TxRejectedError,
    TxTimeoutError,
)
from chain.client.keyring import KeyInfo, Keyring
from chain.client.msgs import msg_multi_send, msg_send
from chain.client.results import BroadcastResult, NodeStatus, RpcEvent, TxResult
from chain.client.rpc import DEFAULT_NODE, CometRPC
from chain.client.signer import Signer
from chain.client.sync import SyncClient
from chain.client.tx_builder import DEFAULT_GAS, build_tx, min_fee

__all__ = [
    "DEFAULT_GAS",
    "DEFAULT_NODE",
    "BroadcastResult",
    "ChainCodeError",
    "ChainQueryError",
    "Client",
    "ClientError",
    "CometRPC",
    "KeyExistsError",
    "KeyInfo",
    "KeyNotFoundError",
    "Keyring",
    "KeyringError",
    "NodeStatus",
    "NodeUnreachableError",
    "RpcError",
    "RpcEvent",
    "Signer",
    "SyncClient",
    "TxRejectedError",
    "TxResult",
    "TxTimeoutError",
    "build_tx",
    "min_fee",
    "msg_multi_send",
    "msg_send",
]
