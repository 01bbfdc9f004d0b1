"""`polylink tx tiqe ...` and `polylink query tiqe ...` against a fake node (no network)."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest
from polylink.base.v1 import query_pb2 as base_q
from polylink.tiqe.v1 import query_pb2 as q
from polylink.tiqe.v1 import tx_pb2, types_pb2

import chain.cli.query
import chain.cli.tx
from chain.client.client import Client
from chain.client.signer import Signer
from chain.core.tx import decode_tx
from chain.modules.tiqe.keeper import score_commitment
from chain.modules.tiqe.params import default_params
from tests.unit.test_client_cli import COMMANDS, cli
from tests.unit.test_client_client import FakeNode, _value

ALICE = Signer.from_hex("11" * 32)
PATH = "/polylink.tiqe.v1.Query/"


def _round(result_id: int, final: bool = False) -> types_pb2.Round:
    rd = types_pb2.Round(
        result_id=result_id, request_id=9, worker="poly1worker", model_id="m", commit_deadline_height=40,
        phase=types_pb2.ROUND_PHASE_FINAL if final else types_pb2.ROUND_PHASE_COMMIT,
    )  # fmt: skip
    rd.members.add(validator=ALICE.address, commitment=b"c" * 32, revealed=final,
                   quality_ppm=700_000 if final else 0, fidelity_ppm=930_000 if final else 0,
                   deviation_ppm=-100_000 if final else 0, fidelity_deviation_ppm=30_000 if final else 0,
                   outlier=False)  # fmt: skip
    if final:
        rd.quality_ppm, rd.fidelity_ppm, rd.scored, rd.passed, rd.finalized_height = 800_000, 900_000, True, True, 51
    return rd


class TiqeNode(FakeNode):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Any] = []

    def rpc_abci_query(self, p: dict[str, Any]) -> dict[str, Any]:
        path, data = p["path"], bytes.fromhex(p["data"])
        if path == PATH + "Round":
            rid = q.QueryRoundRequest.FromString(data).result_id
            if rid != 3:
                return {"response": {"code": 20, "codespace": "tx", "log": f"round of result {rid}: not found"}}
            return _value(q.QueryRoundResponse(round=_round(3, final=True)))
        if path == PATH + "Rounds":
            req = q.QueryRoundsRequest.FromString(data)
            if not req.pagination.key:  # two pages
                page = base_q.PageResponse(next_key=b"k")
                return _value(q.QueryRoundsResponse(rounds=[_round(5)], pagination=page))
            return _value(q.QueryRoundsResponse(rounds=[_round(3, final=True)]))
        if path == PATH + "ValidatorTasks":
            self.seen.append(q.QueryValidatorTasksRequest.FromString(data).validator)
            task = q.ValidatorTask(action="COMMIT", result_id=5, request_id=9, deadline_height=40, model_id="m")
            return _value(q.QueryValidatorTasksResponse(tasks=[task]))
        if path == PATH + "Rating":
            v = q.QueryRatingRequest.FromString(data).validator
            self.seen.append(v)
            r = types_pb2.ValidatorRating(validator=v, rating_ppm=870_000, deviations=[5, -7], misses_in_row=1)
            return _value(q.QueryRatingResponse(rating=r))
        if path == PATH + "Ratings":
            r = types_pb2.ValidatorRating(validator=ALICE.address, rating_ppm=870_000)
            return _value(q.QueryRatingsResponse(ratings=[r]))
        if path == PATH + "Params":
            return _value(q.QueryParamsResponse(params=default_params()))
        return super().rpc_abci_query(p)

    def last_msg(self) -> Any:
        raw = list(self.txs.values())[-1]
        d = decode_tx(raw)
        assert d.signer == ALICE.address
        (a,) = d.body.messages
        cls = {
            "/polylink.tiqe.v1.MsgCommitScore": tx_pb2.MsgCommitScore,
            "/polylink.tiqe.v1.MsgRevealScore": tx_pb2.MsgRevealScore,
        }[a.type_url]
        return cls.FromString(a.value)


@pytest.fixture
def node(monkeypatch: pytest.MonkeyPatch) -> TiqeNode:
    n = TiqeNode()
    fake = functools.partial(Client, transport=n.transport())
    monkeypatch.setattr(chain.cli.tx, "Client", fake)
    monkeypatch.setattr(chain.cli.query, "Client", fake)
    return n


@pytest.fixture
def home(tmp_path: Path) -> str:
    assert cli(["keys", "add", "alice", "--home", str(tmp_path), "--recover", "11" * 32]) == 0
    return str(tmp_path)


def test_tiqe_commands_exist() -> None:
    for cmd in [
        ("tx", "tiqe", "commit-score"),
        ("tx", "tiqe", "reveal-score"),
        ("query", "tiqe", "round"),
        ("query", "tiqe", "rounds"),
        ("query", "tiqe", "tasks"),
        ("query", "tiqe", "rating"),
        ("query", "tiqe", "ratings"),
        ("query", "tiqe", "params"),
    ]:
        assert cmd in COMMANDS  # and each answers --help (tests/unit/test_client_cli.py)


SCORE = ["--quality-ppm", "830000", "--fidelity-ppm", "910000", "--salt", "00ff"]


def test_commit_score_computes_the_commitment(node: TiqeNode, home: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["tx", "tiqe", "commit-score", "5", "alice", *SCORE, "--home", home]
    assert cli(argv) == 0
    assert "txhash:" in capsys.readouterr().out
    msg = node.last_msg()
    assert (msg.validator, msg.result_id) == (ALICE.address, 5)
    assert msg.commitment == score_commitment(830_000, 910_000, b"\x00\xff", ALICE.address)
    given = "ab" * 32
    assert cli(["tx", "tiqe", "commit-score", "5", "alice", "--commitment", given, "--home", home]) == 0
    assert node.last_msg().commitment == bytes.fromhex(given)


def test_reveal_score_signs_the_score_and_salt(node: TiqeNode, home: str) -> None:
    argv = ["tx", "tiqe", "reveal-score", "5", "alice", *SCORE, "--home", home]
    assert cli(argv) == 0
    assert node.last_msg() == tx_pb2.MsgRevealScore(
        validator=ALICE.address, result_id=5, quality_ppm=830_000, fidelity_ppm=910_000, salt=b"\x00\xff"
    )


def test_bad_arguments_fail_before_anything_is_signed(
    node: TiqeNode, home: str, capsys: pytest.CaptureFixture[str]
) -> None:
    reveal = ["tx", "tiqe", "reveal-score", "5", "alice", "--salt", "00", "--home", home]
    for bad in (
        ["--quality-ppm", "1000001", "--fidelity-ppm", "1"],
        ["--quality-ppm", "1", "--fidelity-ppm", "1000001"],
        ["--quality-ppm", "0.8", "--fidelity-ppm", "1"],
        ["--quality-ppm", "1"],
    ):
        with pytest.raises(SystemExit):
            cli([*reveal, *bad])
    assert cli(["tx", "tiqe", "commit-score", "5", "alice", "--quality-ppm", "1", "--home", home]) == 1
    assert "--commitment" in capsys.readouterr().err
    no_fidelity = ["tx", "tiqe", "commit-score", "5", "alice", "--quality-ppm", "1", "--salt", "00", "--home", home]
    assert cli(no_fidelity) == 1
    assert "--fidelity-ppm" in capsys.readouterr().err
    assert cli(["tx", "tiqe", "commit-score", "5", "alice", "--commitment", "abcd", "--home", home]) == 1
    assert "32-byte" in capsys.readouterr().err
    assert node.txs == {}


def test_query_round_and_rounds(node: TiqeNode, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert cli(["query", "tiqe", "round", "3"]) == 0
    text = capsys.readouterr().out
    assert "phase: FINAL" in text and "quality 700000 fidelity 930000 deviation -100000 / 30000" in text
    assert "final: quality 800000 fidelity 900000, passed at height 51" in text
    assert cli(["query", "tiqe", "round", "3", "-o", "json"]) == 0
    rd = json.loads(capsys.readouterr().out)["round"]
    assert (rd["quality_ppm"], rd["fidelity_ppm"]) == ("800000", "900000")
    assert rd["members"][0]["fidelity_deviation_ppm"] == "30000"
    assert cli(["query", "tiqe", "round", "4"]) == 1
    assert "not found" in capsys.readouterr().err
    assert cli(["query", "tiqe", "rounds", "-o", "json"]) == 0
    assert [r["result_id"] for r in json.loads(capsys.readouterr().out)["rounds"]] == ["5", "3"]
    assert cli(["query", "tiqe", "rounds", "--limit", "1"]) == 0
    assert capsys.readouterr().out.splitlines() == ["5\tCOMMIT\trequest 9\tpoly1worker"]


def test_query_tasks_rating_ratings_params(node: TiqeNode, home: str, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert cli(["query", "tiqe", "tasks", "alice", "--home", home]) == 0
    assert capsys.readouterr().out.strip() == "5\tCOMMIT\tdeadline 40\trequest 9\tm"
    assert cli(["query", "tiqe", "rating", "alice", "--home", home, "-o", "json"]) == 0
    out = json.loads(capsys.readouterr().out)["rating"]
    assert (out["rating_ppm"], out["deviations"]) == ("870000", ["5", "-7"])
    assert node.seen == [ALICE.address, ALICE.address]
    assert cli(["query", "tiqe", "ratings"]) == 0
    assert capsys.readouterr().out.strip() == f"{ALICE.address}\t870000\tmisses_in_row 0"
    assert cli(["query", "tiqe", "params", "-o", "json"]) == 0
    params = json.loads(capsys.readouterr().out)["params"]
    assert params["committee_size"] == "3"
    assert (params["min_fidelity_ppm"], params["slash_fraction_substitution_ppm"], params["fidelity_alpha_ppm"]) == (
        "400000", "100000", "200000"
    )
    assert cli(["query", "tiqe", "rating", "nobody", "--home", home]) == 1
    assert "error:" in capsys.readouterr().err
