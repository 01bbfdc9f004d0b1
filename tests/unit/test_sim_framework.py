"""sim plumbing: the registry, pending simulations, the report and the CLI (quick, no plots)."""

from __future__ import annotations

from pathlib import Path

import pytest
from polylink.bank.v1 import tx_pb2 as bank_tx
from polylink.base.v1 import coin_pb2

from sim.__main__ import main
from sim.chain import SimChain, SimError
from sim.framework import Options, Verdict, pending
from sim.registry import SIMULATIONS, by_name
from sim.report import write_report


def test_registry_names_are_unique_and_rating_comes_first() -> None:
    names = [s.name for s in SIMULATIONS]
    assert len(names) == len(set(names))
    assert names[0] == "rating" and {"pricing", "sybil", "incentives"} <= set(names)
    assert by_name("rating") is SIMULATIONS[0]
    with pytest.raises(KeyError):
        by_name("nope")


def test_pending_simulations_run_nothing_and_say_what_they_need(tmp_path: Path) -> None:
    sim = pending("later", "A later simulation", "the later module (chain/modules/later)", [("Paper", "a claim")])
    o = sim.run(Options(out=tmp_path, plots=False))
    assert o.pending and "module" in o.pending
    assert o.claims and all(c.verdict is Verdict.PENDING and c.quote for c in o.claims)
    text = write_report(tmp_path / "report.md", [o]).read_text()
    assert f"Not run yet: needs {o.pending}." in text and o.claims[0].quote in text


def test_a_refused_tx_stops_the_run() -> None:
    c = SimChain(seed=1, validators={"a": 10}, accounts=["u"])
    coins = [coin_pb2.Coin(denom="upoly", amount=str(10**30))]  # more than anyone holds
    send = bank_tx.MsgSend(from_address=c.address("u"), to_address=c.address("a"), amount=coins)
    with pytest.raises(SimError, match="refused"):
        c.block([c.tx("u", [send])])


def test_cli_quick_rating_writes_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rating", "--quick", "--no-plots", "--jobs", "1", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "== rating:" in out and "== summary (this run) ==" in out
    report = (tmp_path / "report.md").read_text()
    assert "As we observed, even 10 simulation rounds are sufficient" in report
    assert "| rounds |" in report and "**Verdict**" in report and "A quick run (--quick)" in report
    assert (tmp_path / "rating.json").exists()


def test_cli_refuses_an_unknown_simulation(tmp_path: Path) -> None:
    assert main(["nope", "--out", str(tmp_path)]) == 2


def test_outcomes_round_trip_and_the_report_keeps_earlier_simulations(tmp_path: Path) -> None:
    from sim.framework import Claim, Outcome
    from sim.report import load_outcome, save_outcome

    o = Outcome("rating", "t", [Claim("src", "q \u03c3", "fig", Verdict.PARTLY, "rule")], [["a", "b"], ["1", "2"]],
                [tmp_path / "x.png"], ["note"], 1.5, "", "now")  # fmt: skip
    assert load_outcome(save_outcome(tmp_path, o)) == o
    # a later run of another simulation rebuilds report.md with both
    assert main(["sybil", "--no-plots", "--out", str(tmp_path)]) == 0
    report = (tmp_path / "report.md").read_text()
    assert "## `rating`: t" in report and "## `sybil`:" in report
    assert report.index("`rating`") < report.index("`sybil`")  # registry order
