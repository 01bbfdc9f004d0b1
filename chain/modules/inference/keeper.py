"""InferenceKeeper: the only code that reads or writes inference state.

Lifecycle of a request (heights are block heights; `end_block` runs after the
block's txs, first expiring deadlines, then assigning PENDING requests):

  MsgRequestInference ── PENDING ── end_block: assign k = min(n, eligible) workers ──> ASSIGNED
      (escrow moved in)     │  k == 0 -> FAILED (refund)       (deadline = h + result/commit timeout)
                            │
  n = 1:  MsgSubmitResult by the assigned worker -> every result is in (see below)
  n > 1:  MsgCommitResult from every worker (or the commit deadline with >= 1 commitment)
              -> REVEAL (deadline = h + reveal timeout)
          MsgRevealResult from every committed worker (or the reveal deadline with >= 1 result)
              -> every result is in (see below)

  Every result in, with a scorer bound (the app binds tiqe): SCORING, nothing
  settled; the scorer calls `finalize_result` once per result, and when the
  last one is final: answer = the best quality (ties: higher fidelity, then
  lower worker address bytes), every passed result settled, rejected ones' fees refunded with the
  rest -> COMPLETED. Without a scorer (inference tested alone): every result
  settled at once, answer = the lowest result id -> COMPLETED.

  At a deadline every OPEN (at the reveal deadline: COMMITTED) assignment is
  MISSED: the worker is slashed through the registry. A request left with no
  result and no live commitment goes back to PENDING for a new attempt with
  fresh workers while `reassignments < max_reassignments`, else it is FAILED
  and its escrow refunded.

The `escrow` module account always holds exactly the sum of the open
requests' `escrow` fields (invariant `inference/escrow`). Indexes (PENDING,
DEADLINE, TASK, BY_REQUESTER, BY_NEWEST) follow from the requests:
`index_keys_of(request)` is their one definition, used by genesis to rebuild
them and by the invariant to check them.
"""

from __future__ import annotations

import hashlib

from polylink.inference.v1 import tx_pb2, types_pb2

from chain.core.address import from_bech32
from chain.core.codec import decode, encode
from chain.core.coins import BOND_DENOM, Coins, parse_amount
from chain.core.context import Context
from chain.core.events import Event, index_keys
from chain.core.sampling import block_seed, sample_weighted
from chain.core.store import KVStore, PrefixStore
from chain.modules.inference import keys
from chain.modules.inference.errors import (
    ErrAlreadyCommitted,
    ErrAlreadySubmitted,
    ErrCommitmentMismatch,
    ErrDeadlinePassed,
    ErrMaxTokensTooLarge,
    ErrNotAssigned,
    ErrNotCommitted,
    ErrPriceTooHigh,
    ErrPromptTooLarge,
    ErrRedundancyTooLarge,
    ErrRequestClosed,
    ErrResponseTooLarge,
    ErrRevealNotOpen,
    ErrTooManyTokens,
    ErrUnknownModel,
    ErrUnknownRequest,
    ErrWrongMode,
)
from chain.modules.inference.expected import AccountKeeper, BankKeeper, Pricer, RegistryKeeper, Rewards, Scorer
from chain.modules.inference.fees import fee_for, royalty_of, slot_escrow
from chain.modules.inference.params import default_params

ESCROW_MODULE = "escrow"  # module account holding the escrow of open requests
MISS_REASON = "missed deadline"

Request = types_pb2.Request
Result = types_pb2.Result
Assignment = types_pb2.Assignment

PENDING = types_pb2.REQUEST_STATUS_PENDING
ASSIGNED = types_pb2.REQUEST_STATUS_ASSIGNED
REVEAL = types_pb2.REQUEST_STATUS_REVEAL
COMPLETED = types_pb2.REQUEST_STATUS_COMPLETED
FAILED = types_pb2.REQUEST_STATUS_FAILED
SCORING = types_pb2.REQUEST_STATUS_SCORING
OPEN_STATUSES = (PENDING, ASSIGNED, REVEAL, SCORING)

A_OPEN = types_pb2.ASSIGNMENT_STATUS_OPEN
A_COMMITTED = types_pb2.ASSIGNMENT_STATUS_COMMITTED
A_DONE = types_pb2.ASSIGNMENT_STATUS_DONE
A_MISSED = types_pb2.ASSIGNMENT_STATUS_MISSED

