"""One small function per ABCI method: decode the request, call the app, encode the response.

No protocol logic lives in the app and no state logic lives here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from polylink.tx.v1 import tx_pb2
from tendermint.abci import types_pb2 as abci
from tendermint.crypto import keys_pb2
from tendermint.types import validator_pb2

from chain.app.app import APP_VERSION, PolyLinkApp, TxResult
from chain.core.codec import decode, encode
from chain.core.consensus import Evidence, ValidatorUpdate, Vote
from chain.core.errors import ChainError, ErrInternal
from chain.core.events import Event, is_indexed

log = logging.getLogger("polylink.abci")

SIMULATE_PATH = "/polylink.tx.v1.Service/Simulate"


def _events(events: list[Event]) -> list[abci.Event]:
    return [
        abci.Event(
            type=e.type,
            attributes=[abci.EventAttribute(key=k, value=v, index=is_indexed(e.type, k)) for k, v in e.attributes],
        )
        for e in events
    ]


def _time_ns(ts: Timestamp) -> int:
    return int(ts.seconds) * 1_000_000_000 + int(ts.nanos)


def echo(app: PolyLinkApp, req: abci.RequestEcho) -> abci.ResponseEcho:
    return abci.ResponseEcho(message=req.message)


def flush(app: PolyLinkApp, req: abci.RequestFlush) -> abci.ResponseFlush:
    return abci.ResponseFlush()


def info(app: PolyLinkApp, req: abci.RequestInfo) -> abci.ResponseInfo:
    return abci.ResponseInfo(
        data="polylink",
        version="0.1.0",
        app_version=APP_VERSION,
        last_block_height=app.height,
        last_block_app_hash=app.app_hash,
    )


def init_chain(app: PolyLinkApp, req: abci.RequestInitChain) -> abci.ResponseInitChain:
    max_gas = req.consensus_params.block.max_gas if req.HasField("consensus_params") else -1
    app_hash = app.init_chain(req.chain_id, req.app_state_bytes, req.initial_height, _time_ns(req.time), max_gas)
    # The validator set comes from app state when staking created one; otherwise
    # (no validators in app state) CometBFT keeps genesis.json's.
    return abci.ResponseInitChain(app_hash=app_hash, validators=_updates(app.genesis_validators))


def check_tx(app: PolyLinkApp, req: abci.RequestCheckTx) -> abci.ResponseCheckTx:
    try:
        r = app.check_tx(req.tx, recheck=req.type == abci.RECHECK)
    except Exception as e:  # a bug must not take the mempool down; reject and log
        log.exception("CheckTx failed unexpectedly")
        r = TxResult.error(ErrInternal.wrap(type(e).__name__))
    # No events: CometBFT neither indexes nor returns CheckTx events, and parsing
    # them for every CheckTx and ReCheck was a measurable share of its CPU.
    return abci.ResponseCheckTx(
        code=r.code, log=r.log, gas_wanted=r.gas_wanted, gas_used=r.gas_used, codespace=r.codespace,
    )


def prepare_proposal(app: PolyLinkApp, req: abci.RequestPrepareProposal) -> abci.ResponsePrepareProposal:
    return abci.ResponsePrepareProposal(txs=app.prepare_proposal(list(req.txs), req.max_tx_bytes))


def process_proposal(app: PolyLinkApp, req: abci.RequestProcessProposal) -> abci.ResponseProcessProposal:
    ok = app.process_proposal(list(req.txs))
    return abci.ResponseProcessProposal(
        status=abci.ResponseProcessProposal.ACCEPT if ok else abci.ResponseProcessProposal.REJECT
    )


def _updates(us: list[ValidatorUpdate]) -> list[abci.ValidatorUpdate]:
    return [abci.ValidatorUpdate(pub_key=keys_pb2.PublicKey(ed25519=u.pub_key), power=u.power) for u in us]


_EVIDENCE_KINDS = {abci.DUPLICATE_VOTE: "duplicate_vote", abci.LIGHT_CLIENT_ATTACK: "light_client_attack"}


def finalize_block(app: PolyLinkApp, req: abci.RequestFinalizeBlock) -> abci.ResponseFinalizeBlock:
    # as the Cosmos SDK's x/slashing: only an absent signature misses the block; a precommit for nil
    # (the validator was online and voted, for another round's block or none) counts as signed
    votes = [
        Vote(v.validator.address, v.validator.power, v.block_id_flag != validator_pb2.BLOCK_ID_FLAG_ABSENT)
        for v in req.decided_last_commit.votes
    ]
    evidence = [
        Evidence(_EVIDENCE_KINDS.get(m.type, "unknown"), m.validator.address, m.validator.power, m.height,
                 _time_ns(m.time), m.total_voting_power)
        for m in req.misbehavior
    ]
    r = app.finalize_block(
        req.height, _time_ns(req.time), req.hash, req.proposer_address, list(req.txs), votes, evidence
    )
    return abci.ResponseFinalizeBlock(
        events=_events(r.events),
        tx_results=[
            abci.ExecTxResult(
                code=t.code, data=t.data, log=t.log, gas_wanted=t.gas_wanted, gas_used=t.gas_used,
                events=_events(t.events), codespace=t.codespace,
            )
            for t in r.tx_results
        ],
        app_hash=r.app_hash,
        validator_updates=_updates(r.validator_updates),
    )


def commit(app: PolyLinkApp, req: abci.RequestCommit) -> abci.ResponseCommit:
    return abci.ResponseCommit(retain_height=app.commit())


def query(app: PolyLinkApp, req: abci.RequestQuery) -> abci.ResponseQuery:
    resp: Message
    try:
        if req.path == SIMULATE_PATH:
            sim = decode(tx_pb2.SimulateRequest, req.data)
            r = app.simulate(sim.tx_bytes)
            resp = tx_pb2.SimulateResponse(gas_used=r.gas_used, codespace=r.codespace, code=r.code, log=r.log)
        else:
            resp = app.query(req.path, req.data)
    except ChainError as e:
        return abci.ResponseQuery(code=e.code, codespace=e.codespace, log=e.log, height=app.height)
    except Exception as e:
        log.exception("query %s failed unexpectedly", req.path)
        return abci.ResponseQuery(code=ErrInternal.code, codespace=ErrInternal.codespace, log=str(e), height=app.height)
    return abci.ResponseQuery(value=encode(resp), height=app.height)


def list_snapshots(app: PolyLinkApp, req: abci.RequestListSnapshots) -> abci.ResponseListSnapshots:
    return abci.ResponseListSnapshots()


def offer_snapshot(app: PolyLinkApp, req: abci.RequestOfferSnapshot) -> abci.ResponseOfferSnapshot:
    return abci.ResponseOfferSnapshot(result=abci.ResponseOfferSnapshot.REJECT)


def load_snapshot_chunk(app: PolyLinkApp, req: abci.RequestLoadSnapshotChunk) -> abci.ResponseLoadSnapshotChunk:
    return abci.ResponseLoadSnapshotChunk()


def apply_snapshot_chunk(app: PolyLinkApp, req: abci.RequestApplySnapshotChunk) -> abci.ResponseApplySnapshotChunk:
    return abci.ResponseApplySnapshotChunk(result=abci.ResponseApplySnapshotChunk.ABORT)


def extend_vote(app: PolyLinkApp, req: abci.RequestExtendVote) -> abci.ResponseExtendVote:
    return abci.ResponseExtendVote()


def verify_vote_extension(app: PolyLinkApp, req: abci.RequestVerifyVoteExtension) -> abci.ResponseVerifyVoteExtension:
    return abci.ResponseVerifyVoteExtension(status=abci.ResponseVerifyVoteExtension.ACCEPT)


# The request's class is picked at run time by the oneof field name, a pairing
# a Callable type cannot express; hence Any for the request argument.
Handler = Callable[[PolyLinkApp, Any], Message]

# oneof field name of Request (and of Response) -> handler
HANDLERS: dict[str, Handler] = {
    "echo": echo, "flush": flush, "info": info, "init_chain": init_chain, "query": query,
    "check_tx": check_tx, "commit": commit, "list_snapshots": list_snapshots,
    "offer_snapshot": offer_snapshot, "load_snapshot_chunk": load_snapshot_chunk,
    "apply_snapshot_chunk": apply_snapshot_chunk, "prepare_proposal": prepare_proposal,
    "process_proposal": process_proposal, "extend_vote": extend_vote,
    "verify_vote_extension": verify_vote_extension, "finalize_block": finalize_block,
}
