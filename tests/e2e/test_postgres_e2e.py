"""PostgreSQL for real: a 4-validator localnet with nodes 0 and 1 keeping their state in PostgreSQL (a
cluster this test session starts and stops) and nodes 2 and 3 in SQLite agrees on every app hash; a kill -9
of a PostgreSQL-backed app mid-load recovers with no committed tx lost."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from chain.client.sync import SyncClient
from chain.localnet.net import Localnet
from chain.localnet.ports import find_free_base_port
from tests.e2e.chainutil import assert_same_app_hash_every_height, heights, wait_all_at
from tests.pgcluster import PGCluster

pytestmark = pytest.mark.e2e
PG_NODES = (0, 1)
TXS = 90


@pytest.fixture
def mixed(tmp_path: Path, pg_cluster: PGCluster) -> Iterator[tuple[Localnet, dict[int, str]]]:
    """The mixed localnet, and the PostgreSQL URL of each node on it."""
    n = Localnet(tmp_path / "mixed", nodes=4, base_port=find_free_base_port(4), accounts=4)
    try:
        n.create()
        urls = {i: pg_cluster.create_db(f"mixed_node{i}_{time.monotonic_ns()}") for i in PG_NODES}
        for i, url in urls.items():
            n.set_node_db(i, url)
        n.up()
        yield n, urls
    finally:
        n.down()
        assert list(n.pids()) == []


def _pg_height(url: str) -> int:
    eng = create_engine(url)
    try:
        with eng.connect() as c:
            v = c.execute(text("SELECT value FROM meta WHERE name = 'height'")).scalar_one()
        return int(bytes(v))
    finally:
        eng.dispose()


def test_two_postgresql_and_two_sqlite_nodes_agree_and_a_killed_postgresql_app_loses_nothing(
    mixed: tuple[Localnet, dict[int, str]],
) -> None:
    net, urls = mixed
    for i in PG_NODES:  # each app process was started on its PostgreSQL database
        assert _pg_height(urls[i]) >= 1
    for i in range(4):  # nodes 0-1 never wrote a SQLite file; 2-3 did
        assert (net.node_home(i) / "data" / "app.db").exists() == (i not in PG_NODES)
    kr = net.keyring()
    to = kr.show(net.user_keys[-1]).address
    with SyncClient(net.rpc_url(0), keyring=kr) as c0:
        sink_before = c0.balance(to)
    hashes: list[str] = []
    errors: list[BaseException] = []

    def load() -> None:
        clients = {i: SyncClient(net.rpc_url(i), keyring=kr) for i in (0, 2, 3)}  # node 1 is the victim
        try:
            for k in range(TXS):
                r = clients[(0, 2, 3)[k % 3]].bank_send(net.user_keys[k % 3], to, "5upoly", fee=2000)
                assert r.code == 0, r.log
                hashes.append(r.hash)
                time.sleep(0.02)
        except BaseException as e:  # reported below
            errors.append(e)
        finally:
            for c in clients.values():
                c.close()

    t = threading.Thread(target=load, daemon=True)
    t.start()
    deadline = time.monotonic() + 60
    while len(hashes) < TXS // 3 and t.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    net.stop_node(1, cometbft=False, kill=True)  # kill -9 of the PostgreSQL-backed app mid-load
    t.join(timeout=180)
    assert not t.is_alive() and not errors, errors
    net.start_node(1)
    with SyncClient(net.rpc_url(2), keyring=kr) as c2:
        for h in hashes:
            assert c2.wait(h, timeout=120).code == 0
    top = max(heights(net))
    wait_all_at(net, top + 1, timeout=120)
    with SyncClient(net.rpc_url(1), keyring=kr) as c1, SyncClient(net.rpc_url(3), keyring=kr) as c3:
        for h in hashes:  # every committed tx is on the restarted PostgreSQL node
            assert c1.wait(h, timeout=30).code == 0
        assert c1.balance(to) == c3.balance(to) == sink_before + 5 * TXS
        assert c1.total_supply() == c3.total_supply()
    for i in PG_NODES:  # the state really is in PostgreSQL, and current
        assert _pg_height(urls[i]) >= top
    assert_same_app_hash_every_height(net, top)
