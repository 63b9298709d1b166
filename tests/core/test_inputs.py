"""ClientModel: what a client sends is closed, finite, and true/false is not a number."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import pytest
from pydantic import Field, ValidationError

from learnloop.core.inputs import ClientModel


class Body(ClientModel):
    seed: int = 0
    share: Annotated[float, Field(ge=0, le=1)] | None = None
    positive: int | str | bool = 1
    at: datetime | None = None
    flag: bool = False


@pytest.mark.parametrize(
    ("raw", "loc"),
    [
        ('{"seed": false}', "seed"),
        ('{"seed": true}', "seed"),
        ('{"share": true}', "share"),
        ('{"share": 1e309}', "share"),
        ('{"sede": 1}', "sede"),
    ],
)
def test_refused_naming_the_field(raw: str, loc: str) -> None:
    with pytest.raises(ValidationError) as e:
        Body.model_validate_json(raw)
    assert e.value.errors()[0]["loc"] == (loc,)


def test_what_clients_rely_on_still_converts() -> None:
    body = Body.model_validate_json(
        '{"seed": 3, "share": 1, "positive": true, "at": "2026-01-02T03:04:05Z", "flag": true}'
    )
    assert (body.seed, body.share, body.flag) == (3, 1.0, True)
    assert body.at is not None and body.at.year == 2026
    assert Body.model_validate({"seed": 4}).seed == 4
