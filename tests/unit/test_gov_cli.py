"""`polylink tx gov ...` and `polylink query gov ...` against a fake node (no network)."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest
from polylink.bank.v1 import query_pb2 as bank_q
from polylink.bank.v1 import types_pb2 as bank_types
from polylink.gov.v1 import query_pb2 as gov_q
from polylink.gov.v1 import tx_pb2 as gov_tx
from polylink.gov.v1 import types_pb2 as gov_types

import chain.cli.gov_cmds
import chain.cli.tx
from chain.client.client import Client
from chain.core.address import module_address
from chain.core.codec import pack_any
from chain.core.tx import decode_tx
from tests.unit.test_client_cli import COMMANDS, cli
from tests.unit.test_client_client import ALICE, BOB, FakeNode, _value

GOV = module_address("gov")


class GovNode(FakeNode):
    """FakeNode plus bank params and the gov queries."""

    def rpc_abci_query(self, p: dict[str, Any]) -> dict[str, Any]:
        path = p["path"]
        data = bytes.fromhex(p["data"])
        if path == "/polylink.bank.v1.Query/Params":
            return _value(
                bank_q.QueryParamsResponse(params=bank_types.Params(send_enabled=True, max_multisend_outputs=100))
            )
        if path == "/polylink.gov.v1.Query/Proposal":
            pid = gov_q.QueryProposalRequest.FromString(data).proposal_id
            if pid != 1:
                return {"response": {"code": 20, "codespace": "tx", "log": f"proposal {pid}: not found"}}
            return _value(gov_q.QueryProposalResponse(proposal=PROPOSAL))
        if path == "/polylink.gov.v1.Query/Proposals":
            req = gov_q.QueryProposalsRequest.FromString(data)
            self.proposals_status = req.status
            return _value(gov_q.QueryProposalsResponse(proposals=[PROPOSAL]))
        if path == "/polylink.gov.v1.Query/TallyResult":
            tally = gov_types.TallyResult(yes="600", abstain="0", no="300", no_with_veto="0")
            return _value(gov_q.QueryTallyResultResponse(tally=tally))
        if path == "/polylink.gov.v1.Query/UpgradePlan":
            return _value(gov_q.QueryUpgradePlanResponse())
        return super().rpc_abci_query(p)


PROPOSAL = gov_types.Proposal(
    id=1,
    status=gov_types.PROPOSAL_STATUS_VOTING_PERIOD,
    title="more outputs",
    proposer=ALICE.address,
    messages=[
        pack_any(
            gov_tx.MsgUpdateParams(
                authority=GOV, module="bank", params=pack_any(bank_types.Params(max_multisend_outputs=5))
            )
        )
    ],
)


@pytest.fixture
def home(tmp_path: Path) -> str:
    assert cli(["keys", "add", "alice", "--home", str(tmp_path), "--recover", "11" * 32]) == 0
    return str(tmp_path)


@pytest.fixture
def node(monkeypatch: pytest.MonkeyPatch) -> GovNode:
    n = GovNode()
    fake = functools.partial(Client, transport=n.transport())
    monkeypatch.setattr(chain.cli.tx, "Client", fake)
    monkeypatch.setattr(chain.cli.gov_cmds, "Client", fake)
    return n


def test_gov_commands_exist() -> None:
    for cmd in [
        ("tx", "gov", "submit-proposal"),
        ("tx", "gov", "deposit"),
        ("tx", "gov", "vote"),
        ("query", "gov", "proposal"),
        ("query", "gov", "proposals"),
        ("query", "gov", "votes"),
        ("query", "gov", "deposits"),
        ("query", "gov", "tally"),
        ("query", "gov", "params"),
        ("query", "gov", "upgrade-plan"),
    ]:
        assert cmd in COMMANDS


def test_submit_proposal_packs_authority_messages(home: str, node: GovNode, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "tx", "gov", "submit-proposal",
        "--title", "several things", "--summary", "s", "--deposit", "1000upoly",
        "--param-change", "bank", '{"max_multisend_outputs": 5}',
        "--community-spend", BOB.address, "10upoly",
        "--upgrade", "v2", "100", "--upgrade-info", "see x",
        "alice", "--home", home,
    ]  # fmt: skip
    assert cli(argv) == 0
    assert "txhash:" in capsys.readouterr().out
    (raw,) = node.txs.values()
    (a,) = decode_tx(raw).body.messages
    assert a.type_url == "/polylink.gov.v1.MsgSubmitProposal"
    msg = gov_tx.MsgSubmitProposal.FromString(a.value)
    assert (msg.proposer, msg.title, msg.initial_deposit[0].amount) == (ALICE.address, "several things", "1000")
    update = gov_tx.MsgUpdateParams.FromString(msg.messages[0].value)
    params = bank_types.Params.FromString(update.params.value)
    assert (update.authority, update.module) == (GOV, "bank")
    assert (params.send_enabled, params.max_multisend_outputs) == (True, 5)  # merged over the node's params
    spend = gov_tx.MsgCommunityPoolSpend.FromString(msg.messages[1].value)
    assert (spend.authority, spend.recipient, spend.amount[0].amount) == (GOV, BOB.address, "10")
    upgrade = gov_tx.MsgSoftwareUpgrade.FromString(msg.messages[2].value)
    assert (upgrade.authority, upgrade.name, upgrade.height, upgrade.info) == (GOV, "v2", 100, "see x")


def test_text_proposal_deposit_and_vote(home: str, node: GovNode) -> None:
    assert cli(["tx", "gov", "submit-proposal", "--title", "hello", "alice", "--home", home]) == 0
    assert cli(["tx", "gov", "deposit", "1", "5upoly", "alice", "--home", home]) == 0
    assert cli(["tx", "gov", "vote", "1", "no_with_veto", "alice", "--home", home]) == 0
    submit, deposit, vote = (decode_tx(t).body.messages[0] for t in node.txs.values())
    assert not gov_tx.MsgSubmitProposal.FromString(submit.value).messages
    d = gov_tx.MsgDeposit.FromString(deposit.value)
    assert (d.proposal_id, d.depositor, d.amount[0].amount) == (1, ALICE.address, "5")
    v = gov_tx.MsgVote.FromString(vote.value)
    assert (v.proposal_id, v.voter, v.option) == (1, ALICE.address, gov_types.VOTE_OPTION_NO_WITH_VETO)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--param-change", "bank", "{not json"], "not JSON"),
        (["--param-change", "bank", '{"nope": 1}'], "nope"),
        (["--param-change", "nomodule", "{}"], "unknown module"),
        (["--community-spend", "poly1bad", "1upoly"], "invalid address"),
        (["--upgrade", "v2", "soon"], "positive integer"),
    ],
)
def test_submit_proposal_errors(
    home: str, node: GovNode, extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(["tx", "gov", "submit-proposal", "--title", "t", *extra, "alice", "--home", home]) == 1
    assert message in capsys.readouterr().err
    assert not node.txs


def test_queries(node: GovNode, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["query", "gov", "proposal", "1", "-o", "json"]) == 0
    out = json.loads(capsys.readouterr().out)["proposal"]
    assert out["status"] == "PROPOSAL_STATUS_VOTING_PERIOD"
    (update,) = out["messages"]  # decoded, nested params included
    assert (update["@type"], update["module"]) == ("/polylink.gov.v1.MsgUpdateParams", "bank")
    assert update["params"] == {"@type": "/polylink.bank.v1.Params", "max_multisend_outputs": "5"}
    assert cli(["query", "gov", "proposal", "2"]) == 1
    assert "not found" in capsys.readouterr().err
    assert cli(["query", "gov", "proposals", "--status", "voting"]) == 0
    assert capsys.readouterr().out.strip() == "1\tVOTING_PERIOD\tmore outputs"
    assert node.proposals_status == gov_types.PROPOSAL_STATUS_VOTING_PERIOD
    assert cli(["query", "gov", "tally", "1", "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["tally"]["yes"] == "600"
    assert cli(["query", "gov", "upgrade-plan"]) == 0
    assert "no upgrade scheduled" in capsys.readouterr().out
