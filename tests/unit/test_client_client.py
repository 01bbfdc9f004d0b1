"""Client and SyncClient against a fake node behind httpx.MockTransport.

The fake node keeps a committed sequence per account and a check-state
sequence (as CometBFT's mempool + the app's check state would), verifies
signatures and fees with the chain's own `decode_tx`, and serves the typed
queries the client makes.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import httpx
import pytest
from polylink.auth.v1 import query_pb2 as auth_q
from polylink.auth.v1 import types_pb2 as auth_types
from polylink.bank.v1 import query_pb2 as bank_q
from polylink.base.v1 import coin_pb2
from polylink.base.v1 import query_pb2 as base_q
from polylink.tx.v1 import tx_pb2

from chain.client.client import Client
from chain.client.errors import ChainQueryError, NodeUnreachableError, TxRejectedError
from chain.client.keyring import Keyring
from chain.client.msgs import msg_send
from chain.client.signer import Signer
from chain.client.sync import SyncClient
from chain.core.codec import encode
from chain.core.errors import ChainError
from chain.core.tx import decode_tx, tx_hash

CHAIN = "polylink-test"
ALICE = Signer.from_hex("11" * 32)
BOB = Signer.from_hex("22" * 32)


class FakeNode:
    """Just enough of CometBFT + the app for the client's bookkeeping to be tested."""

    def __init__(self, min_gas_price_ppm: int = 10_000) -> None:
        self.params = auth_types.Params(min_gas_price_ppm=min_gas_price_ppm)
        self.committed_seq: dict[str, int] = {}
        self.check_seq: dict[str, int] = {}
        self.txs: dict[str, bytes] = {}
        self.calls: list[str] = []
        self.give_hint = True

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        req = json.loads(request.content)
        method, params = req["method"], req["params"]
        self.calls.append(method if method != "abci_query" else params["path"])
        result = getattr(self, "rpc_" + method)(params)
        return httpx.Response(200, json={"jsonrpc": "2.0", "id": req["id"], "result": result})

    def rpc_status(self, _p: dict[str, Any]) -> dict[str, Any]:
        return {"node_info": {"network": CHAIN}, "sync_info": {"latest_block_height": "1"}}

    def rpc_abci_query(self, p: dict[str, Any]) -> dict[str, Any]:
        data = bytes.fromhex(p["data"])
        path = p["path"]
        if path == "/polylink.auth.v1.Query/Account":
            addr = auth_q.QueryAccountRequest.FromString(data).address
            if addr not in self.committed_seq:
                return {
                    "response": {"code": 20, "codespace": "tx", "log": f"account {addr}: not found"}
                }
            acc = auth_types.Account(
                address=addr, sequence=self.committed_seq[addr], account_number=1
            )
            return _value(auth_q.QueryAccountResponse(account=acc))
        if path == "/polylink.auth.v1.Query/Params":
            return _value(auth_q.QueryParamsResponse(params=self.params))
        if path == "/polylink.bank.v1.Query/Balance":
            req = bank_q.QueryBalanceRequest.FromString(data)
            return _value(
                bank_q.QueryBalanceResponse(balance=coin_pb2.Coin(denom=req.denom, amount="42"))
            )
        if path == "/polylink.bank.v1.Query/AllBalances":
            req2 = bank_q.QueryAllBalancesRequest.FromString(data)
            if not req2.pagination.key:  # two pages
                return _value(
                    bank_q.QueryAllBalancesResponse(
                        balances=[coin_pb2.Coin(denom="uabc", amount="1")],
                        pagination=base_q.PageResponse(next_key=b"k"),
                    )
                )
            return _value(
                bank_q.QueryAllBalancesResponse(balances=[coin_pb2.Coin(denom="upoly", amount="9")])
            )
        if path == "/polylink.tx.v1.Service/Simulate":
            tx = tx_pb2.SimulateRequest.FromString(data).tx_bytes
            return _value(tx_pb2.SimulateResponse(gas_used=len(tx) * 10))
        return {"response": {"code": 9, "codespace": "tx", "log": f"unknown path {path}"}}

    def rpc_broadcast_tx_sync(self, p: dict[str, Any]) -> dict[str, Any]:
        raw = base64.b64decode(p["tx"])
        h = tx_hash(raw)
        try:
            d = decode_tx(raw)
            d.verify_signature()
        except ChainError as e:
            return {"code": e.code, "codespace": e.codespace, "log": e.log, "hash": h}
        if d.raw.chain_id != CHAIN:
            return {"code": 8, "codespace": "tx", "log": "wrong chain-id", "hash": h}
        expected = self.check_seq.get(d.signer, self.committed_seq.get(d.signer, 0))
        if d.auth.sequence != expected:
            log = (
                f"account sequence mismatch, expected {expected}, got {d.auth.sequence}"
                if self.give_hint
                else "account sequence mismatch"
            )
            return {"code": 3, "codespace": "tx", "log": log, "hash": h}
        if int(d.auth.fee.amount) * 1_000_000 < d.auth.gas_limit * self.params.min_gas_price_ppm:
            return {"code": 5, "codespace": "tx", "log": "insufficient fee", "hash": h}
        self.check_seq[d.signer] = expected + 1
        self.txs[h] = raw
        return {"code": 0, "codespace": "", "log": "", "hash": h}

    def rpc_tx(self, p: dict[str, Any]) -> dict[str, Any]:
        h = base64.b64decode(p["hash"]).hex().upper()
        if h not in self.txs:
            raise NotImplementedError  # not used: the tests only look up known txs
        return {
            "hash": h,
            "height": "7",
            "tx_result": {"code": 0, "gas_used": "1000", "gas_wanted": "200000"},
        }

    def commit(self) -> None:
        self.committed_seq.update(self.check_seq)


