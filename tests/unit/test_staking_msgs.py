"""staking messages (stateless and stateful checks, handlers), queries, and the CLI (no network)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.message import Message
from polylink.base.v1 import coin_pb2
from polylink.base.v1 import query_pb2 as base_q
from polylink.staking.v1 import query_pb2 as q
from polylink.staking.v1 import tx_pb2, types_pb2

from chain.app.module import MsgRoute
from chain.core.codec import decode, type_url
from chain.core.context import ExecMode
from chain.core.errors import ChainError
from chain.core.tx import decode_tx
from chain.modules.staking import errors
from tests.unit.staking_env import Env, addr, make_params, pubkey
from tests.unit.test_client_cli import _with_node, cli
from tests.unit.test_client_client import ALICE, FakeNode, _value

POLY = 1_000_000
A, B, C = addr("a"), addr("b"), addr("c")


def coin(n: int, denom: str = "upoly") -> coin_pb2.Coin:
    return coin_pb2.Coin(denom=denom, amount=str(n))


def create_msg(**kw: Any) -> tx_pb2.MsgCreateValidator:
    m = tx_pb2.MsgCreateValidator(
        operator_address=A, consensus_pubkey=pubkey("a"), self_bond=coin(10 * POLY), commission_ppm=100_000,
        moniker="a", min_self_delegation=str(POLY),
    )
    for k, v in kw.items():
        if k == "self_bond":
            m.self_bond.CopyFrom(v)
        else:
            setattr(m, k, v)
    return m


class Chain:
    """Env + the module's message routes, run the way the app runs a tx's messages."""

    def __init__(self, **params: int) -> None:
        self.e = Env({A: 100 * POLY, B: 100 * POLY, C: 100 * POLY}, make_params(**params))
        self.routes: dict[str, MsgRoute] = {type_url(r.cls): r for r in self.e.module.msg_routes()}

    def deliver(self, msg: Message) -> Message:
        route = self.routes[type_url(msg)]
        route.validate_basic(msg)
        return self.e.run(lambda ctx: route.handler(ctx, msg))

    def fails(self, msg: Message, kind: Any) -> None:
        with pytest.raises(ChainError) as ei:
            self.deliver(msg)
        assert ei.value.kind is kind, ei.value.log

    def query(self, method: str, req: Message) -> Any:
        (route,) = [r for r in self.e.module.query_routes() if r.path.endswith("/" + method)]
        return route.handler(self.e.ctx(ExecMode.QUERY), decode(route.request_cls, req.SerializeToString()))


@pytest.mark.parametrize(
    ("msg", "kind"),
    [
        (create_msg(consensus_pubkey=b"\x01" * 33), errors.ErrInvalidConsPubKey),
        (create_msg(commission_ppm=1_000_001), errors.ErrCommissionTooHigh),
        (create_msg(min_self_delegation="0"), errors.ErrInvalidMinSelfDelegation),
        (create_msg(min_self_delegation="-5"), errors.ErrInvalidMinSelfDelegation),
        (create_msg(min_self_delegation=str(11 * POLY)), errors.ErrSelfBondBelowMin),
        (create_msg(self_bond=coin(10, "uabc")), errors.ErrBadDenom),
        (create_msg(self_bond=coin(0)), errors.ErrInvalidAmount),
        (create_msg(moniker=""), errors.ErrInvalidMoniker),
        (create_msg(moniker="m" * 71), errors.ErrInvalidMoniker),
        (tx_pb2.MsgEditValidator(operator_address=A, commission_ppm=2_000_000, commission_set=True),
         errors.ErrCommissionTooHigh),
        (tx_pb2.MsgDelegate(delegator_address=B, validator_address=A, amount=coin(0)), errors.ErrInvalidAmount),
        (tx_pb2.MsgUndelegate(delegator_address=B, validator_address=A, amount=coin(1, "uabc")), errors.ErrBadDenom),
        (tx_pb2.MsgRedelegate(delegator_address=B, src_validator_address=A, dst_validator_address=A, amount=coin(1)),
         errors.ErrSelfRedelegation),
    ],
)
def test_stateless_checks(msg: Message, kind: Any) -> None:
    Chain().fails(msg, kind)


def test_bad_addresses_are_refused() -> None:
    with pytest.raises(ChainError, match="invalid address"):
        Chain().deliver(create_msg(operator_address="poly1nope"))


def test_create_edit_delegate_undelegate_redelegate() -> None:
    c = Chain(unbonding_blocks=4)
    c.deliver(create_msg())
    c.fails(create_msg(), errors.ErrValidatorExists)
    c.fails(create_msg(operator_address=B), errors.ErrPubKeyTaken)
    c.deliver(create_msg(operator_address=B, consensus_pubkey=pubkey("b"), moniker="b"))
    # commission: +10% at most per edit, down freely; empty moniker = unchanged
    c.fails(tx_pb2.MsgEditValidator(operator_address=A, commission_ppm=200_001, commission_set=True),
            errors.ErrCommissionChangeTooLarge)
    c.deliver(tx_pb2.MsgEditValidator(operator_address=A, commission_ppm=200_000, commission_set=True))
    c.deliver(tx_pb2.MsgEditValidator(operator_address=A, moniker="alpha"))
    v = c.e.validator(A)
    assert (v.commission_ppm, v.moniker) == (200_000, "alpha")
    c.deliver(tx_pb2.MsgEditValidator(operator_address=A, commission_ppm=0, commission_set=True))
    assert c.e.validator(A).commission_ppm == 0
    c.fails(tx_pb2.MsgEditValidator(operator_address=C, moniker="x"), errors.ErrNoValidator)
    r = c.deliver(tx_pb2.MsgDelegate(delegator_address=C, validator_address=A, amount=coin(5 * POLY)))
    assert isinstance(r, tx_pb2.MsgDelegateResponse) and r.shares == str(5 * POLY * 10**6)
    c.e.end_block()
    h = c.e.height
    r = c.deliver(tx_pb2.MsgUndelegate(delegator_address=C, validator_address=A, amount=coin(POLY)))
    assert isinstance(r, tx_pb2.MsgUndelegateResponse)
    assert (r.completion_height, r.amount.amount) == (h + 4, str(POLY))
    r = c.deliver(tx_pb2.MsgRedelegate(delegator_address=C, src_validator_address=A, dst_validator_address=B,
                                       amount=coin(POLY)))
    assert isinstance(r, tx_pb2.MsgRedelegateResponse) and r.completion_height == h + 4
    c.fails(tx_pb2.MsgUndelegate(delegator_address=C, validator_address=A, amount=coin(4 * POLY)),
            errors.ErrInsufficientDelegation)
    actions = [dict(ev.attributes).get("action") for ev in c.e.events if getattr(ev, "type", "") == "message"]
    assert actions == ["create_validator", "create_validator", "edit_validator", "edit_validator", "edit_validator",
                       "delegate", "undelegate", "redelegate"]
    c.e.end_block()
    assert c.e.invariants() == []


def test_queries() -> None:
    c = Chain(max_validators=1)
    c.deliver(create_msg())
    c.deliver(create_msg(operator_address=B, consensus_pubkey=pubkey("b"), moniker="b", self_bond=coin(3 * POLY)))
    c.deliver(create_msg(operator_address=C, consensus_pubkey=pubkey("c"), moniker="c", self_bond=coin(2 * POLY)))
    c.deliver(tx_pb2.MsgDelegate(delegator_address=C, validator_address=A, amount=coin(POLY)))
    c.e.end_block()
    c.deliver(tx_pb2.MsgUndelegate(delegator_address=C, validator_address=A, amount=coin(POLY // 2)))
    c.deliver(tx_pb2.MsgRedelegate(delegator_address=C, src_validator_address=A, dst_validator_address=B,
                                   amount=coin(POLY // 4)))
    c.e.end_block()
    assert c.query("Validator", q.QueryValidatorRequest(validator_address=A)).validator.moniker == "a"
    with pytest.raises(ChainError, match="not found"):
        c.query("Validator", q.QueryValidatorRequest(validator_address=addr("zz")))
    every = c.query("Validators", q.QueryValidatorsRequest()).validators
    assert sorted(v.moniker for v in every) == ["a", "b", "c"]
    bonded = c.query("Validators", q.QueryValidatorsRequest(status=types_pb2.BONDED)).validators
    assert [v.moniker for v in bonded] == ["a"]
    unbonded = c.query("Validators", q.QueryValidatorsRequest(status=types_pb2.UNBONDED))
    assert sorted(v.moniker for v in unbonded.validators) == ["b", "c"]
    # pages of one, following next_key, with the filter
    page1 = c.query("Validators", q.QueryValidatorsRequest(status=types_pb2.UNBONDED,
                                                           pagination=base_q.PageRequest(limit=1)))
    assert len(page1.validators) == 1 and page1.pagination.next_key
    page2 = c.query("Validators", q.QueryValidatorsRequest(
        status=types_pb2.UNBONDED, pagination=base_q.PageRequest(key=page1.pagination.next_key, limit=1)))
    assert len(page2.validators) == 1 and not page2.pagination.next_key
    assert {page1.validators[0].moniker, page2.validators[0].moniker} == {"b", "c"}
    d = c.query("Delegation", q.QueryDelegationRequest(delegator_address=C, validator_address=A)).delegation_response
    assert d.balance.amount == str(POLY // 4)
    dd = c.query("DelegatorDelegations", q.QueryDelegatorDelegationsRequest(delegator_address=C))
    assert sorted((x.delegation.validator, x.balance.amount) for x in dd.delegation_responses) == sorted(
        [(A, str(POLY // 4)), (B, str(POLY // 4)), (C, str(2 * POLY))])
    vd = c.query("ValidatorDelegations", q.QueryValidatorDelegationsRequest(validator_address=A))
    assert sorted(x.delegation.delegator for x in vd.delegation_responses) == sorted([A, C])
    ub = c.query("UnbondingDelegations", q.QueryUnbondingDelegationsRequest(delegator_address=C))
    assert [u.entries[0].balance for u in ub.unbonding_delegations] == [str(POLY // 2)]
    rd = c.query("Redelegations", q.QueryRedelegationsRequest(delegator_address=C))
    assert [(r.src_validator, r.dst_validator) for r in rd.redelegations] == [(A, B)]
    pool = c.query("Pool", q.QueryPoolRequest())
    assert (pool.bonded_tokens, pool.not_bonded_tokens) == (str(10 * POLY + POLY // 4),
                                                            str(3 * POLY + 2 * POLY + POLY // 4 + POLY // 2))
    assert c.query("Params", q.QueryParamsRequest()).params.max_validators == 1


# --- CLI ---------------------------------------------------------------------
class StakingNode(FakeNode):
    """The CLI tests' fake node, answering staking queries from a real in-memory chain."""

    def __init__(self, chain: Chain) -> None:
        super().__init__()
        self.chain = chain

    def rpc_abci_query(self, p: dict[str, Any]) -> dict[str, Any]:
        path = p["path"]
        if not path.startswith("/polylink.staking.v1.Query/"):
            return super().rpc_abci_query(p)
        (route,) = [r for r in self.chain.e.module.query_routes() if r.path == path]
        try:
            resp = route.handler(self.chain.e.ctx(ExecMode.QUERY), decode(route.request_cls, bytes.fromhex(p["data"])))
        except ChainError as e:
            return {"response": {"code": e.code, "codespace": e.codespace, "log": e.log}}
        return _value(resp)


