"""The validator's durable memory: each score, its salt, and the commit and reveal txs (SQLite).

Why it exists: a validator killed at any instant must, when it comes back,
(1) reveal exactly the score it committed to (a different score, or a lost
salt, cannot open the commitment: it would be a no-reveal, slashed), and
(2) never commit twice for one result. So the order is always:

    score -> save_score (fsync) -> mark_sending (fsync) -> broadcast
          -> mark_broadcast(hash) -> wait -> mark_confirmed(height, code)

One row per result id. `save_score` keeps the first score and salt written
for a row (a restart that scored again gets the stored ones back). Per action
(commit, reveal) the row holds the tx's lifecycle with the worker's states
(`worker.state.TxState`): sending, broadcast, confirmed, rejected.

Durability and secrecy as in the worker's state: WAL with synchronous=FULL
(every write fsynced before it returns), file 0600 (it holds unrevealed
scores and salts), directory 0700.

A score is two numbers, quality and fidelity (ppm), committed together.
Schema 2 stores both (`quality_ppm`, `fidelity_ppm`). A schema-1 file (one
`score_ppm` per row) is migrated when opened, in one transaction: the column
becomes `quality_ppm` and each stored score gets `fidelity_ppm` 1_000_000
(no evidence against the registered model, the pipeline's own default). Such
a score was committed as one number, which a two-number chain cannot open:
the service checks a stored score against the round's commitment before it
reveals and refuses a mismatch, so a migrated row is never revealed wrongly.
"""

from __future__ import annotations

import enum
import json
import os
import sqlite3
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from worker.state import DIR_MODE, FILE_MODE, TxRecord, TxState, _Transaction

SCHEMA_VERSION = "2"
PPM = 1_000_000
# the fidelity given to a schema-1 score (which had none) when its file is migrated
MIGRATED_FIDELITY_PPM = PPM

__all__ = ["Action", "Score", "ScoreRecord", "StateError", "TxRecord", "TxState", "ValidatorState"]


class Action(enum.StrEnum):
    """What the chain asks of a committee member for one result (ValidatorTask.action, lower-cased)."""

    COMMIT = "commit"
    REVEAL = "reveal"


class StateError(Exception):
    """The state file cannot be used (belongs to another validator, corrupt, unwritable)."""


@dataclass(frozen=True)
class Score:
    """What the validator committed to for one result: both numbers and the salt."""

    # does the answer correctly and relevantly answer the prompt (0..1_000_000).
    quality_ppm: int
    # evidence that the registered model produced it (0..1_000_000).
    fidelity_ppm: int
    # 32 random bytes: the commitment's blinding.
    salt: bytes
    # the pipeline's verdict as JSON (quality, fidelity, stages, used_judge): for audits and `status`.
    verdict: str = "{}"
    # the behaviour that produced the numbers ("honest", or a Byzantine mode under test).
    behaviour: str = "honest"

    def verdict_dict(self) -> dict[str, Any]:
        try:
            v = json.loads(self.verdict)
        except ValueError:
            return {}
        return v if isinstance(v, dict) else {}


@dataclass(frozen=True)
class ScoreRecord:
    result_id: int
    request_id: int
    score: Score | None
    txs: dict[Action, TxRecord]

    def tx(self, action: Action) -> TxRecord:
        return self.txs.get(action, TxRecord())


_ACTION_COLS = ("state", "hash", "sent_height", "confirmed_height", "codespace", "code", "log", "sends")


def _cols(action: Action) -> list[str]:
    return [f"{action.value}_{c}" for c in _ACTION_COLS]


