"""The on-disk keyring: one JSON file per key name, with two backends as in the Cosmos SDK.

- ``test`` (`<home>/keyring/`): UNENCRYPTED, like Cosmos SDK's
  `--keyring-backend test`: each file holds the raw ed25519 private seed in
  hex, protected only by file permissions (directory 0700, files 0600). For
  localnets, tests, load generators and bots whose keys hold little value.
- ``file`` (`<home>/keyring-file/`): the seed encrypted with a passphrase,
  like `--keyring-backend file`: scrypt (n=2^15, r=8, p=1) derives a 256-bit
  key from the passphrase and a random 16-byte salt; AES-256-GCM seals the
  seed under a random 12-byte nonce, with the name and address as associated
  data (a file renamed or edited fails to open). The passphrase comes from
  the caller (the CLI: $POLYLINK_KEYRING_PASSPHRASE, for CI, or a prompt).
  The public part stays readable without it, so `keys list/show` and
  `--generate-only` need no passphrase; a wrong one is refused.

File format (`<name>.json`):
    test: {"name": ..., "type": "ed25519", "address": "poly1...",
           "pub_key": "<64 hex>", "priv_key": "<64 hex seed>"}
    file: {"name": ..., "type": "ed25519", "address": ..., "pub_key": ...,
           "crypto": {"kdf": "scrypt", "n": 32768, "r": 8, "p": 1, "salt": "<hex>",
                      "cipher": "aes-256-gcm", "nonce": "<hex>", "ciphertext": "<hex>"}}

A name is never overwritten: `add` fails with `KeyExistsError` (the file is
created with O_EXCL, so two concurrent `add`s cannot both win).
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from chain.client.errors import KeyExistsError, KeyNotFoundError, KeyringError
from chain.client.signer import Signer

KEYRING_DIR = "keyring"
BACKENDS = {"test": KEYRING_DIR, "file": "keyring-file"}
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
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
    """Keys stored under `<home>/keyring/` (backend "test") or `<home>/keyring-file/` (backend "file",
    encrypted; ``passphrase`` is called when a private key is written or read); see the module docstring."""

    def __init__(
        self, home: str | os.PathLike[str], backend: str = "test", passphrase: Callable[[], str] | None = None
    ) -> None:
        if backend not in BACKENDS:
            raise KeyringError(f"unknown keyring backend {backend!r}: choose one of {', '.join(BACKENDS)}")
        self.home = Path(home).expanduser()
        self.backend = backend
        self.dir = self.home / BACKENDS[backend]
        self._passphrase = passphrase

    def _secret(self) -> str:
        if self._passphrase is None:
            raise KeyringError("the file keyring needs a passphrase (set $POLYLINK_KEYRING_PASSPHRASE)")
        secret = self._passphrase()
        if not secret:
            raise KeyringError("the file keyring's passphrase must not be empty")
        return secret

    def add(self, name: str, seed_hex: str | None = None) -> KeyInfo:
        """Store a new key: random, or recovered from a 32-byte hex seed. Never overwrites."""
        check_name(name)
        try:
            signer = Signer.generate() if seed_hex is None else Signer.from_hex(seed_hex)
        except ValueError as e:
            raise KeyringError(f"cannot recover key {name!r}: {e}") from None
        self._ensure_dir()
        path = self._path(name)
        record: dict[str, object] = {
            "name": name,
            "type": "ed25519",
            "address": signer.address,
            "pub_key": signer.pub_key.hex(),
        }
        if self.backend == "file":
            record["crypto"] = seal(signer.seed(), self._secret(), _aad(name, signer.address))
        else:
            record["priv_key"] = signer.seed().hex()
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
        """The public part of key `name` (no passphrase needed); raises KeyNotFoundError."""
        if self.backend == "test":
            signer = self.get_signer(name)
            return KeyInfo(name, signer.address, signer.pub_key)
        record = self._read(name)
        try:
            return KeyInfo(name, str(record["address"]), bytes.fromhex(str(record["pub_key"])))
        except (KeyError, ValueError) as e:
            raise KeyringError(f"key file for {name!r} is corrupt: {e}") from None

    def get_signer(self, name: str) -> Signer:
        """The signing key `name`; checks that the stored address matches the key."""
        record = self._read(name)
        try:
            if self.backend == "file":
                crypto = record["crypto"]
                if not isinstance(crypto, dict):
                    raise ValueError("crypto is not an object")
                seed = unseal(crypto, self._secret(), _aad(name, str(record.get("address"))))
                signer = Signer(seed)
            else:
                signer = Signer.from_hex(str(record["priv_key"]))
        except InvalidTag:
            raise KeyringError(f"wrong passphrase for key {name!r} (or its file was altered)") from None
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


def _aad(name: str, address: str) -> bytes:
    return f"polylink-keyring:{name}:{address}".encode()


def _kdf(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode())


def seal(seed: bytes, passphrase: str, aad: bytes) -> dict[str, object]:
    """The ``crypto`` record of the file backend: ``seed`` under AES-256-GCM with a scrypt-derived key."""
    salt, nonce = os.urandom(16), os.urandom(12)
    key = _kdf(passphrase, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return {
        "kdf": "scrypt", "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P, "salt": salt.hex(),
        "cipher": "aes-256-gcm", "nonce": nonce.hex(), "ciphertext": AESGCM(key).encrypt(nonce, seed, aad).hex(),
    }


def unseal(crypto: dict[str, object], passphrase: str, aad: bytes) -> bytes:
    """The seed in a ``crypto`` record; raises InvalidTag for a wrong passphrase or an altered record."""
    if crypto.get("kdf") != "scrypt" or crypto.get("cipher") != "aes-256-gcm":
        raise ValueError(f"unsupported kdf/cipher {crypto.get('kdf')}/{crypto.get('cipher')}")
    n, r, p = (int(str(crypto[k])) for k in ("n", "r", "p"))
    if not (2**10 <= n <= 2**20 and 1 <= r <= 32 and 1 <= p <= 16):
        raise ValueError("scrypt parameters out of range")
    key = _kdf(passphrase, bytes.fromhex(str(crypto["salt"])), n, r, p)
    return AESGCM(key).decrypt(bytes.fromhex(str(crypto["nonce"])), bytes.fromhex(str(crypto["ciphertext"])), aad)


def check_name(name: str) -> str:
    """Key names are file names: letters, digits, '_', '.', '-'; no path tricks."""
    if not NAME_RE.match(name):
        raise KeyringError(
            f"invalid key name {name!r}: use 1-64 letters, digits, '_', '.', '-' "
            "(not starting with '.' or '-')"
        )
    return name
