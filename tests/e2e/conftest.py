"""A real 4-validator localnet (CometBFT v0.38 + PolyLink app processes), shared by the e2e tests.

The network lives in a pytest temp dir on a free block of loopback ports and
is torn down by PID at the end of the session, even when a test fails. Its
logs stay in the temp dir (pytest keeps the last few runs) for post-mortems.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chain.localnet import Localnet, LocalnetError, find_cometbft, find_free_base_port

E2E_NODES = 4
E2E_ACCOUNTS = 4


def cometbft_or_fail() -> str:
    """CometBFT is built by `make setup`; its absence is a set-up failure, never a skip."""
    try:
        return find_cometbft()
    except LocalnetError as e:
        pytest.fail(str(e))


@pytest.fixture(scope="session")
def localnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Localnet]:
    """4 validators (val0..val3) and funded users user0..user3, all at height >= 2."""
    cometbft_or_fail()
    net = Localnet(
        tmp_path_factory.mktemp("localnet"),
        nodes=E2E_NODES,
        accounts=E2E_ACCOUNTS,
        base_port=find_free_base_port(E2E_NODES),
    )
    try:
        net.up()
        yield net
    finally:
        net.down()
