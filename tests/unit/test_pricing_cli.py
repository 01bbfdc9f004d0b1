"""`polylink query pricing ...` against a fake node (no network)."""

from __future__ import annotations

import functools
import json
from typing import Any

import pytest
from polylink.pricing.v1 import query_pb2 as q
from polylink.pricing.v1 import types_pb2

import chain.cli.query
from chain.client.client import Client
from chain.modules.pricing.params import default_params
from tests.unit.test_client_cli import cli
from tests.unit.test_client_client import FakeNode, _value

PATH = "/polylink.pricing.v1.Query/"
MP = types_pb2.ModelPrice(model_id="m1", price="1125", base_price="1000", height=7, demand=1200, target=500)


class PricingNode(FakeNode):
    def __init__(self) -> None:
        super().__init__()
        self.history_limits: list[int] = []

    def rpc_abci_query(self, p: dict[str, Any]) -> dict[str, Any]:
        path = p["path"]
        if path == PATH + "Params":
            return _value(q.QueryParamsResponse(params=default_params()))
        if path == PATH + "Price":
            req = q.QueryPriceRequest.FromString(bytes.fromhex(p["data"]))
            return _value(q.QueryPriceResponse(price=MP if req.model_id == "m1" else types_pb2.ModelPrice()))
        if path == PATH + "Prices":
            other = types_pb2.ModelPrice(model_id="m2", price="5", base_price="5")
            return _value(q.QueryPricesResponse(prices=[MP, other]))
        if path == PATH + "History":
            req = q.QueryHistoryRequest.FromString(bytes.fromhex(p["data"]))
            self.history_limits.append(req.pagination.limit)
            pts = [types_pb2.PricePoint(height=7, price="1125", demand=1200, target=500),
                   types_pb2.PricePoint(height=6, price="1000", demand=500, target=500)]  # fmt: skip
            return _value(q.QueryHistoryResponse(points=pts))
        return super().rpc_abci_query(p)


@pytest.fixture
def node(monkeypatch: pytest.MonkeyPatch) -> PricingNode:
    n = PricingNode()
    monkeypatch.setattr(chain.cli.query, "Client", functools.partial(Client, transport=n.transport()))
    return n


def test_query_pricing_params_price_prices(node: PricingNode, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert cli(["query", "pricing", "params", "-o", "json"]) == 0
    params = json.loads(capsys.readouterr().out)["params"]
    assert (params["adjust_denominator"], params["target_util_ppm"]) == ("8", "500000")
    assert cli(["query", "pricing", "price", "m1", "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["price"]["price"] == "1125"
    assert cli(["query", "pricing", "prices"]) == 0
    text = capsys.readouterr().out
    assert "m1\t1125 upoly/1k tokens\tbase 1000\tset at 7 (demand 1200, target 500)" in text
    assert "m2\t5 upoly/1k tokens\tbase 5\t(never moved)" in text


def test_query_pricing_history_asks_for_its_limit(node: PricingNode, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert cli(["query", "pricing", "history", "m1", "--limit", "5000"]) == 0
    assert node.history_limits == [1000]  # capped at the servers' page size
    assert capsys.readouterr().out.splitlines()[0] == "7\t1125\tdemand 1200\ttarget 500"
    with pytest.raises(SystemExit):  # refused by argparse before any query
        cli(["query", "pricing", "history", "m1", "--limit", "0"])
    assert node.history_limits == [1000]


def test_query_pricing_without_a_subcommand_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["query", "pricing"]) == 2
    assert "history" in capsys.readouterr().out
