"""Is the answer about the entity the prompt names? The signal that tells a right answer from its neighbour's.

A relevance score (bi-encoder cosine of prompt and answer) sees the topic:
the answer that describes ``os.path.dirname`` is as close to "What does
``os.path.basename`` do?" as the right one. What tells them apart is the
*subject*: the identifier, command or package the prompt asks about. This
stage finds it (:func:`subject`) and measures three things:

- ``name_cosine``: the cosine of the answer and the subject's own words
  (``set_label_style`` -> "set label style"); documentation describes a thing
  in the words of its name far more often than a neighbour's;
- ``specificity``: cos(prompt, answer) - cos(prompt with the subject replaced
  by its parent, answer). An answer about the named entity loses similarity
  when the name is hidden; one about a neighbour (or the parent in general)
  loses none or gains;
- ``name_overlap``: the share of the subject's words (of 3+ letters) that the
  answer uses, by a shared 5-letter prefix (so "serializes" matches "serialize").

They are combined with the relevance score by a logistic rule whose weights
are config (:class:`~validator.scoring.ScoringConfig` ``topic_*``), fitted on
the tune split of ``tests/data/tiqe_eval`` and reported on its held-out
sources (``scripts/eval_tiqe.py``). No model other than the bi-encoder the
relevance stage already holds; the prompt-side texts are embedded when the
prompt is prepared.
"""

from __future__ import annotations

import asyncio
import math
import re
from dataclasses import dataclass
from typing import Any

from validator.scoring.encoders import BiEncoder

_BACKTICK = re.compile(r"`([^`\n]{1,120})`")
_QUOTED = re.compile(r"""(?:^|[\s(])["'\u2018\u201c]([^"'\u2019\u201d\n]{1,80})["'\u2019\u201d](?=$|[\s?.,:;)])""")
# dotted, underscored, called or camelCase names: os.path.basename, str.startswith(), set_label_style, getLogger
_IDENT = re.compile(r"[A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)+(?:\(\))?|[A-Za-z]\w*_\w+(?:\(\))?|[a-z]+[A-Z]\w*|\w+\(\)")
_KIND = (
    r"command|function|method|class|module|package|program|library|utility|tool|option|macro|"
    r"type|attribute|property|constant|variable|keyword|operator|exception|decorator|setting|field|header"
)
_THE_X_KIND = re.compile(rf"\bthe\s+([\w.+:-]+)\s+(?:{_KIND})\b", re.IGNORECASE)
_KIND_X = re.compile(rf"\b(?:{_KIND})\s+([\w.+:-]+)", re.IGNORECASE)
_SPLIT = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_WORD = re.compile(r"[A-Za-z]+")
_NOT_NAMES = frozenset({"the", "a", "an", "this", "that", "it", "does", "do", "is", "what", "which", "of", "for"})


@dataclass(frozen=True)
class Subject:
    """What the prompt asks about: the name as written, its parent (``a.b`` of ``a.b.c``), and its words."""

    name: str
    parent: str
    words: tuple[str, ...]

    @property
    def text(self) -> str:
        """The subject's words as a phrase, what the answer is compared with."""
        return " ".join(self.words)


def split_identifier(name: str) -> list[str]:
    """The words of an identifier's last component: ``GenerativeSelect.set_label_style`` -> set, label, style."""
    last = name.rstrip("()").rsplit(".", 1)[-1].rsplit("::", 1)[-1]
    words: list[str] = []
    for part in re.split(r"[_\-\s/:+]+", last):
        words += [w.lower() for w in _SPLIT.findall(part)]
    return words


def subject(prompt: str) -> Subject | None:
    """The entity ``prompt`` names (backticks first, then quotes, identifier shapes, "the X command"), or None.

    Of several names in backticks the first that no other one extends (``a.b`` over ``a`` or ``x/a``)."""
    found = ""
    named = [m.strip() for m in _BACKTICK.findall(prompt)]
    if named:
        # "In Go's `runtime/debug` package, what does `debug.SetTraceback` do?": the member, not its package
        found = next(n for n in named if not any(_extends(o, n) for o in named))
    else:
        m = _QUOTED.search(prompt)
        if m:
            found = m.group(1).strip()
    if not found:
        m = _IDENT.search(prompt)
        if m:
            found = m.group(0)
    if not found:
        for pattern in (_THE_X_KIND, _KIND_X):
            m = pattern.search(prompt)
            if m and m.group(1).lower() not in _NOT_NAMES:
                found = m.group(1)
                break
    found = found.strip(" .,:;?")
    if not found:
        return None
    bare = found.rstrip("()")
    parent = bare.rsplit(".", 1)[0] if "." in bare else ""
    words = tuple(split_identifier(bare)) or (bare.lower(),)
    return Subject(found, parent, words)


