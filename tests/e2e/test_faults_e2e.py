"""The fault campaign of `make bench BENCH=faults`, short: one fault of each kind on a real
4-validator localnet under signed load from several accounts; after each, every node reaches one
app hash, and at the end every tx CometBFT reported committed is on every node, the balances to the
unit."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench.faults import FAULTS, campaign

pytestmark = pytest.mark.e2e


def test_one_fault_of_each_kind_under_load_loses_nothing(tmp_path: Path) -> None:
    lines: list[str] = []
    f = campaign(tmp_path, len(FAULTS), seed=7, progress=lines.append)
    assert f["errors"] == [], (f["errors"], lines)
    assert f["faults_survived"] == len(FAULTS), lines
    assert sorted(line.split()[2] for line in lines) == sorted(FAULTS)  # each kind struck once
    assert f["txs_lost"] == 0
    committed = f["txs_committed"]
    assert isinstance(committed, int) and committed >= 20, f  # the load ran through the faults
    assert f["balances_checked"] == 4 * 5  # 4 senders and the sink, on each of the 4 nodes
