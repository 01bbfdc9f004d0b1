"""Governance on the real localnet: a parameter change passes with the stake of 3 of 4
validators and is in force at once; no quorum, veto and a failing execution each end as
the rules say, with deposits refunded or burned, and the chain goes on."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from polylink.bank.v1 import query_pb2 as bank_q
from polylink.bank.v1 import types_pb2 as bank_types
from polylink.base.v1 import coin_pb2
from polylink.gov.v1 import query_pb2 as gov_q
from polylink.gov.v1 import tx_pb2 as gov_tx
from polylink.gov.v1 import types_pb2 as gov_types

from chain.client.errors import TxRejectedError
from chain.client.msgs import msg_multi_send
from chain.client.sync import SyncClient
from chain.core.address import module_address
from chain.core.codec import pack_any
from chain.localnet.net import Localnet
from chain.localnet.ports import find_free_base_port
from tests.e2e.chainutil import heights

pytestmark = pytest.mark.e2e
DEPOSIT = 10_000_000  # the localnet's min_deposit
GOV = module_address("gov")
S = gov_types.ProposalStatus


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Localnet]:
    n = Localnet(tmp_path_factory.mktemp("gov"), nodes=4, base_port=find_free_base_port(4), accounts=2)
    try:
        n.up()
        yield n
    finally:
        n.down()
        assert list(n.pids()) == []


def upoly(n: int) -> coin_pb2.Coin:
    return coin_pb2.Coin(denom="upoly", amount=str(n))


def proposal(c: SyncClient, pid: int) -> gov_types.Proposal:
    return c.query(
        "/polylink.gov.v1.Query/Proposal", gov_q.QueryProposalRequest(proposal_id=pid), gov_q.QueryProposalResponse
    ).proposal


def bank_params(c: SyncClient) -> bank_types.Params:
    return c.query("/polylink.bank.v1.Query/Params", bank_q.QueryParamsRequest(), bank_q.QueryParamsResponse).params


def test_param_change_no_quorum_veto_and_failed_execution(net: Localnet) -> None:
    kr = net.keyring()
    proposer = net.user_keys[0]
    prop_addr = kr.show(proposer).address
    vals = net.validator_keys
    with SyncClient(net.rpc_url(0), keyring=kr) as c:
        old = bank_params(c)
        assert old.max_multisend_outputs != 5
        new = bank_types.Params()
        new.CopyFrom(old)
        new.max_multisend_outputs = 5
        contents = {
            "param change": [gov_tx.MsgUpdateParams(authority=GOV, module="bank", params=pack_any(new))],
            "no quorum": [],
            "veto": [],
            "failing execution": [
                gov_tx.MsgCommunityPoolSpend(authority=GOV, recipient=prop_addr, amount=[upoly(10**15)])
            ],
        }
        supply0 = c.total_supply().amount_of("upoly")
        balance0 = c.balance(prop_addr)
        ids: dict[str, int] = {}
        for title, msgs in contents.items():
            msg = gov_tx.MsgSubmitProposal(
                proposer=prop_addr,
                messages=[pack_any(m) for m in msgs],
                initial_deposit=[upoly(DEPOSIT)],
                title=title,
                summary=f"e2e: {title}",
            )
            r = c.send_and_wait([msg], proposer, gas=400_000, fee=4000, timeout=60)
            assert r.code == 0, r.log
            ids[title] = gov_tx.MsgSubmitProposalResponse.FromString(r.data).proposal_id
            assert proposal(c, ids[title]).status == S.PROPOSAL_STATUS_VOTING_PERIOD

        Y, N, V = gov_types.VOTE_OPTION_YES, gov_types.VOTE_OPTION_NO, gov_types.VOTE_OPTION_NO_WITH_VETO
        votes = {
            "param change": [(vals[0], Y), (vals[1], Y), (vals[2], Y)],  # 30 of 40 power
            "no quorum": [(vals[0], Y)],  # 10 of 40 < 33.4%
            "veto": [(vals[0], V), (vals[1], V), (vals[2], Y)],  # veto 20 of 30 >= 33.4%
            "failing execution": [(vals[0], Y), (vals[1], Y), (vals[2], N)],
        }
        # one tx per validator, holding all its votes: nine votes sent one tx at a time took
        # up to two blocks each on a loaded CI machine, and the voting period (20 blocks) of
        # the first proposals ran out before the last vote
        by_voter: dict[str, list[gov_tx.MsgVote]] = {}
        for title, vs in votes.items():
            for key, option in vs:
                msg = gov_tx.MsgVote(proposal_id=ids[title], voter=kr.show(key).address, option=option)
                by_voter.setdefault(key, []).append(msg)
        for key, msgs in by_voter.items():
            r = c.send_and_wait(msgs, key, gas=300_000 * len(msgs), fee=3000 * len(msgs), timeout=60)
            assert r.code == 0, r.log

        end = max(proposal(c, pid).voting_end_height for pid in ids.values())
        deadline = time.monotonic() + 120
        while c.status().latest_height <= end + 1:
            assert time.monotonic() < deadline
            time.sleep(0.3)

        p = {t: proposal(c, pid) for t, pid in ids.items()}
        assert p["param change"].status == S.PROPOSAL_STATUS_PASSED
        assert bank_params(c).max_multisend_outputs == 5  # in force
        outs = [(kr.show(net.user_keys[1]).address, "1upoly")] * 6
        with pytest.raises(TxRejectedError) as e:
            c.send([msg_multi_send(prop_addr, outs)], proposer)
        assert (e.value.codespace, e.value.code) == ("bank", 7)

        assert p["no quorum"].status == S.PROPOSAL_STATUS_REJECTED
        assert p["veto"].status == S.PROPOSAL_STATUS_REJECTED
        assert p["failing execution"].status == S.PROPOSAL_STATUS_FAILED
        assert p["failing execution"].failed_reason
        # deposits: refunded except the vetoed one, which is burned
        fees = 4 * 4000
        assert c.balance(prop_addr) == balance0 - fees - DEPOSIT
        assert c.total_supply().amount_of("upoly") == supply0 - DEPOSIT
        assert c.balance(GOV) == 0
        h = max(heights(net))
        time.sleep(2)
        assert max(heights(net)) > h  # the chain went on
