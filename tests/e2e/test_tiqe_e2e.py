"""TIQE on the real localnet: real worker and validator-scorer processes on the real embedded models.

4 validators, each running `polylink validator run` (the scoring pipeline on
SmolLM2 + MiniLM); honest workers, one degraded worker and one that serves a
substitute model. Covered: every result gets a final quality from a committee
that committed then revealed; sealed scores cannot be copied; a degraded
worker is jailed and slashed within 10 results while honest ones never are; a
worker serving a lower-bit requantization of the registered weights (answers
that read well) is jailed and slashed on fidelity within 10 results; a validator
that commits and never reveals is slashed and, after `max_misses`, jailed.
The Byzantine scorers run in tests/e2e/test_tiqe_byzantine_e2e.py, a fresh
chain each.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from polylink.inference.v1 import query_pb2 as inf_q
from polylink.inference.v1 import tx_pb2 as inf_tx
from polylink.inference.v1 import types_pb2 as inf_t
from polylink.registry.v1 import query_pb2 as reg_q
from polylink.registry.v1 import tx_pb2 as reg_tx
from polylink.staking.v1 import query_pb2 as staking_q
from polylink.tiqe.v1 import query_pb2 as tiqe_q
from polylink.tiqe.v1 import tx_pb2 as tiqe_tx
from polylink.tiqe.v1 import types_pb2 as tiqe_t

from chain.client.errors import TxRejectedError
from chain.client.sync import SyncClient
from chain.localnet.net import Localnet
from chain.localnet.ports import find_free_base_port
from chain.localnet.scorers import ScorerSpec, start_scorer, stop_scorer
from chain.localnet.workers import WorkerSpec, start_worker
from chain.modules.tiqe import errors as tiqe_err
from tests.e2e.chainutil import assert_same_app_hash_every_height, heights
from worker.models import EMBEDDED_MODEL, embedded_gguf_path, requantize

pytestmark = pytest.mark.e2e

MODEL = EMBEDDED_MODEL.model_id  # served by the honest workers user1, user2
DEGRADED = "smollm2-degraded"  # served only by user3, whose engine garbles its answers
SUBSTITUTED = "smollm2-substituted"  # served only by user4, whose engine runs a Q2_K requantization instead
ENGINE: dict[str, Any] = {"kind": "llamacpp", "n_threads": 1, "n_ctx": 1024}
MAX_TOKENS = 32
PROMPTS = [
    "Name the capital city of France.",
    "Explain why the sky is blue in one sentence.",
    "Give two tips for sleeping well.",
    "What is photosynthesis?",
    "Describe a cat in one sentence.",
    "Why do we need to drink water?",
    "What does a thermometer measure?",
    "Name three colors of the rainbow.",
    "What is the boiling point of water at sea level?",
    "Give one reason to learn a second language.",
    "What do bees make?",
    "Why is exercise healthy?",
]
LAZY = "val0"  # the validator that commits and never reveals


def wait_for(cond: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.3)


@pytest.fixture(scope="module")
def substitute_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Q2_K requantization of the registered Q4_1 weights, by llama.cpp's own quantizer (seconds)."""
    return requantize(embedded_gguf_path(), tmp_path_factory.mktemp("substitute") / "smollm2.Q2_K.gguf", "Q2_K")


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Localnet]:
    n = make_net(tmp_path_factory.mktemp("tiqe"))
    try:
        n.up()
        yield n
    finally:
        n.down()
        assert list(n.pids()) == []


@pytest.fixture(scope="module")
def c(net: Localnet) -> Iterator[SyncClient]:
    with SyncClient(net.rpc_url(0), keyring=net.keyring()) as client:
        yield client


def addr(net: Localnet, key: str) -> str:
    return net.keyring().show(key).address


def honest_scorers(net: Localnet) -> None:
    for i, key in enumerate(net.validator_keys):
        start_scorer(net, ScorerSpec(key=key, node=i))
    for key in net.validator_keys:
        wait_scorer_ready(net, key)


def wait_scorer_ready(net: Localnet, key: str) -> None:
    """Its models are loaded and it follows the chain: every start logged `validator.scoring`."""
    log = net.home / "services" / f"scorer-{key}.log"

    def ready() -> bool:
        text = log.read_text() if log.exists() else ""
        return text.count("==> ") <= text.count('"event": "validator.scoring"')

    wait_for(ready, f"scorer {key} to load its models", 240)


