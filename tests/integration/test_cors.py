"""CORS preflights: the headers real frontends send are allowed, and more when configured."""

from __future__ import annotations

import httpx
import pytest

from storyframe.settings import Settings
from tests.support.apps import app_with, settings_for
from tests.support.clients import preflight

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
        response = await preflight(app, ORIGIN, header)

    # then
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert header in _allowed(response)


@pytest.mark.parametrize("dialect", ["sqlite"], indirect=True)  # no database involved
async def test_a_preflight_asking_for_all_of_them_at_once_is_allowed(settings: Settings) -> None:
    async with app_with(settings, cors_origins=[ORIGIN]) as app:
        # when
        response = await preflight(app, ORIGIN, ", ".join(FRONTEND_HEADERS))

    # then
    assert response.status_code == 200, response.text
    assert set(FRONTEND_HEADERS) <= _allowed(response)


@pytest.mark.parametrize("dialect", ["sqlite"], indirect=True)  # no database involved
async def test_a_preflight_asking_for_an_unknown_header_is_refused(settings: Settings) -> None:
    async with app_with(settings, cors_origins=[ORIGIN]) as app:
        # when
        response = await preflight(app, ORIGIN, "traceparent, x-tenant")

    # then
    assert response.status_code == 400
    assert "x-tenant" not in _allowed(response)


@pytest.mark.parametrize("dialect", ["sqlite"], indirect=True)  # no database involved
async def test_a_configured_header_is_allowed_besides_the_default_ones(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given
    monkeypatch.setenv("CORS_ALLOW_HEADERS", "X-Tenant, x-feature-flags")
    configured = settings_for(settings.database_url, settings.data_dir, cors_origins=[ORIGIN])
    async with app_with(configured) as app:
        # when
        tenant = await preflight(app, ORIGIN, "x-tenant")
        both = await preflight(app, ORIGIN, "x-feature-flags, x-tenant, traceparent")
        other = await preflight(app, ORIGIN, "x-tenant, x-unknown")

    # then
    assert tenant.status_code == 200, tenant.text
    assert "x-tenant" in _allowed(tenant)
    assert both.status_code == 200, both.text
    assert {"x-feature-flags", "x-tenant", "traceparent"} <= _allowed(both)
    assert other.status_code == 400
