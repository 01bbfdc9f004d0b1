"""`polylink tx registry ...` and `polylink query registry ...` against a fake node (no network)."""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from polylink.base.v1 import query_pb2 as base_q
from polylink.registry.v1 import query_pb2 as q
from polylink.registry.v1 import tx_pb2, types_pb2

import chain.cli.query
import chain.cli.tx
from chain.client.client import Client
from chain.client.signer import Signer
from chain.core.tx import decode_tx
from chain.modules.registry.params import default_params
from tests.unit.test_client_cli import COMMANDS, cli
from tests.unit.test_client_client import FakeNode, _value

ALICE = Signer.from_hex("11" * 32)
DIGEST = hashlib.sha256(b"weights").hexdigest()
MODELS = [
    types_pb2.Model(model_id="m1", provider=ALICE.address, sha256=DIGEST, context_length=4096, base_price="10"),
    types_pb2.Model(model_id="m2", provider=ALICE.address, sha256=DIGEST, context_length=2048, base_price="0"),
]
WORKER = types_pb2.Worker(
    address=ALICE.address, models=["m1"], capacity=100, bond="100000000", status=types_pb2.WORKER_STATUS_ACTIVE
)
STATS = [
    types_pb2.WorkerModelStats(
        worker=ALICE.address, model_id="m1", quality_ema_ppm=500_000, fidelity_ema_ppm=640_000, results=3
    )
]


class RegistryNode(FakeNode):
    def __init__(self) -> None:
        super().__init__()
        self.requests: list[Any] = []

    def rpc_abci_query(self, p: dict[str, Any]) -> dict[str, Any]:
        data = bytes.fromhex(p["data"])
        path = p["path"]
        base = "/polylink.registry.v1.Query/"
        if path == base + "Model":
            req = q.QueryModelRequest.FromString(data)
            self.requests.append(req)
            m = next((m for m in MODELS if m.model_id == req.model_id), None)
            if m is None:
                return {"response": {"code": 20, "codespace": "tx", "log": f"model {req.model_id!r}: not found"}}
            return _value(q.QueryModelResponse(model=m))
        if path == base + "Models":
            r = q.QueryModelsRequest.FromString(data)
            if not r.pagination.key:  # two pages
                return _value(q.QueryModelsResponse(models=MODELS[:1], pagination=base_q.PageResponse(next_key=b"k")))
            return _value(q.QueryModelsResponse(models=MODELS[1:]))
        if path == base + "Worker":
            self.requests.append(q.QueryWorkerRequest.FromString(data))
            return _value(q.QueryWorkerResponse(worker=WORKER, stats=STATS))
        if path == base + "Workers":
            wr = q.QueryWorkersRequest.FromString(data)
            self.requests.append(wr)
            return _value(q.QueryWorkersResponse(workers=[WORKER] if wr.model_id in ("", "m1") else []))
        if path == base + "Params":
            return _value(q.QueryParamsResponse(params=default_params()))
        return super().rpc_abci_query(p)


@pytest.fixture
def node(monkeypatch: pytest.MonkeyPatch) -> RegistryNode:
    n = RegistryNode()
    fake = functools.partial(Client, transport=n.transport())
    monkeypatch.setattr(chain.cli.tx, "Client", fake)
    monkeypatch.setattr(chain.cli.query, "Client", fake)
    return n


@pytest.fixture
def home(tmp_path: Path) -> str:
    assert cli(["keys", "add", "alice", "--home", str(tmp_path), "--recover", "11" * 32]) == 0
    return str(tmp_path)


def sent(node: RegistryNode) -> Any:
    """The one message of the one tx the node received, decoded."""
    (raw,) = node.txs.values()
    d = decode_tx(raw)
    assert d.signer == ALICE.address
    (a,) = d.body.messages
    cls = {c.DESCRIPTOR.full_name: c for c in (
        tx_pb2.MsgRegisterModel, tx_pb2.MsgRegisterWorker, tx_pb2.MsgUpdateWorker, tx_pb2.MsgUnregisterWorker
    )}[a.type_url.lstrip("/")]
    return cls.FromString(a.value)


def test_commands_exist() -> None:
    for cmd in [
        ("tx", "registry", "register-model"),
        ("tx", "registry", "register-worker"),
        ("tx", "registry", "update-worker"),
        ("tx", "registry", "unregister-worker"),
        ("query", "registry", "model"),
        ("query", "registry", "models"),
        ("query", "registry", "worker"),
        ("query", "registry", "workers"),
        ("query", "registry", "params"),
    ]:
        assert cmd in COMMANDS