def _extends(name: str, other: str) -> bool:
    """Is ``name`` a member of ``other``: ``log.Panic`` of ``log``, ``debug.Stack`` of ``runtime/debug``?"""
    base = other.rsplit("/", 1)[-1]
    return name != other and name.startswith((other + ".", other + "::", base + ".", base + "::"))


def name_overlap(subj: Subject, answer: str) -> float:
    """Share of the subject's words of 3+ letters that the answer uses (a shared 5-letter prefix counts)."""
    wanted = [w for w in subj.words if len(w) >= 3]
    if not wanted:
        return 0.0
    have = {w.lower() for w in _WORD.findall(answer) if len(w) >= 3}
    hits = sum(any(h.startswith(w[:5]) or w.startswith(h[:5]) for h in have) for w in wanted)
    return hits / len(wanted)


@dataclass(frozen=True)
class TopicWeights:
    """The logistic rules.

    A prompt that names a subject: T = sigmoid(bias + relevance*R + name*name_cosine + specificity*spec +
    overlap*name_overlap). A prompt that names none ("Why is the sky blue?"): nothing tells a neighbour
    apart, and T = sigmoid(plain_bias + plain_relevance*R).
    """

    bias: float
    relevance: float
    name: float
    specificity: float
    overlap: float
    plain_bias: float = -3.0
    plain_relevance: float = 12.0


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, x))))


class SpecificityStage:
    """Computes the subject features with the bi-encoder and combines them with the relevance score into T."""

    name = "specificity"

    def __init__(self, encoder: BiEncoder, weights: TopicWeights) -> None:
        self._encoder = encoder
        self.weights = weights

    @staticmethod
    def prompt_texts(prompt: str) -> list[str]:
        """The prompt-side texts this stage embeds (the validator embeds them when it prepares the prompt)."""
        subj = subject(prompt)
        if subj is None:
            return [prompt]
        return [prompt, subj.text, masked_prompt(prompt, subj)]

    def features(self, prompt: str, answer: str) -> dict[str, Any]:
        """The raw signals (blocking): subject, name_cosine, specificity, name_overlap."""
        subj = subject(prompt)
        if subj is None:
            # no named entity: nothing to tell a neighbour by; the plain rule rests on relevance
            return {"subject": "", "name_cosine": None, "specificity": 0.0, "name_overlap": 0.0}
        masked = masked_prompt(prompt, subj)
        va, vp, vn, vm = self._encoder.encode([answer, prompt, subj.text, masked])
        cos, name_cos, masked_cos = float(va @ vp), float(va @ vn), float(va @ vm)
        return {
            "subject": subj.name,
            "name_cosine": round(name_cos, 4),
            "specificity": round(cos - masked_cos, 4),
            "name_overlap": round(name_overlap(subj, answer), 4),
        }

    def combine(self, relevance: float, feats: dict[str, Any]) -> float:
        """T in [0, 1] from the relevance score and the features (the plain rule when no subject is named)."""
        w = self.weights
        if not feats["subject"]:
            return sigmoid(w.plain_bias + w.plain_relevance * relevance)
        name_cos = feats["name_cosine"]
        z = (
            w.bias
            + w.relevance * relevance
            + w.name * float(name_cos)
            + w.specificity * float(feats["specificity"])
            + w.overlap * float(feats["name_overlap"])
        )
        return sigmoid(z)

    async def score(self, prompt: str, answer: str, relevance: float) -> tuple[float, dict[str, Any]]:
        feats = await asyncio.to_thread(self.features, prompt, answer)
        return self.combine(relevance, feats), {**feats, "relevance": round(relevance, 4)}


def masked_prompt(prompt: str, subj: Subject) -> str:
    """``prompt`` with the subject replaced by its parent (or by "it" when it has none)."""
    return prompt.replace(subj.name, subj.parent or "it")
