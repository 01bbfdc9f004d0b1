"""`polylink validator`: help on every command and flag, init-config round trip, clear errors, status, serve."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from chain.cli.main import build_parser, main
from chain.client.keyring import Keyring
from tests.unit.test_validator_service import ADDR, OTHER, SIGNER, FakeChain, FakeScorer, make_config
from validator import cli as validator_cli
from validator.config import load_config, parse_config
from validator.errors import ValidatorSetupError
from validator.scorer import open_scorer
from validator.state import Action, Score, ValidatorState


@pytest.mark.parametrize(
    "argv",
    [
        ["validator", "--help"],
        ["validator", "run", "--help"],
        ["validator", "init-config", "--help"],
        ["validator", "status", "--help"],
        ["validator", "score", "--help"],
    ],
)
def test_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "usage: polylink validator" in out


def test_every_command_and_flag_has_help() -> None:
    group = _subparsers(build_parser())["validator"]
    commands = _subparsers(group)
    assert sorted(commands) == ["init-config", "run", "score", "status"]
    for name, p in commands.items():
        assert p.description, name
        for action in p._actions:
            assert action.help, (name, action.dest)


def _subparsers(p: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("no subcommands")


def test_group_is_listed_and_without_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "validator" in capsys.readouterr().out
    assert main(["validator"]) == 2
    out = capsys.readouterr().out
    assert "init-config" in out and "score" in out and "status" in out


def _init(tmp_path: Path, out: Path, *extra: str) -> int:
    return main(["validator", "init-config", "--out", str(out), "--home", str(tmp_path / "home"), *extra])


def test_init_config_writes_a_config_that_loads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cfg" / "validator.toml"
    rc = _init(tmp_path, out, "--key", "val3", "--rpc", "http://10.1.2.3:26657", "--concurrency", "3")
    assert rc == 0
    captured = capsys.readouterr()
    assert "no key 'val3'" in captured.err and "polylink keys add val3" in captured.err
    cfg = load_config(out)  # with the [scoring] table through the pipeline's parser
    assert cfg.chain.key == "val3"
    assert cfg.chain.rpc == "http://10.1.2.3:26657"
    assert cfg.chain.home == tmp_path / "home"
    assert cfg.validator.state_dir == tmp_path / "cfg" / "state"
    assert cfg.validator.concurrency == 3
    assert cfg.validator.behaviour == "honest" and not cfg.validator.allow_byzantine
    assert cfg.scoring == {}
    text = out.read_text()
    assert text.count("\n# ") > 10  # commented
    # never overwrites by accident
    assert main(["validator", "init-config", "--out", str(out)]) == 1
    assert "exists" in capsys.readouterr().err
    assert _init(tmp_path, out, "--force") == 0


def test_init_config_rejects_a_bad_key_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validator", "init-config", "--out", str(tmp_path / "v.toml"), "--key", "../x"]) == 1
    assert "invalid key name" in capsys.readouterr().err


def test_run_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validator", "run", "--config", str(tmp_path / "none.toml")]) == 1
    err = capsys.readouterr().err
    assert "does not exist" in err and "polylink validator init-config" in err

    cfg = tmp_path / "v.toml"
    assert main(["validator", "init-config", "--out", str(cfg), "--key", "ghost", "--home", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["validator", "run", "--config", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert "[chain] key 'ghost' is not in" in err and "polylink keys add ghost" in err

    text = cfg.read_text()
    cfg.write_text(text.replace('behaviour = "honest"', 'behaviour = "zero"'))
    assert main(["validator", "run", "--config", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert "Byzantine mode" in err and "allow_byzantine = true" in err and err.count("\n") == 1

    cfg.write_text(text.replace("concurrency = 2", "concurrency = 2\nspeed = 3"))
    assert main(["validator", "run", "--config", str(cfg)]) == 1
    assert "unknown key in [validator] speed" in capsys.readouterr().err


class _FakeClient:
    def __init__(self, chain: FakeChain) -> None:
        self.chain = chain

    async def __aenter__(self) -> FakeChain:
        return self.chain

    async def __aexit__(self, *exc: object) -> None:
        return None


def test_status_shows_validator_rating_tasks_and_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    Keyring(tmp_path).add("val0", SIGNER.seed().hex())
    cfg_path = tmp_path / "v.toml"
    assert main(["validator", "init-config", "--out", str(cfg_path), "--key", "val0", "--home", str(tmp_path)]) == 0
    capsys.readouterr()
    chain = FakeChain()
    monkeypatch.setattr(validator_cli, "Client", lambda *_a, **_k: _FakeClient(chain))

    assert main(["validator", "status", "--config", str(cfg_path), "-o", "json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["address"] == ADDR and info["validator"] is None and info["open_tasks"] == []
    assert info["rating"]["rating_ppm"] == 500_000
    assert info["local_state"]["missing"] is True

    chain.bond()
    rid = chain.open_round([ADDR, OTHER.address])
    with ValidatorState(load_config(cfg_path, check_scoring=False).validator.state_file, ADDR) as st:
        st.save_score(rid, 1, Score(420_000, 870_000, b"s" * 32))
        st.mark_sending(rid, Action.COMMIT, 5)
    assert main(["validator", "status", "--config", str(cfg_path)]) == 0
    text = capsys.readouterr().out
    assert "BONDED" in text
    assert "rating: 50.00%" in text
    assert f"result {rid} COMMIT" in text
    assert "commit.sending=1" in text
    assert "quality 420000 ppm, fidelity 870000 ppm" in text
    assert main(["validator", "status", "--config", str(cfg_path), "-o", "json"]) == 0
    (recent,) = json.loads(capsys.readouterr().out)["recent_scores"]
    assert (recent["quality_ppm"], recent["fidelity_ppm"]) == (420_000, 870_000)


def test_serve_stops_on_sigterm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`serve` owns the resources (state, client, scorer) and returns cleanly when the process gets SIGTERM."""
    chain = FakeChain()
    chain.bond()
    monkeypatch.setattr(validator_cli, "Client", lambda *_a, **_k: _FakeClient(chain))
    opened: list[bool] = []

    @asynccontextmanager
    async def fake_scorer(_cfg: Any) -> Any:
        opened.append(True)
        yield FakeScorer()
        opened.append(False)

    cfg = make_config(tmp_path)

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        loop.call_later(0.3, os.kill, os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(validator_cli.serve(cfg, SIGNER, scorer_factory=fake_scorer), 5)

    asyncio.run(scenario())
    assert "/polylink.tiqe.v1.Query/ValidatorTasks" in chain.calls
    assert opened == [True, False]


def test_score_calls_the_offline_scorer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = tmp_path / "rows.jsonl"
    out = tmp_path / "scores.jsonl"
    assert main(["validator", "score", "--input", str(rows), "--output", str(out)]) == 1
    assert "does not exist" in capsys.readouterr().err
    # a bad row fails fast, before any model loads, as one line
    rows.write_text('{"prompt": "p"}\n')
    assert main(["validator", "score", "--input", str(rows), "--output", str(out)]) == 1
    assert "'response' must be a string" in capsys.readouterr().err

    calls: list[tuple[Path, Path, Any]] = []

    async def score_file(inp: Path, outp: Path, config: Any = None) -> int:
        calls.append((inp, outp, config))
        outp.write_text("{}\n")
        return 1

    monkeypatch.setattr("validator.scoring.offline.score_file", score_file)
    rows.write_text('{"prompt": "p", "response": "r"}\n')
    assert main(["validator", "score", "--input", str(rows), "--output", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote 1 scored rows to {out}"
    cfg = tmp_path / "v.toml"
    assert main(["validator", "init-config", "--out", str(cfg), "--home", str(tmp_path)]) == 0
    cfg.write_text(cfg.read_text() + "relevance_low = 0.1\n")
    assert main(["validator", "score", "-i", str(rows), "-o", str(out), "--config", str(cfg)]) == 0
    (_, (inp, outp, config)) = calls
    assert (inp, outp) == (rows, out)
    assert calls[0][2] is None  # without --config: the pipeline's defaults
    assert config.relevance_low == 0.1


@pytest.mark.parametrize("table", [{"bi_encoder_path": "/nonexistent.onnx"}, {"model_path": "/nonexistent.gguf"}])
def test_a_pipeline_that_cannot_start_is_a_setup_error(table: dict[str, str], tmp_path: Path) -> None:
    cfg = parse_config({"chain": {"key": "v"}, "scoring": table}, base_dir=tmp_path)

    async def scenario() -> None:
        async with open_scorer(cfg):
            raise AssertionError("the pipeline started without its model")

    with pytest.raises(ValidatorSetupError, match=r"the scoring pipeline cannot start.*nonexistent"):
        asyncio.run(scenario())
