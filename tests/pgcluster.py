"""A throwaway PostgreSQL cluster for tests: Debian's server binaries, started by the test, stopped by it.

The cluster runs as an unprivileged user (PostgreSQL refuses root: as root the commands run as
``nobody`` through ``setpriv``), listens on a unix socket in its own directory only (no TCP port),
and trusts local connections. ``make test`` installs the binaries (Makefile ``.postgres.stamp``).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

USER = "polylink"  # the database superuser initdb creates


def pg_bindir() -> Path:
    """The newest /usr/lib/postgresql/N/bin with initdb; RuntimeError naming the fix if none."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise RuntimeError("no PostgreSQL server binaries in /usr/lib/postgresql: run `make test` (it installs them)")
    return Path(found[-1]).parent


class PGCluster:
    """initdb + pg_ctl start in a fresh directory; ``url(db)`` for SQLAlchemy; ``stop()`` ends it."""

    def __init__(self) -> None:
        self.bindir = pg_bindir()
        self.dir = Path(tempfile.mkdtemp(prefix="polylink-pg-"))
        self.data = self.dir / "data"
        self.sock = self.dir  # the socket directory
        self._as: list[str] = []
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chown(self.dir, nobody.pw_uid, nobody.pw_gid)
            self._as = ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups", "--"]
        self.pid = 0

    def _run(self, args: Sequence[str], timeout: float = 120.0) -> str:
        r = subprocess.run([*self._as, *args], capture_output=True, text=True, timeout=timeout, cwd=self.dir)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({r.returncode}): {r.stdout}{r.stderr}")
        return r.stdout

    def start(self) -> PGCluster:
        self._run([str(self.bindir / "initdb"), "-D", str(self.data), "-U", USER, "-A", "trust", "-E", "UTF8",
                   "--no-sync"])
        opts = f"-k {self.sock} -c listen_addresses='' -c fsync=on -c max_connections=60"
        self._run([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", opts, "-l", str(self.dir / "pg.log"),
                   "-w", "-t", "60", "start"])
        self.pid = int((self.data / "postmaster.pid").read_text().split()[0])
        return self

    def create_db(self, name: str) -> str:
        """A new empty database; returns its URL."""
        self._run([str(self.bindir / "createdb"), "-h", str(self.sock), "-U", USER, name])
        return self.url(name)

    def url(self, db: str) -> str:
        return f"postgresql+psycopg://{USER}@/{db}?host={self.sock}"

    def stop(self) -> None:
        """pg_ctl stop (fast), then make sure the postmaster PID is gone, and remove the directory."""
        if self.pid:
            try:
                self._run([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop"])
            finally:
                deadline = time.monotonic() + 30
                while _alive(self.pid) and time.monotonic() < deadline:
                    time.sleep(0.1)
                if _alive(self.pid):
                    os.kill(self.pid, 9)
                self.pid = 0
        shutil.rmtree(self.dir, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (ProcessLookupError, FileNotFoundError):
        return False
    return state != "Z"  # a zombie has exited
