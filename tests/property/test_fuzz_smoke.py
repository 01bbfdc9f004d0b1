"""The fuzzer's targets (tests/bench/fuzz.py) on a few thousand inputs, and the chain halt it found."""

from __future__ import annotations

import hashlib
import json

import pytest
from polylink.bank.v1 import tx_pb2 as bank_tx
from polylink.base.v1 import coin_pb2

from chain.app.app import PolyLinkApp
from chain.client.signer import Signer
from chain.client.tx_builder import build_tx
from chain.core.errors import ErrOutOfGas
from tests.bench.fuzz import SHARES, fuzz


@pytest.mark.parametrize("seed", [11, 12])
def test_framing_decoder_check_tx_and_finalize_block_survive_generated_and_mutated_inputs(seed: int) -> None:
    report = fuzz(1500, seed)  # raises FuzzFailure with the input's hex on any misbehaviour
    assert set(report.counts) == set(SHARES) | {"server streams"}
    assert sum(report.counts[t] for t in SHARES) == 1500
    # the inputs reached every outcome that matters, not only the decoder's refusals
    assert report.outcomes.get("finalize_block/ok", 0) > 0 and report.outcomes.get("check_tx/ok", 0) > 0
    assert report.outcomes.get("framing/refused", 0) > 0 and report.outcomes.get("framing/parsed", 0) > 0
    assert any(k.startswith("check_tx/") and k != "check_tx/ok" and not k.startswith("check_tx/tx/")
               for k in report.outcomes), "no input reached a module's own validation"


def test_a_gas_limit_too_small_for_the_params_read_is_refused_not_a_halt() -> None:
    """Found by the fuzzer: a tx with gas_limit 1 ran out of gas reading the auth params outside the
    tx's error handling, so FinalizeBlock raised and every node would stop on a proposer's such block."""
    signer = Signer(hashlib.sha256(b"gas").digest())
    app = PolyLinkApp(None)
    gen = {"bank": {"balances": [{"address": signer.address, "coins": [{"denom": "upoly", "amount": "10000000"}]}]}}
    app.init_chain("gas-1", json.dumps(gen).encode(), 1, 1_700_000_000 * 10**9, 100_000_000)
    app.finalize_block(1, 1_700_000_001 * 10**9, b"\x01" * 32, b"", [])
    app.commit()
    msg = bank_tx.MsgSend(from_address=signer.address, to_address=signer.address,
                          amount=[coin_pb2.Coin(denom="upoly", amount="1")])
    tx = build_tx([msg], signer, chain_id="gas-1", sequence=0, fee=2_000, gas_limit=1)
    r = app.finalize_block(2, 1_700_000_002 * 10**9, b"\x02" * 32, b"", [tx])
    app.commit()
    (res,) = r.tx_results
    assert (res.codespace, res.code) == (ErrOutOfGas.codespace, ErrOutOfGas.code)
    c = app.check_tx(tx, recheck=False)
    assert (c.codespace, c.code) == (ErrOutOfGas.codespace, ErrOutOfGas.code)
