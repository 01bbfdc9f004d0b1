"""Crash safety on the real localnet: kill -9 one node's app (or its CometBFT) mid-load,
restart it, and it catches up to the same app hash with no committed tx lost."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from chain.client.sync import SyncClient
from chain.localnet.net import Localnet
from chain.localnet.ports import find_free_base_port
from tests.e2e.chainutil import (
    assert_live_power_above_two_thirds,
    assert_same_app_hash_every_height,
    heights,
    unjail_every_validator,
    wait_all_at,
)

pytestmark = pytest.mark.e2e
USERS = 6
TXS = 150


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Localnet]:
    """One network for the cases, back to back: each case first unjails any validator an earlier
    crash got jailed for downtime and checks that the others keep more than 2/3 of the power
    (the stall of SAFETY C2 was a correct halt at exactly 2/3 after such a jailing)."""
    n = Localnet(tmp_path_factory.mktemp("crash"), nodes=4, base_port=find_free_base_port(4), accounts=USERS)
    try:
        n.up()
        yield n
    finally:
        n.down()
        assert list(n.pids()) == []


def _load(net: Localnet, live_nodes: list[int], hashes: list[str], errors: list[BaseException]) -> None:
    """Send TXS transfers round-robin over the senders, each sender bound to one live node."""
    kr = net.keyring()
    users = net.user_keys
    to = kr.show(users[-1]).address
    clients = {i: SyncClient(net.rpc_url(i), keyring=kr) for i in live_nodes}
    try:
        for k in range(TXS):
            sender = users[k % (USERS - 1)]
            node = live_nodes[(k % (USERS - 1)) % len(live_nodes)]
            r = clients[node].bank_send(sender, to, "3upoly", fee=2000)
            assert r.code == 0, r.log
            hashes.append(r.hash)
            time.sleep(0.01)
    except BaseException as e:  # reported by the test thread
        errors.append(e)
    finally:
        for c in clients.values():
            c.close()


@pytest.mark.parametrize("victim,process", [(3, "app"), (2, "cometbft")])
def test_kill_9_mid_load_then_catch_up(net: Localnet, victim: int, process: str) -> None:
    live = [i for i in range(net.nodes) if i != victim]
    # the claim rests on the others keeping more than 2/3 of the power: restore it, check it, never assume it
    unjail_every_validator(net)
    assert_live_power_above_two_thirds(net, [victim], live[0])
    hashes: list[str] = []
    errors: list[BaseException] = []
    t = threading.Thread(target=_load, args=(net, live, hashes, errors), daemon=True)
    t.start()
    deadline = time.monotonic() + 60
    while len(hashes) < TXS // 3 and time.monotonic() < deadline and t.is_alive():
        time.sleep(0.05)
    net.stop_node(victim, app=process == "app", cometbft=process == "cometbft", kill=True)
    t.join(timeout=180)
    assert not t.is_alive() and not errors, errors
    assert len(hashes) == TXS
    # the other three (> 2/3 of power) kept making blocks; finish the load
    c0 = SyncClient(net.rpc_url(live[0]), keyring=net.keyring())
    try:
        for h in hashes:
            assert c0.wait(h, timeout=120).code == 0
        if process == "app":
            # CometBFT cannot run without its app; stop whatever is left of the node
            net.stop_node(victim, kill=True)
        net.start_node(victim)
        top = max(heights(net))
        wait_all_at(net, top + 1, timeout=120)
        cv = SyncClient(net.rpc_url(victim), keyring=net.keyring())
        try:
            for h in hashes:  # no committed tx lost on the restarted node
                res = cv.wait(h, timeout=30)
                assert res.code == 0
            to = net.keyring().show(net.user_keys[-1]).address
            assert cv.balance(to) == c0.balance(to)
            assert cv.total_supply() == c0.total_supply()
        finally:
            cv.close()
    finally:
        c0.close()
    assert_same_app_hash_every_height(net, top)
