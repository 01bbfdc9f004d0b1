"""`polylink query rewards ...` against a fake node (no network)."""

from __future__ import annotations

import functools
import json
from typing import Any

import pytest
from polylink.rewards.v1 import query_pb2 as q
from polylink.rewards.v1 import types_pb2

import chain.cli.query
from chain.client.client import Client
from chain.modules.rewards.params import default_params
from tests.unit.test_client_cli import cli
from tests.unit.test_client_client import FakeNode, _value

PATH = "/polylink.rewards.v1.Query/"


class RewardsNode(FakeNode):
    def rpc_abci_query(self, p: dict[str, Any]) -> dict[str, Any]:
        path = p["path"]
        if path == PATH + "Params":
            return _value(q.QueryParamsResponse(params=default_params()))
        if path == PATH + "Totals":
            return _value(q.QueryTotalsResponse(totals=types_pb2.Totals(minted="30", to_workers="7")))
        if path == PATH + "Emission":
            return _value(q.QueryEmissionResponse(block_reward="10", initial_supply="1000", minted="30",
                                                  total_supply="1030", community_pool="4"))  # fmt: skip
        return super().rpc_abci_query(p)


@pytest.fixture
def node(monkeypatch: pytest.MonkeyPatch) -> RewardsNode:
    n = RewardsNode()
    monkeypatch.setattr(chain.cli.query, "Client", functools.partial(Client, transport=n.transport()))
    return n


def test_query_rewards_params_totals_emission(node: RewardsNode, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert cli(["query", "rewards", "params", "-o", "json"]) == 0
    params = json.loads(capsys.readouterr().out)["params"]
    assert (params["worker_share_ppm"], params["validator_share_ppm"]) == ("700000", "200000")
    assert cli(["query", "rewards", "totals", "-o", "json"]) == 0
    totals = json.loads(capsys.readouterr().out)["totals"]
    assert (totals["minted"], totals["to_workers"]) == ("30", "7")
    assert cli(["query", "rewards", "emission"]) == 0
    text = capsys.readouterr().out
    assert "total_supply: 1030" in text and "community_pool: 4" in text


def test_query_rewards_without_a_subcommand_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["query", "rewards"]) == 2
    assert "emission" in capsys.readouterr().out
