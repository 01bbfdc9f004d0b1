"""The chain on a real 4-validator CometBFT localnet: transfers, rejections, agreement."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from polylink.bank.v1 import tx_pb2 as bank_tx
from polylink.base.v1 import coin_pb2
from polylink.tx.v1 import tx_pb2

from chain.client.signer import Signer
from chain.client.sync import SyncClient
from chain.client.tx_builder import build_tx
from chain.core.codec import encode
from chain.localnet.net import Localnet
from chain.localnet.ports import find_free_base_port
from tests.e2e.chainutil import assert_same_app_hash_every_height, heights, wait_all_at

pytestmark = pytest.mark.e2e
FEE = 2_000
GAS = 200_000
USERS = 8


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Localnet]:
    home = tmp_path_factory.mktemp("net")
    n = Localnet(home, nodes=4, base_port=find_free_base_port(4), accounts=USERS)
    try:
        n.up()
        yield n
    finally:
        n.down()
        assert list(n.pids()) == [], "localnet left processes running"


@pytest.fixture(scope="module")
def clients(net: Localnet) -> Iterator[list[SyncClient]]:
    cs = [SyncClient(net.rpc_url(i), keyring=net.keyring()) for i in range(net.nodes)]
    yield cs
    for c in cs:
        c.close()


def test_200_transfers_exact_balances_and_same_app_hash_everywhere(net: Localnet, clients: list[SyncClient]) -> None:
    rnd = random.Random(7)
    users = net.user_keys
    addr = {u: net.keyring().show(u).address for u in users}
    outsiders = [Signer(bytes([i]) * 32).address for i in range(3)]
    everyone = list(addr.values()) + outsiders
    c0 = clients[0]
    supply0 = c0.total_supply()
    model = {a: c0.balance(a) for a in everyone}
    hashes = []
    for k in range(200):
        sender = users[k % USERS]
        node = (k % USERS) % net.nodes  # one node per sender keeps its sequence order
        to = rnd.choice(everyone)
        amount = rnd.randint(1, 5_000)
        r = clients[node].bank_send(sender, to, f"{amount}upoly", gas=GAS, fee=FEE)
        assert r.code == 0, r.log
        hashes.append(r.hash)
        model[addr[sender]] -= amount + FEE
        model[to] += amount
    for h in hashes:
        res = c0.wait(h, timeout=120)
        assert res.code == 0, res.log
    top = max(heights(net))
    wait_all_at(net, top + 1)
    for c in clients:  # every node answers the same, exact balances
        assert {a: c.balance(a) for a in everyone} == model
        assert c.total_supply() == supply0
    assert_same_app_hash_every_height(net, top)


def _raw_send(
    signer: Signer, to: str, amount: int, *, chain_id: str, sequence: int, fee: int = FEE, memo: str = ""
) -> bytes:
    coins = [coin_pb2.Coin(denom="upoly", amount=str(amount))]
    msg = bank_tx.MsgSend(from_address=signer.address, to_address=to, amount=coins)
    return build_tx([msg], signer, chain_id=chain_id, sequence=sequence, fee=fee, gas_limit=GAS, memo=memo)


def test_each_invalid_tx_is_rejected_with_its_own_code_and_changes_nothing(
    net: Localnet, clients: list[SyncClient]
) -> None:
    c = clients[1]
    chain_id = c.chain_id()
    alice = net.keyring().get_signer(net.user_keys[0])
    bob = net.keyring().get_signer(net.user_keys[1]).address
    # one valid tx first, so there is something to replay
    first = _raw_send(alice, bob, 5, chain_id=chain_id, sequence=c.next_sequence(alice.address), memo="original")
    assert c.broadcast(first).code == 0
    assert c.wait(c.broadcast(first).hash, timeout=60).code == 0
    acc = c.account(alice.address)
    assert acc is not None
    seq = acc.sequence
    before = (c.balance(alice.address), c.balance(bob), seq)

    bad_sig = tx_pb2.Tx.FromString(_raw_send(alice, bob, 1, chain_id=chain_id, sequence=seq))
    bad_sig.signature = bytes(64)
    cases = {
        "replayed sequence": (_raw_send(alice, bob, 5, chain_id=chain_id, sequence=seq - 1, memo="replay"), ("tx", 3)),
        "bad signature": (encode(bad_sig), ("tx", 4)),
        "wrong chain-id": (_raw_send(alice, bob, 1, chain_id="some-other-chain", sequence=seq), ("tx", 8)),
        "insufficient fee": (_raw_send(alice, bob, 1, chain_id=chain_id, sequence=seq, fee=1), ("tx", 5)),
        "malformed bytes": (b"\x0a\x05hello\x12\xff\xff", ("tx", 2)),
        "overdraft": (_raw_send(alice, bob, 10**18, chain_id=chain_id, sequence=seq), ("bank", 2)),
    }
    seen_codes = set()
    for name, (tx, want) in cases.items():
        r = c.broadcast(tx)
        assert (r.codespace, r.code) == want, f"{name}: got {r.codespace}/{r.code} {r.log}"
        assert r.log, f"{name}: a rejection says why"
        seen_codes.add(want)
    assert len(seen_codes) == len(cases), "each rejection has its own code"
    # the exact bytes of a committed tx, sent again: never executed twice
    c.broadcast(first)
    wait_all_at(net, max(heights(net)) + 2)
    for cl in clients:
        acc = cl.account(alice.address)
        assert acc is not None
        assert (cl.balance(alice.address), cl.balance(bob), acc.sequence) == before
    for name, (tx, _) in cases.items():
        from chain.core.tx import tx_hash

        assert c._run(c.client.rpc.tx(tx_hash(tx))) is None, f"{name} reached a block"
