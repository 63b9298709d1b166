"""The base of every model a client sends: closed, finite, and no booleans taken for numbers.

pydantic's lax mode reads JSON ``true`` as ``1`` for an ``int`` or ``float`` field and accepts
``Infinity`` for a float; a client sending ``"seed": false`` or ``"max_drop": true`` most likely
sent the wrong field, and the schema the API publishes says "integer" or "number", not
"boolean". :class:`ClientModel` refuses both, naming the field, while keeping the other lax
conversions clients rely on (an ISO string for a date-time, ``1`` for a float).
"""

from __future__ import annotations

import types
import typing
from typing import Any, ClassVar, Union

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator


def _numeric_without_bool(annotation: Any) -> bool:
    """Whether ``annotation`` takes an int or float but no bool (recursing through unions,
    ``Annotated`` and ``Optional``; not into containers, whose items validate on their own)."""
    found: set[type] = set()

    def visit(tp: Any) -> None:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            visit(typing.get_args(tp)[0])
        elif origin in (Union, types.UnionType):
            for arg in typing.get_args(tp):
                visit(arg)
        elif tp in (int, float, bool):
            found.add(tp)

    visit(annotation)
    return bool(found & {int, float}) and bool not in found


class ClientModel(BaseModel):
    """Base of request models: unknown fields refused, numbers finite, booleans are not numbers.

    Subclasses may widen ``model_config`` (e.g. ``frozen=True``); they keep these rules."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    _numeric_fields: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls._numeric_fields = frozenset(
            name for name, f in cls.model_fields.items() if _numeric_without_bool(f.annotation)
        )

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, bool) and info.field_name in cls._numeric_fields:
            raise ValueError("a number is expected, not true/false")
        return value
