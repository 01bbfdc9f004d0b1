"""Smoke: a real localnet starts, every node advances and agrees on the app hash, and down leaves nothing."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from chain.client.rpc import CometRPC
from chain.localnet import Localnet, find_free_base_port
from chain.localnet.process import cmdline
from tests.e2e.conftest import cometbft_or_fail

pytestmark = pytest.mark.e2e


async def _headers(net: Localnet, height: int) -> list[dict[str, str]]:
    async def one(i: int) -> dict[str, str]:
        async with CometRPC(net.rpc_url(i)) as rpc:
            b = await rpc.block(height)
        return {"app_hash": b["block"]["header"]["app_hash"], "block_hash": b["block_id"]["hash"]}

    return list(await asyncio.gather(*(one(i) for i in range(net.nodes))))


def test_nodes_advance_and_agree_on_app_hash(localnet: Localnet) -> None:
    before = {s["node"]: s["height"] for s in localnet.status()}
    assert all(h is not None and h >= 2 for h in before.values()), before
    localnet.wait_ready(min_height=max(before.values()) + 2, timeout=60)
    rows = localnet.status()
    assert all(r["running"] for r in rows)
    assert all(r["height"] > before[r["node"]] for r in rows)
    common = min(r["height"] for r in rows)
    headers = asyncio.run(_headers(localnet, common))
    assert len({h["app_hash"] for h in headers}) == 1, headers
    assert len({h["block_hash"] for h in headers}) == 1, headers
    assert headers[0]["app_hash"]  # InitChain's genesis hash, carried in every header


def test_status_cli_prints_one_json_line_per_node(localnet: Localnet) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "chain.cli.main",
            "localnet",
            "status",
            "--home",
            str(localnet.home),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["node"] for r in rows] == list(range(localnet.nodes))
    assert all(set(r) == {"node", "height", "app_hash", "rpc", "running"} for r in rows)
    assert all(r["running"] and r["height"] >= 2 and len(r["app_hash"]) == 64 for r in rows)
    assert localnet.keyring().show("user0").address


@pytest.mark.parametrize("kvstore", [False, True], ids=["polylink", "kvstore"])
def test_crash_restart_then_down_leaves_no_process(tmp_path: Path, kvstore: bool) -> None:
    """Own network: kill -9 one node's app (or CometBFT), restart it, it catches up; down kills all."""
    cometbft_or_fail()
    net = Localnet(tmp_path / "net", nodes=4, base_port=find_free_base_port(4), kvstore=kvstore)
    try:
        net.up()
        recs = [r for n in net._s.nodes for r in n.procs.values()]
        assert len(recs) == (4 if kvstore else 8)
        net.stop_node(1, app=True, cometbft=kvstore, kill=True)
        assert not all(net.running(1).values())
        net.start_node(1)
        top = max(s["height"] or 0 for s in net.status())
        net.wait_ready(min_height=top + 2, timeout=60)
        assert all(all(net.running(i).values()) for i in range(4))
        recs = [r for n in net._s.nodes for r in n.procs.values()]
    finally:
        pids = net.down()
    assert sorted(pids) == sorted(r.pid for r in recs)
    assert all(cmdline(r.pid) is None for r in recs)
    assert list(net.pids()) == []
    assert all(s["height"] is None and not s["running"] for s in net.status())
