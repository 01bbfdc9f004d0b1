"""Off-chain actors: what users, workers and validators' scorers do, as messages.

Each actor reads the chain the way its real process does (workers: the
`WorkerTasks` query; validators' scorers: `ValidatorTasks`) and returns the
messages it would sign this block; `SimChain.tx` signs them. The only thing
simulated is the part the chain never sees: what an answer is worth and what
score a validator believes it deserves (`AnswerQuality`, `ScoreFn`).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Protocol

from google.protobuf.message import Message
from polylink.base.v1 import coin_pb2
from polylink.inference.v1 import query_pb2 as inf_q
from polylink.inference.v1 import tx_pb2 as inf_tx
from polylink.registry.v1 import tx_pb2 as reg_tx
from polylink.tiqe.v1 import query_pb2 as tiqe_q
from polylink.tiqe.v1 import tx_pb2 as tiqe_tx

from chain.core.coins import BOND_DENOM
from chain.modules.tiqe.keeper import score_commitment
from sim.chain import POLY, SimChain

PPM = 1_000_000
SUBMIT, COMMIT, REVEAL = "SUBMIT", "COMMIT", "REVEAL"

# (request id) -> the true quality of the answer, ppm: known to the simulation only
AnswerQuality = Callable[[int], int]
# (the task) -> the score this validator believes the answer deserves, ppm
ScoreFn = Callable[[tiqe_q.ValidatorTask], int]


class Actor(Protocol):
    """Anyone who signs txs: `act()` is what it sends this block (read from the chain now)."""

    name: str

    def act(self) -> list[Message]: ...


def clip_ppm(x: float) -> int:
    return min(max(round(x), 0), PPM)


def register_model(c: SimChain, provider: str, model_id: str, base_price: int) -> Message:
    return reg_tx.MsgRegisterModel(
        provider=c.address(provider), model_id=model_id, sha256="ab" * 32, context_length=4096,
        base_price=str(base_price),
    )  # fmt: skip


def register_worker(c: SimChain, worker: str, model_id: str, capacity: int, bond_poly: int) -> Message:
    return reg_tx.MsgRegisterWorker(
        worker=c.address(worker), endpoint=f"http://{worker}", models=[model_id], capacity=capacity,
        bond=coin_pb2.Coin(denom=BOND_DENOM, amount=str(bond_poly * POLY)),
    )  # fmt: skip


class User:
    """Asks single-worker (n = 1) requests of one model."""

    def __init__(self, c: SimChain, name: str, model_id: str, max_tokens: int, max_price: int) -> None:
        self.c, self.name, self.model_id = c, name, model_id
        self.max_tokens, self.max_price = max_tokens, max_price

    def ask(self, n: int) -> list[Message]:
        a = self.c.address(self.name)
        return [
            inf_tx.MsgRequestInference(
                requester=a, model_id=self.model_id, prompt=f"question {i}", max_tokens=self.max_tokens,
                max_price=str(self.max_price), redundancy=1,
            )
            for i in range(n)
        ]


class Worker:
    """Answers every SUBMIT task it has; `answered` maps request id -> true quality."""

    def __init__(self, c: SimChain, name: str, quality: AnswerQuality, tokens: int) -> None:
        self.c, self.name, self.quality, self.tokens = c, name, quality, tokens
        self.answered: dict[int, int] = {}

    def act(self) -> list[Message]:
        a = self.c.address(self.name)
        tasks = self.c.query(
            "/polylink.inference.v1.Query/WorkerTasks", inf_q.QueryWorkerTasksRequest(worker=a),
            inf_q.QueryWorkerTasksResponse,
        )  # fmt: skip
        out: list[Message] = []
        for t in tasks.tasks:
            if t.action != SUBMIT or t.request.id in self.answered:
                continue
            self.answered[t.request.id] = self.quality(t.request.id)
            out.append(
                inf_tx.MsgSubmitResult(
                    worker=a, request_id=t.request.id, response=f"answer {t.request.id}",
                    completion_tokens=self.tokens,
                )
            )
        return out


class Scorer:
    """A validator's scorer: commits quality `score(task)` and fidelity `fidelity` to every COMMIT
    task (fresh salt), reveals them when the REVEAL task comes, exactly as `validator/` does
    through the chain. With `reveals=False` it commits and never reveals (a lazy validator).
    Every simulated worker serves the registered model, so the default fidelity is 10^6 for
    everyone: the round's fidelity deviation is then 0 and ratings follow quality alone."""

    def __init__(
        self,
        c: SimChain,
        name: str,
        score: ScoreFn,
        rng: random.Random,
        *,
        reveals: bool = True,
        fidelity: int = PPM,
    ) -> None:
        self.c, self.name, self.score, self.rng, self.reveals = c, name, score, rng, reveals
        self.fidelity = fidelity
        self.pending: dict[int, tuple[int, bytes]] = {}  # result id -> (quality, salt)

    def act(self) -> list[Message]:
        a = self.c.address(self.name)
        tasks = self.c.query(
            "/polylink.tiqe.v1.Query/ValidatorTasks", tiqe_q.QueryValidatorTasksRequest(validator=a),
            tiqe_q.QueryValidatorTasksResponse,
        )  # fmt: skip
        out: list[Message] = []
        for t in tasks.tasks:
            if t.action == COMMIT and t.result_id not in self.pending:
                s, salt = self.score(t), self.rng.randbytes(16)
                self.pending[t.result_id] = (s, salt)
                c = score_commitment(s, self.fidelity, salt, a)
                out.append(tiqe_tx.MsgCommitScore(validator=a, result_id=t.result_id, commitment=c))
            elif t.action == REVEAL and self.reveals and t.result_id in self.pending:
                s, salt = self.pending.pop(t.result_id)
                out.append(
                    tiqe_tx.MsgRevealScore(
                        validator=a, result_id=t.result_id, quality_ppm=s, fidelity_ppm=self.fidelity, salt=salt
                    )
                )
        return out
