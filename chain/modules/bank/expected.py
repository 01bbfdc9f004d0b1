"""What the bank module needs from other modules (narrow interfaces)."""

from __future__ import annotations

from typing import Any, Protocol

from chain.core.context import Context


class AccountKeeper(Protocol):
    def ensure_account(self, ctx: Context, address: str) -> Any: ...
    def module_address(self, name: str) -> str: ...
    def is_module_address(self, address: str) -> bool: ...
