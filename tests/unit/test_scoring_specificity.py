"""The subject of a prompt, the name-overlap signal, the topic rules and the seeded word shuffle (no models)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from validator.scoring.cascade import shuffle_words
from validator.scoring.specificity import (
    SpecificityStage,
    Subject,
    TopicWeights,
    masked_prompt,
    name_overlap,
    sigmoid,
    split_identifier,
    subject,
)


@pytest.mark.parametrize(
    ("prompt", "name", "parent", "words"),
    [
        ("What does `os.path.basename` do?", "os.path.basename", "os.path", ("basename",)),
        ("What is `GenerativeSelect.set_label_style` for?", "GenerativeSelect.set_label_style", "GenerativeSelect",
         ("set", "label", "style")),
        ("What does str.startswith() return?", "str.startswith()", "str", ("startswith",)),
        ("Explain getLogger briefly.", "getLogger", "", ("get", "logger")),
        ("What does the ls command do?", "ls", "", ("ls",)),
        ("What is the Debian package 'xz-utils'?", "xz-utils", "", ("xz", "utils")),
        ("What does the C function `strchr` do?", "strchr", "", ("strchr",)),
        ("In Go's `log` package, what does `log.Panic` do?", "log.Panic", "log", ("panic",)),
        ("In Go's `runtime/debug` package, what does `debug.SetTraceback` do?", "debug.SetTraceback", "debug",
         ("set", "traceback")),
        ("In Rust, what does `Vec::push` of `Vec` do?", "Vec::push", "", ("push",)),
        ("What does `a` do, and `b`?", "a", "", ("a",)),
    ],
)  # fmt: skip
def test_subject_finds_the_named_entity(prompt: str, name: str, parent: str, words: tuple[str, ...]) -> None:
    subj = subject(prompt)
    assert subj is not None
    assert (subj.name, subj.parent, subj.words) == (name, parent, words)


@pytest.mark.parametrize("prompt", ["Why is the sky blue?", "Name three colors of the rainbow.", "What do bees make?"])
def test_a_plain_question_names_no_subject(prompt: str) -> None:
    assert subject(prompt) is None
    assert SpecificityStage.prompt_texts(prompt) == [prompt]


def test_split_identifier_takes_the_last_component() -> None:
    assert split_identifier("sqlalchemy.orm.Session.add_all") == ["add", "all"]
    assert split_identifier("HTTPServer") == ["http", "server"]
    assert split_identifier("to_info_dict()") == ["to", "info", "dict"]


def test_name_overlap_counts_shared_prefixes_of_the_subjects_words() -> None:
    subj = Subject("json.dumps_pretty", "json", ("dumps", "pretty"))
    assert name_overlap(subj, "Dumps an object, prettily indented") == 1.0
    assert name_overlap(subj, "Loads an object") == 0.0
    assert name_overlap(Subject("ls", "", ("ls",)), "list directory contents") == 0.0  # too short to match


def test_masked_prompt_hides_the_name_behind_its_parent() -> None:
    subj = subject("What does `os.path.basename` do?")
    assert subj is not None
    assert masked_prompt("What does `os.path.basename` do?", subj) == "What does `os.path` do?"
    plain = subject("What does the ls command do?")
    assert plain is not None and masked_prompt("What does the ls command do?", plain) == "What does the it command do?"


W = TopicWeights(
    bias=-4.0, relevance=4.0, name=3.0, specificity=6.0, overlap=3.0, plain_bias=-3.0, plain_relevance=12.0
)


def test_the_subject_rule_prefers_the_answer_about_the_named_entity() -> None:
    stage = SpecificityStage(encoder=None, weights=W)  # type: ignore[arg-type]  # combine() needs no encoder
    own = {"subject": "x.f", "name_cosine": 0.5, "specificity": 0.15, "name_overlap": 1.0}
    neighbour = {"subject": "x.f", "name_cosine": 0.1, "specificity": -0.05, "name_overlap": 0.0}
    assert stage.combine(0.4, own) > 0.5 > stage.combine(0.4, neighbour)
    assert stage.combine(0.4, own) == pytest.approx(sigmoid(-4 + 4 * 0.4 + 3 * 0.5 + 6 * 0.15 + 3))


def test_the_plain_rule_rests_on_relevance_alone() -> None:
    stage = SpecificityStage(encoder=None, weights=W)  # type: ignore[arg-type]
    feats = {"subject": "", "name_cosine": None, "specificity": 0.0, "name_overlap": 0.0}
    assert stage.combine(0.5, feats) == pytest.approx(sigmoid(-3 + 6))
    assert stage.combine(0.1, feats) < 0.2 < 0.9 < stage.combine(0.6, feats)


@given(
    st.lists(st.sampled_from(["a", "b", "c", "dog", "runs", "fast", "the"]), min_size=2, max_size=12),
    st.integers(1, 3),
)
def test_shuffle_words_is_seeded_keeps_the_bag_and_changes_the_order(words: list[str], n: int) -> None:
    text = " ".join(words)
    out = shuffle_words(text, n)
    if len(set(words)) < 2:
        assert out == []
        return
    assert 1 <= len(out) <= n and len(set(out)) == len(out)
    assert out == shuffle_words(text, n)  # every validator shuffles the same way
    assert out[:1] == shuffle_words(text)  # more shuffles extend the list, the first stays
    for o in out:
        assert sorted(o.split()) == sorted(words)
        assert o.split() != words
