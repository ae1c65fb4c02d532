"""HTTP routers of the broker, one module per area, each exporting `router`.

Shared here: `usd_amount`, the request-body constraints for money. Amounts arrive as decimal
strings (`"25.00"`; JSON numbers are read through their decimal text, never as binary floats) and
leave validation as integer micro-dollars, so a handler never sees anything else.

Rules built from parameters are `FieldRules`: one object standing for several pieces of
Pydantic metadata, written inside `Annotated[...]` (`Annotated[int, usd_amount(...)]`), because a
type checker reads an annotation statically and accepts no call that builds a whole type.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from functools import partial
from typing import Any

from annotated_types import GroupedMetadata
from pydantic import BeforeValidator, WithJsonSchema

from pricing.money import InvalidAmount, format_usd, to_decimal, to_micros


class FieldRules(GroupedMetadata):
    """Several pieces of field metadata as one; Pydantic applies them in order."""

    def __init__(self, *items: object) -> None:
        self.items = items

    def __iter__(self) -> Iterator[object]:
        return iter(self.items)


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


def usd_amount(*, decimals: int, minimum: int, maximum: int) -> FieldRules:
    """For an `int` body field holding USD, validated into micro-dollars in [minimum, maximum]."""
    parse = partial(_parse_usd, decimals=decimals, minimum=minimum, maximum=maximum)
    schema = {"type": "string", "pattern": rf"^\d+(\.\d{{1,{decimals}}})?$", "example": "25.00"}
    return FieldRules(BeforeValidator(parse), WithJsonSchema(schema))
