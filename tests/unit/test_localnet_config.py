"""Localnet building blocks that need no CometBFT: config.toml patching, the port scheme, PID supervision."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from chain.localnet.config import ConfigError, check_duration, node_config, patch_toml
from chain.localnet.ports import NodePorts, busy_ports, check_base_port, ephemeral_range, find_free_base_port
from chain.localnet.process import ProcRecord, cmdline, is_running, spawn, stop

TOML = """\
# top comment
proxy_app = "tcp://127.0.0.1:26658"
moniker = "host"

[rpc]
# the RPC listen address
laddr = "tcp://127.0.0.1:26657"

[p2p]
laddr = "tcp://0.0.0.0:26656"
persistent_peers = ""
addr_book_strict = true
"""


def test_patch_is_section_aware_and_keeps_comments() -> None:
    out = patch_toml(
        TOML,
        {
            "": {"moniker": "node0"},
            "p2p": {"laddr": "tcp://127.0.0.1:1", "addr_book_strict": False},
        },
    )
    assert 'moniker = "node0"' in out
    assert 'laddr = "tcp://127.0.0.1:26657"' in out  # [rpc] untouched
    assert 'laddr = "tcp://127.0.0.1:1"' in out
    assert "addr_book_strict = false" in out
    assert "# the RPC listen address" in out and out.endswith("addr_book_strict = false\n")


def test_patch_refuses_unknown_keys() -> None:
    with pytest.raises(ConfigError, match=r"\[rpc\] no_such_key"):
        patch_toml(TOML, {"rpc": {"no_such_key": 1}})
    with pytest.raises(ConfigError, match="moniker"):
        patch_toml(TOML, {"p2p": {"moniker": "x"}})  # right key, wrong section


def test_node_config_values() -> None:
    cfg = node_config(
        moniker="node1",
        ports=NodePorts.of(26600, 1),
        peers=["a@127.0.0.1:26600"],
        proxy_app="tcp://127.0.0.1:26612",
    )
    assert cfg["p2p"]["laddr"] == "tcp://127.0.0.1:26610"
    assert cfg["rpc"]["laddr"] == "tcp://127.0.0.1:26611"
    assert cfg["p2p"]["persistent_peers"] == "a@127.0.0.1:26600"
    assert cfg["consensus"]["timeout_commit"] == "200ms"
    with pytest.raises(ConfigError):
        check_duration("200", "timeout_commit")
    assert check_duration("1.5s", "x") == "1.5s"


def test_port_scheme() -> None:
    assert NodePorts.of(26600, 0) == NodePorts(26600, 26601, 26602, 26603)
    assert NodePorts.of(26600, 3).all() == [26630, 26631, 26632, 26633]
    with pytest.raises(ValueError):
        check_base_port(65530, 4)
    base = find_free_base_port(4)
    assert busy_ports(base, 4) == []


def test_free_base_port_avoids_the_ephemeral_range() -> None:
    # an outgoing connection may take an ephemeral port between the probe and the node's bind
    lo, hi = ephemeral_range()
    for _ in range(50):
        base = find_free_base_port(4)
        assert base + 40 <= lo or base > hi, (base, lo, hi)
    # with no room outside it the whole range is used
    assert lo <= find_free_base_port(1, low=lo, high=lo + 30) < lo + 30


def test_spawn_check_and_stop_by_pid(tmp_path: Path) -> None:
    rec = spawn(
        [sys.executable, "-c", "import time; time.sleep(60)"], cwd=tmp_path, log=tmp_path / "p.log"
    )
    assert is_running(rec) and cmdline(rec.pid) == rec.cmd
    # a record whose command differs (a reused PID) is not ours: never signalled
    other = ProcRecord(rec.pid, ("something", "else"), "")
    assert not is_running(other) and stop([other]) == []
    assert is_running(rec)
    assert stop([rec], timeout=5) == [rec]
    assert not is_running(rec)
    assert stop([rec]) == []  # idempotent
    assert (tmp_path / "p.log").read_text().startswith("\n==> ")


def test_stop_escalates_to_sigkill(tmp_path: Path) -> None:
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        " print('re' + 'ady', flush=True); time.sleep(60)"
    )
    rec = spawn([sys.executable, "-c", code], cwd=tmp_path, log=tmp_path / "p.log")
    deadline = time.monotonic() + 10
    while "ready\n" not in (tmp_path / "p.log").read_text():  # the header line quotes the command
        assert time.monotonic() < deadline, "the child never started"
        time.sleep(0.01)
    assert stop([rec], timeout=0.5) == [rec]
    assert not is_running(rec)


def test_a_nodes_database_url_survives_the_state_file_and_is_optional() -> None:
    from chain.localnet.state import NodeRecord

    ports = NodePorts(p2p=1, rpc=2, abci=3, grpc=4)
    pg = NodeRecord(0, "/h0", "id0", ports, db="postgresql+psycopg://u@/d?host=/s")
    assert NodeRecord.from_json(pg.to_json()) == pg
    plain = NodeRecord(1, "/h1", "id1", ports)
    assert "db" not in plain.to_json() and NodeRecord.from_json(plain.to_json()).db == ""
