"""The ABCI socket server speaks CometBFT's framing over a real loopback socket."""

from __future__ import annotations

import asyncio
import socket

from hypothesis import given
from hypothesis import strategies as st
from tendermint.abci import types_pb2 as abci

from chain.abci.server import ABCIServer, decode_varint, encode_varint
from chain.app.app import PolyLinkApp


@given(st.integers(min_value=0, max_value=2**63 - 1))
def test_varint_round_trip(n: int) -> None:
    b = encode_varint(n)
    assert decode_varint(b, 0) == (n, len(b))
    assert decode_varint(b[:-1], 0) is None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _frame(req: abci.Request) -> bytes:
    data = req.SerializeToString()
    return encode_varint(len(data)) + data


async def _read_responses(reader: asyncio.StreamReader, n: int) -> list[abci.Response]:
    buf = b""
    out: list[abci.Response] = []
    while len(out) < n:
        buf += await asyncio.wait_for(reader.read(65536), 5)
        while True:
            vr = decode_varint(buf, 0)
            if vr is None or vr[1] + vr[0] > len(buf):
                break
            size, start = vr
            out.append(abci.Response.FromString(buf[start : start + size]))
            buf = buf[start + size :]
    return out


def test_pipelined_requests_answered_in_order_across_split_writes() -> None:
    async def run() -> None:
        port = _free_port()
        server = ABCIServer(PolyLinkApp(None), f"tcp://127.0.0.1:{port}")
        await server.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            payload = b"".join(
                [
                    _frame(abci.Request(echo=abci.RequestEcho(message="a"))),
                    _frame(abci.Request(info=abci.RequestInfo())),
                    _frame(abci.Request(check_tx=abci.RequestCheckTx(tx=b"\xff garbage"))),
                    _frame(abci.Request(echo=abci.RequestEcho(message="b"))),
                    _frame(abci.Request(flush=abci.RequestFlush())),
                ]
            )
            for i in range(0, len(payload), 3):  # split mid-varint and mid-message
                writer.write(payload[i : i + 3])
                await writer.drain()
            rs = await _read_responses(reader, 5)
            assert [r.WhichOneof("value") for r in rs] == ["echo", "info", "check_tx", "echo", "flush"]
            assert rs[0].echo.message == "a" and rs[3].echo.message == "b"
            assert rs[1].info.last_block_height == 0 and rs[1].info.data == "polylink"
            assert rs[2].check_tx.code == 2 and rs[2].check_tx.codespace == "tx"  # malformed bytes
            writer.close()
        finally:
            await server.close()

    asyncio.run(run())
