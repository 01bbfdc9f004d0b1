"""The ABCI trust boundary on a real localnet, driven by CometBFT's own `abci-cli` (SPEC 2, SAFETY S18).

A local process that reaches a validator's ABCI socket and sends FinalizeBlock
with a valid signed transfer, then Commit, is refused: the node's app state
does not move and all 4 nodes keep advancing on one app hash.
"""

from __future__ import annotations

import stat
import subprocess
import time
from pathlib import Path

import pytest
from polylink.bank.v1 import tx_pb2 as bank_tx
from polylink.base.v1 import coin_pb2

from chain.client.sync import SyncClient
from chain.client.tx_builder import build_tx
from chain.core.tx import tx_hash
from chain.localnet.net import Localnet
from tests.e2e.chainutil import assert_same_app_hash_every_height, heights, wait_all_at

pytestmark = pytest.mark.e2e
ABCI_CLI = Path(__file__).resolve().parents[2] / ".tools" / "bin" / "abci-cli"
NODE = 3


def test_abci_cli_cannot_drive_a_running_validator(localnet: Localnet) -> None:
    assert ABCI_CLI.exists(), "abci-cli is built by `make setup` (go install, next to cometbft)"
    addr = localnet.abci_addr(NODE)
    assert addr.startswith("unix://"), addr
    sock = Path(addr[len("unix://") :])
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600 and sock.parent == Path(localnet.node_home(NODE)).resolve()

    c = SyncClient(localnet.rpc_url(NODE), keyring=localnet.keyring())
    try:
        alice = localnet.keyring().get_signer(localnet.user_keys[0])
        bob = localnet.keyring().get_signer(localnet.user_keys[1]).address
        coins = [coin_pb2.Coin(denom="upoly", amount="777")]
        msg = bank_tx.MsgSend(from_address=alice.address, to_address=bob, amount=coins)
        tx = build_tx(
            [msg], alice, chain_id=c.chain_id(), sequence=c.next_sequence(alice.address), fee=2_000, gas_limit=200_000
        )
        before = (c.balance(alice.address), c.balance(bob))
        log = localnet.log_path(NODE, "app")
        log_size = log.stat().st_size
        start = max(heights(localnet))
        # CometBFT's own client, on the node's own socket: a block with the signed transfer, then a commit
        for args in (["finalize_block", f"0x{tx.hex()}"], ["commit"]):
            out = subprocess.run(
                [str(ABCI_CLI), *args, "--address", addr, "--log_level", "error"],
                capture_output=True, text=True, timeout=30,
            )
            said = out.stdout + out.stderr
            assert "not the node's consensus connection" in said, said
        wait_all_at(localnet, start + 3, timeout=60)
        for i in range(localnet.nodes):
            ci = SyncClient(localnet.rpc_url(i), keyring=localnet.keyring())
            try:
                assert (ci.balance(alice.address), ci.balance(bob)) == before, f"node{i} moved"
            finally:
                ci.close()
        assert c._run(c.client.rpc.tx(tx_hash(tx))) is None  # never in a block
        # every node advanced on one app hash, node 3 included (it would halt on a wrong AppHash)
        assert_same_app_hash_every_height(localnet, start + 3)
        deadline = time.monotonic() + 10
        refused = ""
        while time.monotonic() < deadline and "refused finalize_block" not in refused:
            refused = log.read_bytes()[log_size:].decode(errors="replace")
            time.sleep(0.2)
        assert "refused finalize_block on ABCI connection" in refused and "refused commit" in refused, refused
    finally:
        c.close()
