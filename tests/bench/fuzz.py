"""Benchmark `fuzz`: generated and mutated inputs against the ABCI framing, the tx decoder, CheckTx and FinalizeBlock.

    make bench BENCH=fuzz            # 100,000 inputs (FUZZ_N to change), seed FUZZ_SEED (default 1)

All in-process, on a real SQLite store, with every invariant checked after
every block. Inputs come from seeds (valid signed txs of bank transfers and
of every message type the app routes, with random field values) and their
mutations: bit flips, byte edits, inserts, deletions, truncations, splices,
random bytes, and body mutations *signed again* with the right key, so they
pass the signature and reach validation and the message servers. What each
target must do:

- framing (`chain.abci.server.split_frames`): return the complete requests or
  raise ValueError, nothing else; a valid stream cut anywhere parses to the
  same requests; a real server fed malformed streams keeps serving;
- decoder (`chain.core.tx.decode_tx`): return or raise a registered error;
- CheckTx: answer with code 0 or a registered code other than tx/1
  (internal), never raise, and leave the committed state alone;
- FinalizeBlock (one fuzzed tx per block, on two apps fed the same input):
  a registered code per tx (never tx/1), the same results and app hash on
  both apps, invariants intact, and a refused tx changes nothing but the
  fee rules: either nothing at all, or exactly its fee off the signer and
  its sequence up by one.

A failure stops the run with the input that caused it (hex) so it can be
replayed. `tests/property/test_fuzz_smoke.py` runs the same targets on a few
hundred inputs in the test suite.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from polylink.bank.v1 import tx_pb2 as bank_tx
from polylink.base.v1 import coin_pb2
from polylink.tx.v1 import tx_pb2
from tendermint.abci import types_pb2 as abci

from chain.abci.server import ABCIServer, decode_varint, encode_varint, split_frames
from chain.app.app import PolyLinkApp
from chain.client.signer import Signer
from chain.client.tx_builder import build_tx
from chain.core.codec import encode
from chain.core.errors import ChainError, ErrInternal, registered
from chain.core.tx import decode_tx, sign_bytes
from chain.storage.sql import SQLStore

CHAIN = "fuzz-1"
FUNDS = 10**12
SIGNERS = 4
REGISTERED = {(k.codespace, k.code) for k in registered()}
INTERNAL = (ErrInternal.codespace, ErrInternal.code)
# the share of the inputs each target gets
SHARES = {"framing": 0.35, "decoder": 0.25, "check_tx": 0.25, "finalize_block": 0.15}


class FuzzFailure(AssertionError):
    """A target misbehaved on an input; the message names the target and carries the input in hex."""


@dataclass
class Report:
    counts: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    max_ms: dict[str, float] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)

    def add(self, target: str, ms: float) -> None:
        self.counts[target] = self.counts.get(target, 0) + 1
        self.seconds[target] = self.seconds.get(target, 0.0) + ms / 1000
        self.max_ms[target] = max(self.max_ms.get(target, 0.0), ms)

    def outcome(self, key: str) -> None:
        self.outcomes[key] = self.outcomes.get(key, 0) + 1


# --- inputs -------------------------------------------------------------------------------------


_EDGE_INTS = [0, 1, 2, 7, 255, 256, 2**31 - 1, 2**31, 2**32 - 1, 2**53, 2**63 - 1]
_EDGE_STRINGS = ["", "0", "01", "+1", "-1", "1e3", "18446744073709551616", "9" * 40, "upoly", "UPOLY",
                 "uzz", "a" * 300, "\u0000", "\u202e", "smollm2", "  ", "upoly,upoly"]


def _random_string(rnd: random.Random, addrs: list[str]) -> str:
    r = rnd.random()
    if r < 0.45:
        return rnd.choice(addrs)
    if r < 0.75:
        return rnd.choice(_EDGE_STRINGS)
    if r < 0.85:
        return str(rnd.randint(0, 10**13))
    chars = (chr(rnd.choice([rnd.randint(32, 126), rnd.randint(0x80, 0x2FFF)])) for _ in range(rnd.randint(0, 24)))
    return "".join(chars)


def _random_scalar(rnd: random.Random, f: FieldDescriptor, addrs: list[str]) -> Any:
    t = f.type
    if t == FieldDescriptor.TYPE_STRING:
        return _random_string(rnd, addrs)
    if t == FieldDescriptor.TYPE_BYTES:
        return rnd.randbytes(rnd.choice([0, 1, 20, 32, 64, rnd.randint(0, 80)]))
    if t == FieldDescriptor.TYPE_BOOL:
        return rnd.random() < 0.5
    if t == FieldDescriptor.TYPE_ENUM:
        values = [v.number for v in f.enum_type.values]
        return rnd.choice([*values, max(values) + 1])
    if t in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return rnd.choice([0.0, 1.0, -1.0, 1e300, float("nan")])
    signed = t in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT32,
                   FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED32, FieldDescriptor.TYPE_SFIXED64)
    bits = 32 if t in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_SINT32,
                       FieldDescriptor.TYPE_FIXED32, FieldDescriptor.TYPE_SFIXED32) else 64
    v = rnd.choice(_EDGE_INTS + [rnd.randint(0, 1000)] * 4)
    v = min(v, 2 ** (bits - 1) - 1) if signed else min(v, 2**bits - 1)
    return -v if signed and rnd.random() < 0.15 else v


def random_message(rnd: random.Random, desc: Descriptor, cls: type[Message] | None, addrs: list[str],
                   depth: int = 0) -> Message:
    """A message of type ``desc`` with random (often edge-case) values in random fields."""
    from google.protobuf import message_factory

    msg = (cls or message_factory.GetMessageClass(desc))()
    for f in desc.fields:
        if rnd.random() < 0.2:
            continue  # left at its default
        if f.message_type is not None:
            if depth >= 3:
                continue
            n = rnd.randint(0, 3) if f.is_repeated else 1
            for _ in range(n):
                sub = random_message(rnd, f.message_type, None, addrs, depth + 1)
                if f.is_repeated:
                    getattr(msg, f.name).add().CopyFrom(sub)
                else:
                    getattr(msg, f.name).CopyFrom(sub)
        elif f.is_repeated:
            getattr(msg, f.name).extend(_random_scalar(rnd, f, addrs) for _ in range(rnd.randint(0, 3)))
        else:
            setattr(msg, f.name, _random_scalar(rnd, f, addrs))
    return msg


def mutate(rnd: random.Random, data: bytes, corpus: list[bytes]) -> bytes:
    """One to four byte-level edits of ``data``."""
    b = bytearray(data)
    for _ in range(rnd.randint(1, 4)):
        op = rnd.randrange(8)
        if op == 0 and b:  # flip a bit
            i = rnd.randrange(len(b))
            b[i] ^= 1 << rnd.randrange(8)
        elif op == 1 and b:  # set a byte to an interesting value
            b[rnd.randrange(len(b))] = rnd.choice([0, 1, 0x7F, 0x80, 0xFF, rnd.randrange(256)])
        elif op == 2:  # insert bytes
            i = rnd.randint(0, len(b))
            b[i:i] = rnd.randbytes(rnd.randint(1, 8))
        elif op == 3 and b:  # delete a range
            i = rnd.randrange(len(b))
            del b[i : i + rnd.randint(1, 16)]
        elif op == 4 and b:  # truncate
            del b[rnd.randrange(len(b)) :]
        elif op == 5 and b:  # duplicate a range
            i = rnd.randrange(len(b))
            j = min(len(b), i + rnd.randint(1, 32))
            b[j:j] = b[i:j]
        elif op == 6 and corpus:  # splice with another input
            other = rnd.choice(corpus)
            i, j = rnd.randint(0, len(b)), rnd.randint(0, len(other))
            b = b[:i] + bytearray(other[j:])
        else:  # a varint length prefix edited or added
            b[0:0] = encode_varint(rnd.choice([0, 1, len(b), 2**31, 2**63 - 1]))
    return bytes(b)


class Inputs:
    """Seeds and mutations: valid txs of every routed message type, and their mutations (some signed again)."""

    def __init__(self, rnd: random.Random, app: PolyLinkApp, signers: list[Signer]) -> None:
        self.rnd = rnd
        self.signers = signers
        self.addrs = [s.address for s in signers] + [Signer(bytes([9]) * 32).address]
        self.routes = sorted(app.m.msgs.routes.items())
        self.corpus: list[bytes] = []

    def message(self) -> Message:
        rnd = self.rnd
        if rnd.random() < 0.4:
            good = rnd.random() < 0.6
            amount = str(rnd.randint(1, 10**6)) if good else rnd.choice(
                ["0", "-5", "01", str(FUNDS * 10), "+3", "1" * 30])
            denom = "upoly" if good else rnd.choice(["upoly", "uzz", "UPOLY", ""])
            coins = [coin_pb2.Coin(denom=denom, amount=amount)]
            return bank_tx.MsgSend(
                from_address=rnd.choice(self.addrs), to_address=rnd.choice(self.addrs), amount=coins
            )
        _, route = rnd.choice(self.routes)
        return random_message(rnd, route.cls.DESCRIPTOR, route.cls, self.addrs)

    def signed_tx(self, sequences: dict[str, int]) -> tuple[bytes, Signer]:
        """A tx of 1-2 random messages, signed by a funded key, mostly at its right sequence."""
        rnd = self.rnd
        signer = rnd.choice(self.signers)
        if rnd.random() < 0.25:  # a plain valid transfer, so the state moves from block to block
            coins = [coin_pb2.Coin(denom="upoly", amount=str(rnd.randint(1, 10**6)))]
            msg = bank_tx.MsgSend(from_address=signer.address, to_address=rnd.choice(self.addrs), amount=coins)
            tx = build_tx([msg], signer, chain_id=CHAIN, sequence=sequences.get(signer.address, 0), fee=2_000)
            self.corpus.append(tx)
            return tx, signer
        msgs = [self.message() for _ in range(rnd.choice([1, 1, 1, 2]))]
        for m in msgs:  # let most messages name the signer where a message names one
            for f in m.DESCRIPTOR.fields:
                if f.type == FieldDescriptor.TYPE_STRING and not f.is_repeated \
                        and rnd.random() < 0.6 and getattr(m, f.name) in self.addrs:
                    setattr(m, f.name, signer.address)
        seq = sequences.get(signer.address, 0)
        seq = seq if rnd.random() < 0.85 else rnd.choice([0, seq + 1, max(seq - 1, 0)])
        fee = rnd.choice([2_000] * 6 + [0, 1, 10**15])
        gas = rnd.choice([200_000] * 6 + [1, 300, 10**9])
        tx = build_tx(msgs, signer, chain_id=CHAIN, sequence=seq, fee=fee, gas_limit=gas,
                      memo=rnd.choice(["", "m", "x" * 300]))
        self.corpus.append(tx)
        del self.corpus[:-200]
        return tx, signer

    def resigned(self, tx: bytes, signer: Signer) -> bytes:
        """``tx`` with its body bytes mutated and then signed again by ``signer``: a valid signature."""
        raw = tx_pb2.Tx.FromString(tx)
        raw.body_bytes = mutate(self.rnd, raw.body_bytes, [])
        raw.signature = signer.sign(sign_bytes(CHAIN, raw.body_bytes, raw.auth_info_bytes))
        return encode(raw)

    def tx_input(self, sequences: dict[str, int]) -> tuple[bytes, Signer | None]:
        """A tx-shaped input: a valid one, a re-signed mutation, a raw mutation, or random bytes."""
        rnd = self.rnd
        r = rnd.random()
        tx, signer = self.signed_tx(sequences)
        if r < 0.3:
            return tx, signer
        if r < 0.55:
            return self.resigned(tx, signer), signer
        if r < 0.95:
            return mutate(rnd, tx, self.corpus), None
        return rnd.randbytes(rnd.randint(0, 300)), None


# --- targets ------------------------------------------------------------------------------------


def _fail(target: str, why: str, data: bytes) -> FuzzFailure:
    return FuzzFailure(f"{target}: {why}; input (hex): {data.hex()}")


_SAMPLE_REQUESTS = [
    abci.Request(echo=abci.RequestEcho(message="x")),
    abci.Request(info=abci.RequestInfo(version="0.38.25")),
    abci.Request(check_tx=abci.RequestCheckTx(tx=b"\x01\x02")),
    abci.Request(query=abci.RequestQuery(path="/polylink.bank.v1.Query/Balance", data=b"\x0a\x01x")),
    abci.Request(flush=abci.RequestFlush()),
    abci.Request(finalize_block=abci.RequestFinalizeBlock(height=3, txs=[b"a" * 40])),
]


def fuzz_framing(rnd: random.Random, report: Report) -> None:
    reqs = [rnd.choice(_SAMPLE_REQUESTS) for _ in range(rnd.randint(1, 4))]
    stream = b"".join(encode_varint(r.ByteSize()) + r.SerializeToString() for r in reqs)
    # a valid stream cut anywhere: the first part's complete requests, then the rest, give every request
    cut = rnd.randint(0, len(stream))
    first, used = split_frames(stream[:cut])
    rest, used2 = split_frames(stream[used:])
    if first + rest != reqs or used + used2 != len(stream):
        raise _fail("framing", "a valid stream cut in two did not parse to its requests", stream)
    data = mutate(rnd, stream, []) if rnd.random() < 0.8 else rnd.randbytes(rnd.randint(0, 64))
    t0 = time.perf_counter()
    try:
        _, n = split_frames(data)
        if not 0 <= n <= len(data):
            raise _fail("framing", f"consumed {n} of {len(data)} bytes", data)
        report.outcome("framing/parsed")
    except ValueError:
        report.outcome("framing/refused")
    except Exception as e:
        raise _fail("framing", f"raised {type(e).__name__}: {e}", data) from e
    report.add("framing", (time.perf_counter() - t0) * 1000)


async def _malformed_streams_against_a_server(rnd: random.Random, app: PolyLinkApp, path: Path, n: int) -> None:
    server = ABCIServer(app, f"unix://{path}")
    await server.start()
    quiet = logging.getLogger("polylink.abci")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # one error line per malformed stream is expected here
    try:
        for _ in range(n):
            _, w = await asyncio.open_unix_connection(str(path))
            w.write(mutate(rnd, encode_varint(40) + rnd.randbytes(40), []))
            await w.drain()
            w.close()
            await w.wait_closed()
        r, w = await asyncio.open_unix_connection(str(path))
        req = abci.Request(echo=abci.RequestEcho(message="still here"))
        w.write(encode_varint(req.ByteSize()) + req.SerializeToString())
        await w.drain()
        buf = b""
        while (vr := decode_varint(buf, 0)) is None or vr[0] + vr[1] > len(buf):
            buf += await asyncio.wait_for(r.read(4096), 5)
        resp = abci.Response.FromString(buf[vr[1] : vr[1] + vr[0]])
        w.close()
        await w.wait_closed()
        await asyncio.sleep(0.05)  # let the server's handler see the end of the stream before the loop closes
        if resp.echo.message != "still here" or (server.fatal is not None and server.fatal.done()):
            raise FuzzFailure("framing: the server stopped serving after malformed streams")
    finally:
        quiet.setLevel(level)
        await server.close()


def fuzz_decoder(inputs: Inputs, sequences: dict[str, int], report: Report) -> None:
    data, _ = inputs.tx_input(sequences)
    t0 = time.perf_counter()
    try:
        decode_tx(data)
        report.outcome("decoder/ok")
    except ChainError as e:
        if (e.codespace, e.code) not in REGISTERED:
            raise _fail("decoder", f"unregistered error {e.codespace}/{e.code}", data) from e
        report.outcome(f"decoder/{e.codespace}/{e.code}")
    except Exception as e:
        raise _fail("decoder", f"raised {type(e).__name__}: {e}", data) from e
    report.add("decoder", (time.perf_counter() - t0) * 1000)


def _check_result(target: str, code: int, codespace: str, data: bytes) -> None:
    if code == 0:
        return
    if (codespace, code) not in REGISTERED:
        raise _fail(target, f"unregistered code {codespace}/{code}", data)
    if (codespace, code) == INTERNAL:
        raise _fail(target, "internal error (an exception escaped the tx logic)", data)


def fuzz_check_tx(app: PolyLinkApp, inputs: Inputs, sequences: dict[str, int], report: Report) -> None:
    data, _ = inputs.tx_input(sequences)
    before = app.app_hash
    t0 = time.perf_counter()
    try:
        r = app.check_tx(data, recheck=inputs.rnd.random() < 0.1)
    except Exception as e:
        raise _fail("check_tx", f"raised {type(e).__name__}: {e}", data) from e
    report.add("check_tx", (time.perf_counter() - t0) * 1000)
    _check_result("check_tx", r.code, r.codespace, data)
    if app.app_hash != before:
        raise _fail("check_tx", "the committed state moved", data)
    report.outcome("check_tx/ok" if r.code == 0 else f"check_tx/{r.codespace}/{r.code}")


def _accounts(app: PolyLinkApp, addrs: list[str]) -> dict[str, tuple[int, int]]:
    """(upoly balance, sequence) of each address at the last commit."""
    ctx = app.query_context()
    out = {}
    for a in addrs:
        acc = app.m.auth.get_account(ctx, a)
        out[a] = (app.m.bank.get_balance(ctx, a, "upoly"), acc.sequence if acc else 0)
    return out


def fuzz_finalize_block(apps: list[PolyLinkApp], inputs: Inputs, sequences: dict[str, int], report: Report,
                        height: int) -> None:
    data, _ = inputs.tx_input(sequences)
    before = _accounts(apps[0], inputs.addrs)
    results = []
    t0 = time.perf_counter()
    for app in apps:
        try:
            r = app.finalize_block(height, (1_700_000_000 + height) * 10**9,
                                   hashlib.sha256(b"%d" % height).digest(), b"", [data])
            app.commit()
        except Exception as e:
            raise _fail("finalize_block", f"raised {type(e).__name__}: {e}", data) from e
        results.append((r.app_hash, [(t.code, t.codespace, t.gas_used) for t in r.tx_results]))
    report.add("finalize_block", (time.perf_counter() - t0) * 1000 / len(apps))
    if len({repr(x) for x in results}) != 1:
        raise _fail("finalize_block", f"the two apps diverged: {results}", data)
    (code, codespace, _), = results[0][1]
    _check_result("finalize_block", code, codespace, data)
    after = _accounts(apps[0], inputs.addrs)
    for a, (_, seq) in after.items():
        sequences[a] = seq
    if code != 0:
        moved = {a: (before[a], after[a]) for a in before if before[a] != after[a]}
        if moved:
            raw = tx_pb2.Tx.FromString(data)
            auth = tx_pb2.AuthInfo.FromString(raw.auth_info_bytes)
            fee = int(auth.fee.amount) if auth.fee.denom == "upoly" else 0
            (addr, ((b0, s0), (b1, s1))), = moved.items() if len(moved) == 1 else [(None, ((0, 0), (0, 0)))]
            if addr is None or (b0 - b1, s1 - s0) != (fee, 1):
                raise _fail("finalize_block", f"a refused tx ({codespace}/{code}) moved {moved}", data)
            report.outcome("finalize_block/refused, fee kept")
        else:
            report.outcome("finalize_block/refused, nothing moved")
    else:
        report.outcome("finalize_block/ok")


# --- the run ------------------------------------------------------------------------------------


def new_app(db: Path, signers: list[Signer]) -> PolyLinkApp:
    app = PolyLinkApp(SQLStore(f"sqlite:///{db}"), invariant_period=1)
    balances = [{"address": s.address, "coins": [{"denom": "upoly", "amount": str(FUNDS)}]} for s in signers]
    app.init_chain(CHAIN, json.dumps({"bank": {"balances": balances}}).encode(), 1, 1_700_000_000 * 10**9,
                   100_000_000)
    # the genesis state is committed with the first block
    app.finalize_block(1, (1_700_000_000 + 1) * 10**9, hashlib.sha256(b"1").digest(), b"", [])
    app.commit()
    return app


def fuzz(n: int, seed: int = 1, progress: Callable[[str], None] | None = None) -> Report:
    """Run ``n`` inputs over the four targets (by SHARES); raises FuzzFailure on the first misbehaviour."""
    rnd = random.Random(seed)
    signers = [Signer(hashlib.sha256(b"fuzz%d" % i).digest()) for i in range(SIGNERS)]
    work = Path(tempfile.mkdtemp(prefix="polylink-fuzz-"))
    apps: list[PolyLinkApp] = []
    try:
        apps = [new_app(work / f"app{i}.db", signers) for i in range(2)]
        inputs = Inputs(rnd, apps[0], signers)
        sequences: dict[str, int] = {}
        report = Report()
        plan = [t for t, share in SHARES.items() for _ in range(max(1, round(n * share)))]
        rnd.shuffle(plan)
        height = 1
        for k, target in enumerate(plan[:n], 1):
            if target == "framing":
                fuzz_framing(rnd, report)
            elif target == "decoder":
                fuzz_decoder(inputs, sequences, report)
            elif target == "check_tx":
                fuzz_check_tx(apps[1], inputs, sequences, report)
            else:
                height += 1
                fuzz_finalize_block(apps, inputs, sequences, report, height)
            if progress and k % 5000 == 0:
                progress(f"  {k}/{n} inputs, height {height}")
        streams = max(10, n // 1000)
        t0 = time.perf_counter()
        asyncio.run(_malformed_streams_against_a_server(rnd, apps[1], work / "abci.sock", streams))
        report.counts["server streams"] = streams
        report.seconds["server streams"] = time.perf_counter() - t0
        return report
    finally:
        for app in apps:
            if app.store is not None:
                app.store.close()
        shutil.rmtree(work, ignore_errors=True)


def run() -> dict[str, object]:
    n = int(os.environ.get("FUZZ_N", "100000"))
    seed = int(os.environ.get("FUZZ_SEED", "1"))
    print(f"fuzzing {n} inputs (seed {seed}) over framing, decoder, CheckTx and FinalizeBlock", flush=True)
    t0 = time.perf_counter()
    report = fuzz(n, seed, progress=lambda s: print(s, flush=True))
    wall = time.perf_counter() - t0
    figures: dict[str, object] = {"inputs": sum(v for k, v in report.counts.items() if k != "server streams"),
                                  "seed": seed, "wall_s": round(wall, 1), "failures": 0}
    for t in report.counts:
        figures[f"{t}: inputs"] = report.counts[t]
        figures[f"{t}: s"] = round(report.seconds[t], 2)
        if t in report.max_ms:
            figures[f"{t}: max ms"] = round(report.max_ms[t], 2)
    figures["outcomes"] = dict(sorted(report.outcomes.items()))
    return figures
