"""gov inside the app: signed user txs, the default gas limit, queries, and the upgrade halt.

The app is PolyLinkApp with its module list reduced to auth + bank + gov (over
a fake staking keeper), so this test does not depend on how staking is wired.
"""

from __future__ import annotations

import hashlib
import json

import pytest
from google.protobuf.message import Message
from polylink.bank.v1 import types_pb2 as bank_types
from polylink.gov.v1 import query_pb2, tx_pb2, types_pb2

from chain.app.app import BlockResult, PolyLinkApp
from chain.app.router import MsgRouter, QueryRouter
from chain.client.signer import Signer
from chain.client.tx_builder import DEFAULT_GAS, build_tx
from chain.core.codec import encode, pack_any
from chain.core.errors import ErrUnauthorized
from chain.modules.gov.errors import ErrInvalidAuthority, UpgradeHalt
from chain.modules.gov.keeper import GovKeeper
from chain.modules.gov.module import GovModule
from tests.unit.test_gov_keeper import FakeStaking, coins

CHAIN = "gov-app-1"
ALICE = Signer(hashlib.sha256(b"gov-alice").digest())


def gov_app() -> tuple[PolyLinkApp, GovKeeper]:
    app = PolyLinkApp(None, invariant_period=1)
    staking = FakeStaking()
    staking.add_validator(ALICE.address, 1000)  # alice operates the only validator
    gk = GovKeeper(app.m.auth, app.m.bank, staking)
    app.m.all = [m for m in app.m.all if m.name in ("auth", "bank")] + [GovModule(gk)]
    app.m.msgs = MsgRouter(app.m.all)
    app.m.queries = QueryRouter(app.m.all)
    app.m.params = {m.name: spec for m in app.m.all if (spec := m.params_spec()) is not None}
    gk.bind(app.m.msgs, app.m.params)
    genesis = {
        "bank": {"balances": [{"address": ALICE.address, "coins": [{"denom": "upoly", "amount": "100000000"}]}]},
        "gov": {"params": {"min_deposit": [{"denom": "upoly", "amount": "1000"}], "voting_period_blocks": "2"}},
    }
    app.init_chain(CHAIN, json.dumps(genesis).encode(), 1, 0, -1)
    return app, gk


class Chain:
    def __init__(self) -> None:
        self.app, self.gk = gov_app()
        self.seq = 0
        self.height = 0

    def block(self, *msgs: Message, sequences: list[int] | None = None) -> BlockResult:
        seqs = sequences or list(range(self.seq, self.seq + len(msgs)))
        txs = [
            build_tx([m], ALICE, chain_id=CHAIN, sequence=s, fee=2000, gas_limit=DEFAULT_GAS)
            for m, s in zip(msgs, seqs, strict=True)
        ]
        self.seq = max(seqs, default=self.seq - 1) + 1
        self.height += 1
        r = self.app.finalize_block(self.height, self.height * 10**9, b"h%d" % self.height, b"", txs)
        self.app.commit()
        return r


def test_user_txs_carrying_authority_messages_are_unauthorized() -> None:
    c = Chain()
    bank_params = pack_any(bank_types.Params(send_enabled=False, max_multisend_outputs=1))
    r = c.block(
        tx_pb2.MsgUpdateParams(authority=c.gk.authority, module="bank", params=bank_params),
        tx_pb2.MsgUpdateParams(authority=ALICE.address, module="bank", params=bank_params),
        tx_pb2.MsgSoftwareUpgrade(authority=ALICE.address, name="v2", height=100),
        sequences=[0, 0, 1],  # the first fails before the ante handler: its sequence is not used
    )
    codes = [(t.codespace, t.code) for t in r.tx_results]
    assert codes == [
        (ErrUnauthorized.codespace, ErrUnauthorized.code),
        (ErrInvalidAuthority.codespace, ErrInvalidAuthority.code),
        (ErrInvalidAuthority.codespace, ErrInvalidAuthority.code),
    ]
    assert c.app.m.bank.get_params(c.app.query_context()).send_enabled


def test_proposal_through_signed_txs_then_upgrade_halt() -> None:
    c = Chain()
    upgrade = tx_pb2.MsgSoftwareUpgrade(authority=c.gk.authority, name="v2", height=6, info="binary at x")
    submit = tx_pb2.MsgSubmitProposal(
        proposer=ALICE.address, messages=[pack_any(upgrade)], initial_deposit=coins(1000), title="upgrade to v2"
    )
    r = c.block(submit)  # height 1: voting ends at 3
    assert r.tx_results[0].code == 0, r.tx_results[0].log
    assert r.tx_results[0].gas_used < DEFAULT_GAS // 2
    pid = tx_pb2.MsgSubmitProposalResponse.FromString(r.tx_results[0].data).proposal_id
    r = c.block(tx_pb2.MsgVote(proposal_id=pid, voter=ALICE.address, option=types_pb2.VOTE_OPTION_YES))
    assert r.tx_results[0].code == 0, r.tx_results[0].log
    tally = query_pb2.QueryTallyResultResponse()
    tally.CopyFrom(
        c.app.query("/polylink.gov.v1.Query/TallyResult", encode(query_pb2.QueryTallyResultRequest(proposal_id=pid)))
    )
    assert tally.tally.yes == "1000"
    r = c.block()  # height 3: tally, execute
    assert any(e.type == "proposal_finished" for e in r.events)
    resp = c.app.query("/polylink.gov.v1.Query/Proposal", encode(query_pb2.QueryProposalRequest(proposal_id=pid)))
    assert isinstance(resp, query_pb2.QueryProposalResponse)
    assert resp.proposal.status == types_pb2.PROPOSAL_STATUS_PASSED
    plan = c.app.query("/polylink.gov.v1.Query/UpgradePlan", encode(query_pb2.QueryUpgradePlanRequest()))
    assert isinstance(plan, query_pb2.QueryUpgradePlanResponse) and plan.plan.name == "v2"
    c.block()
    c.block()  # height 5
    with pytest.raises(UpgradeHalt, match="v2"):
        c.block()  # height 6: BeginBlock halts the node
    assert c.app.height == 5
    exported = c.app.export_genesis()
    assert exported["gov"]["upgrade_plan"] == {"name": "v2", "height": "6", "info": "binary at x"}
