"""Coins: amounts per denom as Python ints, with canonical parsing and encoding."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Protocol, TypeVar

from chain.core.errors import register

ErrInvalidCoins = register("coins", 2, "invalid coins")

DENOM_RE = re.compile(r"^[a-z][a-z0-9/]{2,63}$")
AMOUNT_RE = re.compile(r"^(0|[1-9][0-9]{0,77})$")
MAX_AMOUNT = 2**256 - 1
BOND_DENOM = "upoly"


def parse_amount(s: str) -> int:
    if not AMOUNT_RE.match(s):
        raise ErrInvalidCoins.wrap(f"amount {s!r} is not a canonical non-negative integer")
    v = int(s)
    if v > MAX_AMOUNT:
        raise ErrInvalidCoins.wrap(f"amount {s} exceeds 2^256-1")
    return v


def check_denom(d: str) -> str:
    if not DENOM_RE.match(d):
        raise ErrInvalidCoins.wrap(f"denom {d!r} is invalid")
    return d


class CoinMessage(Protocol):
    """What Coins reads from a coin message (polylink.base.v1.Coin); core stays free of generated code."""

    @property
    def denom(self) -> str: ...
    @property
    def amount(self) -> str: ...


C_co = TypeVar("C_co", covariant=True)


class CoinFactory(Protocol[C_co]):
    """A coin message class (polylink.base.v1.Coin), called with keywords as generated classes are."""

    def __call__(self, *, denom: str, amount: str) -> C_co: ...


C = TypeVar("C")


class Coins:
    """An immutable multiset of positive amounts, iterated in denom order."""

    __slots__ = ("_m",)

    def __init__(self, amounts: Mapping[str, int] | None = None) -> None:
        m: dict[str, int] = {}
        for d, a in (amounts or {}).items():
            if a < 0:
                raise ErrInvalidCoins.wrap(f"negative amount {a}{d}")
            if a:
                m[check_denom(d)] = a
        self._m = dict(sorted(m.items()))

    @staticmethod
    def from_pairs(pairs: Iterable[tuple[str, str]], *, strict: bool = True) -> Coins:
        """From (denom, amount-string) pairs; strict rejects zero amounts, duplicates, disorder."""
        m: dict[str, int] = {}
        last = ""
        for d, s in pairs:
            check_denom(d)
            a = parse_amount(s)
            if strict:
                if a == 0:
                    raise ErrInvalidCoins.wrap(f"zero amount of {d}")
                if d <= last:
                    raise ErrInvalidCoins.wrap("denoms must be sorted and unique")
            elif d in m:
                raise ErrInvalidCoins.wrap(f"duplicate denom {d}")
            last = d
            m[d] = a
        return Coins(m)

    @staticmethod
    def from_proto(coins: Iterable[CoinMessage], *, strict: bool = True) -> Coins:
        return Coins.from_pairs(((c.denom, c.amount) for c in coins), strict=strict)

    @staticmethod
    def parse(text: str) -> Coins:
        """'100upoly,5uabc' -> Coins (the CLI's syntax)."""
        m: dict[str, int] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            mt = re.match(r"^([0-9]+)([a-z][a-z0-9/]*)$", part)
            if not mt:
                raise ErrInvalidCoins.wrap(f"cannot parse {part!r}; expected e.g. 100upoly")
            d = check_denom(mt.group(2))
            if d in m:
                raise ErrInvalidCoins.wrap(f"duplicate denom {d}")
            m[d] = parse_amount(mt.group(1))
        return Coins(m)

    def items(self) -> list[tuple[str, int]]:
        return list(self._m.items())

    def amount_of(self, denom: str) -> int:
        return self._m.get(denom, 0)

    def is_zero(self) -> bool:
        return not self._m

    def __add__(self, other: Coins) -> Coins:
        m = dict(self._m)
        for d, a in other._m.items():
            m[d] = m.get(d, 0) + a
        return Coins(m)

    def __sub__(self, other: Coins) -> Coins:
        """Raises ErrInvalidCoins when the result would be negative."""
        m = dict(self._m)
        for d, a in other._m.items():
            m[d] = m.get(d, 0) - a
            if m[d] < 0:
                raise ErrInvalidCoins.wrap(f"{self} - {other} is negative")
        return Coins(m)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Coins) and self._m == other._m

    def __hash__(self) -> int:
        return hash(tuple(self._m.items()))

    def __str__(self) -> str:
        return ",".join(f"{a}{d}" for d, a in self._m.items()) or "0"

    __repr__ = __str__

    def to_proto(self, cls: CoinFactory[C]) -> list[C]:
        return [cls(denom=d, amount=str(a)) for d, a in self._m.items()]
