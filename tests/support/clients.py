"""Clients of an app in process (over ASGI): plain HTTP, and GraphQL that unwraps the answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.types import ASGIApp

from tests.support.documents import SIGN_UP

BASE_URL = "http://storyframe.test"


class GraphQLClient:
    """Posts GraphQL documents to the app over HTTP and unwraps the answers."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def execute(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The whole response body: `data` and, when something failed, `errors`."""
        response = await self.http.post("/graphql", json={"query": query, "variables": variables})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """`data` of a response that must have no errors."""
        body = await self.execute(query, variables)
        assert "errors" not in body, body["errors"]
        data: dict[str, Any] = body["data"]
        return data

    async def mutate(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The payload of a single-mutation document that must succeed without user errors."""
        data = await self.data(query, variables)
        (payload,) = data.values()
        assert payload["userErrors"] == [], payload["userErrors"]
        result: dict[str, Any] = payload
        return result


@asynccontextmanager
async def http_client(
    app: ASGIApp,
    token: str | None = None,
    *,
    address: str = "127.0.0.1",
    headers: dict[str, str] | None = None,
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of `app` sending `token`, if any, and `headers` from the client `address`."""
    transport = httpx.ASGITransport(app=app, client=(address, 40_000))
    sent = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(
        transport=transport, base_url=BASE_URL, headers=sent | (headers or {})
    ) as http:
        yield http


@asynccontextmanager
async def client_of(
    app: Starlette, token: str | None = None, address: str = "127.0.0.1"
) -> AsyncIterator[GraphQLClient]:
    """A GraphQL client of `app` sending `token`, if any, from the client `address`."""
    async with http_client(app, token, address=address) as http:
        yield GraphQLClient(http)


async def preflight(app: ASGIApp, origin: str, requested: str) -> httpx.Response:
    """A browser's CORS preflight from `origin` for a POST to /graphql sending `requested`
    headers."""
    async with http_client(app) as http:
        return await http.options(
            "/graphql",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": requested,
            },
        )


async def sign_up(gql: GraphQLClient, email: str, password: str) -> str:
    """A new account's token, signed up through the API."""
    payload = await gql.mutate(SIGN_UP, {"input": {"email": email, "password": password}})
    token: str = payload["token"]
    return token
