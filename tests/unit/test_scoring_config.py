"""The `[scoring]` table parser and the float -> ppm conversion (no models)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from validator.scoring import PPM, ScoringConfig, ScoringConfigError, Verdict, to_ppm
from worker.config import ConfigError
from worker.models import EMBEDDED_MODEL


def test_empty_table_gives_the_documented_defaults() -> None:
    cfg = ScoringConfig.from_dict({})
    assert cfg == ScoringConfig()
    assert cfg.relevance == "bi-encoder"
    assert cfg.judge == "llamacpp"
    assert cfg.model_sha256 == EMBEDDED_MODEL.sha256
    assert cfg.judge_low < cfg.judge_high
    assert cfg.order_low < cfg.order_high
    assert cfg.specificity is True and cfg.reference is False


def test_values_are_parsed_and_ints_accepted_for_floats() -> None:
    cfg = ScoringConfig.from_dict({"judge_low": 0, "judge_high": 1, "likelihood": False, "judge": "off", "n_ctx": 2048})
    assert cfg.judge_low == 0.0 and isinstance(cfg.judge_low, float)
    assert cfg.likelihood is False
    assert cfg.n_ctx == 2048


def test_relative_paths_are_taken_from_the_config_folder(tmp_path: Path) -> None:
    cfg = ScoringConfig.from_dict({"relevance": "cross-encoder", "cross_encoder_path": "models/ce"}, base_dir=tmp_path)
    assert cfg.cross_encoder_path == tmp_path / "models" / "ce"
    absolute = ScoringConfig.from_dict({"model_path": "/opt/m.gguf"}, base_dir=tmp_path)
    assert absolute.model_path == Path("/opt/m.gguf")


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"judge_lo": 0.3}, "unknown key in [scoring]: judge_lo"),
        ({"relevance": "tfidf"}, "[scoring] relevance must be one of"),
        ({"relevance": "cross-encoder"}, "needs cross_encoder_path"),
        ({"judge": "gpt"}, "[scoring] judge must be one of"),
        ({"judge": "openai"}, "needs judge_base_url and judge_model"),
        ({"judge": "openai", "judge_base_url": "localhost:8000", "judge_model": "m"}, "judge_base_url must be"),
        ({"judge_low": "0.3"}, "[scoring] judge_low must be a number"),
        ({"judge_low": True}, "[scoring] judge_low must be a number"),
        ({"judge_low": float("nan")}, "[scoring] judge_low must be a number"),
        ({"judge_weight": 1.5}, "[scoring] judge_weight must be a number in [0, 1]"),
        ({"judge_low": 0.7, "judge_high": 0.6}, "judge_low must be below judge_high"),
        ({"relevance_low": 0.5, "relevance_high": 0.5}, "relevance_low must be below relevance_high"),
        ({"order_low": 1.0, "order_high": 0.5}, "order_low must be below order_high"),
        (
            {"injection_semantic_low": 0.5, "injection_semantic_high": 0.4},
            "injection_semantic_low must be below injection_semantic_high",
        ),
        ({"injection_semantic_high": 1.2}, "[scoring] injection_semantic_high must be a number in [0, 1]"),
        ({"order_min_words": 0}, "[scoring] order_min_words must be an integer >= 1"),
        ({"order_fluent_above": 0.5}, "[scoring] order_fluent_above must be a log-probability <= 0"),
        ({"prepare_greedy_tokens": -1}, "[scoring] prepare_greedy_tokens must be an integer >= 0 (0 = off)"),
        ({"accept_above": 0.8}, "unknown key in [scoring]: accept_above"),
        ({"n_ctx": 0}, "[scoring] n_ctx must be an integer >= 1"),
        ({"n_ctx": 10.5}, "[scoring] n_ctx must be an integer"),
        ({"n_threads": -1}, "[scoring] n_threads must be an integer >= 0"),
        ({"likelihood": "yes"}, "[scoring] likelihood must be true or false"),
        ({"model_sha256": "abc"}, "[scoring] model_sha256 must be 64 lower-case hex characters"),
        ({"model_path": ""}, "[scoring] model_path must be a non-empty path string"),
        ({"topic_bias": "high"}, "[scoring] topic_bias must be a number"),
    ],
)
def test_bad_tables_name_the_key(table: dict[str, object], message: str) -> None:
    with pytest.raises(ScoringConfigError) as err:
        ScoringConfig.from_dict(table)
    assert message in str(err.value)
    # the validator's config loader catches its ConfigError (a ValueError)
    assert isinstance(err.value, ConfigError) and isinstance(err.value, ValueError)


def test_upper_case_digest_is_normalized() -> None:
    cfg = ScoringConfig.from_dict({"model_sha256": EMBEDDED_MODEL.sha256.upper()})
    assert cfg.model_sha256 == EMBEDDED_MODEL.sha256


def test_a_table_that_is_not_a_table_is_refused() -> None:
    with pytest.raises(ScoringConfigError, match="must be a table"):
        ScoringConfig.from_dict([("judge", "off")])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("score", "ppm"),
    [
        (0.0, 0),
        (1.0, PPM),
        (0.5, 500_000),
        (0.1234565, 123_457),  # half up
        (0.0000004, 0),
        (0.0000005, 1),
        (1e-12, 0),
        (-0.2, 0),  # clamped
        (1.7, PPM),
        (math.inf, PPM),
        (-math.inf, 0),
        (1, PPM),
    ],
)
def test_to_ppm_bounds_and_rounding(score: float, ppm: int) -> None:
    got = to_ppm(score)
    assert got == ppm
    assert isinstance(got, int) and 0 <= got <= PPM


def test_to_ppm_refuses_nan_and_non_numbers() -> None:
    with pytest.raises(ValueError, match="NaN"):
        to_ppm(math.nan)
    with pytest.raises(TypeError):
        to_ppm("0.5")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        to_ppm(True)


def test_verdict_reports_ppm_and_serializes() -> None:
    v = Verdict(score=0.75, stages=[], used_judge=False, decided_by="relevance")
    assert v.score_ppm == 750_000
    d = v.as_dict()
    assert d["score_ppm"] == 750_000 and d["stages"] == [] and d["decided_by"] == "relevance"
    assert v.stage("judge") is None