def _value(msg: Any) -> dict[str, Any]:
    return {"response": {"code": 0, "value": base64.b64encode(encode(msg)).decode()}}


def run(node: FakeNode, coro_fn: Any) -> Any:
    async def go() -> Any:
        async with Client("http://node", transport=node.transport()) as c:
            return await coro_fn(c)

    return asyncio.run(go())


def test_back_to_back_sends_use_increasing_sequences() -> None:
    node = FakeNode()

    async def body(c: Client) -> list[int]:
        for _ in range(5):
            r = await c.bank_send(ALICE, BOB.address, "1upoly")
            assert r.ok
        return [decode_tx(t).auth.sequence for t in node.txs.values()]

    assert run(node, body) == [0, 1, 2, 3, 4]
    # the chain was asked once for the sequence, once for the chain id and once for the gas price
    assert node.calls.count("/polylink.auth.v1.Query/Account") == 1
    assert node.calls.count("status") == 1
    assert node.calls.count("/polylink.auth.v1.Query/Params") == 1
    assert node.calls.count("broadcast_tx_sync") == 5


def test_default_fee_is_the_minimum() -> None:
    node = FakeNode(min_gas_price_ppm=25_000)
    run(node, lambda c: c.bank_send(ALICE, BOB.address, "1upoly", gas=123_457))
    (raw,) = node.txs.values()
    d = decode_tx(raw)
    assert d.auth.gas_limit == 123_457
    assert d.auth.fee.amount == str(-(-123_457 * 25_000 // 1_000_000))  # 3087 (rounded up)


def test_explicit_fee_too_low_is_rejected_with_code() -> None:
    node = FakeNode()
    with pytest.raises(TxRejectedError) as ei:
        run(node, lambda c: c.bank_send(ALICE, BOB.address, "1upoly", fee=1))
    assert (ei.value.codespace, ei.value.code, ei.value.stage) == ("tx", 5, "check")


def test_existing_account_sequence_is_read_from_chain() -> None:
    node = FakeNode()
    node.committed_seq[ALICE.address] = 11
    run(node, lambda c: c.bank_send(ALICE, BOB.address, "1upoly"))
    assert [decode_tx(t).auth.sequence for t in node.txs.values()] == [11]


@pytest.mark.parametrize("hint", [True, False])
def test_resync_on_invalid_sequence(hint: bool) -> None:
    node = FakeNode()
    node.give_hint = hint

    async def body(c: Client) -> list[int]:
        await c.bank_send(ALICE, BOB.address, "1upoly")  # seq 0
        # someone else (another process) sent seq 1 and 2 with the same key, and they were committed
        node.check_seq[ALICE.address] = 3
        node.commit()
        await c.bank_send(ALICE, BOB.address, "1upoly")  # local 1 -> refused -> re-synced to 3
        await c.bank_send(ALICE, BOB.address, "1upoly")  # 4, no more re-sync
        return [decode_tx(t).auth.sequence for t in node.txs.values()]

    assert run(node, body) == [0, 3, 4]
    assert node.calls.count("broadcast_tx_sync") == 4


def test_concurrent_sends_are_serialized_per_signer() -> None:
    node = FakeNode()

    async def body(c: Client) -> list[int]:
        await asyncio.gather(*(c.bank_send(ALICE, BOB.address, "1upoly") for _ in range(10)))
        return sorted(decode_tx(t).auth.sequence for t in node.txs.values())

    assert run(node, body) == list(range(10))


def test_send_with_keyring_name(tmp_path: Any) -> None:
    kr = Keyring(tmp_path)
    kr.add("alice", "11" * 32)
    node = FakeNode()

    async def go() -> str:
        async with Client("http://node", keyring=kr, transport=node.transport()) as c:
            return (await c.bank_send("alice", BOB.address, "1upoly")).hash

    h = asyncio.run(go())
    assert decode_tx(node.txs[h]).signer == ALICE.address


def test_typed_queries() -> None:
    node = FakeNode()

    async def body(c: Client) -> Any:
        return (
            await c.balance(BOB.address),
            await c.all_balances(BOB.address),
            await c.account(BOB.address),
            (await c.auth_params()).min_gas_price_ppm,
            (await c.simulate(b"1234")).gas_used,
        )

    bal, all_bal, acc, price, gas = run(node, body)
    assert bal == 42
    assert str(all_bal) == "1uabc,9upoly"
    assert acc is None  # never seen -> None, not an error
    assert price == 10_000
    assert gas == 40


def test_other_query_errors_propagate() -> None:
    node = FakeNode()
    with pytest.raises(ChainQueryError) as ei:
        run(
            node,
            lambda c: c.query("/nope", auth_q.QueryParamsRequest(), auth_q.QueryParamsResponse),
        )
    assert (ei.value.codespace, ei.value.code) == ("tx", 9)


def test_unreachable_node_forgets_sequence() -> None:
    node = FakeNode()
    down = {"now": False}

    def handle(request: httpx.Request) -> httpx.Response:
        if down["now"] and json.loads(request.content)["method"].startswith("broadcast"):
            raise httpx.ConnectError("refused", request=request)
        return node.handle(request)

    async def go() -> None:
        async with Client("http://node", transport=httpx.MockTransport(handle)) as c:
            await c.bank_send(ALICE, BOB.address, "1upoly")
            assert ALICE.address in c._sequences
            down["now"] = True
            with pytest.raises(NodeUnreachableError):
                await c.bank_send(ALICE, BOB.address, "1upoly")
            assert ALICE.address not in c._sequences

    asyncio.run(go())


def test_sync_client() -> None:
    node = FakeNode()
    with SyncClient("http://node", transport=node.transport()) as c:
        assert c.chain_id() == CHAIN
        r1 = c.bank_send(ALICE, BOB.address, "1upoly")
        r2 = c.bank_multi_send(ALICE, [(BOB.address, "1upoly"), (ALICE.address, "2upoly")])
        assert r1.ok and r2.ok
        assert c.wait(r2.hash).height == 7
        assert c.balance(BOB.address) == 42
        # sign() uses the local counter without bumping it; broadcast() sends bytes as they are
        raw = c.sign([msg_send(ALICE.address, BOB.address, "1upoly")], ALICE)
        assert decode_tx(raw).auth.sequence == 2 == c.next_sequence(ALICE.address)
        res = c.broadcast(raw)
        assert res.ok and res.hash == tx_hash(raw)
    assert [decode_tx(t).auth.sequence for t in node.txs.values()] == [0, 1, 2]
    with pytest.raises(RuntimeError):
        c.balance(BOB.address)
