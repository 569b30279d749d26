"""CORS preflights: the headers real frontends send are allowed, and more when configured."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette

from storyframe.app import create_app
from storyframe.settings import Settings
from tests.integration.scenes import BASE_URL, app_with

ORIGIN = "https://app.storyframe.test"
# What Apollo Client, OpenTelemetry, Sentry and request-id middleware add to requests.
FRONTEND_HEADERS = [
    "authorization",
    "content-type",
    "apollo-require-preflight",
    "x-apollo-operation-name",
    "graphql-preflight",
    "apollographql-client-name",
    "apollographql-client-version",
    "traceparent",
    "tracestate",
    "sentry-trace",
    "baggage",
    "x-request-id",
]


async def _preflight(app: Starlette, requested: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
        return await http.options(
            "/graphql",
            headers={
                "Origin": ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": requested,
            },
        )


def _allowed(response: httpx.Response) -> set[str]:
    listed = response.headers.get("access-control-allow-headers", "")
    return {name.strip().lower() for name in listed.split(",") if name.strip()}


@pytest.mark.parametrize("header", FRONTEND_HEADERS)
@pytest.mark.parametrize("dialect", ["sqlite"], indirect=True)  # no database involved
async def test_a_preflight_asking_for_a_frontend_header_is_allowed(
    settings: Settings, header: str
) -> None:
    async with app_with(settings, cors_origins=[ORIGIN]) as app:
        # when
        response = await _preflight(app, header)

    # then
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert header in _allowed(response)


@pytest.mark.parametrize("dialect", ["sqlite"], indirect=True)  # no database involved
async def test_a_preflight_asking_for_all_of_them_at_once_is_allowed(settings: Settings) -> None:
    async with app_with(settings, cors_origins=[ORIGIN]) as app:
        # when
        response = await _preflight(app, ", ".join(FRONTEND_HEADERS))

    # then
    assert response.status_code == 200, response.text
    assert set(FRONTEND_HEADERS) <= _allowed(response)


@pytest.mark.parametrize("dialect", ["sqlite"], indirect=True)  # no database involved
async def test_a_preflight_asking_for_an_unknown_header_is_refused(settings: Settings) -> None:
    async with app_with(settings, cors_origins=[ORIGIN]) as app:
        # when
        response = await _preflight(app, "traceparent, x-tenant")

    # then
    assert response.status_code == 400
    assert "x-tenant" not in _allowed(response)


@pytest.mark.parametrize("dialect", ["sqlite"], indirect=True)  # no database involved
async def test_a_configured_header_is_allowed_besides_the_default_ones(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given
    monkeypatch.setenv("CORS_ALLOW_HEADERS", "X-Tenant, x-feature-flags")
    configured = Settings(
        database_url=settings.database_url, data_dir=settings.data_dir, cors_origins=[ORIGIN]
    )
    app = create_app(configured)

    try:
        # when
        tenant = await _preflight(app, "x-tenant")
        both = await _preflight(app, "x-feature-flags, x-tenant, traceparent")
        other = await _preflight(app, "x-tenant, x-unknown")
    finally:
        await app.state.runtime.aclose()

    # then
    assert tenant.status_code == 200, tenant.text
    assert "x-tenant" in _allowed(tenant)
    assert both.status_code == 200, both.text
    assert {"x-feature-flags", "x-tenant", "traceparent"} <= _allowed(both)
    assert other.status_code == 400
