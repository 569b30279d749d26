"""Generated documents, valid and invalid, against the real app on both databases: whatever is
sent, the answer is JSON, never a 5xx, never an internal error, and every error has a code."""

from __future__ import annotations

import base64
from functools import cache
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, mutations, nodes, queries

from storyframe.api_schema import build_schema
from storyframe.services.container import Services
from tests.support.scenes import a_full_project
from tests.support.seeds import Seeds

EXAMPLES = 100
"""Per database and mode: enough to reach every root field several times in a minute or so."""

TYPES = ["Project", "Video", "Context", "Frame", "MainChat", "Message", "Image", "Generation"]


def _global_id(type_name: str, pk: int) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{pk}".encode()).decode().rstrip("=")


def _ids() -> st.SearchStrategy[Any]:
    """IDs of objects that exist, that do not, that are out of any column's range, of the
    wrong type, and strings that are no ID at all."""
    real = st.builds(
        _global_id,
        st.sampled_from(TYPES),
        st.one_of(st.integers(0, 8), st.integers(2**31 - 2, 2**31 + 2), st.just(10**18 - 1)),
    )
    return st.one_of(real, st.text(max_size=30)).map(nodes.String)


SCALARS: dict[str, st.SearchStrategy[Any]] = {
    "ID": _ids(),
    "Upload": st.text(max_size=10).map(nodes.String),
    "Date": st.dates().map(lambda day: nodes.String(day.isoformat())),
    "DateTime": st.datetimes().map(lambda at: nodes.String(at.isoformat())),
}


def _check(response: httpx.Response, document: str) -> None:
    assert response.status_code < 500, (document, response.text)
    assert response.headers["content-type"].startswith("application/"), document
    body = response.json()
    assert "Traceback" not in response.text, document
    for error in body.get("errors") or []:
        code = (error.get("extensions") or {}).get("code")
        assert code, (document, error)
        assert code != "INTERNAL_SERVER_ERROR", (document, error)


@pytest.fixture
async def seeded(services: Services, seeds: Seeds) -> None:
    """Real objects for the generated IDs to find: the first of each kind is the owner's."""
    await a_full_project(services, seeds, "Fuzzed")


@pytest.mark.usefixtures("seeded")
@pytest.mark.parametrize("mode", [Mode.POSITIVE, Mode.NEGATIVE], ids=["valid", "invalid"])
@settings(
    max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)
@given(data=st.data())
async def test_generated_documents_get_coded_answers(
    http: httpx.AsyncClient, mode: Mode, data: st.DataObject
) -> None:
    # given
    document = data.draw(_documents(mode), label="document")

    # when
    response = await http.post("/graphql", json={"query": document})

    # then
    _check(response, document)


@cache
def _documents(mode: Mode) -> st.SearchStrategy[str]:
    schema = build_schema()._schema
    return st.one_of(
        queries(schema, custom_scalars=SCALARS, mode=mode),
        mutations(schema, custom_scalars=SCALARS, mode=mode),
    )
