"""Typed views of what CometBFT's RPC returns for txs and node status.

CometBFT's JSON encodes 64-bit integers as strings and bytes as base64; these
dataclasses hold Python ints and bytes, and reuse `chain.core.events.Event`
for events so app code and client code speak of events the same way.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chain.client.errors import TxRejectedError
from chain.core.events import Event


def as_int(v: object) -> int:
    """CometBFT sends int64 as a string, small ints as numbers, and omits zeros."""
    if v is None or v == "":
        return 0
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    return int(str(v))


def as_bytes(v: object) -> bytes:
    return base64.b64decode(v) if isinstance(v, str) and v else b""


def parse_events(raw: object) -> tuple[Event, ...]:
    """[{"type": t, "attributes": [{"key": k, "value": v, "index": b}]}] -> Events."""
    out: list[Event] = []
    for e in raw if isinstance(raw, list) else []:
        attrs = tuple(
            (str(a.get("key", "")), str(a.get("value", ""))) for a in e.get("attributes") or []
        )
        out.append(Event(str(e.get("type", "")), attrs))
    return tuple(out)


@dataclass(frozen=True)
class BroadcastResult:
    """CheckTx's answer to broadcast_tx_sync (or an empty one for broadcast_tx_async)."""

    hash: str
    code: int = 0
    codespace: str = ""
    log: str = ""

    @property
    def ok(self) -> bool:
        return self.code == 0

    def raise_for_code(self) -> BroadcastResult:
        """Raise TxRejectedError (stage "check") unless CheckTx accepted the tx."""
        if self.code:
            raise TxRejectedError(self.hash, "check", self.codespace, self.code, self.log)
        return self

    @staticmethod
    def from_rpc(r: Mapping[str, Any]) -> BroadcastResult:
        return BroadcastResult(
            hash=str(r.get("hash", "")).upper(),
            code=as_int(r.get("code")),
            codespace=str(r.get("codespace") or ""),
            log=str(r.get("log") or ""),
        )


@dataclass(frozen=True)
class TxResult:
    """A tx's outcome in its block (height > 0), or CheckTx's refusal (height 0, stage "check")."""

    hash: str
    height: int
    code: int = 0
    codespace: str = ""
    log: str = ""
    gas_wanted: int = 0
    gas_used: int = 0
    events: tuple[Event, ...] = ()
    data: bytes = b""
    index: int = 0
    stage: str = "deliver"

    @property
    def ok(self) -> bool:
        return self.code == 0

    def raise_for_code(self) -> TxResult:
        """Raise TxRejectedError unless the tx succeeded."""
        if self.code:
            raise TxRejectedError(self.hash, self.stage, self.codespace, self.code, self.log)
        return self

    def attributes(self, event_type: str) -> list[dict[str, str]]:
        """The attributes of every event of `event_type`, one dict per event."""
        return [dict(e.attributes) for e in self.events if e.type == event_type]

    @staticmethod
    def from_exec(
        txhash: str, height: int, r: Mapping[str, Any], *, index: int = 0, stage: str = "deliver"
    ) -> TxResult:
        """From an ExecTxResult / ResponseCheckTx JSON object."""
        return TxResult(
            hash=txhash.upper(),
            height=height,
            code=as_int(r.get("code")),
            codespace=str(r.get("codespace") or ""),
            log=str(r.get("log") or ""),
            gas_wanted=as_int(r.get("gas_wanted")),
            gas_used=as_int(r.get("gas_used")),
            events=parse_events(r.get("events")),
            data=as_bytes(r.get("data")),
            index=index,
            stage=stage,
        )

    def to_json(self) -> dict[str, object]:
        return {
            "txhash": self.hash,
            "height": self.height,
            "code": self.code,
            "codespace": self.codespace,
            "log": self.log,
            "gas_wanted": self.gas_wanted,
            "gas_used": self.gas_used,
            "events": [
                {"type": e.type, "attributes": [{"key": k, "value": v} for k, v in e.attributes]}
                for e in self.events
            ],
        }


@dataclass(frozen=True)
class NodeStatus:
    """The parts of `/status` clients use."""

    chain_id: str
    node_id: str
    moniker: str
    latest_height: int
    latest_app_hash: str
    latest_block_time: str
    catching_up: bool
    raw: Mapping[str, Any] = field(repr=False, default_factory=dict)

    @staticmethod
    def from_rpc(r: Mapping[str, Any]) -> NodeStatus:
        ni = r.get("node_info") or {}
        si = r.get("sync_info") or {}
        return NodeStatus(
            chain_id=str(ni.get("network", "")),
            node_id=str(ni.get("id", "")),
            moniker=str(ni.get("moniker", "")),
            latest_height=as_int(si.get("latest_block_height")),
            latest_app_hash=str(si.get("latest_app_hash", "")),
            latest_block_time=str(si.get("latest_block_time", "")),
            catching_up=bool(si.get("catching_up", False)),
            raw=r,
        )


@dataclass(frozen=True)
class RpcEvent:
    """One event pushed on a websocket subscription.

    `type` is CometBFT's data type (e.g. "tendermint/event/Tx"), `value` its
    payload, and `events` the composite-key index ("transfer.recipient" -> [...]).
    """

    query: str
    type: str
    value: Mapping[str, Any]
    events: Mapping[str, list[str]]

    @staticmethod
    def from_rpc(r: Mapping[str, Any]) -> RpcEvent:
        data = r.get("data") or {}
        return RpcEvent(
            query=str(r.get("query", "")),
            type=str(data.get("type", "")),
            value=data.get("value") or {},
            events=r.get("events") or {},
        )