def make_net(tmp: Path, accounts: int = 5) -> Localnet:
    """A 4-validator localnet (created, not started) whose apps assert every invariant at every
    height (supply = initial + minted - burned, escrow = open escrows, bonded pool = bonded
    tokens, ...): a violation halts it. Every process here shares 2 cores: a 32-token answer can
    take 25 s, past the default 30-block inference deadlines, so the workers get room (a missed
    deadline is tests/e2e/test_inference_e2e.py's subject, not this file's)."""
    n = Localnet(tmp, nodes=4, base_port=find_free_base_port(4), accounts=accounts, invariant_period=1)
    n.create()
    n.set_genesis_params(
        "inference", result_timeout_blocks="400", commit_timeout_blocks="400", reveal_timeout_blocks="200"
    )
    return n


def prepare_chain(
    net: Localnet,
    c: SyncClient,
    *,
    degraded: bool = True,
    byzantine: dict[str, str] | None = None,
    substitute: Path | None = None,
) -> None:
    """Register MODEL, DEGRADED and SUBSTITUTED (royalty 5%, base price 1000, all the registered
    weights' digest); honest workers user1 and user2 on MODEL, (with `degraded`) user3 on DEGRADED,
    whose engine shuffles its answers, and (with `substitute`, a GGUF file) user4 on SUBSTITUTED,
    whose engine answers with that model; a scorer per validator, honest unless `byzantine` names
    its behaviour; wait for all of them."""
    provider = addr(net, "user0")
    m = EMBEDDED_MODEL
    msgs = [
        reg_tx.MsgRegisterModel(
            provider=provider,
            model_id=mid,
            family=m.family,
            version=m.version,
            sha256=m.sha256,
            license=m.license,
            context_length=m.context_length,
            royalty_ppm=50_000,
            base_price="1000",
        )
        for mid in (MODEL, DEGRADED, SUBSTITUTED)
    ]
    c.send_and_wait(msgs, "user0", gas=1_000_000, timeout=60).raise_for_code()
    workers = ["user1", "user2"]
    start_worker(net, WorkerSpec(key="user1", models=[MODEL], engine=ENGINE, poll_interval_s=1.0))
    start_worker(net, WorkerSpec(key="user2", models=[MODEL], engine=ENGINE, poll_interval_s=1.0, node=1))
    if degraded:
        workers.append("user3")
        start_worker(
            net,
            WorkerSpec(
                key="user3",
                models=[DEGRADED],
                engine={**ENGINE, "degrade": "shuffle"},
                poll_interval_s=1.0,
                node=2,
                top_up_bond=False,  # the test measures the slash: the worker must not top it back up
            ),
        )
    if substitute is not None:
        workers.append("user4")
        engine = {**ENGINE, "degrade": "substitute", "substitute_model_path": str(substitute)}
        start_worker(
            net,
            WorkerSpec(
                key="user4", models=[SUBSTITUTED], engine=engine, poll_interval_s=1.0, node=3, top_up_bond=False
            ),
        )
    for i, key in enumerate(net.validator_keys):
        start_scorer(net, ScorerSpec(key=key, node=i, behaviour=(byzantine or {}).get(key, "honest")))
    for key in net.validator_keys:
        wait_scorer_ready(net, key)
    for key in workers:
        wait_for(lambda k=key: worker(c, addr(net, k)) is not None, f"worker {key} to register")


@pytest.fixture(scope="module")
def setup(net: Localnet, c: SyncClient, substitute_gguf: Path) -> None:
    prepare_chain(net, c, substitute=substitute_gguf)


def worker(c: SyncClient, address: str) -> reg_q.QueryWorkerResponse | None:
    try:
        return c.query(
            "/polylink.registry.v1.Query/Worker", reg_q.QueryWorkerRequest(address=address), reg_q.QueryWorkerResponse
        )
    except Exception:
        return None


def request_state(c: SyncClient, rid: int) -> inf_q.QueryRequestResponse:
    return c.query(
        "/polylink.inference.v1.Query/Request", inf_q.QueryRequestRequest(id=rid), inf_q.QueryRequestResponse
    )


def round_of(c: SyncClient, result_id: int) -> tiqe_t.Round:
    return c.query(
        "/polylink.tiqe.v1.Query/Round", tiqe_q.QueryRoundRequest(result_id=result_id), tiqe_q.QueryRoundResponse
    ).round


def rating(c: SyncClient, validator: str) -> int:
    return c.query(
        "/polylink.tiqe.v1.Query/Rating", tiqe_q.QueryRatingRequest(validator=validator), tiqe_q.QueryRatingResponse
    ).rating.rating_ppm