_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)
    """,
    """
    CREATE TABLE IF NOT EXISTS scores (
        result_id INTEGER PRIMARY KEY,
        request_id INTEGER NOT NULL DEFAULT 0,
        quality_ppm INTEGER,
        fidelity_ppm INTEGER,
        salt BLOB NOT NULL DEFAULT x'',
        verdict TEXT NOT NULL DEFAULT '{}',
        behaviour TEXT NOT NULL DEFAULT 'honest',
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
    """
    + ",\n".join(
        f"""
        {a.value}_state TEXT NOT NULL DEFAULT 'none',
        {a.value}_hash TEXT NOT NULL DEFAULT '',
        {a.value}_sent_height INTEGER NOT NULL DEFAULT 0,
        {a.value}_confirmed_height INTEGER NOT NULL DEFAULT 0,
        {a.value}_codespace TEXT NOT NULL DEFAULT '',
        {a.value}_code INTEGER NOT NULL DEFAULT 0,
        {a.value}_log TEXT NOT NULL DEFAULT '',
        {a.value}_sends INTEGER NOT NULL DEFAULT 0"""
        for a in Action
    )
    + """
    )
    """,
)


class ValidatorState:
    """The state file of one validator operator. Use as `with ValidatorState(path, address) as st: ...`."""

    def __init__(self, path: str | os.PathLike[str], address: str) -> None:
        self.path = Path(path)
        self.address = address
        self._db: sqlite3.Connection | None = None

    # -- lifecycle -----------------------------------------------------------

    def open(self) -> Self:
        self.path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        # create the file 0600 before SQLite does (it would use the umask).
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        os.close(fd)
        if stat.S_IMODE(self.path.stat().st_mode) != FILE_MODE:
            os.chmod(self.path, FILE_MODE)
        try:
            db = sqlite3.connect(self.path, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            for stmt in _SCHEMA:
                db.execute(stmt)
        except sqlite3.DatabaseError as e:
            raise StateError(f"cannot open validator state {self.path}: {e}") from None
        self._db = db
        owner = self._meta("address")
        if owner is None:
            with self._tx() as c:
                c.execute("INSERT INTO meta (key, value) VALUES ('address', ?)", (self.address,))
                c.execute("INSERT INTO meta (key, value) VALUES ('schema', ?)", (SCHEMA_VERSION,))
        elif owner != self.address:
            self.close()
            raise StateError(
                f"validator state {self.path} belongs to {owner}, not {self.address}: "
                "use a separate state_dir per key"
            )
        self._migrate()
        return self

    def _migrate(self) -> None:
        """Schema 1 -> 2 (see the module docstring), in one transaction; nothing for a new or
        current file. A file of a newer schema is refused."""
        columns = {str(r[1]) for r in self._conn().execute("PRAGMA table_info(scores)")}
        if "score_ppm" in columns:
            with self._tx() as c:
                c.execute("ALTER TABLE scores RENAME COLUMN score_ppm TO quality_ppm")
                c.execute("ALTER TABLE scores ADD COLUMN fidelity_ppm INTEGER")
                c.execute(
                    "UPDATE scores SET fidelity_ppm = ? WHERE quality_ppm IS NOT NULL", (MIGRATED_FIDELITY_PPM,)
                )
                c.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (SCHEMA_VERSION,))
            return
        schema = self._meta("schema")
        if schema is not None and schema != SCHEMA_VERSION:
            self.close()
            raise StateError(
                f"validator state {self.path} has schema {schema}; this validator reads schema {SCHEMA_VERSION}"
            )

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- reads -----------------------------------------------------------------

    def get(self, result_id: int) -> ScoreRecord | None:
        rows = self._select("WHERE result_id = ?", (result_id,))
        return rows[0] if rows else None

    def recent(self, limit: int = 20) -> list[ScoreRecord]:
        """The newest rows first (by last update): for `status`."""
        return self._select("ORDER BY updated_at DESC, result_id DESC LIMIT ?", (limit,))

    def counts(self) -> dict[str, int]:
        """Rows per action and tx state, e.g. {"commit.confirmed": 12, "scores": 15}: for `status`."""
        db = self._conn()
        out: dict[str, int] = {
            "results": db.execute("SELECT COUNT(*) FROM scores").fetchone()[0],
            "scores": db.execute("SELECT COUNT(*) FROM scores WHERE quality_ppm IS NOT NULL").fetchone()[0],
        }
        for a in Action:
            col = f"{a.value}_state"
            for state, n in db.execute(f"SELECT {col}, COUNT(*) FROM scores WHERE {col} != 'none' GROUP BY {col}"):
                out[f"{a.value}.{state}"] = n
        return dict(sorted(out.items()))

    # -- writes (each one fsynced before it returns) ---------------------------

    def save_score(self, result_id: int, request_id: int, score: Score) -> Score:
        """Store the score (both numbers) and salt unless the row has them; returns the stored
        ones (first wins)."""
        for name, value in (("quality_ppm", score.quality_ppm), ("fidelity_ppm", score.fidelity_ppm)):
            if not 0 <= value <= PPM:
                raise ValueError(f"{name} {value} is outside 0..{PPM}")
        now = time.time()
        with self._tx() as c:
            c.execute(
                "INSERT INTO scores (result_id, request_id, created_at, updated_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (result_id, request_id, now, now),
            )
            c.execute(
                "UPDATE scores SET request_id = ?, quality_ppm = ?, fidelity_ppm = ?, salt = ?, verdict = ?,"
                " behaviour = ?, updated_at = ? WHERE result_id = ? AND quality_ppm IS NULL",
                (
                    request_id,
                    score.quality_ppm,
                    score.fidelity_ppm,
                    score.salt,
                    score.verdict,
                    score.behaviour,
                    now,
                    result_id,
                ),
            )
        rec = self.get(result_id)
        assert rec is not None and rec.score is not None
        return rec.score

    def mark_sending(self, result_id: int, action: Action, height: int) -> None:
        """About to broadcast: from here until found or refused, the outcome is unknown."""
        self._update(
            result_id,
            action,
            state=TxState.SENDING,
            hash="",
            sent_height=height,
            confirmed_height=0,
            codespace="",
            code=0,
            log="",
            sends_plus=1,
        )

    def mark_broadcast(self, result_id: int, action: Action, tx_hash: str) -> None:
        """CheckTx accepted the tx: it is in the mempool under `tx_hash`."""
        self._update(result_id, action, state=TxState.BROADCAST, hash=tx_hash)

    def mark_rejected(self, result_id: int, action: Action, codespace: str, code: int, log: str) -> None:
        """CheckTx refused the tx: it can never reach a block."""
        self._update(result_id, action, state=TxState.REJECTED, codespace=codespace, code=code, log=log)

    def mark_confirmed(
        self, result_id: int, action: Action, tx_hash: str, height: int, codespace: str, code: int, log: str
    ) -> None:
        """The tx is in block `height` with result `code` (0 = accepted by the module)."""
        self._update(
            result_id,
            action,
            state=TxState.CONFIRMED,
            hash=tx_hash,
            confirmed_height=height,
            codespace=codespace,
            code=code,
            log=log,
        )

    # -- internals -------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("ValidatorState used outside its `with` block")
        return self._db

    def _meta(self, key: str) -> str | None:
        row = self._conn().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _tx(self) -> _Transaction:
        return _Transaction(self._conn())

    def _select(self, where: str, params: tuple[object, ...]) -> list[ScoreRecord]:
        db = self._conn()
        db.row_factory = sqlite3.Row
        try:
            rows = db.execute(f"SELECT * FROM scores {where}", params).fetchall()
        finally:
            db.row_factory = None
        return [_record(r) for r in rows]

    def _update(self, result_id: int, action: Action, *, sends_plus: int = 0, **values: object) -> None:
        now = time.time()
        sets = [f"{action.value}_{k} = ?" for k in values]
        params: list[object] = [str(v) if isinstance(v, enum.Enum) else v for v in values.values()]
        sets.append(f"{action.value}_sends = {action.value}_sends + ?")
        params.append(sends_plus)
        sets.append("updated_at = ?")
        params.append(now)
        with self._tx() as c:
            c.execute(
                "INSERT INTO scores (result_id, created_at, updated_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                (result_id, now, now),
            )
            c.execute(f"UPDATE scores SET {', '.join(sets)} WHERE result_id = ?", (*params, result_id))


def _record(row: sqlite3.Row) -> ScoreRecord:
    score = None
    if row["quality_ppm"] is not None:
        fidelity = row["fidelity_ppm"] if row["fidelity_ppm"] is not None else MIGRATED_FIDELITY_PPM
        score = Score(row["quality_ppm"], fidelity, bytes(row["salt"]), row["verdict"], row["behaviour"])
    txs: dict[Action, TxRecord] = {}
    for a in Action:
        state, tx_hash, sent, confirmed, codespace, code, log, sends = (row[c] for c in _cols(a))
        if state != TxState.NONE:
            txs[a] = TxRecord(TxState(state), tx_hash, sent, confirmed, codespace, code, log, sends)
    return ScoreRecord(row["result_id"], row["request_id"], score, txs)
