"""TiqeKeeper: the only code that reads or writes tiqe state.

Lifecycle of a round (one per result; heights are block heights; a window
whose deadline is h closes in `begin_block` of h + 1):

  inference: every result of a request is in -> results_ready (request SCORING)
      committee = min(committee_size, candidates) validators, sampled by power x rating
      k == 0 -> FINAL at once, unscored
  COMMIT  until h + score_commit_blocks, or until every member committed (MsgCommitScore)
      nobody committed -> aggregation at once (everyone a no-reveal)
  REVEAL  for score_reveal_blocks, or until every committed member revealed (MsgRevealScore;
          the window then closes at that height)
  aggregation: q and f = weighted medians of the revealed qualities and fidelities (the
      same weights, power x rating, read now); each revealer's rating takes the larger of
      its two deviations; non-revealers are slashed and take a miss (max_misses in a row:
      jailed); the worker's quality and fidelity EMAs move (scored rounds only; a degraded
      or substituting worker is jailed and slashed) -> FINAL ->
      inference.finalize_result(result, q, f, scored)

A deadline is the last height a message counts (a tx in block `deadline`
still counts). Windows close in BeginBlock of the next block rather than in
EndBlock: a no-reveal's slash and jail then happen before staking's EndBlock
computes the validator set, so they reach CometBFT in that same block and
staking's power invariant holds at the end of every block. The DEADLINE and
MEMBER indexes follow from the open rounds: `index_keys_of(round)` is their
one definition, used by the writes, by genesis to rebuild them and by the
invariant to check them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from polylink.tiqe.v1 import tx_pb2, types_pb2

from chain.core.address import address_bytes, from_bech32
from chain.core.codec import decode, encode
from chain.core.context import Context
from chain.core.events import Event, index_keys
from chain.core.sampling import block_seed, sample_weighted
from chain.core.store import KVStore, PrefixStore
from chain.modules.tiqe import keys
from chain.modules.tiqe.aggregate import (
    PPM,
    ema_update,
    has_quorum,
    rating_deviation,
    rating_of,
    weighted_median,
)
from chain.modules.tiqe.errors import (
    ErrAlreadyCommitted,
    ErrAlreadyRevealed,
    ErrCommitClosed,
    ErrCommitmentMismatch,
    ErrNotCommitted,
    ErrNotOnCommittee,
    ErrRevealClosed,
    ErrRevealNotOpen,
    ErrUnknownRound,
)
from chain.modules.tiqe.expected import (
    AccountKeeper,
    BankKeeper,
    InferenceKeeper,
    RegistryKeeper,
    Request,
    Result,
    SlashingKeeper,
    StakingKeeper,
    Validator,
)
from chain.modules.tiqe.params import default_params

Round = types_pb2.Round
Member = types_pb2.Member
ValidatorRating = types_pb2.ValidatorRating

COMMIT = types_pb2.ROUND_PHASE_COMMIT
REVEAL = types_pb2.ROUND_PHASE_REVEAL
FINAL = types_pb2.ROUND_PHASE_FINAL
OPEN_PHASES = (COMMIT, REVEAL)

COMMIT_ACTION, REVEAL_ACTION = "COMMIT", "REVEAL"
NO_REVEAL_REASON = "tiqe no-reveal"
DEGRADED_REASON = "tiqe quality degradation"
SUBSTITUTED_REASON = "tiqe fidelity: substitution suspected"

EVENT_TYPES = (
    "tiqe.committee",
    "tiqe.committed",
    "tiqe.reveal",
    "tiqe.revealed",
    "tiqe.no_reveal",
    "tiqe.finalized",
    "tiqe.worker_degraded",
    "tiqe.worker_substituted",
)
for _t in EVENT_TYPES:
    index_keys(_t, "result_id", "request_id", "validator", "worker")


def score_commitment(quality_ppm: int, fidelity_ppm: int, salt: bytes, validator: str) -> bytes:
    """sha256(quality_ppm as 8 bytes BE || fidelity_ppm as 8 bytes BE || salt || utf8(validator
    operator address)): what MsgCommitScore carries. Both numbers are sealed together, so
    neither can be chosen after the other members' are seen."""
    return hashlib.sha256(
        quality_ppm.to_bytes(8, "big") + fidelity_ppm.to_bytes(8, "big") + salt + validator.encode()
    ).digest()


