"""The on-disk keyring: one JSON file per key name under `<home>/keyring/`.

This is an UNENCRYPTED "test"-style backend, like Cosmos SDK's
`--keyring-backend test`: each file holds the raw ed25519 private seed in hex,
protected only by file permissions (directory 0700, files 0600). Use it for
localnets, tests, load generators and bots whose keys hold little value; do
not keep keys that guard real funds in it.

File format (`<name>.json`):
    {"name": ..., "type": "ed25519", "address": "poly1...",
     "pub_key": "<64 hex>", "priv_key": "<64 hex seed>"}

A name is never overwritten: `add` fails with `KeyExistsError` (the file is
created with O_EXCL, so two concurrent `add`s cannot both win).
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from chain.client.errors import KeyExistsError, KeyNotFoundError, KeyringError
from chain.client.signer import Signer

KEYRING_DIR = "keyring"
DIR_MODE = 0o700
FILE_MODE = 0o600
NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
SUFFIX = ".json"


@dataclass(frozen=True)
class KeyInfo:
    """The public part of a key: safe to print."""

    name: str
    address: str
    pub_key: bytes

    def to_json(self) -> dict[str, str]:
        return {
            "name": self.name,
            "type": "ed25519",
            "address": self.address,
            "pub_key": self.pub_key.hex(),
        }


class Keyring:
    """Keys stored under `<home>/keyring/`; see the module docstring for the format."""

    def __init__(self, home: str | os.PathLike[str]) -> None:
        self.home = Path(home).expanduser()
        self.dir = self.home / KEYRING_DIR

    def add(self, name: str, seed_hex: str | None = None) -> KeyInfo:
        """Store a new key: random, or recovered from a 32-byte hex seed. Never overwrites."""
        check_name(name)
        try:
            signer = Signer.generate() if seed_hex is None else Signer.from_hex(seed_hex)
        except ValueError as e:
            raise KeyringError(f"cannot recover key {name!r}: {e}") from None
        self._ensure_dir()
        path = self._path(name)
        record = {
            "name": name,
            "type": "ed25519",
            "address": signer.address,
            "pub_key": signer.pub_key.hex(),
            "priv_key": signer.seed().hex(),
        }
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        except FileExistsError:
            raise KeyExistsError(f"key {name!r} already exists in {self.dir}") from None
        with os.fdopen(fd, "w") as f:
            json.dump(record, f, indent=2)
            f.write("\n")
        os.chmod(path, FILE_MODE)  # exactly 0600, whatever the umask
        return KeyInfo(name, signer.address, signer.pub_key)

    def list(self) -> list[KeyInfo]:
        """Every key, sorted by name."""
        if not self.dir.is_dir():
            return []
        names = sorted(
            p.name[: -len(SUFFIX)] for p in self.dir.iterdir() if p.name.endswith(SUFFIX)
        )
        return [self.show(n) for n in names if NAME_RE.match(n)]

    def show(self, name: str) -> KeyInfo:
        """The public part of key `name`; raises KeyNotFoundError."""
        signer = self.get_signer(name)
        return KeyInfo(name, signer.address, signer.pub_key)

    def get_signer(self, name: str) -> Signer:
        """The signing key `name`; checks that the stored address matches the key."""
        record = self._read(name)
        try:
            signer = Signer.from_hex(str(record["priv_key"]))
        except (KeyError, ValueError) as e:
            raise KeyringError(f"key file for {name!r} is corrupt: {e}") from None
        if record.get("address") not in (None, signer.address):
            raise KeyringError(f"key file for {name!r} is corrupt: address does not match the key")
        return signer

    def delete(self, name: str) -> None:
        """Remove key `name`; raises KeyNotFoundError."""
        check_name(name)
        try:
            self._path(name).unlink()
        except FileNotFoundError:
            raise KeyNotFoundError(f"no key named {name!r} in {self.dir}") from None

    def _read(self, name: str) -> dict[str, object]:
        check_name(name)
        path = self._path(name)
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise KeyNotFoundError(f"no key named {name!r} in {self.dir}") from None
        except OSError as e:
            raise KeyringError(f"cannot read key {name!r}: {e}") from None
        try:
            record = json.loads(text)
        except json.JSONDecodeError as e:
            raise KeyringError(f"key file for {name!r} is not JSON: {e}") from None
        if not isinstance(record, dict):
            raise KeyringError(f"key file for {name!r} is not a JSON object")
        return record

    def _ensure_dir(self) -> None:
        self.dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        if stat.S_IMODE(self.dir.stat().st_mode) != DIR_MODE:
            os.chmod(self.dir, DIR_MODE)

    def _path(self, name: str) -> Path:
        return self.dir / f"{name}{SUFFIX}"


def check_name(name: str) -> str:
    """Key names are file names: letters, digits, '_', '.', '-'; no path tricks."""
    if not NAME_RE.match(name):
        raise KeyringError(
            f"invalid key name {name!r}: use 1-64 letters, digits, '_', '.', '-' "
            "(not starting with '.' or '-')"
        )
    return name
