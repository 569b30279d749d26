from __future__ import annotations

from tests.support.clients import GraphQLClient


async def test_a_project_round_trips(gql: GraphQLClient) -> None:
    payload = await gql.mutate(
        'mutation { createProject(input: {name: "Trip"}) { project { id } userErrors { code } } }'
    )
    project_id = payload["project"]["id"]
    data = await gql.data("query($id: ID!) { project(id: $id) { name } }", {"id": project_id})
    assert data["project"]["name"] == "Trip"
