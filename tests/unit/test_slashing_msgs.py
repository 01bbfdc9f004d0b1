"""MsgUnjail: each refusal has its own registered code; success unjails and restarts the window."""

from __future__ import annotations

import pytest
from polylink.slashing.v1 import tx_pb2

from chain.core.consensus import Evidence
from chain.core.errors import ChainError, ErrInvalidAddress, ErrorKind
from chain.modules.slashing.errors import (
    ErrJailPeriodNotOver,
    ErrNoValidator,
    ErrSelfDelegationTooLow,
    ErrValidatorNotJailed,
    ErrValidatorTombstoned,
)
from chain.modules.slashing.module import SlashingModule
from chain.modules.slashing.msg_server import MsgServer, validate_unjail
from tests.unit.slashing_fake import Chain, FakeValidator, cons

JAIL = 10


def unjail(c: Chain, v: FakeValidator | str, height: int) -> ChainError | None:
    op = v if isinstance(v, str) else v.operator_address
    try:
        MsgServer(c.k).unjail(c.ctx(height), tx_pb2.MsgUnjail(validator_address=op))
    except ChainError as e:
        return e
    return None


def jailed_for_downtime(seed: str = "a", self_bond: int | None = None) -> tuple[Chain, FakeValidator]:
    c = Chain()
    a = c.staking.add(seed, 10, self_bond)
    for h in range(1, 22):
        c.block(h, [(a, False)])
    assert a.jailed  # at height 21, until 31
    return c, a


def kind(e: ChainError | None) -> ErrorKind | None:
    return None if e is None else e.kind


def test_codes_are_distinct() -> None:
    kinds = [
        ErrNoValidator, ErrValidatorNotJailed, ErrValidatorTombstoned, ErrJailPeriodNotOver, ErrSelfDelegationTooLow
    ]
    assert all(k.codespace == "slashing" for k in kinds)
    assert len({k.code for k in kinds}) == len(kinds)


def test_route_signer_and_stateless_check() -> None:
    c = Chain()
    a = c.staking.add("a", 10)
    (route,) = SlashingModule(c.k).msg_routes()
    msg = tx_pb2.MsgUnjail(validator_address=a.operator_address)
    assert route.cls is tx_pb2.MsgUnjail and route.signer(msg) == a.operator_address
    validate_unjail(msg)
    with pytest.raises(ChainError) as ei:
        validate_unjail(tx_pb2.MsgUnjail(validator_address="poly1nope"))
    assert ei.value.kind is ErrInvalidAddress


def test_unknown_validator() -> None:
    c = Chain()
    ghost = c.staking.add("ghost", 1)
    del c.staking.validators[ghost.operator_address]
    assert kind(unjail(c, ghost, 1)) is ErrNoValidator


def test_not_jailed() -> None:
    c = Chain()
    a = c.staking.add("a", 10)
    assert kind(unjail(c, a, 1)) is ErrValidatorNotJailed


def test_too_early_then_success() -> None:
    c, a = jailed_for_downtime()
    assert kind(unjail(c, a, 21 + JAIL - 1)) is ErrJailPeriodNotOver
    assert c.staking.unjails == []
    # jailed, it still missed a few blocks: they never count once it is back
    for h in range(22, 25):
        c.block(h, [(a, False)])
    assert unjail(c, a, 21 + JAIL) is None
    assert c.staking.unjails == [cons(a)] and not a.jailed
    info = c.k.get_signing_info(c.ctx(31), cons(a))
    assert info is not None
    assert (info.start_height, info.index_offset, info.missed_blocks_counter) == (31, 0, 0)
    assert c.k.missed_indices(c.ctx(31), cons(a)) == []
    assert kind(unjail(c, a, 32)) is ErrValidatorNotJailed


def test_tombstoned() -> None:
    c = Chain()
    a = c.staking.add("a", 10)
    c.block(10, evidence=(Evidence("duplicate_vote", cons(a), 10, 9, 0, 10),))
    assert a.jailed
    assert kind(unjail(c, a, 10**9)) is ErrValidatorTombstoned
    assert c.staking.unjails == []


def test_self_delegation_too_low() -> None:
    c, a = jailed_for_downtime(self_bond=4_000_000)
    own = 4_000_000 - 4_000_000 // 100  # the downtime slash took 1% of the tokens behind the shares
    a.min_self_delegation = str(own + 1)
    assert kind(unjail(c, a, 40)) is ErrSelfDelegationTooLow
    a.min_self_delegation = str(own)
    assert unjail(c, a, 40) is None


def test_no_self_delegation_at_all() -> None:
    c, a = jailed_for_downtime()
    c.staking.delegations.clear()
    a.min_self_delegation = "0"
    assert kind(unjail(c, a, 40)) is ErrSelfDelegationTooLow


def test_jailed_by_staking_without_signing_info_can_unjail() -> None:
    c = Chain()
    a = c.staking.add("a", 10)
    a.jailed = True
    assert unjail(c, a, 1) is None and not a.jailed