SUBMIT, COMMIT, REVEAL_ACTION = "SUBMIT", "COMMIT", "REVEAL"

EVENT_TYPES = (
    "inference.requested",
    "inference.assigned",
    "inference.committed",
    "inference.reveal",
    "inference.result",
    "inference.missed",
    "inference.completed",
    "inference.failed",
)
for _t in EVENT_TYPES:
    index_keys(_t, "request_id", "worker")
index_keys("inference.requested", "requester")


def commitment_of(response: str, salt: bytes, worker: str) -> bytes:
    """sha256(utf8(response) || salt || utf8(worker address)): what MsgCommitResult carries."""
    return hashlib.sha256(response.encode() + salt + worker.encode()).digest()


def is_multi(r: types_pb2.Request) -> bool:
    """Commit-reveal (n > 1) or a single submit (n = 1): fixed by the requested n."""
    return r.redundancy > 1


def current(r: types_pb2.Request) -> list[types_pb2.Assignment]:
    """The assignments of the current attempt (attempt == reassignments), in order."""
    return [a for a in r.assignments if a.attempt == r.reassignments]


def index_keys_of(r: types_pb2.Request) -> list[bytes]:
    """Every index entry request `r` implies (namespace-relative keys)."""
    requester = from_bech32(r.requester)
    out = [keys.by_newest_key(r.id), keys.by_requester_key(requester, r.id)]
    if r.status == PENDING:
        out.append(keys.pending_key(r.id))
    if r.status in (ASSIGNED, REVEAL):
        out.append(keys.deadline_key(r.deadline_height, r.id))
        for a in current(r):
            if a.status in (A_OPEN, A_COMMITTED):
                out.append(keys.task_key(from_bech32(a.worker), r.id))
    return out


def upoly(amount: int) -> Coins:
    return Coins({BOND_DENOM: amount})


def is_final(res: types_pb2.Result) -> bool:
    """A result is final once the scorer judged it: scored, or passed unscored."""
    return res.scored or res.passed


def best_result(results: list[types_pb2.Result]) -> types_pb2.Result:
    """argmax quality_ppm; ties: the higher fidelity_ppm, then the lower worker address bytes.
    Fidelity only breaks ties: a likelier-looking answer never beats a better one."""
    return min(results, key=lambda x: (-x.quality_ppm, -x.fidelity_ppm, from_bech32(x.worker)))


