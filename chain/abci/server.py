"""The ABCI socket server: CometBFT's four connections over TCP or a unix socket.

Framing: every message is a protobuf `Request`/`Response` prefixed with its
length as an unsigned varint. Requests on one connection are answered in
order; the responses to everything read in one go are written out together
(a Flush is answered like any other request).
All connections share one event loop and the app is synchronous, so calls
into the app never interleave across connections.

Trust boundary (SPEC 2, SAFETY S18): only the node's own CometBFT may move
the state. The state-changing calls (InitChain, PrepareProposal,
ProcessProposal, FinalizeBlock, Commit) are served on one connection only,
the consensus connection: the first connection that makes one of them (the
node's CometBFT, at its handshake or its first block) holds that role until
it closes, and the same call on any other connection is refused with a
logged error and an exception response, changing nothing. CometBFT opens its
connections once per process and sends these calls on its consensus
connection alone, so it never meets the refusal; when it restarts, its old
connections close and the new process takes the role. The snapshot-applying
calls change nothing on any connection (this app offers and accepts no
state-sync snapshots). What keeps another local process from taking the role
while no CometBFT is connected is the transport: a unix socket in the node
home, mode 0600 (`polylink node start`'s default).
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

from google.protobuf.message import DecodeError
from tendermint.abci import types_pb2 as abci

from chain.abci.methods import HANDLERS
from chain.app.app import PolyLinkApp

log = logging.getLogger("polylink.abci")
MAX_MESSAGE_BYTES = 128 * 1024 * 1024
# the calls that move state, served on the consensus connection only
CONSENSUS_CALLS = frozenset({"init_chain", "prepare_proposal", "process_proposal", "finalize_block", "commit"})


def encode_varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def decode_varint(buf: bytes | bytearray, pos: int) -> tuple[int, int] | None:
    """(value, new position), or None if the buffer ends inside the varint."""
    shift = result = 0
    while pos < len(buf):
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")
    return None


def split_frames(buf: bytes | bytearray) -> tuple[list[abci.Request], int]:
    """The complete requests at the start of ``buf`` and the bytes they take; the rest waits for more.

    Raises ValueError for a stream that can never parse: a varint over 64 bits, a message over
    MAX_MESSAGE_BYTES, or bytes that are not a Request."""
    out: list[abci.Request] = []
    pos = 0
    while True:
        vr = decode_varint(buf, pos)
        if vr is None:
            return out, pos
        size, start = vr
        if size > MAX_MESSAGE_BYTES:
            raise ValueError(f"message of {size} bytes is too large")
        if start + size > len(buf):
            return out, pos
        try:
            out.append(abci.Request.FromString(bytes(buf[start : start + size])))
        except DecodeError as e:
            raise ValueError(f"not an ABCI request: {e}") from None
        pos = start + size


def frame(resp: abci.Response) -> bytes:
    data = resp.SerializeToString()
    return encode_varint(len(data)) + data


class ABCIServer:
    def __init__(self, app: PolyLinkApp, address: str) -> None:
        self.app = app
        self.address = address
        self._server: asyncio.base_events.Server | None = None
        self.fatal: asyncio.Future[BaseException] | None = None
        self._connections = 0
        # the number of the connection that holds the consensus role, or None while none does
        self.consensus_conn: int | None = None
        self.refused = 0

    async def start(self) -> None:
        self.fatal = asyncio.get_running_loop().create_future()
        if self.address.startswith("unix://"):
            path = Path(self.address[len("unix://"):])
            path.parent.mkdir(parents=True, exist_ok=True)
            path.unlink(missing_ok=True)
            # created as 0600 (no window in which another user could connect), then checked
            old = os.umask(0o177)
            try:
                self._server = await asyncio.start_unix_server(self._serve, path=str(path))
            finally:
                os.umask(old)
            os.chmod(path, 0o600)
        else:
            hostport = self.address.removeprefix("tcp://")
            host, _, port = hostport.rpartition(":")
            self._server = await asyncio.start_server(self._serve, host or "127.0.0.1", int(port))
        log.info("ABCI server listening on %s", self.address)

    async def close(self) -> None:
        if self._server:
            self._server.close()
            await self._server.wait_closed()

    def handle(self, req: abci.Request, conn: int = 0) -> abci.Response:
        """The response to ``req``, read on connection number ``conn`` (a state-changing call only on the
        consensus connection; the first connection that makes one takes that role)."""
        which = req.WhichOneof("value")
        if which is None:
            return abci.Response(exception=abci.ResponseException(error="empty request"))
        if which in CONSENSUS_CALLS:
            if self.consensus_conn is None:
                self.consensus_conn = conn
                log.info("ABCI connection %d is the consensus connection (first %s)", conn, which)
            elif conn != self.consensus_conn:
                self.refused += 1
                log.error(
                    "refused %s on ABCI connection %d: state-changing calls are served only on the consensus "
                    "connection (%d); nothing changed", which, conn, self.consensus_conn,
                )
                return abci.Response(exception=abci.ResponseException(
                    error=f"{which} refused: this is not the node's consensus connection"
                ))
        # the Response oneof field shares the Request's name, known only at run time
        fields: dict[str, Any] = {which: HANDLERS[which](self.app, getattr(req, which))}
        return abci.Response(**fields)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # CometBFT opens its connections once per process: a new one means a new
        # (restarted) node, whose mempool is gone.
        self.app.reset_check_state()
        self._connections += 1
        conn = self._connections
        buf = bytearray()
        out: list[bytes] = []
        try:
            while True:
                chunk = await reader.read(1 << 20)
                if not chunk:
                    return
                buf += chunk
                try:
                    reqs, pos = split_frames(buf)
                except ValueError as e:
                    log.error("ABCI connection %d sent a malformed stream (%s); closing it", conn, e)
                    return
                for req in reqs:
                    try:
                        resp = self.handle(req, conn)
                    except Exception as e:
                        # unexpected failure in block logic: answer with an exception
                        # (CometBFT halts) and stop this process loudly
                        log.exception("ABCI %s failed; stopping", req.WhichOneof("value"))
                        out.append(frame(abci.Response(exception=abci.ResponseException(error=repr(e)))))
                        writer.write(b"".join(out))
                        await writer.drain()
                        if self.fatal and not self.fatal.done():
                            self.fatal.set_result(e)
                        return
                    out.append(frame(resp))
                del buf[:pos]
                # answer everything read so far: never hold a response back
                # waiting for a Flush that CometBFT may send only after it
                if out:
                    writer.write(b"".join(out))
                    out.clear()
                    await writer.drain()
        except (ConnectionResetError, BrokenPipeError, asyncio.IncompleteReadError):
            return
        finally:
            if self.consensus_conn == conn:
                log.info("the consensus connection (%d) closed", conn)
                self.consensus_conn = None
            writer.close()
