"""HTTP routers of the broker, one module per area, each exporting `router`.

Shared here: `usd_amount`, the request-body type for money. Amounts arrive as decimal strings
(`"25.00"`; JSON numbers are read through their decimal text, never as binary floats) and leave
validation as integer micro-dollars, so a handler never sees anything else.
"""

from __future__ import annotations

from decimal import Decimal
from functools import partial
from typing import Annotated, Any

from pydantic import BeforeValidator, WithJsonSchema

from pricing.money import InvalidAmount, format_usd, to_decimal, to_micros


def _parse_usd(value: Any, *, decimals: int, minimum: int, maximum: int) -> int:
    try:
        amount = to_decimal(value)
    except InvalidAmount:
        raise ValueError(f'must be a decimal string such as "25.00", not {value!r}') from None
    # Bounds first: they keep the quantizing below within Decimal's precision.
    if amount < Decimal(minimum).scaleb(-6):
        raise ValueError(f"must be at least {format_usd(minimum)} USD")
    if amount > Decimal(maximum).scaleb(-6):
        raise ValueError(f"must be at most {format_usd(maximum)} USD")
    if amount != amount.quantize(Decimal(1).scaleb(-decimals)):
        raise ValueError(f"has more than {decimals} decimals")
    return to_micros(amount)


def usd_amount(*, decimals: int, minimum: int, maximum: int) -> Any:
    """A body field holding USD, validated into micro-dollars within [minimum, maximum]."""
    parse = partial(_parse_usd, decimals=decimals, minimum=minimum, maximum=maximum)
    schema = {"type": "string", "pattern": rf"^\d+(\.\d{{1,{decimals}}})?$", "example": "25.00"}
    return Annotated[int, BeforeValidator(parse), WithJsonSchema(schema)]