def tiqe_params(c: SyncClient) -> tiqe_t.Params:
    return c.query("/polylink.tiqe.v1.Query/Params", tiqe_q.QueryParamsRequest(), tiqe_q.QueryParamsResponse).params


def send_request(c: SyncClient, net: Localnet, model: str, prompt: str) -> int:
    msg = inf_tx.MsgRequestInference(
        requester=addr(net, "user0"), model_id=model, prompt=prompt, max_tokens=MAX_TOKENS, max_price="1000"
    )
    r = c.send_and_wait([msg], "user0", gas=400_000, timeout=60)
    r.raise_for_code()
    return int(r.attributes("inference.requested")[0]["request_id"])


def wait_completed(c: SyncClient, rid: int, timeout: float = 240.0) -> inf_q.QueryRequestResponse:
    done = (inf_t.REQUEST_STATUS_COMPLETED, inf_t.REQUEST_STATUS_FAILED)
    wait_for(lambda: request_state(c, rid).request.status in done, f"request {rid} to close", timeout)
    st = request_state(c, rid)
    assert st.request.status == inf_t.REQUEST_STATUS_COMPLETED, st.request.failure
    return st


def request_closed(c: SyncClient, net: Localnet, model: str, prompt: str) -> inf_q.QueryRequestResponse | None:
    """Send a request for `model` and wait until it closes; None when it failed because the model's
    only worker is jailed ("no eligible worker"), any other failure fails the test."""
    done = (inf_t.REQUEST_STATUS_COMPLETED, inf_t.REQUEST_STATUS_FAILED)
    rid = send_request(c, net, model, prompt)
    wait_for(lambda: request_state(c, rid).request.status in done, f"request {rid} to close", 240)
    st = request_state(c, rid)
    if st.request.status == inf_t.REQUEST_STATUS_FAILED:
        assert st.request.failure == "no eligible worker"
        return None
    return st


def assert_untouched(c: SyncClient, net: Localnet, bonds: dict[str, int]) -> None:
    """Each worker key of `bonds` was never jailed and still has that bond."""
    for k, before in bonds.items():
        w = worker(c, addr(net, k))
        assert w is not None and w.worker.jailed_until_height == 0 and int(w.worker.bond) == before


def scored_rounds(c: SyncClient, net: Localnet, model: str, prompts: list[str]) -> list[tiqe_t.Round]:
    """Send the prompts one after the other; the final round of each answer."""
    rounds = []
    for p in prompts:
        st = wait_completed(c, send_request(c, net, model, p))
        rounds.append(round_of(c, st.request.answer_result_id))
    return rounds


def honest_median_range(rnd: tiqe_t.Round, attacker: str, *, fidelity: bool = False) -> tuple[int, int]:
    """The lower and upper weighted medians of the honest members' revealed qualities (fidelities
    with `fidelity`), by the weights the chain recorded: what the honest validators alone would give
    (any number between the two is a median when their weight splits evenly)."""
    ms = sorted(
        (m.fidelity_ppm if fidelity else m.quality_ppm, int(m.weight))
        for m in rnd.members
        if m.revealed and m.validator != attacker
    )
    if not ms:
        raise AssertionError(f"no honest reveal in round {rnd.result_id}")
    total = sum(w for _, w in ms)

    def first_past_half(items: list[tuple[int, int]]) -> int:
        acc = 0
        for s, w in items:
            acc += w
            if 2 * acc >= total:
                return s
        raise AssertionError("unreachable")

    return first_past_half(ms), first_past_half(ms[::-1])


def quorum_reached(rnd: tiqe_t.Round, quorum_ppm: int) -> bool:
    """The revealed members' recorded weight is >= quorum_ppm of the committee's."""
    total = sum(int(m.weight) for m in rnd.members)
    revealed = sum(int(m.weight) for m in rnd.members if m.revealed)
    return revealed * 1_000_000 >= quorum_ppm * total


