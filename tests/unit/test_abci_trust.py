"""The ABCI trust boundary: a 0600 unix socket, and state-changing calls on the consensus connection only."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

from tendermint.abci import types_pb2 as abci

from chain.abci.server import CONSENSUS_CALLS, ABCIServer, decode_varint, encode_varint
from chain.app.app import PolyLinkApp


def _frame(req: abci.Request) -> bytes:
    data = req.SerializeToString()
    return encode_varint(len(data)) + data


async def _ask(conn: tuple[asyncio.StreamReader, asyncio.StreamWriter], req: abci.Request) -> abci.Response:
    reader, writer = conn
    writer.write(_frame(req))
    await writer.drain()
    buf = b""
    while True:
        buf += await asyncio.wait_for(reader.read(65536), 5)
        vr = decode_varint(buf, 0)
        if vr is not None and vr[1] + vr[0] <= len(buf):
            return abci.Response.FromString(buf[vr[1] : vr[1] + vr[0]])


PREPARE = abci.Request(prepare_proposal=abci.RequestPrepareProposal(max_tx_bytes=1000, height=1))
# a block the app would have to execute and a commit: each refused before it reaches the app
FOREIGN = [
    abci.Request(finalize_block=abci.RequestFinalizeBlock(height=1, txs=[b"\x01tx"])),
    abci.Request(commit=abci.RequestCommit()),
    abci.Request(init_chain=abci.RequestInitChain(chain_id="evil")),
    abci.Request(process_proposal=abci.RequestProcessProposal(height=1)),
    PREPARE,
]


def test_the_state_changing_calls_are_exactly_the_ones_spec_names() -> None:
    assert {"init_chain", "prepare_proposal", "process_proposal", "finalize_block", "commit"} == CONSENSUS_CALLS


def test_only_the_consensus_connection_may_move_state_and_a_new_one_takes_over_when_it_closes(
    tmp_path: Path,
) -> None:
    sock = tmp_path / "abci.sock"

    async def run() -> None:
        app = PolyLinkApp(None)
        server = ABCIServer(app, f"unix://{sock}")
        await server.start()
        try:
            assert stat.S_IMODE(sock.stat().st_mode) == 0o600
            consensus = await asyncio.open_unix_connection(str(sock))
            other = await asyncio.open_unix_connection(str(sock))
            # the other connection may read (the query, mempool and snapshot connections do)
            assert (await _ask(other, abci.Request(info=abci.RequestInfo()))).info.data == "polylink"
            # the first connection to make a state-changing call is the consensus connection
            assert (await _ask(consensus, PREPARE)).WhichOneof("value") == "prepare_proposal"
            for req in FOREIGN:
                resp = await _ask(other, req)
                assert resp.WhichOneof("value") == "exception", req
                assert "not the node's consensus connection" in resp.exception.error
            assert server.refused == len(FOREIGN)
            assert server.fatal is not None and not server.fatal.done()  # the node keeps going
            assert (app.height, app.chain_id) == (0, "")  # nothing changed
            # the consensus connection keeps being served, and the other one can still read
            assert (await _ask(consensus, PREPARE)).WhichOneof("value") == "prepare_proposal"
            assert (await _ask(other, abci.Request(echo=abci.RequestEcho(message="x")))).echo.message == "x"
            # a restarted CometBFT: the old consensus connection closes, the next one to ask takes the role
            consensus[1].close()
            await consensus[1].wait_closed()
            for _ in range(100):
                if server.consensus_conn is None:
                    break
                await asyncio.sleep(0.01)
            assert server.consensus_conn is None
            assert (await _ask(other, PREPARE)).WhichOneof("value") == "prepare_proposal"
            other[1].close()
        finally:
            await server.close()

    asyncio.run(run())
