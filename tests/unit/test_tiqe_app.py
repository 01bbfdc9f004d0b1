"""TIQE inside the real state machine (PolyLinkApp in memory, invariants checked every block):
request -> result -> committee -> signed commits -> signed reveals -> final quality, settled;
queries over ABCI paths; export -> import -> export is exact."""

from __future__ import annotations

import base64
import hashlib
import json

from google.protobuf.message import Message
from polylink.base.v1 import coin_pb2
from polylink.inference.v1 import query_pb2 as inf_q
from polylink.inference.v1 import tx_pb2 as inf_tx
from polylink.inference.v1 import types_pb2 as inf_t
from polylink.registry.v1 import tx_pb2 as reg_tx
from polylink.staking.v1 import tx_pb2 as staking_tx
from polylink.tiqe.v1 import query_pb2 as q
from polylink.tiqe.v1 import tx_pb2, types_pb2

from chain.app.app import BlockResult, PolyLinkApp
from chain.client.signer import Signer
from chain.client.tx_builder import build_tx
from chain.core.apphash import StateAccumulator
from chain.core.store import MemStore
from chain.grpc.query_service import query_services
from chain.modules.tiqe.keeper import score_commitment

CHAIN = "tiqe-app"
POLY = 1_000_000
GAS = 400_000
FEE = 4_000
OPS = [Signer(hashlib.sha256(b"op%d" % i).digest()) for i in range(4)]
PROVIDER = Signer(hashlib.sha256(b"provider").digest())
WORKER = Signer(hashlib.sha256(b"worker").digest())
USER = Signer(hashlib.sha256(b"user").digest())
Q = "/polylink.tiqe.v1.Query/"


class Chain:
    """One app, blocks by hand, a sequence number per signer."""

    def __init__(self) -> None:
        self.app = PolyLinkApp(None, invariant_period=1)  # every block asserts every invariant
        self.seq: dict[str, int] = {}
        self.height = 0
        balances = [{"address": s.address, "coins": [{"denom": "upoly", "amount": str(1000 * POLY)}]}
                    for s in [*OPS, PROVIDER, WORKER, USER]]  # fmt: skip
        gentxs = []
        for i, op in enumerate(OPS):
            msg = staking_tx.MsgCreateValidator(
                operator_address=op.address, consensus_pubkey=hashlib.sha256(b"node%d" % i).digest(),
                self_bond=coin_pb2.Coin(denom="upoly", amount=str(10 * POLY)), commission_ppm=0,
                moniker=f"node{i}", min_self_delegation="1",
            )  # fmt: skip
            gentxs.append(base64.b64encode(self.tx(op, msg)).decode())
        state = {
            "bank": {"balances": balances},
            "registry": {"params": {"min_worker_bond": "1000"}},
            "tiqe": {"params": {"no_reveal_jail_blocks": "10", "worker_jail_blocks": "20"}},
            # no emission: the export -> import -> one block -> export round trip below stays exact
            "rewards": {"params": {"block_reward": "0"}},
            "genutil": {"gen_txs": gentxs},
        }
        self.app.init_chain(CHAIN, json.dumps(state).encode(), 1, 0, -1)
        assert len(self.app.genesis_validators) == 4

    def tx(self, signer: Signer, msg: Message) -> bytes:
        n = self.seq.get(signer.address, 0)
        self.seq[signer.address] = n + 1
        return build_tx([msg], signer, chain_id=CHAIN, sequence=n, fee=FEE, gas_limit=GAS)

    def block(self, txs: list[bytes], ok: bool = True) -> BlockResult:
        self.height += 1
        h = self.height
        r = self.app.finalize_block(h, h * 10**9, hashlib.sha256(b"%d" % h).digest(), b"", txs)
        if ok:
            assert [t.code for t in r.tx_results] == [0] * len(txs), [t.log for t in r.tx_results]
        self.app.commit()
        assert self.app.check_invariants() == []
        return r

    def query(self, path: str, req: Message) -> Message:
        return self.app.query(path, req.SerializeToString())


