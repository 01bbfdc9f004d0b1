"""`Client`: the one way the CLI, workers, validators and scripts talk to the chain.

It owns a `CometRPC` (its lifecycle is the `async with` block) and adds:
typed queries over ABCI (`/polylink.<module>.v1.Query/<Method>`), signing with
a keyring key or a `Signer`, and a local sequence counter per signer so many
txs can be sent back to back without waiting for blocks.

Sequence handling: the first tx of a signer reads its sequence from the chain
(a never-seen address starts at 0); each tx CheckTx accepts bumps the local
counter. When CheckTx answers invalid sequence (tx/3) the counter is re-synced
(from the "expected N" in the log when the app gives one, else from the chain)
and the tx is re-signed and sent once more. Sends of one signer are serialized
by a lock so sequences reach the mempool in order.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from types import TracebackType
from typing import Literal, Self, TypeVar, overload

import httpx
from google.protobuf.message import Message
from polylink.auth.v1 import query_pb2 as auth_q
from polylink.auth.v1 import types_pb2 as auth_types
from polylink.bank.v1 import query_pb2 as bank_q
from polylink.base.v1 import query_pb2 as base_q
from polylink.tx.v1 import tx_pb2

from chain.client.errors import ChainQueryError, NodeUnreachableError, TxRejectedError
from chain.client.keyring import Keyring
from chain.client.msgs import msg_multi_send, msg_send
from chain.client.results import BroadcastResult, NodeStatus, TxResult
from chain.client.rpc import DEFAULT_NODE, DEFAULT_TIMEOUT, CometRPC
from chain.client.signer import Signer
from chain.client.tx_builder import DEFAULT_GAS, build_tx, min_fee
from chain.core.codec import encode
from chain.core.coins import BOND_DENOM, Coins
from chain.core.errors import ErrInsufficientFee, ErrInvalidSequence, ErrNotFound

M = TypeVar("M", bound=Message)
BroadcastMode = Literal["sync", "async", "commit"]

PATH_BANK_BALANCE = "/polylink.bank.v1.Query/Balance"
PATH_BANK_ALL_BALANCES = "/polylink.bank.v1.Query/AllBalances"
PATH_BANK_TOTAL_SUPPLY = "/polylink.bank.v1.Query/TotalSupply"
PATH_BANK_PARAMS = "/polylink.bank.v1.Query/Params"
PATH_AUTH_ACCOUNT = "/polylink.auth.v1.Query/Account"
PATH_AUTH_PARAMS = "/polylink.auth.v1.Query/Params"
PATH_SIMULATE = "/polylink.tx.v1.Service/Simulate"

_EXPECTED_SEQ = re.compile(r"expected (\d+)")


class Client:
    """Async chain client. Use as `async with Client(node, keyring=Keyring(home)) as c: ...`."""

    def __init__(
        self,
        node: str = DEFAULT_NODE,
        *,
        keyring: Keyring | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.rpc = CometRPC(node, timeout=timeout, transport=transport)
        self.keyring = keyring
        self._chain_id: str | None = None
        self._min_gas_price_ppm: int | None = None
        self._sequences: dict[str, int] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def __aenter__(self) -> Self:
        await self.rpc.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.rpc.aclose()

    # -- node --------------------------------------------------------------

    async def status(self) -> NodeStatus:
        return await self.rpc.status()

    async def chain_id(self) -> str:
        """The node's chain id (from `/status`), cached for the client's life."""
        if self._chain_id is None:
            self._chain_id = await self.rpc.chain_id()
        return self._chain_id

    # -- queries -----------------------------------------------------------

    async def query(self, path: str, request: Message, response_cls: type[M], height: int = 0) -> M:
        """A typed ABCI query; raises ChainQueryError with the app's (codespace, code, log)."""
        value = await self.rpc.abci_query(path, encode(request), height)
        return response_cls.FromString(value)

    async def balance(self, address: str, denom: str = BOND_DENOM) -> int:
        r = await self.query(
            PATH_BANK_BALANCE,
            bank_q.QueryBalanceRequest(address=address, denom=denom),
            bank_q.QueryBalanceResponse,
        )
        return int(r.balance.amount or "0")

    async def all_balances(self, address: str) -> Coins:
        """Every balance of `address`, following pagination to the end."""
        pairs: list[tuple[str, str]] = []
        key = b""
        while True:
            r = await self.query(
                PATH_BANK_ALL_BALANCES,
                bank_q.QueryAllBalancesRequest(
                    address=address, pagination=base_q.PageRequest(key=key)
                ),
                bank_q.QueryAllBalancesResponse,
            )
            pairs.extend((c.denom, c.amount) for c in r.balances)
            key = r.pagination.next_key
            if not key:
                return Coins.from_pairs(pairs, strict=False)

    async def total_supply(self) -> Coins:
        pairs: list[tuple[str, str]] = []
        key = b""
        while True:
            r = await self.query(
                PATH_BANK_TOTAL_SUPPLY,
                bank_q.QueryTotalSupplyRequest(pagination=base_q.PageRequest(key=key)),
                bank_q.QueryTotalSupplyResponse,
            )
            pairs.extend((c.denom, c.amount) for c in r.supply)
            key = r.pagination.next_key
            if not key:
                return Coins.from_pairs(pairs, strict=False)

    async def account(self, address: str) -> auth_types.Account | None:
        """The account, or None when the chain has never seen the address."""
        try:
            r = await self.query(
                PATH_AUTH_ACCOUNT,
                auth_q.QueryAccountRequest(address=address),
                auth_q.QueryAccountResponse,
            )
        except ChainQueryError as e:
            if e.is_(ErrNotFound.codespace, ErrNotFound.code):
                return None
            raise
        return r.account

    async def auth_params(self) -> auth_types.Params:
        r = await self.query(
            PATH_AUTH_PARAMS, auth_q.QueryParamsRequest(), auth_q.QueryParamsResponse
        )
        return r.params

    async def simulate(self, tx_bytes: bytes) -> tx_pb2.SimulateResponse:
        """Run the tx against the last committed state; nothing is written."""
        return await self.query(
            PATH_SIMULATE, tx_pb2.SimulateRequest(tx_bytes=tx_bytes), tx_pb2.SimulateResponse
        )

    async def min_gas_price_ppm(self, refresh: bool = False) -> int:
        """The chain's fee floor (auth param), cached until `refresh`."""
        if self._min_gas_price_ppm is None or refresh:
            self._min_gas_price_ppm = (await self.auth_params()).min_gas_price_ppm
        return self._min_gas_price_ppm

    # -- signing and sending ------------------------------------------------

    def signer(self, key: Signer | str) -> Signer:
        """A Signer as is, or the keyring's key of that name."""
        if isinstance(key, Signer):
            return key
        if self.keyring is None:
            raise ValueError(f"key {key!r} given by name but the client has no keyring")
        return self.keyring.get_signer(key)

    async def chain_sequence(self, address: str) -> int:
        """The sequence the chain's last committed state expects next from `address`."""
        acc = await self.account(address)
        return acc.sequence if acc is not None else 0

    async def next_sequence(self, address: str) -> int:
        """The sequence the next tx of `address` will carry (local counter, chain on first use)."""
        if address not in self._sequences:
            self._sequences[address] = await self.chain_sequence(address)
        return self._sequences[address]

    def forget_sequence(self, address: str) -> None:
        """Drop the local counter; the next tx re-reads the sequence from the chain."""
        self._sequences.pop(address, None)

    async def sign(
        self,
        msgs: Sequence[Message],
        key: Signer | str,
        *,
        sequence: int | None = None,
        gas: int = DEFAULT_GAS,
        fee: int | None = None,
        memo: str = "",
        timeout_height: int = 0,
    ) -> bytes:
        """Signed tx bytes; sequence defaults to the local counter (not bumped), fee to the min."""
        signer = self.signer(key)
        seq = await self.next_sequence(signer.address) if sequence is None else sequence
        fee_amount = min_fee(gas, await self.min_gas_price_ppm()) if fee is None else fee
        return build_tx(
            msgs,
            signer,
            chain_id=await self.chain_id(),
            sequence=seq,
            fee=fee_amount,
            gas_limit=gas,
            memo=memo,
            timeout_height=timeout_height,
        )

    async def send(
        self,
        msgs: Sequence[Message],
        key: Signer | str,
        *,
        gas: int = DEFAULT_GAS,
        fee: int | None = None,
        memo: str = "",
        timeout_height: int = 0,
        mode: Literal["sync", "async"] = "sync",
    ) -> BroadcastResult:
        """Sign with the next sequence and broadcast; raises TxRejectedError if CheckTx refuses.

        With mode "async" the tx is not checked before this returns, and the
        counter is bumped on faith; a refused tx then leaves a gap that the
        next send's invalid-sequence retry repairs.
        """
        signer = self.signer(key)
        lock = self._locks.setdefault(signer.address, asyncio.Lock())
        async with lock:
            retried = False
            while True:
                seq = await self.next_sequence(signer.address)
                tx = await self.sign(
                    msgs,
                    signer,
                    sequence=seq,
                    gas=gas,
                    fee=fee,
                    memo=memo,
                    timeout_height=timeout_height,
                )
                try:
                    res = await self.broadcast(tx, mode)
                except NodeUnreachableError:
                    self.forget_sequence(signer.address)  # it may or may not have landed
                    raise
                if res.ok:
                    self._sequences[signer.address] = seq + 1
                    return res
                if not retried and await self._recover(
                    signer.address, res, fee_was_default=fee is None
                ):
                    retried = True
                    continue
                raise TxRejectedError(res.hash, "check", res.codespace, res.code, res.log)

    async def _recover(self, address: str, res: BroadcastResult, *, fee_was_default: bool) -> bool:
        """Fix what a retry can fix after a CheckTx refusal; True when a retry makes sense."""
        if (res.codespace, res.code) == (ErrInvalidSequence.codespace, ErrInvalidSequence.code):
            hint = _EXPECTED_SEQ.search(res.log)
            self._sequences[address] = (
                int(hint.group(1)) if hint else await self.chain_sequence(address)
            )
            return True
        if fee_was_default and (res.codespace, res.code) == (
            ErrInsufficientFee.codespace,
            ErrInsufficientFee.code,
        ):
            old = self._min_gas_price_ppm
            return await self.min_gas_price_ppm(refresh=True) != old
        return False

    async def send_and_wait(
        self,
        msgs: Sequence[Message],
        key: Signer | str,
        *,
        timeout: float = 30.0,
        gas: int = DEFAULT_GAS,
        fee: int | None = None,
        memo: str = "",
        timeout_height: int = 0,
    ) -> TxResult:
        """`send` then `wait`: the tx's result in its block, whatever its code."""
        res = await self.send(msgs, key, gas=gas, fee=fee, memo=memo, timeout_height=timeout_height)
        return await self.wait(res.hash, timeout)

    async def bank_send(
        self,
        key: Signer | str,
        to_address: str,
        amount: Coins | str,
        *,
        gas: int = DEFAULT_GAS,
        fee: int | None = None,
        memo: str = "",
        timeout_height: int = 0,
        mode: Literal["sync", "async"] = "sync",
    ) -> BroadcastResult:
        """`send` of one MsgSend from the key's own address."""
        signer = self.signer(key)
        msg = msg_send(signer.address, to_address, amount)
        return await self.send(
            [msg], signer, gas=gas, fee=fee, memo=memo, timeout_height=timeout_height, mode=mode
        )

    async def bank_multi_send(
        self,
        key: Signer | str,
        outputs: Sequence[tuple[str, Coins | str]],
        *,
        gas: int = DEFAULT_GAS,
        fee: int | None = None,
        memo: str = "",
        timeout_height: int = 0,
        mode: Literal["sync", "async"] = "sync",
    ) -> BroadcastResult:
        """`send` of one MsgMultiSend paid from the key's own address."""
        signer = self.signer(key)
        msg = msg_multi_send(signer.address, outputs)
        return await self.send(
            [msg], signer, gas=gas, fee=fee, memo=memo, timeout_height=timeout_height, mode=mode
        )

    @overload
    async def broadcast(
        self, tx_bytes: bytes, mode: Literal["sync", "async"] = "sync"
    ) -> BroadcastResult: ...
    @overload
    async def broadcast(self, tx_bytes: bytes, mode: Literal["commit"]) -> TxResult: ...

    async def broadcast(
        self, tx_bytes: bytes, mode: BroadcastMode = "sync"
    ) -> BroadcastResult | TxResult:
        """Broadcast signed bytes as is (no sequence bookkeeping); never raises on a tx's code."""
        if mode == "sync":
            return await self.rpc.broadcast_tx_sync(tx_bytes)
        if mode == "async":
            return await self.rpc.broadcast_tx_async(tx_bytes)
        if mode == "commit":
            return await self.rpc.broadcast_tx_commit(tx_bytes)
        raise ValueError(f"unknown broadcast mode {mode!r}")

    async def wait(self, txhash: str, timeout: float = 30.0) -> TxResult:
        """The tx's result once it is in a block; raises TxTimeoutError."""
        return await self.rpc.wait_for_tx(txhash, timeout)