class InferenceKeeper:
    def __init__(self, ak: AccountKeeper, bk: BankKeeper, registry: RegistryKeeper) -> None:
        self.ak = ak
        self.bk = bk
        self.registry = registry
        self.scorer: Scorer | None = None
        self.rewards: Rewards | None = None
        self.pricer: Pricer | None = None

    def set_pricer(self, pricer: Pricer) -> None:
        """Bind the dynamic price (the app binds the pricing keeper; without one every request
        pays its model's base price)."""
        self.pricer = pricer

    def set_rewards(self, rewards: Rewards) -> None:
        """Bind the fee split (the app binds the rewards keeper; without one a passed result's
        whole fee goes to its worker, less the royalty)."""
        self.rewards = rewards

    def set_scorer(self, scorer: Scorer) -> None:
        """Bind the module that judges results (tiqe); the app calls it once both keepers exist."""
        self.scorer = scorer

    def _kv(self, ctx: Context) -> KVStore:
        return ctx.kv(keys.NAMESPACE)

    # --- params ----------------------------------------------------------
    def get_params(self, ctx: Context) -> types_pb2.Params:
        raw = self._kv(ctx).get(keys.PARAMS)
        return default_params() if raw is None else decode(types_pb2.Params, raw)

    def set_params(self, ctx: Context, p: types_pb2.Params) -> None:
        self._kv(ctx).set(keys.PARAMS, encode(p))

    # --- ids -------------------------------------------------------------
    def next_ids(self, ctx: Context) -> tuple[int, int]:
        """(next request id, next result id); both start at 1."""
        raw = self._kv(ctx).get(keys.NEXT_IDS)
        if raw is None:
            return 1, 1
        return int.from_bytes(raw[:8], "big"), int.from_bytes(raw[8:16], "big")

    def set_next_ids(self, ctx: Context, request_id: int, result_id: int) -> None:
        self._kv(ctx).set(keys.NEXT_IDS, keys.u64(request_id) + keys.u64(result_id))

    # --- requests and results ----------------------------------------------
    def get_request(self, ctx: Context, rid: int) -> types_pb2.Request | None:
        raw = self._kv(ctx).get(keys.request_key(rid))
        return None if raw is None else decode(Request, raw)

    def must_get_request(self, ctx: Context, rid: int) -> types_pb2.Request:
        r = self.get_request(ctx, rid)
        if r is None:
            raise ErrUnknownRequest.wrap(f"request {rid}")
        return r

    def set_request(self, ctx: Context, r: types_pb2.Request) -> None:
        """Store the request as is (indexes are the caller's business)."""
        self._kv(ctx).set(keys.request_key(r.id), encode(r))

    def iterate_requests(self, ctx: Context) -> list[types_pb2.Request]:
        """Every request, by id."""
        return [decode(Request, v) for _, v in PrefixStore(self._kv(ctx), keys.REQUEST).iterate()]

    def get_result(self, ctx: Context, res_id: int) -> types_pb2.Result | None:
        raw = self._kv(ctx).get(keys.result_key(res_id))
        return None if raw is None else decode(Result, raw)

    def set_result(self, ctx: Context, res: types_pb2.Result) -> None:
        self._kv(ctx).set(keys.result_key(res.id), encode(res))

    def iterate_results(self, ctx: Context) -> list[types_pb2.Result]:
        """Every result, by id."""
        return [decode(Result, v) for _, v in PrefixStore(self._kv(ctx), keys.RESULT).iterate()]

    def results_of(self, ctx: Context, r: types_pb2.Request) -> list[types_pb2.Result]:
        """The request's results, by result id."""
        out: list[types_pb2.Result] = []
        for res_id in sorted(a.result_id for a in r.assignments if a.result_id):
            res = self.get_result(ctx, res_id)
            if res is None:
                raise RuntimeError(f"request {r.id}: result {res_id} is missing")
            out.append(res)
        return out

    # --- indexes -----------------------------------------------------------
    def write_indexes(self, ctx: Context, r: types_pb2.Request) -> None:
        """Write every index entry `r` implies (genesis; new requests)."""
        kv = self._kv(ctx)
        for key in index_keys_of(r):
            kv.set(key, keys.PRESENT)

    def _set_deadline(self, ctx: Context, r: types_pb2.Request, height: int) -> None:
        self._clear_deadline(ctx, r)
        r.deadline_height = height
        self._kv(ctx).set(keys.deadline_key(height, r.id), keys.PRESENT)

    def _clear_deadline(self, ctx: Context, r: types_pb2.Request) -> None:
        if r.deadline_height:
            self._kv(ctx).delete(keys.deadline_key(r.deadline_height, r.id))
            r.deadline_height = 0

    def _set_task(self, ctx: Context, worker: str, rid: int) -> None:
        self._kv(ctx).set(keys.task_key(from_bech32(worker), rid), keys.PRESENT)

    def _del_task(self, ctx: Context, worker: str, rid: int) -> None:
        self._kv(ctx).delete(keys.task_key(from_bech32(worker), rid))

    def task_request_ids(self, ctx: Context, worker: str) -> list[int]:
        """Ids of the requests in which `worker` holds an OPEN or COMMITTED assignment, ascending."""
        store = PrefixStore(self._kv(ctx), keys.tasks_prefix(from_bech32(worker)))
        return [int.from_bytes(k, "big") for k, _ in store.iterate()]

    def index_entries(self, ctx: Context) -> list[bytes]:
        """Every stored index entry (namespace-relative keys), in key order (for the invariant)."""
        kv = self._kv(ctx)
        out: list[bytes] = []
        for prefix in (keys.PENDING, keys.DEADLINE, keys.TASK, keys.BY_REQUESTER, keys.BY_NEWEST):
            out.extend(prefix + k for k, _ in PrefixStore(kv, prefix).iterate())
        return out

    # --- price -------------------------------------------------------------
    def price_of(self, ctx: Context, model_id: str) -> int:
        """upoly per 1000 tokens charged now for `model_id`: the pricing module's current price,
        or the base price when no pricer is bound (inference's own unit tests). Raises
        ErrUnknownModel."""
        model = self.registry.get_model(ctx, model_id)
        if model is None:
            raise ErrUnknownModel.wrap(model_id)
        if self.pricer is not None:
            price = self.pricer.price_of(ctx, model_id)
            if price is not None:
                return price
        return parse_amount(model.base_price)

    # --- MsgRequestInference -------------------------------------------------
    def request_inference(self, ctx: Context, msg: tx_pb2.MsgRequestInference) -> int:
        """Check the request against params, model and price; escrow its worst-case fee; store it
        PENDING (assigned at the end of the block). Returns its id."""
        p = self.get_params(ctx)
        model = self.registry.get_model(ctx, msg.model_id)
        if model is None:
            raise ErrUnknownModel.wrap(msg.model_id)
        prompt_bytes = len(msg.prompt.encode())
        if prompt_bytes > p.max_prompt_bytes:
            raise ErrPromptTooLarge.wrap(f"{prompt_bytes} bytes > {p.max_prompt_bytes}")
        if msg.max_tokens > p.max_tokens_limit or msg.max_tokens > model.context_length:
            raise ErrMaxTokensTooLarge.wrap(
                f"{msg.max_tokens} > min(max_tokens_limit {p.max_tokens_limit}, context_length {model.context_length})"
            )
        n = msg.redundancy or 1
        if n > p.max_redundancy:
            raise ErrRedundancyTooLarge.wrap(f"{n} > {p.max_redundancy}")
        price = self.price_of(ctx, msg.model_id)
        if price > parse_amount(msg.max_price):
            raise ErrPriceTooHigh.wrap(f"price {price} > max_price {msg.max_price}")
        escrow = slot_escrow(price, msg.max_tokens) * n
        if escrow:
            self.bk.send_to_module(ctx, msg.requester, ESCROW_MODULE, upoly(escrow))
        if self.pricer is not None:
            self.pricer.record_demand(ctx, msg.model_id, msg.max_tokens * n)
        rid, res_id = self.next_ids(ctx)
        self.set_next_ids(ctx, rid + 1, res_id)
        r = Request(
            id=rid,
            requester=msg.requester,
            model_id=msg.model_id,
            prompt=msg.prompt,
            max_tokens=msg.max_tokens,
            sampling=msg.sampling,
            max_price=msg.max_price,
            price=str(price),
            redundancy=n,
            escrow=str(escrow),
            status=PENDING,
            created_height=ctx.height,
        )
        self.set_request(ctx, r)
        self.write_indexes(ctx, r)
        ctx.emit(
            Event.of(
                "inference.requested",
                request_id=rid,
                requester=msg.requester,
                model_id=msg.model_id,
                redundancy=n,
                max_tokens=msg.max_tokens,
                price=price,
                escrow=escrow,
            )
        )
        return rid

    # --- worker messages -----------------------------------------------------
    def _assignment_for(
        self, ctx: Context, rid: int, worker: str, action: str
    ) -> tuple[types_pb2.Request, types_pb2.Assignment]:
        """The request and the worker's assignment in it, checked for `action`; each reason a
        worker's message does not fit has its own error."""
        r = self.must_get_request(ctx, rid)
        if (action == SUBMIT) == is_multi(r):
            mode = "commit-reveal" if is_multi(r) else "a single submit"
            raise ErrWrongMode.wrap(f"request {rid} (redundancy {r.redundancy}) takes {mode}")
        # A worker is never assigned twice to one request, so this is its only assignment.
        mine = [a for a in r.assignments if a.worker == worker]
        if not mine:
            raise ErrNotAssigned.wrap(f"{worker} on request {rid}")
        a = mine[0]
        if a.status == A_MISSED:
            raise ErrDeadlinePassed.wrap(f"{worker} on request {rid}")
        if action == COMMIT:
            if a.status in (A_COMMITTED, A_DONE):
                raise ErrAlreadyCommitted.wrap(f"{worker} on request {rid}")
        elif a.status == A_DONE:
            raise ErrAlreadySubmitted.wrap(f"{worker} on request {rid}")
        if action == REVEAL_ACTION:
            if a.status != A_COMMITTED:
                raise ErrNotCommitted.wrap(f"{worker} on request {rid}")
            if r.status == ASSIGNED:
                raise ErrRevealNotOpen.wrap(f"request {rid} is still collecting commitments")
            if r.status != REVEAL:
                raise ErrRequestClosed.wrap(f"request {rid}")
        elif r.status != ASSIGNED or a.status != A_OPEN:
            raise ErrRequestClosed.wrap(f"request {rid}")
        return r, a

    def _check_response(self, ctx: Context, r: types_pb2.Request, response: str, tokens: int) -> None:
        size = len(response.encode())
        limit = self.get_params(ctx).max_response_bytes
        if size > limit:
            raise ErrResponseTooLarge.wrap(f"{size} bytes > {limit}")
        if tokens > r.max_tokens:
            raise ErrTooManyTokens.wrap(f"{tokens} > max_tokens {r.max_tokens}")

    def submit_result(self, ctx: Context, msg: tx_pb2.MsgSubmitResult) -> int:
        """n = 1: the assigned worker's answer completes the request. Returns the result id."""
        r, a = self._assignment_for(ctx, msg.request_id, msg.worker, SUBMIT)
        self._check_response(ctx, r, msg.response, msg.completion_tokens)
        res = self._add_result(ctx, r, a, msg.response, msg.completion_tokens)
        self._results_in(ctx, r)
        self.set_request(ctx, r)
        return res.id

    def commit_result(self, ctx: Context, msg: tx_pb2.MsgCommitResult) -> None:
        """n > 1: record the worker's commitment; the reveal window opens once every assignment
        of the attempt has committed."""
        r, a = self._assignment_for(ctx, msg.request_id, msg.worker, COMMIT)
        a.commitment = msg.commitment
        a.status = A_COMMITTED
        if self.rewards is not None:
            # the swarm ticket (SPEC 3.8): locked from the bond into this request's escrow
            want = self.rewards.ticket_for(ctx, slot_escrow(int(r.price), r.max_tokens))
            taken = self.registry.take_bond(ctx, msg.worker, want, self.ak.module_address(ESCROW_MODULE))
            if taken:
                r.escrow = str(int(r.escrow) + taken)
                a.ticket = str(taken)
        ctx.emit(Event.of("inference.committed", request_id=r.id, worker=msg.worker, ticket=a.ticket or "0"))
        if not any(x.status == A_OPEN for x in current(r)):
            self._open_reveal(ctx, r)
        self.set_request(ctx, r)

    def reveal_result(self, ctx: Context, msg: tx_pb2.MsgRevealResult) -> int:
        """n > 1: open the commitment; the request completes once every committed worker revealed.
        Returns the result id."""
        r, a = self._assignment_for(ctx, msg.request_id, msg.worker, REVEAL_ACTION)
        self._check_response(ctx, r, msg.response, msg.completion_tokens)
        if commitment_of(msg.response, msg.salt, msg.worker) != a.commitment:
            raise ErrCommitmentMismatch.wrap(f"{msg.worker} on request {r.id}")
        res = self._add_result(ctx, r, a, msg.response, msg.completion_tokens)
        if not any(x.status == A_COMMITTED for x in current(r)):
            self._results_in(ctx, r)
        self.set_request(ctx, r)
        return res.id

    def _add_result(
        self, ctx: Context, r: types_pb2.Request, a: types_pb2.Assignment, response: str, tokens: int
    ) -> types_pb2.Result:
        """Store a result for assignment `a` (now DONE) and release the worker's capacity."""
        rid, res_id = self.next_ids(ctx)
        self.set_next_ids(ctx, rid, res_id + 1)
        res = Result(
            id=res_id,
            request_id=r.id,
            worker=a.worker,
            response=response,
            completion_tokens=tokens,
            height=ctx.height,
            worker_paid="0",
            royalty_paid="0",
        )
        self.set_result(ctx, res)
        a.status = A_DONE
        a.result_id = res_id
        self._del_task(ctx, a.worker, r.id)
        self.registry.release_inflight(ctx, a.worker, r.max_tokens)
        self.registry.record_result(ctx, a.worker, r.model_id)
        ctx.emit(
            Event.of("inference.result", request_id=r.id, result_id=res_id, worker=a.worker, completion_tokens=tokens)
        )
        return res

    # --- per block -----------------------------------------------------------
    def end_block(self, ctx: Context) -> None:
        """Expire every deadline <= height (a tx in the deadline's block still counted), then
        assign every PENDING request (new ones and reassignments) in id order."""
        kv = self._kv(ctx)
        deadlines = PrefixStore(kv, keys.DEADLINE)
        due = [k for k, _ in deadlines.iterate(b"", keys.u64(ctx.height + 1))]
        for k in due:
            height, rid = int.from_bytes(k[:8], "big"), int.from_bytes(k[8:16], "big")
            kv.delete(keys.DEADLINE + k)
            r = self.must_get_request(ctx, rid)
            if r.deadline_height != height or r.status not in (ASSIGNED, REVEAL):
                raise RuntimeError(f"deadline index out of step with request {rid}")
            r.deadline_height = 0
            self._expire(ctx, r)
            self.set_request(ctx, r)
        pending = [int.from_bytes(k, "big") for k, _ in PrefixStore(kv, keys.PENDING).iterate()]
        for rid in pending:
            kv.delete(keys.pending_key(rid))
            r = self.must_get_request(ctx, rid)
            self._assign(ctx, r)
            self.set_request(ctx, r)

    def _expire(self, ctx: Context, r: types_pb2.Request) -> None:
        """The current phase of `r` ended: misses, then the next phase (its deadline entry is gone)."""
        if r.status == ASSIGNED:
            for a in current(r):
                if a.status == A_OPEN:
                    self._miss(ctx, r, a)
            if any(a.status == A_COMMITTED for a in current(r)):
                self._open_reveal(ctx, r)
                return
        else:  # REVEAL
            for a in current(r):
                if a.status == A_COMMITTED:
                    self._miss(ctx, r, a)
            if any(a.status == A_DONE for a in current(r)):
                self._results_in(ctx, r)
                return
        # No result and no live commitment.
        if r.reassignments < self.get_params(ctx).max_reassignments:
            r.reassignments += 1
            r.status = PENDING
            self._kv(ctx).set(keys.pending_key(r.id), keys.PRESENT)
        else:
            self._fail(ctx, r, f"no result after {r.reassignments + 1} attempt(s)")

    def _miss(self, ctx: Context, r: types_pb2.Request, a: types_pb2.Assignment) -> None:
        a.status = A_MISSED
        self._del_task(ctx, a.worker, r.id)
        fraction = self.get_params(ctx).slash_fraction_miss_ppm
        penalty = self.registry.slash_worker(ctx, a.worker, fraction, MISS_REASON)
        self.registry.record_miss(ctx, a.worker, r.model_id)
        self.registry.release_inflight(ctx, a.worker, r.max_tokens)
        ctx.emit(Event.of("inference.missed", request_id=r.id, worker=a.worker, penalty=penalty))

    def _assign(self, ctx: Context, r: types_pb2.Request) -> None:
        """Assign attempt `r.reassignments` to fresh workers, or fail the request.

        k = min(slots still escrowed, eligible workers never assigned to it): the
        first attempt holds n slots; a reassignment holds those of the attempt
        before (its unused ones were refunded), so escrow always covers every
        open slot. Unused slots are refunded at once.
        """
        p = self.get_params(ctx)
        window = p.commit_timeout_blocks if is_multi(r) else p.result_timeout_blocks
        before = {a.worker for a in r.assignments}
        candidates = [
            (w, weight)
            for w, weight in self.registry.eligible_workers(ctx, r.model_id, r.max_tokens, window)
            if w not in before
        ]
        price = int(r.price)
        slot = slot_escrow(price, r.max_tokens)
        slots = int(r.escrow) // slot if slot else r.redundancy
        k = min(slots, len(candidates))
        if k == 0:
            self._fail(ctx, r, "no eligible worker")
            return
        chosen = sample_weighted(block_seed(ctx.header.hash, r.id), candidates, k)
        unused = (slots - k) * slot
        if unused:
            self._pay_from_escrow(ctx, r, r.requester, unused)
        deadline = ctx.height + window
        action = COMMIT if is_multi(r) else SUBMIT
        for w in chosen:
            r.assignments.add(worker=w, status=A_OPEN, attempt=r.reassignments, assigned_height=ctx.height)
            self.registry.add_inflight(ctx, w, r.max_tokens)
            self._set_task(ctx, w, r.id)
            ctx.emit(
                Event.of(
                    "inference.assigned",
                    request_id=r.id,
                    worker=w,
                    model_id=r.model_id,
                    action=action,
                    deadline=deadline,
                    attempt=r.reassignments,
                )
            )
        r.status = ASSIGNED
        self._set_deadline(ctx, r, deadline)

    def _open_reveal(self, ctx: Context, r: types_pb2.Request) -> None:
        r.status = REVEAL
        deadline = ctx.height + self.get_params(ctx).reveal_timeout_blocks
        self._set_deadline(ctx, r, deadline)
        for a in current(r):
            if a.status == A_COMMITTED:
                ctx.emit(Event.of("inference.reveal", request_id=r.id, worker=a.worker, deadline=deadline))

    # --- closing and money -------------------------------------------------------
    def _pay_from_escrow(self, ctx: Context, r: types_pb2.Request, recipient: str, amount: int) -> None:
        """Pay `amount` of the request's escrow to `recipient` (no-op for 0)."""
        held = int(r.escrow)
        if amount > held:
            raise RuntimeError(f"request {r.id}: paying {amount} from an escrow of {held}")
        if amount:
            self.bk.send_from_module(ctx, ESCROW_MODULE, recipient, upoly(amount))
            r.escrow = str(held - amount)

    def settle(self, ctx: Context, r: types_pb2.Request, res: types_pb2.Result) -> None:
        """Pay one final result from the request's escrow: fee = min(slot escrow, price x tokens
        // 1000), split by the rewards keeper (worker and provider only when it passed; the
        committee and the community pool either way; a rejected result's worker share stays in
        escrow and is refunded with the rest). Without a rewards keeper: a passed result's
        royalty (fee x royalty_ppm // 10^6) to the provider, the rest to the worker. What each
        got is recorded on the result."""
        price = int(r.price)
        fee = fee_for(slot_escrow(price, r.max_tokens), price, res.completion_tokens)
        model = self.registry.get_model(ctx, r.model_id)
        if self.rewards is not None:
            split = self.rewards.settle(
                ctx,
                lambda address, amount: self._pay_from_escrow(ctx, r, address, amount),
                fee=fee,
                worker=res.worker,
                provider=model.provider if model is not None else "",
                royalty_ppm=model.royalty_ppm if model is not None else 0,
                passed=res.passed,
                earners=self.scorer.earners(ctx, res.id) if self.scorer is not None and res.scored else [],
            )
            res.worker_paid = str(split.worker)
            res.royalty_paid = str(split.provider)
            res.validators_paid = str(sum(split.validators.values()))
            res.community_paid = str(split.community)
            self.set_result(ctx, res)
            return
        if not res.passed:
            return
        royalty = royalty_of(fee, model.royalty_ppm) if model is not None else 0
        self._pay_from_escrow(ctx, r, res.worker, fee - royalty)
        if model is not None:
            self._pay_from_escrow(ctx, r, model.provider, royalty)
        res.worker_paid = str(fee - royalty)
        res.royalty_paid = str(royalty)
        self.set_result(ctx, res)

    def _settle_tickets(self, ctx: Context, r: types_pb2.Request, status: types_pb2.RequestStatus) -> None:
        """Each locked swarm ticket, when the request closes: forfeited to the winner (the answer's
        worker) when its own result was scored below pass_ppm, else back to its bond (to the
        worker's account if it is no longer registered)."""
        winner = ""
        if status == COMPLETED and r.answer_result_id:
            answer = self.get_result(ctx, r.answer_result_id)
            winner = answer.worker if answer is not None else ""
        for a in r.assignments:
            amount = int(a.ticket or "0")
            if not amount or a.ticket_outcome:
                continue
            res = self.get_result(ctx, a.result_id) if a.result_id else None
            if winner and a.worker != winner and res is not None and res.scored and not res.passed:
                self._pay_from_escrow(ctx, r, winner, amount)
                a.ticket_outcome, to = "forfeited", winner
            elif self.registry.add_bond(ctx, a.worker, amount):
                self._pay_from_escrow(ctx, r, self.registry.bond_pool_address(), amount)
                a.ticket_outcome, to = "returned", a.worker
            else:
                self._pay_from_escrow(ctx, r, a.worker, amount)
                a.ticket_outcome, to = "returned", a.worker
            ctx.emit(
                Event.of(
                    "inference.ticket", request_id=r.id, worker=a.worker, amount=amount, outcome=a.ticket_outcome, to=to
                )
            )

    def _close(self, ctx: Context, r: types_pb2.Request, status: types_pb2.RequestStatus) -> int:
        """Settle the swarm tickets, refund what is left of the escrow, clear the deadline,
        close; returns the refund."""
        self._settle_tickets(ctx, r, status)
        refund = int(r.escrow)
        self._pay_from_escrow(ctx, r, r.requester, refund)
        self._clear_deadline(ctx, r)
        r.status = status
        r.completed_height = ctx.height
        return refund

    def _results_in(self, ctx: Context, r: types_pb2.Request) -> None:
        """Every result of `r` is in: hand them to the scorer (SCORING), or, with no scorer
        bound, settle them all at once. `r` is refreshed from the store afterwards, so the
        caller's final `set_request` keeps whatever the scorer finalized meanwhile."""
        if self.scorer is None:
            results = self.results_of(ctx, r)
            for res in results:
                res.passed = True
                self.settle(ctx, r, res)
            self._complete(ctx, r, results[0])
            return
        self._clear_deadline(ctx, r)
        r.status = SCORING
        self.set_request(ctx, r)
        self.scorer.results_ready(ctx, r, self.results_of(ctx, r))
        r.CopyFrom(self.must_get_request(ctx, r.id))

    def finalize_result(
        self, ctx: Context, result_id: int, *, quality_ppm: int, fidelity_ppm: int, scored: bool
    ) -> None:
        """The scorer's verdict on one result: quality, fidelity and passed (quality >= the
        scorer's pass_ppm, or True when not scored; fidelity never changes it). Once every
        result of the request is final: answer = `best_result` (the best quality; ties: higher
        fidelity, then lower worker address bytes), each passed result settled, a rejected
        result's fee left in escrow and refunded with the rest -> COMPLETED. A result unknown,
        already final or of a request not SCORING is a bug."""
        if self.scorer is None:
            raise RuntimeError("finalize_result without a scorer bound")
        res = self.get_result(ctx, result_id)
        if res is None:
            raise RuntimeError(f"finalize_result: no result {result_id}")
        r = self.must_get_request(ctx, res.request_id)
        if r.status != SCORING or is_final(res):
            raise RuntimeError(f"finalize_result: result {result_id} is not waiting for a score")
        if not scored and (quality_ppm != 0 or fidelity_ppm != 0):
            raise RuntimeError(
                f"finalize_result: unscored result {result_id} with quality {quality_ppm}, fidelity {fidelity_ppm}"
            )
        res.quality_ppm = quality_ppm
        res.fidelity_ppm = fidelity_ppm
        res.scored = scored
        res.passed = quality_ppm >= self.scorer.pass_ppm(ctx) if scored else True
        self.set_result(ctx, res)
        results = self.results_of(ctx, r)
        if not all(is_final(x) for x in results):
            return
        for x in results:
            self.settle(ctx, r, x)
        self._complete(ctx, r, best_result(results))
        self.set_request(ctx, r)

    def _complete(self, ctx: Context, r: types_pb2.Request, answer: types_pb2.Result) -> None:
        """Close `r` as COMPLETED with `answer` (the results are settled): the rest of the
        escrow goes back to the requester."""
        r.answer_result_id = answer.id
        refund = self._close(ctx, r, COMPLETED)
        ctx.emit(
            Event.of(
                "inference.completed",
                request_id=r.id,
                answer_result_id=answer.id,
                worker=answer.worker,
                quality_ppm=answer.quality_ppm,
                fidelity_ppm=answer.fidelity_ppm,
                refund=refund,
            )
        )

    def _fail(self, ctx: Context, r: types_pb2.Request, reason: str) -> None:
        refund = self._close(ctx, r, FAILED)
        r.failure = reason
        ctx.emit(Event.of("inference.failed", request_id=r.id, reason=reason, refund=refund))

    # --- queries -----------------------------------------------------------------
    def worker_tasks(self, ctx: Context, worker: str) -> list[tuple[types_pb2.Request, str, types_pb2.Assignment]]:
        """(request, action, assignment) of what `worker` must do now, by request id: SUBMIT for
        an OPEN n = 1 assignment, COMMIT for an OPEN n > 1 one while ASSIGNED, REVEAL for a
        COMMITTED one while REVEAL (COMMITTED while ASSIGNED waits: nothing to do)."""
        out: list[tuple[types_pb2.Request, str, types_pb2.Assignment]] = []
        for rid in self.task_request_ids(ctx, worker):
            r = self.must_get_request(ctx, rid)
            for a in current(r):
                if a.worker != worker:
                    continue
                if a.status == A_OPEN and r.status == ASSIGNED:
                    out.append((r, COMMIT if is_multi(r) else SUBMIT, a))
                elif a.status == A_COMMITTED and r.status == REVEAL:
                    out.append((r, REVEAL_ACTION, a))
        return out
