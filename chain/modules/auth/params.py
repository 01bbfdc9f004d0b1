"""auth params: defaults and validation."""

from __future__ import annotations

from polylink.auth.v1 import types_pb2

from chain.core.errors import ErrInvalidRequest
from chain.core.gas import GasSchedule


def default_params() -> types_pb2.Params:
    return types_pb2.Params(
        max_memo_characters=256,
        max_tx_bytes=65536,
        min_gas_price_ppm=10_000,  # 0.01 upoly per gas
        tx_base_gas=20_000,
        tx_size_cost_per_byte=10,
        sig_verify_cost=1_000,
        read_cost_flat=1_000,
        read_cost_per_byte=3,
        write_cost_flat=2_000,
        write_cost_per_byte=30,
        iter_next_cost_flat=30,
        delete_cost=1_000,
    )


def validate_params(p: types_pb2.Params) -> None:
    if p.max_tx_bytes < 256:
        raise ErrInvalidRequest.wrap("auth.max_tx_bytes must be >= 256")
    if p.max_memo_characters > p.max_tx_bytes:
        raise ErrInvalidRequest.wrap("auth.max_memo_characters must be <= max_tx_bytes")
    if p.tx_base_gas == 0 or p.sig_verify_cost == 0:
        raise ErrInvalidRequest.wrap("auth gas costs must be positive")


def gas_schedule(p: types_pb2.Params) -> GasSchedule:
    return GasSchedule(
        read_flat=p.read_cost_flat,
        read_per_byte=p.read_cost_per_byte,
        write_flat=p.write_cost_flat,
        write_per_byte=p.write_cost_per_byte,
        iter_next_flat=p.iter_next_cost_flat,
        delete=p.delete_cost,
    )
