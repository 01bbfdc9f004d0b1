"""The one error the genesis builder raises."""

from __future__ import annotations


class GenesisError(Exception):
    """A genesis document or an input to it is invalid; the message says where and why."""
