"""CLI groups keys / tx / query: help everywhere, outputs, and clear errors (no network)."""

from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path
from typing import Any

import pytest

import chain.cli.query
import chain.cli.tx
from chain.cli import keys as keys_cli
from chain.client.client import Client
from chain.client.signer import Signer
from chain.core.tx import decode_tx
from tests.unit.test_client_client import ALICE, BOB, FakeNode

GROUPS = {"keys": keys_cli, "tx": chain.cli.tx, "query": chain.cli.query}


def parser() -> argparse.ArgumentParser:
    """The same wiring as chain.cli.main, limited to the client-side groups."""
    p = argparse.ArgumentParser(prog="polylink")
    sub = p.add_subparsers(dest="group")
    for name, mod in GROUPS.items():
        mod.register(sub.add_parser(name))
    return p


def cli(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    return int(args.func(args))


def all_commands(p: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = [prefix]
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                out += all_commands(child, (*prefix, name))
    return out


COMMANDS = all_commands(parser())


def test_expected_commands_exist() -> None:
    for cmd in [
        ("keys", "add"),
        ("keys", "list"),
        ("keys", "show"),
        ("tx", "bank", "send"),
        ("tx", "bank", "multi-send"),
        ("query", "bank", "balances"),
        ("query", "bank", "total-supply"),
        ("query", "auth", "account"),
        ("query", "auth", "params"),
        ("query", "account"),
        ("query", "tx"),
    ]:
        assert cmd in COMMANDS


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c) or "root")
def test_help_exits_zero(cmd: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as ei:
        parser().parse_args([*cmd, "--help"])
    assert ei.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_group_without_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["tx", "bank"]) == 2
    assert "send" in capsys.readouterr().out


def test_keys_add_list_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = str(tmp_path)
    assert (
        cli(["keys", "add", "alice", "--home", home, "--output", "json", "--recover", "11" * 32])
        == 0
    )
    added = json.loads(capsys.readouterr().out)
    assert added["address"] == ALICE.address and "priv_key" not in added
    assert cli(["keys", "add", "bob", "--home", home]) == 0
    assert "stored unencrypted" in capsys.readouterr().out
    assert cli(["keys", "list", "--home", home, "-o", "json"]) == 0
    assert [k["name"] for k in json.loads(capsys.readouterr().out)["keys"]] == ["alice", "bob"]
    assert cli(["keys", "show", "alice", "--home", home, "-a"]) == 0
    assert capsys.readouterr().out.strip() == ALICE.address


def test_keys_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = str(tmp_path)
    assert cli(["keys", "add", "alice", "--home", home]) == 0
    capsys.readouterr()
    assert cli(["keys", "add", "alice", "--home", home]) == 1
    assert "already exists" in capsys.readouterr().err
    assert cli(["keys", "show", "nobody", "--home", home]) == 1
    assert "no key named 'nobody'" in capsys.readouterr().err
    assert cli(["keys", "add", "x", "--home", home, "--recover", "nothex"]) == 1
    assert "hex" in capsys.readouterr().err


def _with_node(monkeypatch: pytest.MonkeyPatch, node: FakeNode) -> None:
    fake = functools.partial(Client, transport=node.transport())
    monkeypatch.setattr(chain.cli.tx, "Client", fake)
    monkeypatch.setattr(chain.cli.query, "Client", fake)


@pytest.fixture
def home(tmp_path: Path) -> str:
    assert cli(["keys", "add", "alice", "--home", str(tmp_path), "--recover", "11" * 32]) == 0
    return str(tmp_path)


