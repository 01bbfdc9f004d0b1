"""Cheap text-only quality signals: repetition loops, non-words, odd characters, an answer cut mid-word,
an answer that only repeats the prompt's words.

They need no model and run in well under a millisecond. Each signal maps to
a factor in [0, 1] (1 = nothing wrong); the stage's score is their product,
so one clear problem is enough to sink an answer. Word order is not checked
here (a shuffled answer keeps its words): the order stage sees it.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections import Counter
from dataclasses import dataclass
from typing import Any

from validator.scoring.verdict import ramp

_WORD = re.compile(r"[A-Za-z]+(?:'[a-z]+)?")
_TOKENS = re.compile(r"\S+")
_ACRONYM = re.compile(r"[A-Z]{2,5}s?")
_CONTENT = re.compile(r"[A-Za-z0-9]+")
_CODE_SPAN = re.compile(r"`[^`]*`")
_RESTATED = re.compile(
    r"\s*(?:is|are|was|were|am|do|does|did|can|could|will|would|should|shall|has|have|had|may|might|must"
    r"|say|repeat|echo|copy|print|type|write|spell|greet)\b",
    re.IGNORECASE,
)
# words that carry no content of their own ("yes", "no" and numbers do)
_FUNCTION_WORD_LIST = (
    "a an the this that these those it its is are was were be been being am do does did done have has "
    "had of to in on at by for with from as into onto about than then so and or but nor if not one some "
    "any there here what which who whom whose when where why how can could will would shall should may "
    "might must i you he she we they me him her us them my your his our their "
)
_FUNCTION_WORDS = frozenset(_FUNCTION_WORD_LIST.split())
# CamelCase humps: a capitalised word, an acronym before one (HTTPServer -> HTTP, Server), digits
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
_SUFFIXES = (
    "'s",
    "s",
    "es",
    "ies",
    "ied",
    "ed",
    "d",
    "ing",
    "ly",
    "er",
    "ers",
    "est",
    "ation",
    "ations",
    "ment",
    "ments",
    "able",
    "ness",
    "ize",
    "izes",
    "ized",
    "ization",
)
_PREFIXES = ("un", "re", "de", "dis", "non", "pre", "sub", "multi", "co", "in", "over", "under", "auto")
# what an answer that ended by itself ends with (prose, lists, code, quotes, numbers)
_CLEAN_END = re.compile(r"""[.!?:;)\]}"'`*>%°0-9]\s*$|[\u2019\u201d\u2026]\s*$""")
# ASCII punctuation, dashes, typographic quotes, ellipsis, bullets, currency and degree signs
_ALLOWED_PUNCT = set(".,;:!?'\"()[]{}-/\\%&*+=<>#@$^_|~`\n\t ") | set(
    "\u2013\u2014\u2018\u2019\u201c\u201d\u2026\u2022\u00b7\u20ac\u00a3\u00b0"
)


@dataclass(frozen=True)
class GarbleThresholds:
    """Where each signal starts to cost (``*_ok``) and where it zeroes the factor (``*_bad``)."""

    repeat_ok: float = 0.25
    repeat_bad: float = 0.6
    nonword_ok: float = 0.2
    nonword_bad: float = 0.5
    oddchar_ok: float = 0.02
    oddchar_bad: float = 0.15
    # factor for an answer that stops inside a word: its last word is not a word but begins a listed one
    cut_word_factor: float = 0.3
    # factor for an answer that stops without any closing punctuation (cut at a word boundary); 1 = no cost:
    # terse correct answers ("list directory contents") are written that way, and a cut at a word
    # boundary is not told from them by its last character
    no_end_factor: float = 1.0
    # factor for an answer that adds no content word to the prompt's own words ("One fruit is not a
    # fruit." to "Name a fruit."): it repeats the question back and answers nothing
    echo_factor: float = 0.3
    min_words: int = 3


def repeated_ngram_share(words: list[str], n: int = 3) -> float:
    """Share of word n-grams that already occurred earlier in the text (0 for fresh text, near 1 for a loop)."""
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    if not grams:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


def compression_ratio(text: str) -> float:
    raw = text.encode("utf-8")
    return len(zlib.compress(raw, 9)) / max(1, len(raw))


def odd_char_share(text: str) -> float:
    """Share of characters outside letters, digits, white space and common punctuation.

    Zero-width and other format characters, private-use code points, tag
    characters and stray symbols are what random-token padding looks like.
    """
    if not text:
        return 0.0
    odd = 0
    for ch in text:
        if ch in _ALLOWED_PUNCT or ch.isspace():
            continue
        cat = unicodedata.category(ch)
        if cat[0] in "LN" and ch.isascii():
            continue
        if cat[0] == "L" and cat != "Lo":  # accented Latin, Greek, Cyrillic letters
            continue
        odd += 1
    return odd / len(text)


def _content_stem(w: str) -> str:
    """Lower case, a plural's s dropped (fruits -> fruit), so an echo is found across inflection."""
    w = w.lower()
    return w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w


def adds_nothing(text: str, prompt: str) -> bool:
    """True when every content word of the answer is already a word of the prompt's own text: it
    repeats the question back and answers nothing ("One fruit is not a fruit." to "Name a fruit.",
    "The capital of France is France."). Function words carry no content; "yes", "no" and numbers do.
    Names inside the prompt's `code spans` are not taken as given: "communicate with debconf" does
    answer what `debconf-communicate` does. Nor do prompts whose answer may restate them: a yes/no
    question ("Is 7 prime?" -> "7 is prime.") or a request to say something ("Say hi." -> "Hi!")."""
    if _RESTATED.match(prompt):
        return False
    asked = {_content_stem(w) for w in _CONTENT.findall(_CODE_SPAN.sub(" ", prompt))}
    if not asked:
        return False
    said = [w for w in _CONTENT.findall(text) if w.lower() not in _FUNCTION_WORDS]
    return all(_content_stem(w) in asked for w in said)