def events(r: BlockResult, type_: str) -> list[dict[str, str]]:
    """Events of the block (begin/end block) and of its txs."""
    out = [dict(e.attributes) for e in r.events if e.type == type_]
    for t in r.tx_results:
        out += [dict(e.attributes) for e in t.events if e.type == type_]
    return out


def test_the_app_wires_tiqe_after_inference_and_binds_it_as_the_scorer() -> None:
    app = PolyLinkApp(None)
    names = [m.name for m in app.m.all]
    assert names[-4:] == ["inference", "tiqe", "rewards", "pricing"]
    assert app.m.inference.scorer is app.m.tiqe
    assert "tiqe" in app.m.params  # governance can change its params
    # served over gRPC from the query routes, nobody writes a servicer
    assert sorted(query_services(app)["polylink.tiqe.v1.Query"]) == [
        "Params", "Rating", "Ratings", "Round", "Rounds", "ValidatorTasks",
    ]  # fmt: skip


def test_request_to_final_quality_with_signed_txs() -> None:
    c = Chain()
    signer = {op.address: op for op in OPS}
    c.block([
        c.tx(PROVIDER, reg_tx.MsgRegisterModel(provider=PROVIDER.address, model_id="tiny", sha256="ab" * 32,
                                               context_length=2048, base_price="1000")),
        c.tx(WORKER, reg_tx.MsgRegisterWorker(worker=WORKER.address, endpoint="http://w", models=["tiny"],
                                              capacity=256, bond=coin_pb2.Coin(denom="upoly", amount="100000"))),
    ])  # fmt: skip
    ask = inf_tx.MsgRequestInference(requester=USER.address, model_id="tiny", prompt="2+2?", max_tokens=100,
                                     max_price="1000", redundancy=1)  # fmt: skip
    r = c.block([c.tx(USER, ask)])
    assert events(r, "inference.assigned")[0]["worker"] == WORKER.address
    submit = inf_tx.MsgSubmitResult(worker=WORKER.address, request_id=1, response="4", completion_tokens=10)
    r = c.block([c.tx(WORKER, submit)])
    committee = [e["validator"] for e in events(r, "tiqe.committee")]
    assert len(committee) == 3 and len(set(committee)) == 3 and WORKER.address not in committee
    st = c.query("/polylink.inference.v1.Query/Request", inf_q.QueryRequestRequest(id=1))
    assert isinstance(st, inf_q.QueryRequestResponse)
    assert st.request.status == inf_t.REQUEST_STATUS_SCORING and st.results[0].id == 1
    tasks = c.query(Q + "ValidatorTasks", q.QueryValidatorTasksRequest(validator=committee[0]))
    assert isinstance(tasks, q.QueryValidatorTasksResponse)
    assert [(t.action, t.result_id, t.request_id) for t in tasks.tasks] == [("COMMIT", 1, 1)]

    # an outsider's commit fails with tiqe's code and changes nothing
    outsider = next(op for op in OPS if op.address not in committee)
    bad = tx_pb2.MsgCommitScore(validator=outsider.address, result_id=1, commitment=b"\x00" * 32)
    r = c.block([c.tx(outsider, bad)], ok=False)
    assert (r.tx_results[0].codespace, r.tx_results[0].code) == ("tiqe", 4)

    # (quality, fidelity) per member
    scores = dict(zip(committee, ((910_000, 950_000), (850_000, 900_000), (300_000, 880_000)), strict=True))
    salts = {v: hashlib.sha256(v.encode()).digest() for v in committee}
    commits = [
        c.tx(
            signer[v],
            tx_pb2.MsgCommitScore(validator=v, result_id=1, commitment=score_commitment(qs, fs, salts[v], v)),
        )
        for v, (qs, fs) in scores.items()
    ]
    r = c.block(commits)
    assert sorted(e["validator"] for e in events(r, "tiqe.reveal")) == sorted(committee)
    rd = c.query(Q + "Round", q.QueryRoundRequest(result_id=1))
    assert isinstance(rd, q.QueryRoundResponse)
    assert rd.round.phase == types_pb2.ROUND_PHASE_REVEAL
    # only hashes are public
    assert all(not m.revealed and m.quality_ppm == m.fidelity_ppm == 0 for m in rd.round.members)

    reveals = [
        c.tx(
            signer[v],
            tx_pb2.MsgRevealScore(validator=v, result_id=1, quality_ppm=qs, fidelity_ppm=fs, salt=salts[v]),
        )
        for v, (qs, fs) in scores.items()
    ]
    worker_before = c.app.m.bank.get_balance(c.app.query_context(), WORKER.address, "upoly")
    c.block(reveals)
    r = c.block([])  # the reveal window closed with the last reveal: aggregated as this block begins
    (fin,) = events(r, "tiqe.finalized")
    assert fin == {"result_id": "1", "request_id": "1", "worker": WORKER.address, "quality_ppm": "850000",
                   "fidelity_ppm": "900000", "scored": "true", "passed": "true"}  # fmt: skip
    completed = events(r, "inference.completed")[0]
    assert (completed["quality_ppm"], completed["fidelity_ppm"]) == ("850000", "900000")
    rd = c.query(Q + "Round", q.QueryRoundRequest(result_id=1))
    assert isinstance(rd, q.QueryRoundResponse)
    assert rd.round.phase == types_pb2.ROUND_PHASE_FINAL
    assert (rd.round.quality_ppm, rd.round.fidelity_ppm) == (850_000, 900_000)
    assert {m.validator: m.outlier for m in rd.round.members}[committee[2]]  # 300k is 550k away
    st = c.query("/polylink.inference.v1.Query/Request", inf_q.QueryRequestRequest(id=1))
    assert isinstance(st, inf_q.QueryRequestResponse)
    assert st.request.status == inf_t.REQUEST_STATUS_COMPLETED
    assert (st.results[0].quality_ppm, st.results[0].fidelity_ppm) == (850_000, 900_000)
    # SPEC 3.8 on the fee of 10: worker 7; the committee's 2 to the two members within outlier_ppm
    # (equal weights: 1 each), none to the outlier; 1 to the community pool
    assert c.app.m.bank.get_balance(c.app.query_context(), WORKER.address, "upoly") == worker_before + 7
    res = st.results[0]
    assert (res.worker_paid, res.validators_paid, res.community_paid) == ("7", "2", "1")
    assert c.app.m.tiqe.earners(c.app.query_context(), 1) == [
        (m.validator, int(m.weight)) for m in rd.round.members if not m.outlier
    ]
    rating = c.query(Q + "Rating", q.QueryRatingRequest(validator=committee[0]))
    assert isinstance(rating, q.QueryRatingResponse)
    assert list(rating.rating.deviations) == [60_000]  # quality +60k beats fidelity +50k
    rounds = c.query(Q + "Rounds", q.QueryRoundsRequest())
    assert isinstance(rounds, q.QueryRoundsResponse) and [x.result_id for x in rounds.rounds] == [1]

    # export -> import -> export is exact, app hash included
    exported = c.app.export_genesis()
    assert exported["tiqe"]["rounds"][0]["quality_ppm"] == "850000"  # type: ignore[index]
    assert exported["tiqe"]["rounds"][0]["fidelity_ppm"] == "900000"  # type: ignore[index]
    app2 = PolyLinkApp(None)
    app2.init_chain(CHAIN, json.dumps(exported).encode(), c.height + 1, 0, -1)
    app2.finalize_block(c.height + 1, 0, b"\x01" * 32, b"", [])
    app2.commit()
    assert app2.export_genesis() == exported
    store = c.app.committed
    assert isinstance(store, MemStore)
    assert c.app.app_hash == StateAccumulator.of_items(store.items()).app_hash()
