"""Money as integer micro-dollars inside, decimal strings outside.

Floats never touch an amount: provider prices arrive as JSON numbers or strings and go through
`Decimal(str(value))`, so `0.29` stays 290000 micro-dollars and not 289999.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

MICROS_PER_DOLLAR = 1_000_000
_MICRO = Decimal("0.000001")
# Amounts read from plain JSON values, remembered by `to_micros`. Exact types only: a `bool` (equal
# to 0 and 1 as a key) is no amount and must never find one here.
_PLAIN = frozenset({str, int, float})
_REMEMBERED = 65536
_MICROS: dict[object, int] = {}


class InvalidAmount(ValueError):
    """A value that cannot be read as a non-negative amount of money."""


def to_decimal(value: object) -> Decimal:
    """Read a JSON number or numeric string as a finite Decimal."""
    if isinstance(value, bool) or value is None:
        raise InvalidAmount(f"not an amount: {value!r}")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise InvalidAmount(f"not an amount: {value!r}") from exc
    if not amount.is_finite():
        raise InvalidAmount(f"not a finite amount: {value!r}")
    return amount


def to_micros(value: object) -> int:
    """Dollars (number, string or Decimal) to micro-dollars, rounded half up.

    A catalog's prices are few distinct values, so a plain JSON value (string, integer, float)
    is read once and remembered, up to `_REMEMBERED` of them.
    """
    plain = type(value) in _PLAIN
    if plain:
        known = _MICROS.get(value)
        if known is not None:
            return known
    amount = to_decimal(value)
    micros = int((amount * MICROS_PER_DOLLAR).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    if plain and len(_MICROS) < _REMEMBERED:
        _MICROS[value] = micros
    return micros


def format_usd(micros: int) -> str:
    """Micro-dollars to the API's decimal string: 287000 -> "0.287000"."""
    return str((Decimal(micros) / MICROS_PER_DOLLAR).quantize(_MICRO))
