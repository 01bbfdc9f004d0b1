"""bank params: defaults and validation."""

from __future__ import annotations

from polylink.bank.v1 import types_pb2

from chain.core.errors import ErrInvalidRequest


def default_params() -> types_pb2.Params:
    return types_pb2.Params(send_enabled=True, max_multisend_outputs=100)


def validate_params(p: types_pb2.Params) -> None:
    if not 1 <= p.max_multisend_outputs <= 10_000:
        raise ErrInvalidRequest.wrap("bank.max_multisend_outputs must be in 1..10000")