def deadline_of(rd: types_pb2.Round) -> int:
    """The last height the open phase of `rd` takes messages (0 once FINAL)."""
    if rd.phase == COMMIT:
        return rd.commit_deadline_height
    if rd.phase == REVEAL:
        return rd.reveal_deadline_height
    return 0


def index_keys_of(rd: types_pb2.Round) -> list[bytes]:
    """Every index entry round `rd` implies (namespace-relative keys): an open round has its
    deadline and one MEMBER entry per committee seat; a FINAL one has none."""
    if rd.phase not in OPEN_PHASES:
        return []
    out = [keys.deadline_key(deadline_of(rd), rd.result_id)]
    out.extend(keys.member_key(from_bech32(m.validator), rd.result_id) for m in rd.members)
    return out


def member_of(rd: types_pb2.Round, validator: str) -> types_pb2.Member:
    """The committee seat of `validator` in `rd` (members are distinct). Raises ErrNotOnCommittee."""
    for m in rd.members:
        if m.validator == validator:
            return m
    raise ErrNotOnCommittee.wrap(f"{validator} on result {rd.result_id}")


class TiqeKeeper:
    def __init__(
        self,
        ak: AccountKeeper,
        bk: BankKeeper,
        staking: StakingKeeper,
        slashing: SlashingKeeper,
        registry: RegistryKeeper,
        inference: InferenceKeeper,
    ) -> None:
        self.ak = ak
        self.bk = bk
        self.staking = staking
        self.slashing = slashing
        self.registry = registry
        self.inference = inference

    def _kv(self, ctx: Context) -> KVStore:
        return ctx.kv(keys.NAMESPACE)

    # --- params ----------------------------------------------------------
    def get_params(self, ctx: Context) -> types_pb2.Params:
        raw = self._kv(ctx).get(keys.PARAMS)
        return default_params() if raw is None else decode(types_pb2.Params, raw)

    def set_params(self, ctx: Context, p: types_pb2.Params) -> None:
        """Store params (validated by the caller). Stored ratings follow new bounds: each is
        clamped into [min_rating_ppm, 10^6] and keeps only its last rating_window deviations."""
        self._kv(ctx).set(keys.PARAMS, encode(p))
        for r in self.iterate_ratings(ctx):
            rating = min(max(r.rating_ppm, p.min_rating_ppm), PPM)
            if rating == r.rating_ppm and len(r.deviations) <= p.rating_window:
                continue
            r.rating_ppm = rating
            kept = list(r.deviations)[-p.rating_window :]
            del r.deviations[:]
            r.deviations.extend(kept)
            self.set_rating(ctx, r)

    def pass_ppm(self, ctx: Context) -> int:
        """The quality a scored result needs to be paid (inference's Scorer interface)."""
        return self.get_params(ctx).pass_ppm

    def earners(self, ctx: Context, result_id: int) -> list[tuple[str, int]]:
        """Members of the result's finished, scored round that revealed within outlier_ppm, with
        the weight (power x rating) their score had: who shares the committee's fee (SPEC 3.8).
        An unscored round (no quorum) pays nobody: its committee share goes to the pool."""
        rd = self.get_round(ctx, result_id)
        if rd is None or not rd.scored:
            return []
        return [
            (m.validator, int(m.weight))
            for m in rd.members
            if m.revealed and not m.outlier and m.weight and int(m.weight) > 0
        ]

    # --- rounds ----------------------------------------------------------
    def get_round(self, ctx: Context, result_id: int) -> types_pb2.Round | None:
        raw = self._kv(ctx).get(keys.round_key(result_id))
        return None if raw is None else decode(Round, raw)

    def must_get_round(self, ctx: Context, result_id: int) -> types_pb2.Round:
        rd = self.get_round(ctx, result_id)
        if rd is None:
            raise ErrUnknownRound.wrap(f"result {result_id}")
        return rd

    def set_round(self, ctx: Context, rd: types_pb2.Round) -> None:
        """Store the round as is (indexes are the caller's business: see `_save`)."""
        self._kv(ctx).set(keys.round_key(rd.result_id), encode(rd))

    def iterate_rounds(self, ctx: Context) -> list[types_pb2.Round]:
        """Every round, ascending by result id."""
        store = PrefixStore(self._kv(ctx), keys.ROUND)
        return [decode(Round, v) for _, v in store.iterate()][::-1]

    def write_indexes(self, ctx: Context, rd: types_pb2.Round) -> None:
        """Write every index entry `rd` implies (genesis; new rounds)."""
        kv = self._kv(ctx)
        for key in index_keys_of(rd):
            kv.set(key, keys.PRESENT)

    def _save(self, ctx: Context, rd: types_pb2.Round, old_keys: list[bytes]) -> None:
        """Store `rd` and move its index entries from `old_keys` (those it implied before the
        change) to the ones it implies now."""
        kv = self._kv(ctx)
        new = index_keys_of(rd)
        for key in sorted(set(old_keys) - set(new)):
            kv.delete(key)
        for key in sorted(set(new) - set(old_keys)):
            kv.set(key, keys.PRESENT)
        self.set_round(ctx, rd)

    def index_entries(self, ctx: Context) -> list[bytes]:
        """Every stored index entry (namespace-relative keys), in key order (for the invariant)."""
        kv = self._kv(ctx)
        out: list[bytes] = []
        for prefix in (keys.DEADLINE, keys.MEMBER):
            out.extend(prefix + k for k, _ in PrefixStore(kv, prefix).iterate())
        return out

    def open_round_ids(self, ctx: Context, validator: str) -> list[int]:
        """Result ids of the open rounds `validator` sits on, ascending."""
        store = PrefixStore(self._kv(ctx), keys.members_prefix(from_bech32(validator)))
        return [int.from_bytes(k, "big") for k, _ in store.iterate()]

    # --- ratings ---------------------------------------------------------
    def get_rating(self, ctx: Context, validator: str) -> types_pb2.ValidatorRating:
        """The validator's record; a fresh one at initial_rating_ppm when it never scored or missed."""
        raw = self._kv(ctx).get(keys.rating_key(from_bech32(validator)))
        if raw is not None:
            return decode(ValidatorRating, raw)
        return ValidatorRating(validator=validator, rating_ppm=self.get_params(ctx).initial_rating_ppm)

    def set_rating(self, ctx: Context, r: types_pb2.ValidatorRating) -> None:
        self._kv(ctx).set(keys.rating_key(from_bech32(r.validator)), encode(r))

    def iterate_ratings(self, ctx: Context) -> list[types_pb2.ValidatorRating]:
        """Every stored rating, by validator address bytes."""
        return [decode(ValidatorRating, v) for _, v in PrefixStore(self._kv(ctx), keys.RATING).iterate()]

    # --- weights and committees ---------------------------------------------
    def _power(self, ctx: Context, v: Validator | None) -> int:
        return 0 if v is None else int(v.tokens) // self.staking.get_params(ctx).power_reduction

    def weight_of(self, ctx: Context, validator: str) -> int:
        """power x rating_ppm of a validator now (0 when it no longer exists)."""
        power = self._power(ctx, self.staking.get_validator(ctx, validator))
        return power * self.get_rating(ctx, validator).rating_ppm

    def committee_candidates(self, ctx: Context) -> list[tuple[str, int]]:
        """(operator, power x rating > 0) of the bonded, non-jailed validators, in operator
        address byte order (the order `sample_weighted` walks, the same on every node)."""
        out = []
        for v in self.staking.bonded_validators(ctx):
            if v.jailed:
                continue
            w = self._power(ctx, v) * self.get_rating(ctx, v.operator_address).rating_ppm
            if w > 0:
                out.append((v.operator_address, w))
        return sorted(out, key=lambda c: from_bech32(c[0]))

    # --- inference's Scorer interface ----------------------------------------
    def results_ready(self, ctx: Context, request: Request, results: Sequence[Result]) -> None:
        """Open one round per result (in the given order, by result id), each with a committee
        sampled without replacement by power x rating, seeded by sha256(block hash || result
        id), never the result's worker. A result nobody can score is finalized at once,
        unscored."""
        p = self.get_params(ctx)
        candidates = self.committee_candidates(ctx)
        for res in results:
            self.open_round(ctx, p, candidates, res.id, res.request_id, res.worker, request.model_id)

    def open_round(
        self,
        ctx: Context,
        p: types_pb2.Params,
        candidates: list[tuple[str, int]],
        result_id: int,
        request_id: int,
        worker: str,
        model_id: str,
    ) -> types_pb2.Round:
        """One result's round: its committee and COMMIT window (or FINAL at once, unscored,
        when no validator other than the worker can score it)."""
        pool = [c for c in candidates if c[0] != worker]
        chosen = sample_weighted(block_seed(ctx.header.hash, result_id), pool, min(p.committee_size, len(pool)))
        rd = Round(
            result_id=result_id,
            request_id=request_id,
            worker=worker,
            model_id=model_id,
            phase=COMMIT,
            created_height=ctx.height,
        )
        if not chosen:
            self._finish(ctx, rd, [], 0, 0, scored=False)
            return rd
        rd.commit_deadline_height = ctx.height + p.score_commit_blocks
        for v in chosen:
            rd.members.add(validator=v)
        self._save(ctx, rd, [])
        for v in chosen:
            ctx.emit(
                Event.of(
                    "tiqe.committee",
                    result_id=result_id,
                    request_id=request_id,
                    validator=v,
                    deadline=rd.commit_deadline_height,
                )
            )
        return rd

    # --- messages --------------------------------------------------------
    def commit_score(self, ctx: Context, msg: tx_pb2.MsgCommitScore) -> None:
        """A member's commitment while COMMIT is open; the reveal window opens as soon as every
        member has committed."""
        rd = self.must_get_round(ctx, msg.result_id)
        m = member_of(rd, msg.validator)
        if m.commitment:
            raise ErrAlreadyCommitted.wrap(f"{msg.validator} on result {rd.result_id}")
        if rd.phase != COMMIT:
            raise ErrCommitClosed.wrap(f"result {rd.result_id}")
        old = index_keys_of(rd)
        m.commitment = msg.commitment
        ctx.emit(
            Event.of("tiqe.committed", result_id=rd.result_id, request_id=rd.request_id, validator=msg.validator)
        )
        if all(x.commitment for x in rd.members):
            self._open_reveal(ctx, rd, ctx.height)
        self._save(ctx, rd, old)

    def reveal_score(self, ctx: Context, msg: tx_pb2.MsgRevealScore) -> None:
        """A committed member opens its commitment while REVEAL is open; once every committed
        member revealed, the window closes at this height (aggregated at the next block's start)."""
        rd = self.must_get_round(ctx, msg.result_id)
        m = member_of(rd, msg.validator)
        if not m.commitment:
            raise ErrNotCommitted.wrap(f"{msg.validator} on result {rd.result_id}")
        if rd.phase == COMMIT:
            raise ErrRevealNotOpen.wrap(f"result {rd.result_id} is still collecting commitments")
        if rd.phase != REVEAL:
            raise ErrRevealClosed.wrap(f"result {rd.result_id}")
        if m.revealed:
            raise ErrAlreadyRevealed.wrap(f"{msg.validator} on result {rd.result_id}")
        if score_commitment(msg.quality_ppm, msg.fidelity_ppm, msg.salt, msg.validator) != m.commitment:
            raise ErrCommitmentMismatch.wrap(f"{msg.validator} on result {rd.result_id}")
        old = index_keys_of(rd)
        m.revealed = True
        m.quality_ppm = msg.quality_ppm
        m.fidelity_ppm = msg.fidelity_ppm
        ctx.emit(
            Event.of(
                "tiqe.revealed",
                result_id=rd.result_id,
                request_id=rd.request_id,
                validator=msg.validator,
                quality_ppm=msg.quality_ppm,
                fidelity_ppm=msg.fidelity_ppm,
            )
        )
        if all(x.revealed for x in rd.members if x.commitment):
            rd.reveal_deadline_height = ctx.height
        self._save(ctx, rd, old)

    def _open_reveal(self, ctx: Context, rd: types_pb2.Round, closed_at: int) -> None:
        """COMMIT -> REVEAL: the commit window closed at height `closed_at` (now, when every
        member committed; the block before, at the deadline); the caller saves."""
        rd.phase = REVEAL
        rd.commit_deadline_height = closed_at
        rd.reveal_deadline_height = closed_at + self.get_params(ctx).score_reveal_blocks
        for m in rd.members:
            if m.commitment:
                ctx.emit(
                    Event.of(
                        "tiqe.reveal",
                        result_id=rd.result_id,
                        request_id=rd.request_id,
                        validator=m.validator,
                        deadline=rd.reveal_deadline_height,
                    )
                )

    # --- per block -------------------------------------------------------
    def begin_block(self, ctx: Context) -> None:
        """Close every window whose deadline < height (the block before was its last), in
        (deadline, result id) order: a COMMIT window with a commitment opens REVEAL; any
        other closing window aggregates."""
        deadlines = PrefixStore(self._kv(ctx), keys.DEADLINE)
        due = [k for k, _ in deadlines.iterate(b"", keys.u64(ctx.height))]
        for k in due:
            height, result_id = int.from_bytes(k[:8], "big"), int.from_bytes(k[8:16], "big")
            rd = self.must_get_round(ctx, result_id)
            if rd.phase not in OPEN_PHASES or deadline_of(rd) != height:
                raise RuntimeError(f"deadline index out of step with round {result_id}")
            old = index_keys_of(rd)
            if rd.phase == COMMIT and any(m.commitment for m in rd.members):
                self._open_reveal(ctx, rd, height)
                self._save(ctx, rd, old)
            else:
                self._aggregate(ctx, rd, old)

    def _aggregate(self, ctx: Context, rd: types_pb2.Round, old_keys: list[bytes]) -> None:
        """The round's verdict: quality and fidelity, ratings, penalties, the worker's EMAs; then
        FINAL.

        Every member's weight (power x rating) is read now; both medians use the same weights.
        The round is scored only when the revealed members hold at least `quorum_ppm` of the
        committee's weight (see `has_quorum`); short of it nobody's rating or the worker's EMAs
        move and the result is final unscored. Non-revealers are penalised either way."""
        p = self.get_params(ctx)
        weights = {m.validator: self.weight_of(ctx, m.validator) for m in rd.members}
        for m in rd.members:
            m.weight = str(weights[m.validator])
        revealed = [m for m in rd.members if m.revealed]
        scored = has_quorum(
            sum(weights[m.validator] for m in revealed), sum(weights.values()), len(revealed), len(rd.members),
            p.quorum_ppm,
        )  # fmt: skip
        quality = fidelity = 0
        if scored:
            ws = [weights[m.validator] for m in revealed]
            if sum(ws) == 0:  # every revealer lost its stake meanwhile: count them equally
                ws = [1] * len(revealed)
            addrs = [from_bech32(m.validator) for m in revealed]
            quality = weighted_median([(m.quality_ppm, a, w) for m, a, w in zip(revealed, addrs, ws, strict=True)])
            fidelity = weighted_median([(m.fidelity_ppm, a, w) for m, a, w in zip(revealed, addrs, ws, strict=True)])
            for m in revealed:
                self._record_deviation(ctx, p, m, quality, fidelity)
        elif revealed:
            ctx.emit(
                Event.of(
                    "tiqe.no_quorum",
                    result_id=rd.result_id,
                    request_id=rd.request_id,
                    revealed=len(revealed),
                    members=len(rd.members),
                )
            )
        for m in rd.members:
            if not m.revealed:
                self._no_reveal(ctx, p, rd, m)
        if scored:
            self._judge_worker(ctx, p, rd, quality, fidelity)
        self._finish(ctx, rd, old_keys, quality, fidelity, scored=scored)

    def _record_deviation(
        self, ctx: Context, p: types_pb2.Params, m: types_pb2.Member, quality: int, fidelity: int
    ) -> None:
        """A revealer's deviations on both numbers; an outlier on either earns nothing; its
        rating window takes the larger one (`rating_deviation`)."""
        dq, df = m.quality_ppm - quality, m.fidelity_ppm - fidelity
        m.deviation_ppm = dq
        m.fidelity_deviation_ppm = df
        m.outlier = max(abs(dq), abs(df)) > p.outlier_ppm
        d = rating_deviation(dq, df)
        r = self.get_rating(ctx, m.validator)
        window = [*r.deviations, d][-p.rating_window :]
        del r.deviations[:]
        r.deviations.extend(window)
        r.rating_ppm = rating_of(window, r.rating_ppm, p.min_rating_ppm)
        r.misses_in_row = 0
        r.reveals += 1
        self.set_rating(ctx, r)

    def _no_reveal(self, ctx: Context, p: types_pb2.Params, rd: types_pb2.Round, m: types_pb2.Member) -> None:
        """A member that did not reveal (committed or not): slashed, one more miss in a row;
        max_misses in a row jail it and reset the count."""
        r = self.get_rating(ctx, m.validator)
        r.misses_in_row += 1
        r.misses += 1
        misses = r.misses_in_row
        slashed = jailed_until = 0
        v = self.staking.get_validator(ctx, m.validator)
        if v is not None:  # a validator gone meanwhile has nothing left to slash or jail
            cons = address_bytes(bytes(v.consensus_pubkey))
            slashed = self.slashing.slash(ctx, cons, p.slash_fraction_no_reveal_ppm, NO_REVEAL_REASON)
            if misses >= p.max_misses and self._may_jail(ctx, v):
                jailed_until = ctx.height + p.no_reveal_jail_blocks
                self.slashing.jail(ctx, cons, jailed_until, NO_REVEAL_REASON)
        if misses >= p.max_misses:
            r.misses_in_row = 0
        self.set_rating(ctx, r)
        m.slashed = str(slashed)
        ctx.emit(
            Event.of(
                "tiqe.no_reveal",
                result_id=rd.result_id,
                request_id=rd.request_id,
                validator=m.validator,
                slashed=slashed,
                misses=misses,
                jailed_until=jailed_until,
            )
        )

    def _may_jail(self, ctx: Context, v: Validator) -> bool:
        """Never jail the last validator that is bonded and not jailed: an empty validator
        set would halt the chain (CometBFT refuses it), which is worse than one missed score."""
        return any(
            not x.jailed and x.operator_address != v.operator_address for x in self.staking.bonded_validators(ctx)
        )

    def _judge_worker(
        self, ctx: Context, p: types_pb2.Params, rd: types_pb2.Round, quality: int, fidelity: int
    ) -> None:
        """Move the worker's quality and fidelity EMAs for the model. With >= min_results: a
        quality EMA below min_quality_ppm is degradation (`tiqe.worker_degraded`), a fidelity
        EMA below min_fidelity_ppm is suspected substitution (`tiqe.worker_substituted`).
        Either jails the worker for worker_jail_blocks and slashes its bond; when both fire the
        worker is jailed once and slashed once, by the larger fraction (degradation's on a tie),
        and only the event of the rule that slashed carries the amount. Fidelity never touches
        the result's pass/fail or payment: that is quality's alone."""
        stats = self.registry.get_stats(ctx, rd.worker, rd.model_id)
        ema_q = ema_update(stats.quality_ema_ppm, quality, p.quality_alpha_ppm)
        ema_f = ema_update(stats.fidelity_ema_ppm, fidelity, p.fidelity_alpha_ppm)
        self.registry.set_quality(ctx, rd.worker, rd.model_id, ema_q)
        self.registry.set_fidelity(ctx, rd.worker, rd.model_id, ema_f)
        if stats.results < p.min_results:
            return
        degraded, substituted = ema_q < p.min_quality_ppm, ema_f < p.min_fidelity_ppm
        if not (degraded or substituted):
            return
        by_substitution = substituted and (
            not degraded or p.slash_fraction_substitution_ppm > p.slash_fraction_degradation_ppm
        )
        if by_substitution:
            fraction, reason = p.slash_fraction_substitution_ppm, SUBSTITUTED_REASON
        else:
            fraction, reason = p.slash_fraction_degradation_ppm, DEGRADED_REASON
        until = ctx.height + p.worker_jail_blocks
        self.registry.jail_worker(ctx, rd.worker, until, reason)
        slashed = self.registry.slash_worker(ctx, rd.worker, fraction, reason)
        common = {"result_id": rd.result_id, "worker": rd.worker, "model_id": rd.model_id}
        if degraded:
            ctx.emit(
                Event.of(
                    "tiqe.worker_degraded",
                    **common,
                    quality_ema_ppm=ema_q,
                    slashed=0 if by_substitution else slashed,
                    jailed_until=until,
                )
            )
        if substituted:
            ctx.emit(
                Event.of(
                    "tiqe.worker_substituted",
                    **common,
                    fidelity_ema_ppm=ema_f,
                    slashed=slashed if by_substitution else 0,
                    jailed_until=until,
                    reason=SUBSTITUTED_REASON,
                )
            )

    def _finish(
        self, ctx: Context, rd: types_pb2.Round, old_keys: list[bytes], quality: int, fidelity: int, scored: bool
    ) -> None:
        """FINAL with the verdict; inference records it (and completes the request when it was
        the last result). Passed depends on quality alone."""
        p = self.get_params(ctx)
        rd.phase = FINAL
        rd.quality_ppm = quality
        rd.fidelity_ppm = fidelity
        rd.scored = scored
        rd.passed = quality >= p.pass_ppm if scored else True
        rd.finalized_height = ctx.height
        self._save(ctx, rd, old_keys)
        ctx.emit(
            Event.of(
                "tiqe.finalized",
                result_id=rd.result_id,
                request_id=rd.request_id,
                worker=rd.worker,
                quality_ppm=quality,
                fidelity_ppm=fidelity,
                scored=str(scored).lower(),
                passed=str(rd.passed).lower(),
            )
        )
        self.inference.finalize_result(ctx, rd.result_id, quality_ppm=quality, fidelity_ppm=fidelity, scored=scored)

    # --- queries -----------------------------------------------------------
    def validator_tasks(self, ctx: Context, validator: str) -> list[tuple[types_pb2.Round, str]]:
        """(round, action) of what `validator` must do now, by result id: COMMIT while the
        round collects commitments and it has not committed; REVEAL while the reveal window
        is open and it committed but has not revealed."""
        out: list[tuple[types_pb2.Round, str]] = []
        for result_id in self.open_round_ids(ctx, validator):
            rd = self.must_get_round(ctx, result_id)
            m = member_of(rd, validator)
            if rd.phase == COMMIT and not m.commitment:
                out.append((rd, COMMIT_ACTION))
            elif rd.phase == REVEAL and m.commitment and not m.revealed:
                out.append((rd, REVEAL_ACTION))
        return out
