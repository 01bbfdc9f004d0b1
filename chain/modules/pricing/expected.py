"""What the pricing module needs from other modules (narrow interfaces)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from polylink.base.v1.query_pb2 import PageRequest, PageResponse

from chain.core.context import Context


class Model(Protocol):
    @property
    def model_id(self) -> str: ...
    @property
    def base_price(self) -> str: ...


class RegistryKeeper(Protocol):
    def get_model(self, ctx: Context, model_id: str) -> Model | None: ...
    def models_page(self, ctx: Context, page: PageRequest | None) -> tuple[Sequence[Model], PageResponse]:
        """One page of the registered models, by model id."""
        ...

    def active_capacity(self, ctx: Context, model_id: str) -> int:
        """Tokens per block the model's active (unjailed, bonded) workers commit to serve."""
        ...
