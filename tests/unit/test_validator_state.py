"""The validator's state file: first score (both numbers) wins, records survive a reopen and a kill -9,
mode 0600, a schema-1 file (one number per score) is migrated when opened."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from validator.state import Action, Score, StateError, TxState, ValidatorState

ADDR = "poly1validator"


def test_score_and_salt_survive_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "s" / "validator.sqlite3"
    salt = os.urandom(32)
    with ValidatorState(path, ADDR) as st:
        assert st.get(7) is None
        stored = st.save_score(7, 3, Score(812_345, 934_000, salt, '{"score": 0.812345}'))
        assert stored == Score(812_345, 934_000, salt, '{"score": 0.812345}', "honest")
        # a second scoring (say after a crash) never replaces the committed-to score
        again = st.save_score(7, 3, Score(1, 2, os.urandom(32), "{}", "zero"))
        assert again == stored
    with ValidatorState(path, ADDR) as st:
        rec = st.get(7)
        assert rec is not None
        assert (rec.result_id, rec.request_id) == (7, 3)
        assert rec.score == stored
        assert rec.score.verdict_dict() == {"score": 0.812345}
        assert rec.txs == {}
        assert st.get(8) is None


def test_score_out_of_range_is_refused(tmp_path: Path) -> None:
    with ValidatorState(tmp_path / "v.sqlite3", ADDR) as st:
        with pytest.raises(ValueError, match="quality_ppm 1000001 is outside"):
            st.save_score(1, 1, Score(1_000_001, 0, b"s" * 32))
        with pytest.raises(ValueError, match="fidelity_ppm 1000001 is outside"):
            st.save_score(1, 1, Score(0, 1_000_001, b"s" * 32))
        assert st.get(1) is None


def test_tx_lifecycle_is_recorded(tmp_path: Path) -> None:
    path = tmp_path / "validator.sqlite3"
    with ValidatorState(path, ADDR) as st:
        st.save_score(1, 9, Score(500_000, 500_000, b"s" * 32))
        st.mark_sending(1, Action.COMMIT, 40)
        rec = st.get(1)
        assert rec is not None
        assert rec.tx(Action.COMMIT).state is TxState.SENDING
        assert rec.tx(Action.COMMIT).sends == 1
        assert rec.tx(Action.REVEAL).state is TxState.NONE
        st.mark_broadcast(1, Action.COMMIT, "ABCD")
        st.mark_confirmed(1, Action.COMMIT, "ABCD", 41, "", 0, "")
        st.mark_sending(1, Action.REVEAL, 50)
        st.mark_rejected(1, Action.REVEAL, "tx", 6, "insufficient funds")
    with ValidatorState(path, ADDR) as st:
        rec = st.get(1)
        assert rec is not None
        c = rec.tx(Action.COMMIT)
        assert (c.state, c.tx_hash, c.sent_height, c.confirmed_height, c.ok) == (
            TxState.CONFIRMED,
            "ABCD",
            40,
            41,
            True,
        )
        r = rec.tx(Action.REVEAL)
        assert (r.state, r.error, r.log, r.sends) == (TxState.REJECTED, ("tx", 6), "insufficient funds", 1)
        counts = st.counts()
        assert counts["commit.confirmed"] == 1 and counts["reveal.rejected"] == 1 and counts["scores"] == 1
        assert [x.result_id for x in st.recent()] == [1]


def test_file_mode_is_0600_and_dir_0700(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        d = tmp_path / "state"
        path = d / "validator.sqlite3"
        with ValidatorState(path, ADDR) as st:
            st.save_score(1, 1, Score(1, 1, b"x" * 32))
            for p in d.iterdir():  # the database and SQLite's -wal/-shm files
                assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(d.stat().st_mode) == 0o700
    finally:
        os.umask(old)


def test_durability_pragmas(tmp_path: Path) -> None:
    with ValidatorState(tmp_path / "v.sqlite3", ADDR) as st:
        db = st._conn()
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_state_of_another_address_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "validator.sqlite3"
    with ValidatorState(path, ADDR):
        pass
    with pytest.raises(StateError, match="belongs to poly1validator"), ValidatorState(path, "poly1other"):
        pass


def test_written_records_survive_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "validator.sqlite3"
    script = textwrap.dedent(
        f"""
        import os, signal
        from validator.state import Action, Score, ValidatorState
        st = ValidatorState({str(path)!r}, {ADDR!r}).open()
        st.save_score(3, 2, Score(654_321, 123_456, b"\\x05" * 32, "{{}}"))
        st.mark_sending(3, Action.COMMIT, 77)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).resolve().parents[2], check=False)
    assert proc.returncode == -9
    with ValidatorState(path, ADDR) as st:
        rec = st.get(3)
        assert rec is not None and rec.score is not None
        assert (rec.score.quality_ppm, rec.score.fidelity_ppm) == (654_321, 123_456)
        assert rec.score.salt == b"\x05" * 32
        assert rec.tx(Action.COMMIT).state is TxState.SENDING
        assert rec.tx(Action.COMMIT).sent_height == 77


