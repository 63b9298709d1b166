"""The scheme word of ``Authorization`` is case-insensitive (RFC 7235), as docs/api.md says."""

from __future__ import annotations

from learnloop.core.auth import Role
from tests.api.conftest import Served


def test_the_bearer_scheme_word_is_case_insensitive(served: Served) -> None:
    token = served.tokens[Role.READER]
    for scheme in ("Bearer", "bearer", "BEARER", "bEaReR"):
        r = served.client.get("/v1/models", headers={"Authorization": f"{scheme} {token}"})
        assert r.status_code == 200, (scheme, r.text)
    other = served.client.get("/v1/models", headers={"Authorization": f"Basic {token}"})
    assert other.status_code == 401
