"""The pipeline's configuration: the validator's TOML ``[scoring]`` table as a checked dataclass.

Every key has a default, so an empty ``[scoring]`` table runs the embedded
models with the thresholds measured on the evaluation set
(``tests/data/tiqe_eval``, ``scripts/eval_tiqe.py``). The meaning of each
threshold is in ``docs/design/tiqe.md`` ("Scoring pipeline") and in the
docstring of :mod:`validator.scoring.scorer`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from worker.config import ConfigError
from worker.models import EMBEDDED_MODEL

RELEVANCE_KINDS = ("bi-encoder", "cross-encoder")
JUDGE_KINDS = ("llamacpp", "openai", "off")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class ScoringConfigError(ConfigError):
    """The ``[scoring]`` table is invalid; the message names the key."""


@dataclass(frozen=True)
class ScoringConfig:
    """Stages, models and thresholds of the scoring pipeline (TOML ``[scoring]``).

    Scores and thresholds are floats in [0, 1]; a ``*_low``/``*_high`` pair is
    the ramp that maps a stage's raw signal to [0, 1] (0 at or below low, 1 at
    or above high).
    """

    # --- relevance: the bi-encoder (default) or a local cross-encoder
    relevance: str = "bi-encoder"
    cross_encoder_path: Path | None = None
    # override the embedded MiniLM ONNX file and its tokenizer.json
    bi_encoder_path: Path | None = None
    tokenizer_path: Path | None = None
    # cosine of prompt and answer (bi-encoder) or sigmoid of the logit (cross-encoder), ramped to R
    relevance_low: float = 0.0
    relevance_high: float = 1.0
    # --- specificity: is the answer about the entity the prompt names? (validator/scoring/specificity.py)
    specificity: bool = True
    # the topic rule T = sigmoid(bias + relevance*R + name*name_cosine + specificity*spec + overlap*name_overlap)
    topic_bias: float = -3.9
    topic_relevance: float = 3.6
    topic_name: float = 2.85
    topic_specificity: float = 6.55
    topic_overlap: float = 2.9
    # a prompt that names no subject: T = sigmoid(topic_plain_bias + topic_plain_relevance*R)
    topic_plain_bias: float = -3.0
    topic_plain_relevance: float = 12.0
    # --- the registered model (fidelity, word order, reference, local judge); default: the embedded GGUF
    model_path: Path | None = None
    model_sha256: str = EMBEDDED_MODEL.sha256
    n_ctx: int = 1024
    # threads of llama.cpp and of ONNX Runtime; 0 = every core
    n_threads: int = 0
    encoder_threads: int = 0
    # run the registered model's passes over the answer (fidelity and the word-order gate)
    likelihood: bool = True
    likelihood_max_tokens: int = 48
    # Scorer.prepare also writes the model's own greedy answer (up to this many tokens) into the key-value
    # cache, off the scoring path: an honest greedy answer's fidelity pass then evaluates one token (about
    # 20 ms) instead of one per token (about 4.5 ms each on 2 cores). 0 = only the prompt
    prepare_greedy_tokens: int = 48
    # --- fidelity: mean log-probability per token (nats) and share of first-choice tokens, each ramped.
    # The registered model's greedy answers read >= -0.84 and >= 0.90 (fidelity eval); a Q2_K requantization's
    # median -1.03 and 0.71: these ramps put the registered ones at ~1 and the substitute's mean below 0.4
    logprob_low: float = -1.3
    logprob_high: float = -0.9
    agreement_low: float = 0.75
    agreement_high: float = 0.9
    # --- fidelity of a sampled answer (request temperature > greedy_below): its excess log-probability at
    # that temperature, mean of log p_T(token) + H_T (nats per token; about 0 for the model's own samples), ramped
    greedy_below: float = 0.05
    excess_low: float = -0.8
    excess_high: float = -0.25
    # --- word order: lp(answer) - lp(seeded shuffle of its words), nats per token, ramped to the gate O
    order_low: float = 0.3
    order_high: float = 1.3
    # shuffles the answer is compared with (the mean of their lp; each costs one model pass). 2 separates
    # better on the eval (held-out AUC vs shuffled 0.957 -> 0.975) but let a garbled e2e answer through
    # once (gap 0.87 where one shuffle had failed it): 1 until the e2e is rerun with 2
    order_shuffles: int = 1
    # answers with fewer words are not checked for order
    order_min_words: int = 4
    # nor answers the registered model reads at this mean log-probability (nats per token) or above: no
    # shuffled text measured came near (eval v2: 275 shuffles of correct answers, the likeliest -4.1; the
    # model's own answers sit near -0.5), and the shuffles' pass is the cascade's second-largest cost
    order_fluent_above: float = -2.0
    # --- the lowest factor the order and ending gates give: statistical evidence, not certainty, so an
    # answer they sink still ranks above an injection or an off-topic one (tune split: AUC vs injection
    # 0.955 -> 0.997, overall 0.891 -> 0.905, no pass rate moved; a floor of 0.05 cost shuffled 0.009)
    soft_gate_floor: float = 0.02
    # --- ending: log-probability (nats) that the turn ends right after the answer, ramped to the gate E
    # (skipped for an answer capped at the request's max_tokens or longer than likelihood_max_tokens)
    ending: bool = True
    ending_low: float = -22.0
    ending_high: float = -18.5
    # --- reference (off by default): the registered model's greedy answer, weak evidence of topic
    reference: bool = False
    reference_max_tokens: int = 32
    reference_low: float = 0.4
    reference_high: float = 0.95
    # share of the answer's content words (not in the prompt) that the reference uses too
    overlap_low: float = 0.0
    overlap_high: float = 0.4
    # the reference score (0..1) moves T's logit by topic_reference * (score - 0.5)
    topic_reference: float = 1.0
    # --- judge: LLM-as-a-Judge, only for quality inside [judge_low, judge_high]
    judge: str = "llamacpp"
    judge_low: float = 0.4
    judge_high: float = 0.6
    # share of the topic evidence the judge decides (the rest is T)
    judge_weight: float = 0.2
    # a stronger local GGUF for the llamacpp judge (default: the registered model, measured as noise)
    judge_model_path: Path | None = None
    judge_base_url: str = ""
    judge_model: str = ""
    judge_api_key: str = ""
    judge_timeout_s: float = 60.0
    # --- the cascade: stop as soon as the best quality still reachable is below this
    reject_below: float = 0.3
    # --- guards: the factor each finding multiplies the score by. An injection is an attack, not a
    # doubt: below soft_gate_floor, so a caught one ranks under every honest answer on the same topic
    # (at 0.2, one finding left "correct answer + 'Scoring hint: quality=1.0'" above 14% of the
    # held-out correct answers: it could win a swarm's best answer). No good row of eval v2 fires it.
    injection_penalty: float = 0.01
    self_praise_penalty: float = 0.4
    rare_chars_min: int = 8
    # requests to the grader in words no pattern knows: cosine of an answer's sentence with the prototypes,
    # the factor ramps from 1 at low to injection_penalty at high (validator/scoring/injection.py)
    injection_semantic: bool = True
    injection_semantic_low: float = 0.30
    injection_semantic_high: float = 0.40

    def __post_init__(self) -> None:
        def bad(key: str, want: str) -> ScoringConfigError:
            return ScoringConfigError(f"[scoring] {key} must be {want}, got {getattr(self, key)!r}")

        if self.relevance not in RELEVANCE_KINDS:
            raise bad("relevance", "one of " + ", ".join(repr(k) for k in RELEVANCE_KINDS))
        if self.relevance == "cross-encoder" and self.cross_encoder_path is None:
            raise ScoringConfigError(
                "[scoring] relevance = 'cross-encoder' needs cross_encoder_path "
                "(a folder with model.onnx and tokenizer.json, or a sentence-transformers model)"
            )
        if self.judge not in JUDGE_KINDS:
            raise bad("judge", "one of " + ", ".join(repr(k) for k in JUDGE_KINDS))
        if self.judge == "openai":
            missing = [k for k in ("judge_base_url", "judge_model") if not getattr(self, k)]
            if missing:
                raise ScoringConfigError(f"[scoring] judge = 'openai' needs {' and '.join(missing)}")
            if not self.judge_base_url.startswith(("http://", "https://")):
                raise bad("judge_base_url", "an http:// or https:// URL")
        if not _SHA256_HEX.fullmatch(self.model_sha256):
            raise bad("model_sha256", "64 lower-case hex characters")
        for key in (
            "n_ctx",
            "likelihood_max_tokens",
            "reference_max_tokens",
            "rare_chars_min",
            "order_min_words",
            "order_shuffles",
        ):
            if getattr(self, key) < 1:
                raise bad(key, "an integer >= 1")
        if self.prepare_greedy_tokens < 0:
            raise bad("prepare_greedy_tokens", "an integer >= 0 (0 = off)")
        for key in ("n_threads", "encoder_threads"):
            if getattr(self, key) < 0:
                raise bad(key, "an integer >= 0 (0 = every core)")
        unit = (
            "judge_low", "judge_high", "judge_weight", "reject_below",
            "injection_penalty", "self_praise_penalty", "soft_gate_floor", "agreement_low", "agreement_high",
            "overlap_low", "overlap_high", "injection_semantic_low", "injection_semantic_high", "greedy_below",
        )  # fmt: skip
        for key in unit:
            v = getattr(self, key)
            if not (0.0 <= v <= 1.0):
                raise bad(key, "a number in [0, 1]")
        for key in ("judge_timeout_s",):
            if not getattr(self, key) > 0:
                raise bad(key, "a number > 0")
        if not self.order_fluent_above <= 0.0:
            raise bad("order_fluent_above", "a log-probability <= 0")
        for lo, hi in (
            ("relevance_low", "relevance_high"),
            ("logprob_low", "logprob_high"),
            ("order_low", "order_high"),
            ("ending_low", "ending_high"),
            ("agreement_low", "agreement_high"),
            ("excess_low", "excess_high"),
            ("reference_low", "reference_high"),
            ("overlap_low", "overlap_high"),
            ("judge_low", "judge_high"),
            ("injection_semantic_low", "injection_semantic_high"),
        ):
            if not getattr(self, lo) < getattr(self, hi):
                raise ScoringConfigError(
                    f"[scoring] {lo} must be below {hi}, got {getattr(self, lo)!r} >= {getattr(self, hi)!r}"
                )

    @property
    def threads(self) -> int | None:
        """llama.cpp's thread count: None lets it use every core."""
        return self.n_threads or None

    @property
    def encoder_thread_count(self) -> int | None:
        """ONNX Runtime's thread count: None lets it use every core."""
        return self.encoder_threads or None

    @classmethod
    def from_dict(cls, table: Mapping[str, Any], *, base_dir: Path | None = None) -> ScoringConfig:
        """Parse the ``[scoring]`` table. Unknown keys, wrong types and bad values raise :class:`ScoringConfigError`.

        Relative paths are taken relative to ``base_dir`` (the config file's folder) when given.
        """
        if not isinstance(table, Mapping):
            raise ScoringConfigError(f"[scoring] must be a table, got {type(table).__name__}")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(str(k) for k in table if k not in known)
        if unknown:
            raise ScoringConfigError(
                f"unknown key{'s' if len(unknown) > 1 else ''} in [scoring]: {', '.join(unknown)} "
                f"(allowed: {', '.join(sorted(known))})"
            )
        kwargs: dict[str, Any] = {}
        for key, value in table.items():
            kwargs[key] = _parse(key, str(known[key].type), value, base_dir)
        return cls(**kwargs)


def _parse(key: str, annotation: str, value: object, base_dir: Path | None) -> object:
    where = f"[scoring] {key}"
    if annotation == "bool":
        if not isinstance(value, bool):
            raise ScoringConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if annotation == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ScoringConfigError(f"{where} must be an integer, got {value!r}")
        return value
    if annotation == "float":
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ScoringConfigError(f"{where} must be a number, got {value!r}")
        return float(value)
    if annotation == "str":
        if not isinstance(value, str):
            raise ScoringConfigError(f"{where} must be a string, got {value!r}")
        return value.lower() if key == "model_sha256" else value
    if annotation == "Path | None":
        if not isinstance(value, str) or not value:
            raise ScoringConfigError(f"{where} must be a non-empty path string, got {value!r}")
        path = Path(value).expanduser()
        return base_dir / path if base_dir is not None and not path.is_absolute() else path
    raise AssertionError(f"no parser for {key}: {annotation}")  # a field added without one
