"""tiqe genesis and params: export -> import is exact (indexes rebuilt, open rounds finish the
same way), validation names each inconsistency, params are validated and new bounds clamp the
stored ratings."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
from google.protobuf.message import Message
from polylink.inference.v1 import genesis_pb2 as inference_genesis_pb2
from polylink.tiqe.v1 import genesis_pb2

from chain.core.context import Context, ExecMode
from chain.core.errors import ChainError
from chain.core.store import MemStore
from chain.modules.inference import genesis as inf_genesis
from chain.modules.inference.errors import ErrInvalidGenesis as ErrInferenceGenesis
from chain.modules.tiqe import genesis
from chain.modules.tiqe.errors import ErrInvalidGenesis
from chain.modules.tiqe.keeper import COMMIT, FINAL, REVEAL
from chain.modules.tiqe.params import default_params, validate_params
from genesis import builder
from tests.unit.tiqe_env import Env, addr


def busy_env() -> tuple[Env, list[int]]:
    """A chain with a FINAL round (ratings written), one in REVEAL and one in COMMIT."""
    e = Env(validators={f"val{i}": 10 for i in range(4)}, workers=("val0",))
    results = []
    for _ in range(3):
        rid = e.answer()
        results += e.result_ids(rid)
    done, reveal, commit = results
    e.score(done, {v: (600_000 + 1000 * i, 900_000 - 2000 * i) for i, v in enumerate(e.committee(done))})
    for v in e.committee(reveal):
        e.commit(v, reveal, 700_000)
    e.reveal(e.committee(reveal)[0], reveal, 700_000)
    e.commit(e.committee(commit)[0], commit, 100_000)
    e.end_block()
    assert [e.round(x).phase for x in results] == [FINAL, REVEAL, COMMIT]
    return e, results


def export(e: Env) -> dict[str, Message]:
    q = e.q()
    return {mod.name: mod.export_genesis(q) for mod in e.m.all}


def import_(state: dict[str, Message], height: int) -> Env:
    e = Env(store=MemStore(), height=height)
    ctx = Context(e.store, e.ctx().header, ExecMode.GENESIS)
    for mod in e.m.all:
        mod.validate_genesis(state[mod.name])
        mod.init_genesis(ctx, state[mod.name])
    return e


def test_export_import_is_exact_and_open_rounds_finish_alike() -> None:
    e, (_, reveal, commit) = busy_env()
    gs = export(e)
    tiqe_gs = gs["tiqe"]
    assert isinstance(tiqe_gs, genesis_pb2.GenesisState)
    assert [r.result_id for r in tiqe_gs.rounds] == sorted(r.result_id for r in tiqe_gs.rounds)
    assert len(tiqe_gs.ratings) == 3
    twin = import_(gs, e.height)
    assert twin.store.items() == e.store.items()  # every byte, indexes included
    assert export(twin) == gs
    for env in (e, twin):
        for v in env.committee(reveal)[1:]:
            env.reveal(v, reveal, 700_000)
        env.commit(env.committee(commit)[1], commit, 100_000)
        env.advance(25)  # commit window, then the reveal window of the last round
        assert env.round(commit).phase == FINAL and env.invariants() == []
    assert twin.store.items() == e.store.items()


Mutation = Callable[[genesis_pb2.GenesisState], object]


# rounds[0] is FINAL, rounds[1] in REVEAL, rounds[2] in COMMIT (see busy_env)
@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda gs: gs.params.__setattr__("committee_size", 0), "committee_size"),
        (lambda gs: gs.params.__setattr__("min_rating_ppm", 0), "min_rating_ppm"),
        (lambda gs: gs.params.__setattr__("initial_rating_ppm", 1), "initial_rating_ppm"),
        (lambda gs: gs.params.__setattr__("pass_ppm", 1_000_001), "pass_ppm"),
        (lambda gs: gs.params.__setattr__("min_fidelity_ppm", 1_000_001), "min_fidelity_ppm"),
        (lambda gs: gs.params.__setattr__("slash_fraction_substitution_ppm", 1_000_001), "substitution"),
        (lambda gs: gs.params.__setattr__("fidelity_alpha_ppm", 1_000_001), "fidelity_alpha_ppm"),
        (lambda gs: gs.rounds.reverse(), "ascend"),
        (lambda gs: gs.rounds.append(copy.deepcopy(gs.rounds[-1])), "ascend"),
        (lambda gs: gs.rounds[0].__setattr__("result_id", 0), "ascend"),
        (lambda gs: gs.rounds[0].__setattr__("worker", "nope"), "invalid address"),
        (lambda gs: gs.rounds[0].members[1].__setattr__("validator", gs.rounds[0].members[0].validator), "twice"),
        (lambda gs: gs.rounds[0].members[0].__setattr__("validator", gs.rounds[0].worker), "own committee"),
        (lambda gs: gs.rounds[0].members[0].__setattr__("deviation_ppm", 12345), "deviation"),
        (lambda gs: gs.rounds[0].members[0].__setattr__("fidelity_deviation_ppm", 12345), "fidelity_deviation"),
        (lambda gs: gs.rounds[0].members[0].__setattr__("fidelity_ppm", 1_000_001), "fidelity_ppm >"),
        (lambda gs: gs.rounds[0].members[0].__setattr__("quality_ppm", 1_000_001), "quality_ppm >"),
        (lambda gs: gs.rounds[0].__setattr__("fidelity_ppm", 1_000_001), "fidelity_ppm >"),
        (lambda gs: gs.rounds[0].__setattr__("scored", False), "scored"),
        (lambda gs: gs.rounds[0].__setattr__("finalized_height", 0), "finalized_height"),
        (lambda gs: gs.rounds[1].members[0].__setattr__("commitment", b"x"), "32 bytes"),
        (lambda gs: gs.rounds[1].__setattr__("quality_ppm", 5), "verdict"),
        (lambda gs: gs.rounds[1].__setattr__("fidelity_ppm", 5), "verdict"),
        (lambda gs: gs.rounds[2].members[1].__setattr__("fidelity_ppm", 5), "without a reveal"),
        (lambda gs: gs.rounds[1].__setattr__("reveal_deadline_height", 1), "reveal window"),
        (lambda gs: gs.rounds[2].members[1].__setattr__("revealed", True), "without a commitment"),
        (lambda gs: gs.rounds[2].__setattr__("reveal_deadline_height", 99), "COMMIT"),
        (lambda gs: gs.rounds[2].members[0].__setattr__("slashed", "7"), "before aggregation"),
        (lambda gs: gs.rounds[2].ClearField("members"), "committee"),
        (lambda gs: gs.ratings[0].__setattr__("rating_ppm", 10), "rating_ppm"),
        (lambda gs: gs.ratings[0].__setattr__("rating_ppm", 1_000_001), "rating_ppm"),
        (lambda gs: gs.ratings[0].deviations.extend([1] * 60), "rating_window"),
        (lambda gs: gs.ratings[0].deviations.append(2_000_000), "deviation"),
        (lambda gs: gs.ratings.reverse(), "ascend"),
        (lambda gs: gs.ratings[0].__setattr__("validator", "x"), "invalid address"),
    ],
)
def test_validation_names_what_is_wrong(mutate: Mutation, match: str) -> None:
    e, _ = busy_env()
    gs = export(e)["tiqe"]
    assert isinstance(gs, genesis_pb2.GenesisState)
    genesis.validate_genesis(gs)
    mutate(gs)
    with pytest.raises(ChainError, match=match) as ei:
        genesis.validate_genesis(gs)
    assert ei.value.kind is ErrInvalidGenesis


def test_default_genesis_and_params() -> None:
    gs = genesis.default_genesis()
    genesis.validate_genesis(gs)
    p = default_params()
    assert (p.committee_size, p.score_commit_blocks, p.score_reveal_blocks, p.rating_window) == (3, 10, 10, 50)
    assert (p.initial_rating_ppm, p.min_rating_ppm, p.max_misses, p.pass_ppm) == (500_000, 50_000, 3, 500_000)
    assert (p.no_reveal_jail_blocks, p.worker_jail_blocks, p.min_results) == (100, 100, 5)
    assert (p.min_quality_ppm, p.slash_fraction_degradation_ppm, p.quality_alpha_ppm) == (400_000, 50_000, 200_000)
    assert (p.min_fidelity_ppm, p.slash_fraction_substitution_ppm, p.fidelity_alpha_ppm) == (400_000, 100_000, 200_000)
    local = builder.default_app_state(builder.load_template("localnet")["app_state"])["tiqe"]["params"]
    assert (local["no_reveal_jail_blocks"], local["worker_jail_blocks"]) == ("10", "20")
    assert (local["min_fidelity_ppm"], local["slash_fraction_substitution_ppm"]) == ("400000", "100000")
    assert local["committee_size"] == "3"
    p.rating_window = 1
    with pytest.raises(ChainError, match="rating_window"):
        validate_params(p)


def test_a_round_without_quorum_exports_and_imports() -> None:
    """Revealed but short of the quorum: final, unscored, the reveals kept without deviations."""
    e = Env(validators={f"val{i}": 10 for i in range(4)}, workers=("val0",))
    rid = e.answer()
    (res,) = e.result_ids(rid)
    com = e.committee(res)
    for v in com:
        e.commit(v, res, 700_000, fidelity=800_000)
    e.reveal(com[0], res, 700_000, fidelity=800_000)  # 1 of 3 equal weights: no quorum
    e.advance(e.round(res).reveal_deadline_height - e.height + 1)
    rd = e.round(res)
    assert (rd.phase, rd.scored, rd.passed, rd.quality_ppm, rd.fidelity_ppm) == (FINAL, False, True, 0, 0)
    assert (rd.members[0].quality_ppm, rd.members[0].fidelity_ppm) == (700_000, 800_000)
    gs = export(e)
    genesis.validate_genesis(gs["tiqe"])  # type: ignore[arg-type]
    twin = import_(gs, e.height)
    assert twin.store.items() == e.store.items() and export(twin) == gs


def test_new_params_clamp_the_stored_ratings() -> None:
    e, _ = busy_env()
    ratings = e.m.tiqe.iterate_ratings(e.q())
    assert ratings and all(len(r.deviations) == 1 for r in ratings)
    p = e.m.tiqe.get_params(e.q())
    p.min_rating_ppm = 900_000
    p.initial_rating_ppm = 900_000
    p.rating_window = 2
    e.run(lambda ctx: e.m.params["tiqe"].set(ctx, p))
    assert all(r.rating_ppm == 900_000 for r in e.m.tiqe.iterate_ratings(e.q()))
    assert e.rating(addr("val1")).rating_ppm == 900_000
    assert e.invariants() == []
    bad = copy.deepcopy(p)
    bad.min_rating_ppm = 0
    with pytest.raises(ChainError):
        e.run(lambda ctx: e.m.params["tiqe"].set(ctx, bad))



def test_inference_genesis_knows_scoring_requests_and_verdicts() -> None:
    e, (_, reveal, _) = busy_env()
    gs = export(e)["inference"]
    assert isinstance(gs, inference_genesis_pb2.GenesisState)
    inf_genesis.validate_genesis(gs)
    assert [r.status for r in gs.requests] == [4, 6, 6]  # COMPLETED, SCORING, SCORING
    assert [(x.scored, x.passed) for x in gs.results] == [(True, True), (False, False), (False, False)]

    def no_verdict(g: inference_genesis_pb2.GenesisState) -> None:
        g.results[0].scored, g.results[0].passed, g.results[0].quality_ppm = False, False, 0
        g.results[0].fidelity_ppm = 0

    def early_verdict(g: inference_genesis_pb2.GenesisState) -> None:
        g.results[1].passed = True
        g.requests[1].status = 3  # REVEAL: its results are not all in yet
        g.requests[1].deadline_height = 99

    cases: list[tuple[Callable[[inference_genesis_pb2.GenesisState], object], str]] = [
        (lambda g: g.requests[1].__setattr__("answer_result_id", reveal), "SCORING with an answer"),
        (no_verdict, "no verdict"),
        (early_verdict, "verdict before"),
        (lambda g: g.results[1].__setattr__("quality_ppm", 5), "unscored result has quality and fidelity 0"),
        (lambda g: g.results[1].__setattr__("fidelity_ppm", 5), "unscored result has quality and fidelity 0"),
        (lambda g: g.results[0].__setattr__("quality_ppm", 1_000_001), "quality_ppm >"),
        (lambda g: g.results[0].__setattr__("fidelity_ppm", 1_000_001), "fidelity_ppm >"),
    ]
    for mutate, match in cases:
        bad = copy.deepcopy(gs)
        mutate(bad)
        with pytest.raises(ChainError, match=match) as ei:
            inf_genesis.validate_genesis(bad)
        assert ei.value.kind is ErrInferenceGenesis
