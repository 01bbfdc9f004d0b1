"""The user's tools against the real localnet: the `polylink` CLI and the gRPC server."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from polylink.auth.v1 import query_pb2 as auth_q
from polylink.auth.v1 import query_pb2_grpc as auth_grpc
from polylink.bank.v1 import query_pb2 as bank_q
from polylink.bank.v1 import query_pb2_grpc as bank_grpc
from polylink.bank.v1 import tx_pb2 as bank_tx
from polylink.base.v1 import coin_pb2
from polylink.tx.v1 import tx_pb2, tx_pb2_grpc

from chain.client.signer import Signer
from chain.client.sync import SyncClient
from chain.client.tx_builder import build_tx
from chain.localnet import Localnet

pytestmark = pytest.mark.e2e


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "chain.cli.main", *args], capture_output=True, text=True, timeout=120)


def test_cli_keys_send_wait_and_query(localnet: Localnet) -> None:
    home = str(localnet.home)
    node = localnet.rpc_url(1)
    r = cli("keys", "add", "carol", "--home", home, "--output", "json")
    assert r.returncode == 0, r.stderr
    carol = json.loads(r.stdout)["address"]
    key_file = next(p for p in localnet.keyring_dir.iterdir() if "carol" in p.name)
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert cli("keys", "add", "carol", "--home", home).returncode != 0  # never overwrites a key

    r = cli(
        "tx", "bank", "send", localnet.user_keys[0], carol, "777upoly",
        "--home", home, "--node", node, "--wait", "--output", "json",
    )
    assert r.returncode == 0, r.stderr
    sent = json.loads(r.stdout)
    assert sent["code"] == 0 and sent["height"] > 0

    r = cli("query", "bank", "balances", carol, "--node", localnet.rpc_url(2), "--output", "json")
    assert r.returncode == 0, r.stderr
    assert "777" in r.stdout and "upoly" in r.stdout

    # a rejected tx: clear error, non-zero exit, nothing sent
    r = cli("tx", "bank", "send", "carol", localnet.keyring().show(localnet.user_keys[1]).address, "10000upoly",
            "--home", home, "--node", node)
    assert r.returncode != 0 and "insufficient" in r.stderr.lower()
    r = cli("query", "bank", "balances", "not-an-address", "--node", node)
    assert r.returncode != 0 and r.stderr.strip()

    r = cli("localnet", "status", "--home", home)
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert r.returncode == 0 and len(lines) == 4
    assert all(x["height"] >= 2 for x in lines)


def test_grpc_queries_tx_service_reflection_health(localnet: Localnet) -> None:
    user = localnet.keyring().get_signer(localnet.user_keys[2])
    fresh = Signer(b"\x07" * 32).address
    with grpc.insecure_channel(localnet.grpc_addr(0)) as ch:
        bank = bank_grpc.QueryStub(ch)
        bal = bank.Balance(bank_q.QueryBalanceRequest(address=user.address, denom="upoly"), timeout=10)
        assert int(bal.balance.amount) > 0
        acc = auth_grpc.QueryStub(ch).Account(auth_q.QueryAccountRequest(address=user.address), timeout=10)
        assert acc.account.address == user.address
        with pytest.raises(grpc.RpcError) as e:
            auth_grpc.QueryStub(ch).Account(auth_q.QueryAccountRequest(address=fresh), timeout=10)
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.RpcError) as e:
            bank.Balance(bank_q.QueryBalanceRequest(address="poly1bad", denom="upoly"), timeout=10)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT

        # Tx service: broadcast a signed transfer and find it committed
        with SyncClient(localnet.rpc_url(0)) as c:
            seq = c.next_sequence(user.address)
            chain_id = c.chain_id()
        coins = [coin_pb2.Coin(denom="upoly", amount="55")]
        msg = bank_tx.MsgSend(from_address=user.address, to_address=fresh, amount=coins)
        tx = build_tx([msg], user, chain_id=chain_id, sequence=seq, fee=2000)
        svc = tx_pb2_grpc.ServiceStub(ch)
        sim = svc.Simulate(tx_pb2.SimulateRequest(tx_bytes=tx), timeout=10)
        assert sim.code == 0 and sim.gas_used > 0
        resp = svc.BroadcastTx(tx_pb2.BroadcastTxRequest(tx_bytes=tx, mode=tx_pb2.BROADCAST_MODE_COMMIT), timeout=60)
        assert resp.tx_response.code == 0 and resp.tx_response.height > 0
        got = svc.GetTx(tx_pb2.GetTxRequest(hash=resp.tx_response.txhash), timeout=10)
        assert got.tx_response.height == resp.tx_response.height
        bal = bank.Balance(bank_q.QueryBalanceRequest(address=fresh, denom="upoly"), timeout=10)
        assert bal.balance.amount == "55"

        health = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        refl = reflection_pb2_grpc.ServerReflectionStub(ch)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        answers = list(refl.ServerReflectionInfo(iter([request]), timeout=10))
        names = {s.name for s in answers[0].list_services_response.service}
        expected = {
            "polylink.bank.v1.Query", "polylink.auth.v1.Query", "polylink.tx.v1.Service", "grpc.health.v1.Health"
        }
        assert expected <= names
