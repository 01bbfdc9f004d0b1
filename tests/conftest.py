"""Fixtures for every test directory: a real PostgreSQL cluster for the tests that run on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.pgcluster import PGCluster


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PGCluster]:
    """One PostgreSQL cluster for the session (Debian's binaries, installed by `make test`), started here
    as an unprivileged user on a unix socket and stopped at the end; missing binaries fail, never skip."""
    try:
        c = PGCluster().start()
    except RuntimeError as e:
        pytest.fail(str(e))
    try:
        yield c
    finally:
        c.stop()


_dbs = 0


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A fresh, empty state database on each backend the app supports: SQLite in a temp dir, and a new
    database in the session's PostgreSQL cluster."""
    global _dbs
    _dbs += 1
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('store') / 'app.db'}"
    cluster: PGCluster = request.getfixturevalue("pg_cluster")
    return cluster.create_db(f"store{_dbs}")