def test_register_model_with_sha256(node: RegistryNode, home: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli([
        "tx", "registry", "register-model", "alice", "org/m-7b", "--sha256", DIGEST.upper(), "--context-length",
        "8192", "--family", "f", "--version", "v2", "--license", "mit", "--royalty-ppm", "50000",
        "--base-price", "7", "--home", home,
    ]) == 0
    assert "txhash:" in capsys.readouterr().out
    m = sent(node)
    assert (m.provider, m.model_id, m.sha256, m.context_length, m.family, m.version, m.license) == (
        ALICE.address, "org/m-7b", DIGEST, 8192, "f", "v2", "mit"
    )
    assert (m.royalty_ppm, m.base_price) == (50_000, "7")


def test_register_model_hashes_the_weights_file(node: RegistryNode, home: str, tmp_path: Path) -> None:
    weights = tmp_path / "model.gguf"
    weights.write_bytes(b"weights")
    assert cli([
        "tx", "registry", "register-model", "alice", "m", "--weights", str(weights), "--context-length", "1",
        "--home", home,
    ]) == 0
    m = sent(node)
    assert m.sha256 == DIGEST and m.base_price == "0" and m.royalty_ppm == 0


def test_register_model_errors(node: RegistryNode, home: str, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    base = ["tx", "registry", "register-model", "alice", "m", "--context-length", "1", "--home", home]
    capsys.readouterr()
    assert cli([*base, "--sha256", "abc"]) == 1
    assert "sha256 must be 64 lower-case hex" in capsys.readouterr().err
    assert cli([*base, "--weights", str(tmp_path / "missing.gguf")]) == 1
    assert "cannot read weights file" in capsys.readouterr().err
    assert cli([*base, "--sha256", DIGEST, "--royalty-ppm", "2000000"]) == 1
    assert "royalty_ppm" in capsys.readouterr().err
    bad_id = ["tx", "registry", "register-model", "alice", "bad id", "--sha256", DIGEST, "--context-length", "1",
              "--home", home]
    assert cli(bad_id) == 1
    assert "model id" in capsys.readouterr().err
    for argv in (
        [*base, "--sha256", DIGEST, "--weights", "x"],  # one or the other
        base,  # neither
        [*base[:5], "--sha256", DIGEST, "--home", home],  # no --context-length
        [*base, "--sha256", DIGEST, "--royalty-ppm", "-1"],
        [*base, "--sha256", DIGEST, "--base-price", "1.5"],
    ):
        with pytest.raises(SystemExit) as ei:
            cli(argv)
        assert ei.value.code == 2
    assert node.txs == {}


def test_register_worker(node: RegistryNode, home: str) -> None:
    assert cli([
        "tx", "registry", "register-worker", "alice", "--models", "m2, m1", "--capacity", "64", "--bond",
        "100000000", "--endpoint", "http://w", "--group", "g", "--home", home,
    ]) == 0
    m = sent(node)
    assert (m.worker, list(m.models), m.capacity, m.bond.denom, m.bond.amount, m.endpoint, m.group) == (
        ALICE.address, ["m2", "m1"], 64, "upoly", "100000000", "http://w", "g"
    )


def test_register_worker_errors(node: RegistryNode, home: str, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["tx", "registry", "register-worker", "alice", "--capacity", "5", "--home", home]
    capsys.readouterr()
    assert cli([*base, "--models", "m1,m1", "--bond", "5upoly"]) == 1
    assert "listed twice" in capsys.readouterr().err
    assert cli([*base, "--models", ",", "--bond", "5upoly"]) == 1
    assert "at least one model" in capsys.readouterr().err
    assert cli([*base, "--models", "m1", "--bond", "5uabc"]) == 1
    assert "upoly" in capsys.readouterr().err
    with pytest.raises(SystemExit) as ei:
        cli(["tx", "registry", "register-worker", "alice", "--models", "m1", "--bond", "5", "--capacity", "0"])
    assert ei.value.code == 2
    assert node.txs == {}


def test_update_worker(node: RegistryNode, home: str, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert cli(["tx", "registry", "update-worker", "alice", "--home", home]) == 1
    assert "nothing to change" in capsys.readouterr().err
    assert cli([
        "tx", "registry", "update-worker", "alice", "--models", "m1,m2", "--capacity", "9", "--add-bond", "5",
        "--endpoint", "http://x", "--home", home,
    ]) == 0
    m = sent(node)
    assert (list(m.models), m.models_set, m.capacity, m.add_bond.amount, m.endpoint) == (
        ["m1", "m2"], True, 9, "5", "http://x"
    )


def test_update_worker_leaves_unset_fields_alone(node: RegistryNode, home: str) -> None:
    assert cli(["tx", "registry", "update-worker", "alice", "--capacity", "3", "--home", home]) == 0
    m = sent(node)
    assert (m.models_set, m.HasField("add_bond"), m.endpoint, m.capacity) == (False, False, "", 3)


def test_unregister_worker(node: RegistryNode, home: str) -> None:
    assert cli(["tx", "registry", "unregister-worker", "alice", "--home", home]) == 0
    assert sent(node).worker == ALICE.address


def test_queries(node: RegistryNode, home: str, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert cli(["query", "registry", "model", "m1", "--home", home, "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["model"]["context_length"] == "4096"
    assert cli(["query", "registry", "model", "zz", "--home", home]) == 1
    assert "not found" in capsys.readouterr().err
    assert cli(["query", "registry", "models", "--home", home, "-o", "json"]) == 0
    assert [m["model_id"] for m in json.loads(capsys.readouterr().out)["models"]] == ["m1", "m2"]
    assert cli(["query", "registry", "models", "--home", home]) == 0
    assert "m2  provider=" in capsys.readouterr().out
    assert cli(["query", "registry", "worker", "alice", "--home", home, "-o", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["worker"]["address"] == ALICE.address and out["stats"][0]["results"] == "3"
    assert cli(["query", "registry", "worker", ALICE.address, "--home", home]) == 0
    assert "stats m1: quality=500000ppm fidelity=640000ppm results=3 misses=0" in capsys.readouterr().out
    assert cli(["query", "registry", "workers", "--home", home]) == 0
    assert "ACTIVE" in capsys.readouterr().out
    assert cli(["query", "registry", "workers", "--model", "m9", "--home", home]) == 0
    assert "(no workers)" in capsys.readouterr().out
    assert [r.model_id for r in node.requests if isinstance(r, q.QueryWorkersRequest)] == ["", "m9"]
    assert cli(["query", "registry", "params", "--home", home]) == 0
    assert "min_worker_bond: 100000000" in capsys.readouterr().out
