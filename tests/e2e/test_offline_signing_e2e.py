"""Keys and signing the Cosmos way on the real localnet: --generate-only, tx sign (online and cold), tx broadcast."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chain.client.sync import SyncClient
from chain.localnet.net import Localnet
from tests.e2e.chainutil import heights, wait_all_at

pytestmark = pytest.mark.e2e


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "chain.cli.main", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})


def test_generate_only_then_sign_then_broadcast_moves_exactly_the_amount(localnet: Localnet, tmp_path: Path) -> None:
    home, node = str(localnet.home), localnet.rpc_url(2)
    user = localnet.user_keys[-1]
    to = localnet.keyring().show(localnet.user_keys[0]).address
    c = SyncClient(node, keyring=localnet.keyring())
    try:
        sender = localnet.keyring().show(user).address
        before = (c.balance(sender), c.balance(to))
        # 1. the unsigned tx: no private key is read, the fee and gas are explicit
        r = cli("tx", "bank", "send", user, to, "321upoly", "--generate-only", "--fees", "2000upoly",
                "--gas", "150000", "--memo", "cold path", "--home", home, "--node", node)
        assert r.returncode == 0, r.stderr
        unsigned = tmp_path / "unsigned.json"
        unsigned.write_text(r.stdout)
        doc = json.loads(r.stdout)
        assert doc["type"] == "polylink/unsigned-tx" and doc["signer"] == sender
        assert doc["body"]["messages"][0]["amount"] == [{"denom": "upoly", "amount": "321"}]
        assert c.balance(sender) == before[0]  # nothing was sent

        # 2. a cold signer: the same key in an encrypted file keyring elsewhere, nothing asked of the network
        cold = tmp_path / "cold"
        seed = json.loads((localnet.keyring_dir / f"{user}.json").read_text())["priv_key"]
        secret = {"POLYLINK_KEYRING_PASSPHRASE": "a long cold passphrase"}
        r = subprocess.run([sys.executable, "-m", "chain.cli.main", "keys", "add", "cold", "--recover", "-",
                            "--home", str(cold), "--keyring-backend", "file"], input=seed + "\n",
                           capture_output=True, text=True, timeout=60, env={**os.environ, **secret})
        assert r.returncode == 0 and "encrypted" in r.stdout, r.stderr
        chain_id, seq = c.chain_id(), c.next_sequence(sender)
        wrong = cli("tx", "sign", str(unsigned), "--from", "cold", "--home", str(cold), "--keyring-backend", "file",
                    "--chain-id", chain_id, "--sequence", str(seq), env={"POLYLINK_KEYRING_PASSPHRASE": "nope"})
        assert wrong.returncode != 0 and "wrong passphrase" in wrong.stderr
        signed = tmp_path / "signed.json"
        r = cli("tx", "sign", str(unsigned), "--from", "cold", "--home", str(cold), "--keyring-backend", "file",
                "--chain-id", chain_id, "--sequence", str(seq), "--node", "http://127.0.0.1:9",  # unreachable
                "--output-document", str(signed), env=secret)
        assert r.returncode == 0, r.stderr
        sdoc = json.loads(signed.read_text())
        assert sdoc["type"] == "polylink/signed-tx" and sdoc["sequence"] == seq and sdoc["chain_id"] == chain_id

        # 3. broadcast from anywhere, wait for the block
        r = cli("tx", "broadcast", str(signed), "--node", localnet.rpc_url(1), "--wait", "--output", "json")
        assert r.returncode == 0, r.stderr
        res = json.loads(r.stdout)
        assert res["code"] == 0 and res["txhash"].upper() == sdoc["txhash"].upper()
        fee = 2_000
        assert (c.balance(sender), c.balance(to)) == (before[0] - 321 - fee, before[1] + 321)
        # the same signed document again (CometBFT's cache answers it as known): never executed twice
        cli("tx", "broadcast", str(signed), "--node", node)
        wait_all_at(localnet, max(heights(localnet)) + 2)
        assert (c.balance(sender), c.balance(to)) == (before[0] - 321 - fee, before[1] + 321)
        # online signing asks the node for the chain id and the sequence
        r = cli("tx", "bank", "send", user, to, "1upoly", "--generate-only", "--home", home, "--node", node)
        assert r.returncode == 0, r.stderr
        unsigned.write_text(r.stdout)
        r = cli("tx", "sign", str(unsigned), "--from", user, "--home", home, "--node", node)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["sequence"] == seq + 1
    finally:
        c.close()
