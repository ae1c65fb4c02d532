"""The API's response bodies as pydantic models, free of any web framework.

The routes answer with these shapes and the Python client (`broker.client`) parses answers into
them, so both sides read one definition. Money is a `Decimal` (a decimal string on the wire, kept
exact); times are aware datetimes. Every model keeps fields it does not declare, so a client built
from an older release still carries what a newer broker adds.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, PlainSerializer

Money = Annotated[Decimal, PlainSerializer(lambda value: str(value), return_type=str)]
"""USD as a decimal string (`"0.287000"`), never a float."""


class Body(BaseModel):
    """A response body: undeclared fields are kept, not dropped."""

    model_config = ConfigDict(extra="allow")


Item = TypeVar("Item", bound=BaseModel)


class Page(Body, Generic[Item]):
    """One page of a list: `next_cursor` asks for the next one, null on the last."""

    object: Literal["list"] = "list"
    data: list[Item]
    next_cursor: str | None = None
