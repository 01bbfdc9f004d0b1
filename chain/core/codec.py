"""Protobuf codec helpers: Any packing and deterministic encoding."""

from __future__ import annotations

from typing import TypeVar

from google.protobuf import any_pb2, json_format, unknown_fields
from google.protobuf.message import DecodeError, Message

from chain.core.errors import ErrTxDecode

M = TypeVar("M", bound=Message)


def type_url(cls_or_msg: type[Message] | Message) -> str:
    return "/" + cls_or_msg.DESCRIPTOR.full_name


def encode(msg: Message) -> bytes:
    """Deterministic encoding (map fields sorted): the only form that reaches state."""
    return msg.SerializeToString(deterministic=True)


def decode(cls: type[M], data: bytes, what: str = "") -> M:
    """Decode or raise ErrTxDecode; rejects unknown fields (non-canonical input)."""
    m = cls()
    try:
        m.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as e:
        raise ErrTxDecode.wrap(f"{what or cls.DESCRIPTOR.name}: {e}") from None
    if len(unknown_fields.UnknownFieldSet(m)):
        raise ErrTxDecode.wrap(f"{what or cls.DESCRIPTOR.name}: unknown fields")
    return m


def pack_any(msg: Message) -> any_pb2.Any:
    return any_pb2.Any(type_url=type_url(msg), value=encode(msg))


def to_json(msg: Message) -> dict[str, object]:
    """Canonical JSON form (proto field names, defaults included)."""
    return json_format.MessageToDict(
        msg, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def from_json(cls: type[M], data: dict[str, object]) -> M:
    return json_format.ParseDict(data, cls(), ignore_unknown_fields=False)


def merge_json(base: M, data: dict[str, object]) -> M:
    """Parse JSON over a copy of `base`: fields absent from `data` keep base's values."""
    out = type(base)()
    out.CopyFrom(base)
    return json_format.ParseDict(data, out, ignore_unknown_fields=False)
