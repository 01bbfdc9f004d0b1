"""`polylink tx slashing unjail` and `polylink query slashing ...` against a fake node (no network)."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest
from polylink.base.v1 import query_pb2 as base_q
from polylink.slashing.v1 import query_pb2 as slashing_q
from polylink.slashing.v1 import tx_pb2 as slashing_tx
from polylink.slashing.v1 import types_pb2 as slashing_types

import chain.cli.query
import chain.cli.tx
from chain.client.client import Client
from chain.client.signer import Signer
from chain.core.tx import decode_tx
from chain.modules.slashing.keeper import FOREVER
from chain.modules.slashing.params import default_params
from tests.unit.test_client_cli import COMMANDS, cli
from tests.unit.test_client_client import FakeNode, _value

ALICE = Signer.from_hex("11" * 32)
INFOS = [
    slashing_types.ValidatorSigningInfo(address="AA" * 20, start_height=3, missed_blocks_counter=2),
    slashing_types.ValidatorSigningInfo(address="BB" * 20, jailed_until_height=FOREVER, tombstoned=True),
]


class SlashingNode(FakeNode):
    def __init__(self) -> None:
        super().__init__()
        self.requests: list[Any] = []

    def rpc_abci_query(self, p: dict[str, Any]) -> dict[str, Any]:
        data = bytes.fromhex(p["data"])
        path = p["path"]
        if path == "/polylink.slashing.v1.Query/SigningInfo":
            req = slashing_q.QuerySigningInfoRequest.FromString(data)
            self.requests.append(req)
            return _value(slashing_q.QuerySigningInfoResponse(val_signing_info=INFOS[0]))
        if path == "/polylink.slashing.v1.Query/SigningInfos":
            req2 = slashing_q.QuerySigningInfosRequest.FromString(data)
            if not req2.pagination.key:  # two pages
                return _value(
                    slashing_q.QuerySigningInfosResponse(
                        info=INFOS[:1], pagination=base_q.PageResponse(next_key=b"k")
                    )
                )
            return _value(slashing_q.QuerySigningInfosResponse(info=INFOS[1:]))
        if path == "/polylink.slashing.v1.Query/Params":
            return _value(slashing_q.QueryParamsResponse(params=default_params()))
        return super().rpc_abci_query(p)


@pytest.fixture
def node(monkeypatch: pytest.MonkeyPatch) -> SlashingNode:
    n = SlashingNode()
    fake = functools.partial(Client, transport=n.transport())
    monkeypatch.setattr(chain.cli.tx, "Client", fake)
    monkeypatch.setattr(chain.cli.query, "Client", fake)
    return n


@pytest.fixture
def home(tmp_path: Path) -> str:
    assert cli(["keys", "add", "alice", "--home", str(tmp_path), "--recover", "11" * 32]) == 0
    return str(tmp_path)


def test_commands_exist() -> None:
    for cmd in [
        ("tx", "slashing", "unjail"),
        ("query", "slashing", "signing-info"),
        ("query", "slashing", "signing-infos"),
        ("query", "slashing", "params"),
    ]:
        assert cmd in COMMANDS


def test_unjail_signs_msg_unjail_for_the_key(node: SlashingNode, home: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["tx", "slashing", "unjail", "alice", "--home", home]) == 0
    assert "txhash:" in capsys.readouterr().out
    (raw,) = node.txs.values()
    d = decode_tx(raw)
    assert d.signer == ALICE.address
    (a,) = d.body.messages
    assert a.type_url == "/polylink.slashing.v1.MsgUnjail"
    assert slashing_tx.MsgUnjail.FromString(a.value).validator_address == ALICE.address


def test_signing_info_by_cons_address_or_operator(
    node: SlashingNode, home: str, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert cli(["query", "slashing", "signing-info", "aa" * 20, "--home", home, "-o", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["val_signing_info"]["address"] == "AA" * 20
    assert out["val_signing_info"]["missed_blocks_counter"] == "2"
    assert cli(["query", "slashing", "signing-info", "alice", "--home", home]) == 0
    assert "missed_blocks_counter: 2" in capsys.readouterr().out
    assert cli(["query", "slashing", "signing-info", ALICE.address, "--home", home]) == 0
    assert [(r.cons_address, r.validator_address) for r in node.requests] == [
        ("aa" * 20, ""), ("", ALICE.address), ("", ALICE.address)
    ]


def test_signing_infos_follow_pages(node: SlashingNode, home: str, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert cli(["query", "slashing", "signing-infos", "--home", home, "-o", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [i["address"] for i in out["info"]] == ["AA" * 20, "BB" * 20]
    assert cli(["query", "slashing", "signing-infos", "--home", home]) == 0
    text = capsys.readouterr().out
    assert "jailed_until_height: forever" in text and "tombstoned: true" in text


def test_params(node: SlashingNode, home: str, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert cli(["query", "slashing", "params", "--home", home, "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["params"]["min_signed_ppm"] == "500000"


def test_bad_operator_fails_cleanly(node: SlashingNode, home: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["query", "slashing", "signing-info", "nobody", "--home", home]) == 1
    assert "error:" in capsys.readouterr().err