def test_every_result_gets_a_final_quality_from_a_committee_that_committed_then_revealed(
    net: Localnet, c: SyncClient, setup: None
) -> None:
    k = tiqe_params(c).committee_size
    for rnd in scored_rounds(c, net, MODEL, PROMPTS[:2]):
        assert rnd.phase == tiqe_t.ROUND_PHASE_FINAL and rnd.scored
        assert len(rnd.members) == k and len({m.validator for m in rnd.members}) == k
        assert all(len(m.commitment) == 32 and m.revealed for m in rnd.members)
        res = c.query(
            "/polylink.inference.v1.Query/Result", inf_q.QueryResultRequest(id=rnd.result_id), inf_q.QueryResultResponse
        ).result
        assert res.quality_ppm == rnd.quality_ppm and res.quality_ppm in {m.quality_ppm for m in rnd.members}
        assert res.fidelity_ppm == rnd.fidelity_ppm and res.fidelity_ppm in {m.fidelity_ppm for m in rnd.members}
        assert rnd.worker not in {m.validator for m in rnd.members}


def test_sealed_scores_cannot_be_copied(net: Localnet, c: SyncClient, setup: None) -> None:
    """With every scorer stopped, the test plays the committee by hand: while commitments are
    open the round shows only hashes, and a reveal is refused, so nobody can copy a score."""
    for key in net.validator_keys:
        stop_scorer(net, key)
    try:
        rid = send_request(c, net, MODEL, "Name a large animal.")
        wait_for(lambda: request_state(c, rid).request.status == inf_t.REQUEST_STATUS_SCORING, "scoring")
        result_id = request_state(c, rid).results[0].id
        rnd = round_of(c, result_id)
        names = {addr(net, k): k for k in net.validator_keys}
        first, second, *_ = [m.validator for m in rnd.members]
        salt = os.urandom(32)
        score, fidelity = 777_000, 888_000
        commitment = hashlib.sha256(
            score.to_bytes(8, "big") + fidelity.to_bytes(8, "big") + salt + first.encode()
        ).digest()
        c.send_and_wait(
            [tiqe_tx.MsgCommitScore(validator=first, result_id=result_id, commitment=commitment)],
            names[first],
            gas=300_000,
            timeout=60,
        ).raise_for_code()
        seen = round_of(c, result_id)
        assert seen.phase == tiqe_t.ROUND_PHASE_COMMIT
        # only the hash is public
        assert all(not m.revealed and m.quality_ppm == m.fidelity_ppm == 0 for m in seen.members)
        for who, err in ((second, tiqe_err.ErrNotCommitted), (first, tiqe_err.ErrRevealNotOpen)):
            with pytest.raises(TxRejectedError) as e:
                c.send(
                    [
                        tiqe_tx.MsgRevealScore(
                            validator=who, result_id=result_id, quality_ppm=score, fidelity_ppm=fidelity, salt=salt
                        )
                    ],
                    names[who],
                    gas=300_000,
                )
            assert (e.value.codespace, e.value.code) == (err.codespace, err.code)
    finally:
        honest_scorers(net)


def test_degraded_worker_is_jailed_and_slashed_while_honest_workers_never_are(
    net: Localnet, c: SyncClient, setup: None
) -> None:
    p = tiqe_params(c)
    deg = addr(net, "user3")
    bond = int(worker(c, deg).worker.bond)  # type: ignore[union-attr]
    honest = {k: int(worker(c, addr(net, k)).worker.bond) for k in ("user1", "user2")}  # type: ignore[union-attr]
    qualities: list[int] = []
    for i in range(10):
        st = request_closed(c, net, DEGRADED, PROMPTS[i % len(PROMPTS)])
        if st is None:  # its only worker is jailed
            break
        qualities.append(st.results[0].quality_ppm)
        # a garbled answer is rejected (the user is refunded) unless its round missed the quorum
        assert not st.results[0].passed or not st.results[0].scored
        scored_rounds(c, net, MODEL, [PROMPTS[(i + 5) % len(PROMPTS)]])  # honest traffic in the same run
        w = worker(c, deg)
        if w is not None and w.worker.jailed_until_height > 0:
            break
    w = worker(c, deg)
    assert w is not None and w.worker.jailed_until_height > 0, f"not jailed after 10 results: {qualities}"
    stats = {st.model_id: st for st in w.stats}[DEGRADED]
    assert p.min_results <= stats.results <= 10  # its results in this run (the Byzantine tests sent two)
    # one slash: degradation's, or substitution's when the garbled answers' fidelity fell below
    # min_fidelity_ppm too (they are unlikely under the registered model): the larger fraction, once
    fraction = p.slash_fraction_degradation_ppm
    if stats.fidelity_ema_ppm < p.min_fidelity_ppm:
        fraction = max(fraction, p.slash_fraction_substitution_ppm)
    assert int(w.worker.bond) == bond - bond * fraction // 1_000_000, (stats.quality_ema_ppm, stats.fidelity_ema_ppm)
    assert_untouched(c, net, honest)


