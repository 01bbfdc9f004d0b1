"""Staking and slashing on the real localnet: validators come from app state (gentxs);
a full node joins and becomes a validator; delegations move power; unbonding waits;
a validator that stops signing is jailed, slashed, removed, and comes back after MsgUnjail."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable, Iterator

import pytest
from polylink.base.v1 import coin_pb2
from polylink.staking.v1 import query_pb2 as staking_q
from polylink.staking.v1 import tx_pb2 as staking_tx

from chain.client.rpc import CometRPC
from chain.client.sync import SyncClient
from chain.localnet.net import Localnet
from chain.localnet.ports import find_free_base_port
from tests.e2e.chainutil import heights, unjail, wait_all_at

pytestmark = pytest.mark.e2e
POWER_REDUCTION = 1_000_000
GENESIS_POWER = 10


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Localnet]:
    n = Localnet(tmp_path_factory.mktemp("staking"), nodes=4, base_port=find_free_base_port(5), accounts=3)
    try:
        n.up()
        yield n
    finally:
        n.down()
        assert list(n.pids()) == []


def cometbft_validators(net: Localnet, node: int = 0) -> dict[str, int]:
    """CometBFT's own validator set: base64 pubkey -> voting power."""

    async def run() -> dict[str, int]:
        async with CometRPC(net.rpc_url(node)) as rpc:
            res = await rpc.call("validators", {"per_page": "100"})
        return {v["pub_key"]["value"]: int(v["voting_power"]) for v in res["validators"]}

    return asyncio.run(run())


def node_pubkey(net: Localnet, i: int) -> bytes:
    data = json.loads((net.node_home(i) / "config" / "priv_validator_key.json").read_text())
    return base64.b64decode(data["pub_key"]["value"])


def wait_for(cond: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.3)


def validator(c: SyncClient, operator: str) -> staking_q.QueryValidatorResponse:
    return c.query(
        "/polylink.staking.v1.Query/Validator",
        staking_q.QueryValidatorRequest(validator_address=operator),
        staking_q.QueryValidatorResponse,
    )


def upoly(n: int) -> coin_pb2.Coin:
    return coin_pb2.Coin(denom="upoly", amount=str(n))


def test_genesis_validators_come_from_staking(net: Localnet) -> None:
    vals = cometbft_validators(net)
    assert vals == {base64.b64encode(node_pubkey(net, i)).decode(): GENESIS_POWER for i in range(4)}
    with SyncClient(net.rpc_url(0), keyring=net.keyring()) as c:
        for name in net.validator_keys:
            v = validator(c, net.keyring().show(name).address).validator
            assert int(v.tokens) == GENESIS_POWER * POWER_REDUCTION and not v.jailed


def test_full_node_joins_becomes_validator_and_delegations_move_power(net: Localnet) -> None:
    i = net.add_full_node()
    wait_all_at(net, max(heights(net)))  # the new node caught up
    kr = net.keyring()
    op, delegator = net.user_keys[0], net.user_keys[1]
    op_addr, del_addr = kr.show(op).address, kr.show(delegator).address
    pk = node_pubkey(net, i)
    pk64 = base64.b64encode(pk).decode()
    with SyncClient(net.rpc_url(i), keyring=kr) as c:
        msg = staking_tx.MsgCreateValidator(
            operator_address=op_addr,
            consensus_pubkey=pk,
            self_bond=upoly(5 * POWER_REDUCTION),
            commission_ppm=50_000,
            moniker="node4",
            min_self_delegation="1",
        )
        r = c.send_and_wait([msg], op, gas=400_000, timeout=60)
        assert r.code == 0, r.log
        wait_for(
            lambda: cometbft_validators(net).get(pk64) == 5, "the new validator in CometBFT's set with power 5", 30
        )

        r = c.send_and_wait(
            [
                staking_tx.MsgDelegate(
                    delegator_address=del_addr, validator_address=op_addr, amount=upoly(3 * POWER_REDUCTION)
                )
            ],
            delegator,
            gas=400_000,
            timeout=60,
        )
        assert r.code == 0, r.log
        wait_for(lambda: cometbft_validators(net).get(pk64) == 8, "power 8 after a 3 POLY delegation", 30)

        before = c.balance(del_addr)
        r = c.send_and_wait(
            [
                staking_tx.MsgUndelegate(
                    delegator_address=del_addr, validator_address=op_addr, amount=upoly(2 * POWER_REDUCTION)
                )
            ],
            delegator,
            gas=400_000,
            fee=4000,
            timeout=60,
        )
        assert r.code == 0, r.log
        wait_for(lambda: cometbft_validators(net).get(pk64) == 6, "power 6 after undelegating 2 POLY", 30)
        completion = staking_tx.MsgUndelegateResponse.FromString(r.data).completion_height
        assert completion > r.height
        # (height, balance) pairs read at a stable height: unchanged until the
        # unbonding completes, then exactly 2 POLY more
        seen: dict[int, int] = {}
        deadline = time.monotonic() + 90
        while not seen or max(seen) < completion + 1:
            assert time.monotonic() < deadline, f"no height past {completion}: {sorted(seen)}"
            h1 = c.status().latest_height
            b = c.balance(del_addr)
            if c.status().latest_height == h1:
                seen[h1] = b
            time.sleep(0.2)
        for h, b in seen.items():
            want = before - 4000 + (2 * POWER_REDUCTION if h >= completion else 0)
            assert b == want, f"at height {h} (completion {completion}): {b} != {want}"
        assert any(h < completion for h in seen) and any(h >= completion for h in seen)


def test_downtime_jails_slashes_and_unjail_restores(net: Localnet) -> None:
    victim = 3
    kr = net.keyring()
    op = net.validator_keys[victim]
    op_addr = kr.show(op).address
    pk64 = base64.b64encode(node_pubkey(net, victim)).decode()
    assert cometbft_validators(net).get(pk64) == GENESIS_POWER
    with SyncClient(net.rpc_url(0), keyring=kr) as c:
        tokens_before = int(validator(c, op_addr).validator.tokens)
        net.stop_node(victim)
        h0 = max(heights(net))
        wait_for(lambda: validator(c, op_addr).validator.jailed, "the stopped validator to be jailed", 120)
        v = validator(c, op_addr).validator
        # slashed slash_fraction_downtime (1%) of its power at the infraction
        assert int(v.tokens) == tokens_before - GENESIS_POWER * POWER_REDUCTION * 10_000 // 1_000_000
        wait_for(lambda: pk64 not in cometbft_validators(net), "CometBFT to drop the jailed validator", 30)
        assert max(heights(net)) > h0 + 5  # 3 of 4 validators kept the chain going
        net.start_node(victim)
        wait_all_at(net, max(heights(net)))
        unjail(net, victim, timeout=90, via=victim)  # retries while the jail period runs
        want = int(validator(c, op_addr).validator.tokens) // POWER_REDUCTION
        wait_for(
            lambda: cometbft_validators(net).get(pk64) == want, "the unjailed validator back in CometBFT's set", 30
        )
        assert not validator(c, op_addr).validator.jailed
