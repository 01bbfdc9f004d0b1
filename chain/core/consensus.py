"""What CometBFT tells the app about consensus, and what the app tells it back.

Pure data, decoded from ABCI by chain/abci and handed to modules through the
block header, so that slashing and staking never see protobuf or sockets.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Vote:
    """One validator's entry in the decided last commit."""

    address: bytes  # CometBFT validator address: sha256(ed25519 pubkey)[:20]
    power: int
    signed: bool  # present in the commit (block_id_flag COMMIT or NIL): only ABSENT misses, as in x/slashing


@dataclass(frozen=True)
class Evidence:
    """Misbehaviour CometBFT proved (a double sign, or a light-client attack)."""

    kind: str  # "duplicate_vote" | "light_client_attack"
    address: bytes
    power: int
    height: int
    time_ns: int
    total_voting_power: int


@dataclass(frozen=True)
class ValidatorUpdate:
    """A change to CometBFT's validator set: power 0 removes the validator."""

    pub_key: bytes  # ed25519, 32 bytes
    power: int