@pytest.fixture
def home(tmp_path: Path) -> str:
    assert cli(["keys", "add", "alice", "--home", str(tmp_path), "--recover", "11" * 32]) == 0
    return str(tmp_path)


def _sent(node: FakeNode) -> Any:
    (raw,) = node.txs.values()
    (anymsg,) = decode_tx(raw).body.messages
    return anymsg


def test_cli_create_validator_from_pubkey_file(
    home: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    node = StakingNode(Chain())
    _with_node(monkeypatch, node)
    pk = pubkey("node0")
    key_file = tmp_path / "priv_validator_key.json"
    key_file.write_text(json.dumps({"pub_key": {"type": "tendermint/PubKeyEd25519",
                                                "value": base64.b64encode(pk).decode()}}))
    assert cli(["tx", "staking", "create-validator", "alice", "5000000upoly", "--pubkey-file", str(key_file),
                "--moniker", "n0", "--home", home, "--gas", "400000"]) == 0
    anymsg = _sent(node)
    assert anymsg.type_url == "/polylink.staking.v1.MsgCreateValidator"
    m = tx_pb2.MsgCreateValidator.FromString(anymsg.value)
    assert (m.operator_address, m.consensus_pubkey, m.self_bond.amount, m.moniker, m.commission_ppm,
            m.min_self_delegation) == (ALICE.address, pk, "5000000", "n0", 100_000, "1")


@pytest.mark.parametrize(
    ("argv", "url"),
    [
        (["delegate", "alice", B, "7"], "MsgDelegate"),
        (["undelegate", "alice", B, "7upoly"], "MsgUndelegate"),
        (["redelegate", "alice", B, C, "7upoly"], "MsgRedelegate"),
        (["edit-validator", "alice", "--commission-ppm", "0"], "MsgEditValidator"),
    ],
)
def test_cli_txs(argv: list[str], url: str, home: str, monkeypatch: pytest.MonkeyPatch) -> None:
    node = StakingNode(Chain())
    _with_node(monkeypatch, node)
    assert cli(["tx", "staking", *argv, "--home", home]) == 0
    anymsg = _sent(node)
    assert anymsg.type_url == "/polylink.staking.v1." + url
    if url == "MsgEditValidator":
        m = tx_pb2.MsgEditValidator.FromString(anymsg.value)
        assert (m.operator_address, m.commission_set, m.commission_ppm) == (ALICE.address, True, 0)
    else:
        assert b"7" in anymsg.value


def test_cli_tx_errors(home: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _with_node(monkeypatch, StakingNode(Chain()))
    assert cli(["tx", "staking", "delegate", "alice", B, "7uabc", "--home", home]) == 1
    assert "upoly" in capsys.readouterr().err
    assert cli(["tx", "staking", "create-validator", "alice", "5upoly", "--pubkey", "AAAA", "--moniker", "m",
                "--home", home]) == 1
    assert "32 bytes" in capsys.readouterr().err
    assert cli(["tx", "staking", "edit-validator", "alice", "--home", home]) == 1
    assert "nothing to change" in capsys.readouterr().err


def test_cli_queries(home: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    c = Chain()
    c.deliver(create_msg())
    c.deliver(tx_pb2.MsgDelegate(delegator_address=B, validator_address=A, amount=coin(POLY)))
    c.e.end_block()
    c.deliver(tx_pb2.MsgUndelegate(delegator_address=B, validator_address=A, amount=coin(POLY // 2)))
    c.e.end_block()
    _with_node(monkeypatch, StakingNode(c))
    capsys.readouterr()

    def js(*argv: str) -> Any:
        assert cli(["query", "staking", *argv, "--home", home, "-o", "json"]) == 0
        return json.loads(capsys.readouterr().out)

    assert js("validator", A)["validator"]["status"] == "BONDED"
    assert [v["moniker"] for v in js("validators", "--status", "bonded")["validators"]] == ["a"]
    assert js("validators", "--status", "unbonded")["validators"] == []
    assert js("delegation", B, A)["delegation_response"]["balance"]["amount"] == str(POLY // 2)
    assert len(js("delegations", B)["delegation_responses"]) == 1
    assert len(js("validator-delegations", A)["delegation_responses"]) == 2
    assert js("unbonding", B)["unbonding_delegations"][0]["entries"][0]["balance"] == str(POLY // 2)
    assert js("redelegations", B)["redelegations"] == []
    assert js("params")["params"]["max_validators"] == "100"
    assert js("pool") == {"bonded_tokens": str(10 * POLY + POLY // 2), "not_bonded_tokens": str(POLY // 2)}
    assert cli(["query", "staking", "validators", "--home", home]) == 0
    assert "BONDED" in capsys.readouterr().out
    assert cli(["query", "staking", "validator", B, "--home", home]) == 1
    assert "not found" in capsys.readouterr().err