def _looks_named(word: str, text: str) -> bool:
    """A last word that is a name, not a cut: capitalised, all caps, or used earlier in the answer."""
    return word[:1].isupper() or word.lower() in text.lower()[: -len(word)]


class GarbleCheck:
    """Repetition, non-word share, odd characters and mid-word cuts, against an English word list."""

    def __init__(self, vocabulary: frozenset[str], thresholds: GarbleThresholds | None = None) -> None:
        self._vocab = vocabulary
        # every proper prefix of a listed word: an answer cut inside a word ends with one
        self._stubs = frozenset(w[:i] for w in vocabulary for i in range(1, len(w)))
        self.t = thresholds or GarbleThresholds()

    def _listed(self, w: str) -> bool:
        """``w`` (lower case) is listed, or an inflection or a common prefix of a listed word."""
        v = self._vocab
        if w in v:
            return True
        for suffix in _SUFFIXES:
            if w.endswith(suffix) and len(w) > len(suffix) + 1:
                stem = w[: -len(suffix)]
                # plain (widgets), e restored (parsing -> parse), doubled consonant (formatted), y (copies)
                if stem in v or stem + "e" in v or (len(stem) > 2 and stem[-1] == stem[-2] and stem[:-1] in v):
                    return True
                if suffix in ("ies", "ied") and stem + "y" in v:
                    return True
        if len(w) > 3 and any(w + suffix in v for suffix in ("s", "d", "r", "ed", "er", "ing", "ion")):
            return True  # a base form whose inflection is listed (compile -> compiled)
        return any(w.startswith(pre) and len(w) - len(pre) > 2 and self._listed(w[len(pre) :]) for pre in _PREFIXES)

    def _is_word(self, w: str, given: frozenset[str] = frozenset()) -> bool:
        """A listed word, an inflection of one, a name the prompt gave, an acronym (2 to 5 capitals)
        or a CamelCase name made of words (ReadFile, RuleBasedStateMachine)."""
        low = w.lower()
        if low in given or self._listed(low):
            return True
        if _ACRONYM.fullmatch(w):
            return True
        parts = _CAMEL.findall(w)
        return (
            w[:1].isupper()
            and len(parts) > 1
            and "".join(parts) == w
            and all(self._listed(p.lower()) or _ACRONYM.fullmatch(p) for p in parts)
        )

    def check(self, text: str, *, capped: bool = False, prompt: str = "") -> tuple[float, dict[str, Any]]:
        """The stage score in [0, 1] and the raw signals.

        ``capped``: the answer stopped because it reached the request's
        ``max_tokens``, so ending mid-sentence or mid-word is expected and
        costs nothing. ``prompt``: the names it uses (``wmemcmp``, ``FullPath``)
        are words in the answer.
        """
        t = self.t
        stripped = text.strip()
        raw = _WORD.findall(stripped)
        words = [w.lower() for w in raw]
        given = frozenset(w.lower() for w in _WORD.findall(prompt))
        tokens = _TOKENS.findall(stripped)
        if len(tokens) < t.min_words and not re.search(r"[0-9A-Za-z]", stripped):
            return 0.0, {"reason": "empty"}
        repeat = max(repeated_ngram_share(words, 3), repeated_ngram_share(tokens, 4)) if len(words) >= 8 else 0.0
        ratio = compression_ratio(stripped)
        # in a terse answer (<= 8 words) one unknown word (a name, a term of art) is never garble
        unknown = sum(not self._is_word(w, given) for w in raw)
        free = 1 if len(raw) <= 8 else 0
        nonword = max(0, unknown - free) / len(raw) if raw else 1.0
        # letters-free tokens (numbers, symbols) count against the word share only when they dominate
        letter_share = len(words) / max(1, len(tokens))
        odd = odd_char_share(stripped)
        last = re.search(r"(\S+)\s*$", stripped)
        tail = last.group(1) if last else ""
        cut_word = (
            bool(re.fullmatch(r"[A-Za-z]+", tail))
            and not _CLEAN_END.search(stripped)
            and tail.lower() in self._stubs
            and not self._is_word(tail, given)
            and not _looks_named(tail, stripped)
        )
        no_end = not _CLEAN_END.search(stripped)
        f_repeat = 1.0 - ramp(repeat, t.repeat_ok, t.repeat_bad)
        f_nonword = 1.0 - ramp(nonword, t.nonword_ok, t.nonword_bad)
        f_letters = ramp(letter_share, 0.3, 0.6)
        f_odd = 1.0 - ramp(odd, t.oddchar_ok, t.oddchar_bad)
        f_end = 1.0 if capped else t.cut_word_factor if cut_word else (t.no_end_factor if no_end else 1.0)
        echo = adds_nothing(stripped, prompt)
        f_echo = t.echo_factor if echo else 1.0
        score = f_repeat * f_nonword * f_letters * f_odd * f_end * f_echo
        detail = {
            "repeat": round(repeat, 4),
            "compression": round(ratio, 4),
            "nonword": round(nonword, 4),
            "letter_share": round(letter_share, 4),
            "odd_chars": round(odd, 4),
            "cut_word": cut_word,
            "no_end": no_end,
            "echo": echo,
            "capped": capped,
            "top_word": Counter(words).most_common(1)[0][0] if words else "",
        }
        return score, detail