def test_tx_send_and_wait(
    home: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    node = FakeNode()
    _with_node(monkeypatch, node)
    capsys.readouterr()
    assert (
        cli(
            [
                "tx",
                "bank",
                "send",
                "alice",
                BOB.address,
                "100upoly",
                "--home",
                home,
                "--memo",
                "hello",
                "--gas",
                "100000",
                "--wait",
                "-o",
                "json",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["height"] == 7 and out["code"] == 0
    d = decode_tx(node.txs[out["txhash"]])
    assert (d.body.memo, d.auth.gas_limit, d.auth.fee.amount) == ("hello", 100_000, "1000")


def test_tx_multi_send(
    home: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    node = FakeNode()
    _with_node(monkeypatch, node)
    carol = Signer.from_hex("33" * 32).address
    assert (
        cli(
            [
                "tx",
                "bank",
                "multi-send",
                "alice",
                f"{BOB.address}:1upoly",
                f"{carol}:2upoly",
                "--home",
                home,
                "--fees",
                "5000upoly",
            ]
        )
        == 0
    )
    assert "txhash:" in capsys.readouterr().out
    (raw,) = node.txs.values()
    assert decode_tx(raw).auth.fee.amount == "5000"
    assert decode_tx(raw).body.messages[0].type_url == "/polylink.bank.v1.MsgMultiSend"


def test_tx_rejected_prints_codespace_code_log(
    home: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _with_node(monkeypatch, FakeNode())
    assert (
        cli(
            [
                "tx",
                "bank",
                "send",
                "alice",
                BOB.address,
                "1upoly",
                "--home",
                home,
                "--fees",
                "1",
                "-o",
                "json",
            ]
        )
        == 1
    )
    captured = capsys.readouterr()
    assert json.loads(captured.out)["code"] == 5
    assert "codespace=tx code=5 log=insufficient fee" in captured.err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["tx", "bank", "send", "nobody", "ADDR", "1upoly"], "no key named 'nobody'"),
        (["tx", "bank", "send", "alice", "poly1bad", "1upoly"], "invalid address"),
        (["tx", "bank", "send", "alice", "ADDR", "1"], "invalid coins"),
        (
            ["tx", "bank", "send", "alice", "ADDR", "1upoly", "--fees", "3uabc"],
            "fees must be paid in upoly",
        ),
        (["tx", "bank", "multi-send", "alice", "ADDR"], "must look like"),
        (["query", "bank", "balances", "poly1bad"], "invalid address"),
        (["query", "tx", "xyz"], "not 64 hex"),
    ],
)
def test_clear_errors(
    home: str, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [a.replace("ADDR", BOB.address) for a in argv]
    home_flag = [] if argv[:2] == ["query", "tx"] else ["--home", home]
    assert cli([*argv, *home_flag, "--node", "http://127.0.0.1:9"]) == 1
    assert message in capsys.readouterr().err


def test_unreachable_node(
    home: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import httpx

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    fake: Any = functools.partial(Client, transport=httpx.MockTransport(refuse))
    monkeypatch.setattr(chain.cli.query, "Client", fake)
    monkeypatch.setattr(chain.cli.tx, "Client", fake)
    assert cli(["query", "bank", "balances", BOB.address, "--node", "http://nowhere:1"]) == 1
    assert "cannot reach node http://nowhere:1" in capsys.readouterr().err
    assert cli(["tx", "bank", "send", "alice", BOB.address, "1upoly", "--home", home]) == 1
    assert "is the node running" in capsys.readouterr().err


def test_queries(
    home: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    node = FakeNode()
    node.committed_seq[ALICE.address] = 3
    _with_node(monkeypatch, node)
    capsys.readouterr()
    assert (
        cli(["query", "bank", "balances", "alice", "--home", home, "-o", "json"]) == 0
    )  # key name works
    out = json.loads(capsys.readouterr().out)
    assert out["address"] == ALICE.address
    assert out["balances"] == [{"denom": "uabc", "amount": "1"}, {"denom": "upoly", "amount": "9"}]
    assert cli(["query", "bank", "balances", BOB.address, "--denom", "upoly"]) == 0
    assert capsys.readouterr().out.strip() == "42upoly"
    assert cli(["query", "account", ALICE.address, "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["account"]["sequence"] == "3"
    assert cli(["query", "auth", "account", BOB.address]) == 1
    assert "not found" in capsys.readouterr().err
    assert cli(["query", "auth", "params", "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["params"]["min_gas_price_ppm"] == "10000"
