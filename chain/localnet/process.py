"""Supervise one OS process by PID: start it in its own session, check it, stop it.

A localnet's processes outlive the `polylink localnet up` that started them,
so they are found again by the PID recorded in localnet.json. A PID can be
reused by an unrelated process once ours exits, so before any signal we
check that /proc/PID/cmdline is still exactly the command we started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

POLL_S = 0.05


@dataclass(frozen=True)
class ProcRecord:
    """A process we started: what, which PID, where it logs."""

    pid: int
    cmd: tuple[str, ...]
    log: str

    def to_json(self) -> dict[str, Any]:
        return {"pid": self.pid, "cmd": list(self.cmd), "log": self.log}

    @staticmethod
    def from_json(d: Mapping[str, Any]) -> ProcRecord:
        return ProcRecord(int(d["pid"]), tuple(str(c) for c in d["cmd"]), str(d["log"]))


# Popen handles of the processes this Python process started, so it can reap
# them (a child that exits stays a zombie until its parent waits for it).
_children: dict[int, subprocess.Popen[bytes]] = {}


def spawn(
    cmd: Sequence[str], *, cwd: Path, log: Path, env: Mapping[str, str] | None = None
) -> ProcRecord:
    """Start `cmd` in a new session, stdout and stderr appended to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as f:
        f.write(f"\n==> {time.strftime('%Y-%m-%dT%H:%M:%S')} starting: {' '.join(cmd)}\n".encode())
        f.flush()
        p = subprocess.Popen(
            list(cmd),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=f,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=dict(env) if env is not None else None,
        )
    _children[p.pid] = p
    rec = ProcRecord(p.pid, tuple(cmd), str(log))
    # Popen returns once exec has begun, but the new image's argv becomes
    # visible in /proc a moment later; wait so is_running(rec) holds at once.
    deadline = time.monotonic() + 5.0
    while cmdline(p.pid) != rec.cmd and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)
    return rec


def _reap(pid: int) -> None:
    p = _children.get(pid)
    if p is not None:
        if p.poll() is not None:
            del _children[pid]
        return
    with contextlib.suppress(ChildProcessError):  # not our child: init reaps it
        os.waitpid(pid, os.WNOHANG)


def cmdline(pid: int) -> tuple[str, ...] | None:
    """The argv of a live process; None if it is gone (a zombie has an empty cmdline)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    if not raw:
        return None
    return tuple(a.decode(errors="replace") for a in raw.rstrip(b"\0").split(b"\0"))


def is_running(rec: ProcRecord | None) -> bool:
    """True if rec's PID is alive and still runs rec's command."""
    if rec is None:
        return False
    _reap(rec.pid)
    return cmdline(rec.pid) == rec.cmd


def _gone(rec: ProcRecord) -> bool:
    """True once rec's process has fully exited (sockets closed), not merely lost its cmdline.

    A dying process's cmdline empties when its memory is released, before its
    files and sockets are closed; a zombie has closed everything. A PID that
    now runs another command is gone too (reused).
    """
    _reap(rec.pid)
    argv = cmdline(rec.pid)
    if argv is not None:
        return argv != rec.cmd
    # a multi-threaded process (CometBFT is Go) shows its leader as a zombie
    # while other threads still hold the sockets: every thread must be dead
    try:
        tasks = list(Path(f"/proc/{rec.pid}/task").iterdir())
    except (FileNotFoundError, ProcessLookupError):
        return True
    for t in tasks:
        try:
            state = (t / "stat").read_text().rsplit(")", 1)[-1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            continue
        if state not in ("Z", "X"):
            return False
    return True


def wait_gone(records: Sequence[ProcRecord], timeout: float) -> bool:
    """Wait until every record's process has fully exited; False on timeout."""
    deadline = time.monotonic() + timeout
    while not all(_gone(r) for r in records):
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_S)
    return True


def stop(
    records: Sequence[ProcRecord], *, kill: bool = False, timeout: float = 15.0
) -> list[ProcRecord]:
    """Stop every record that is still ours: SIGTERM (or SIGKILL with kill=True), wait, then SIGKILL.

    Signals go to the PID only, and only after its cmdline matched. Returns
    once each has fully exited (its ports are free again): the records that
    were running and were signalled.
    """
    live = [r for r in records if is_running(r)]
    for r in live:
        _signal(r, signal.SIGKILL if kill else signal.SIGTERM)
    if not wait_gone(live, timeout):
        for r in live:
            if is_running(r):
                _signal(r, signal.SIGKILL)
        if not wait_gone(live, 5.0):
            raise RuntimeError(
                f"processes {[r.pid for r in live if not _gone(r)]} survived SIGKILL"
            )
    return live


def _signal(rec: ProcRecord, sig: signal.Signals) -> None:
    if cmdline(rec.pid) != rec.cmd:  # exited (or PID reused) since we looked
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(rec.pid, sig)


def log_tail(path: str | Path, lines: int = 15) -> str:
    """The last lines of a log file, for error messages."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 8192))
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