def test_substitute_model_worker_is_jailed_on_fidelity_while_honest_workers_never_are(
    net: Localnet, c: SyncClient, setup: None
) -> None:
    """user4 passes the registered weights' digest but answers with a Q2_K requantization: answers
    that read well (some pass on quality), unlikely under the registered model. Its fidelity EMA
    falls below min_fidelity_ppm within 10 results: jailed, and slashed by the substitution
    fraction (or degradation's, if its quality EMA fell too and that fraction is larger)."""
    p = tiqe_params(c)
    sub = addr(net, "user4")
    bond = int(worker(c, sub).worker.bond)  # type: ignore[union-attr]
    honest = {k: int(worker(c, addr(net, k)).worker.bond) for k in ("user1", "user2")}  # type: ignore[union-attr]
    results: list[tuple[int, int, bool]] = []  # (quality, fidelity, passed) of each scored answer
    honest_fidelity: list[int] = []
    for i in range(10):
        st = request_closed(c, net, SUBSTITUTED, PROMPTS[i % len(PROMPTS)])
        if st is None:  # its only worker was jailed meanwhile
            break
        r = st.results[0]
        if r.scored:
            results.append((r.quality_ppm, r.fidelity_ppm, r.passed))
        rounds = scored_rounds(c, net, MODEL, [PROMPTS[(i + 3) % len(PROMPTS)]])  # honest traffic in the same run
        honest_fidelity += [rnd.fidelity_ppm for rnd in rounds if rnd.scored]
        w = worker(c, sub)
        if w is not None and w.worker.jailed_until_height > 0:
            break
    w = worker(c, sub)
    assert w is not None and w.worker.jailed_until_height > 0, f"not jailed after 10 results: {results}"
    stats = {st.model_id: st for st in w.stats}[SUBSTITUTED]
    assert p.min_results <= stats.results <= 10
    assert stats.fidelity_ema_ppm < p.min_fidelity_ppm, (stats.quality_ema_ppm, stats.fidelity_ema_ppm)
    assert any(passed for _, _, passed in results), f"no substitute answer passed on quality: {results}"
    fraction = p.slash_fraction_substitution_ppm
    if stats.quality_ema_ppm < p.min_quality_ppm:
        fraction = max(fraction, p.slash_fraction_degradation_ppm)
    assert int(w.worker.bond) == bond - bond * fraction // 1_000_000
    # the registered model's own answers keep a high fidelity, round after round
    assert honest_fidelity and min(honest_fidelity) >= p.min_fidelity_ppm, honest_fidelity
    assert_untouched(c, net, honest)
    for k in honest:
        hw = worker(c, addr(net, k))
        assert hw is not None
        hs = {st.model_id: st for st in hw.stats}[MODEL]
        assert hs.fidelity_ema_ppm >= p.min_fidelity_ppm and hs.quality_ema_ppm >= p.min_quality_ppm


def test_validator_that_commits_and_never_reveals_is_slashed_then_jailed(
    net: Localnet, c: SyncClient, setup: None
) -> None:
    p = tiqe_params(c)
    lazy = addr(net, LAZY)
    stop_scorer(net, LAZY)
    start_scorer(net, ScorerSpec(key=LAZY, node=0, behaviour="no_reveal"))
    wait_scorer_ready(net, LAZY)

    def validator() -> Any:
        return c.query(
            "/polylink.staking.v1.Query/Validator",
            staking_q.QueryValidatorRequest(validator_address=lazy),
            staking_q.QueryValidatorResponse,
        ).validator

    tokens_before = int(validator().tokens)
    for i in range(12):
        scored_rounds(c, net, MODEL, [PROMPTS[i % len(PROMPTS)]])
        if validator().jailed:
            break
    v = validator()
    assert v.jailed, "never jailed"
    r = c.query(
        "/polylink.tiqe.v1.Query/Rating", tiqe_q.QueryRatingRequest(validator=lazy), tiqe_q.QueryRatingResponse
    ).rating
    assert r.misses >= p.max_misses
    assert int(v.tokens) < tokens_before  # slashed slash_fraction_no_reveal_ppm per miss
    stop_scorer(net, LAZY)


def test_every_node_agrees_on_every_app_hash(net: Localnet, setup: None) -> None:
    assert_same_app_hash_every_height(net, min(heights(net)) - 1)