def test_use_outside_with_is_an_error(tmp_path: Path) -> None:
    st = ValidatorState(tmp_path / "v.sqlite3", ADDR)
    with pytest.raises(RuntimeError, match="outside"):
        st.get(1)


SCHEMA_1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE scores (
    result_id INTEGER PRIMARY KEY,
    request_id INTEGER NOT NULL DEFAULT 0,
    score_ppm INTEGER,
    salt BLOB NOT NULL DEFAULT x'',
    verdict TEXT NOT NULL DEFAULT '{}',
    behaviour TEXT NOT NULL DEFAULT 'honest',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    commit_state TEXT NOT NULL DEFAULT 'none', commit_hash TEXT NOT NULL DEFAULT '',
    commit_sent_height INTEGER NOT NULL DEFAULT 0, commit_confirmed_height INTEGER NOT NULL DEFAULT 0,
    commit_codespace TEXT NOT NULL DEFAULT '', commit_code INTEGER NOT NULL DEFAULT 0,
    commit_log TEXT NOT NULL DEFAULT '', commit_sends INTEGER NOT NULL DEFAULT 0,
    reveal_state TEXT NOT NULL DEFAULT 'none', reveal_hash TEXT NOT NULL DEFAULT '',
    reveal_sent_height INTEGER NOT NULL DEFAULT 0, reveal_confirmed_height INTEGER NOT NULL DEFAULT 0,
    reveal_codespace TEXT NOT NULL DEFAULT '', reveal_code INTEGER NOT NULL DEFAULT 0,
    reveal_log TEXT NOT NULL DEFAULT '', reveal_sends INTEGER NOT NULL DEFAULT 0
);
"""


def test_a_schema_1_file_is_migrated_with_fidelity_1e6(tmp_path: Path) -> None:
    """The one-number file of an earlier validator opens: its scores keep their quality and salt
    and get fidelity 10^6; its txs are kept; the schema becomes 2 and a reopen changes nothing."""
    path = tmp_path / "validator.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(SCHEMA_1)
    db.execute("INSERT INTO meta VALUES ('address', ?), ('schema', '1')", (ADDR,))
    db.execute(
        "INSERT INTO scores (result_id, request_id, score_ppm, salt, created_at, updated_at, commit_state,"
        " commit_hash) VALUES (4, 2, 777000, ?, 1, 1, 'confirmed', 'AB')",
        (b"\x07" * 32,),
    )
    db.execute("INSERT INTO scores (result_id, created_at, updated_at) VALUES (5, 1, 1)")  # no score yet
    db.commit()
    db.close()
    for _ in range(2):
        with ValidatorState(path, ADDR) as st:
            rec = st.get(4)
            assert rec is not None and rec.score == Score(777_000, 1_000_000, b"\x07" * 32, "{}", "honest")
            assert (rec.tx(Action.COMMIT).state, rec.tx(Action.COMMIT).tx_hash) == (TxState.CONFIRMED, "AB")
            five = st.get(5)
            assert five is not None and five.score is None
            assert st.counts()["scores"] == 1
            assert st._meta("schema") == "2"
    with ValidatorState(path, ADDR) as st:  # the unscored row takes a new two-number score
        assert st.save_score(5, 3, Score(1, 2, b"\x01" * 32)).fidelity_ppm == 2


def test_a_file_of_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "validator.sqlite3"
    with ValidatorState(path, ADDR) as st, st._tx() as c:
        c.execute("UPDATE meta SET value = '3' WHERE key = 'schema'")
    with pytest.raises(StateError, match="schema 3"), ValidatorState(path, ADDR):
        pass
