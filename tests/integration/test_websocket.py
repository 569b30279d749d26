"""The GraphQL WebSocket endpoint at connection level: subprotocol, origin, token.

Each test runs its own app inside a TestClient, whose lifespan disposes the app's engine: the
app, its database connections and the sign-up all live on the TestClient's event loop.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from starlette.exceptions import StarletteDeprecationWarning
from starlette.websockets import WebSocketDisconnect

from storyframe.settings import Settings
from tests.support.apps import build_app
from tests.support.documents import LOG_OUT, SIGN_UP

with warnings.catch_warnings():
    # The dev environment has httpx, which TestClient still supports but warns about.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

ENDPOINT = "/graphql"
TRANSPORT_WS = "graphql-transport-ws"
LEGACY_WS = "graphql-ws"
ALLOWED_ORIGIN = "https://app.storyframe.test"
FOREIGN_ORIGIN = "https://elsewhere.test"
EMAIL = "socket@storyframe.test"
PASSWORD = "a long and quiet river"


@dataclass(frozen=True, slots=True)
class Server:
    client: TestClient
    token: str


@pytest.fixture
def server(settings: Settings) -> Iterator[Server]:
    app = build_app(settings, cors_origins=[ALLOWED_ORIGIN])
    with TestClient(app) as client:
        response = client.post(
            ENDPOINT,
            json={"query": SIGN_UP, "variables": {"input": {"email": EMAIL, "password": PASSWORD}}},
        )
        token: str = response.json()["data"]["signUp"]["token"]
        yield Server(client, token)


def _init(token: str | None) -> dict[str, object]:
    payload = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return {"type": "connection_init", "payload": payload}


def test_a_valid_token_is_acknowledged(server: Server) -> None:
    # given
    with server.client.websocket_connect(ENDPOINT, subprotocols=[TRANSPORT_WS]) as socket:
        # when
        socket.send_json(_init(server.token))
        reply = socket.receive_json()

    # then
    assert socket.accepted_subprotocol == TRANSPORT_WS
    assert reply["type"] == "connection_ack"


def test_the_token_may_come_with_a_lowercase_key(server: Server) -> None:
    # given
    init = {"type": "connection_init", "payload": {"authorization": f"Bearer {server.token}"}}
    with server.client.websocket_connect(ENDPOINT, subprotocols=[TRANSPORT_WS]) as socket:
        # when
        socket.send_json(init)
        reply = socket.receive_json()

    # then
    assert reply["type"] == "connection_ack"


def test_transport_ws_is_chosen_among_several(server: Server) -> None:
    # when
    with server.client.websocket_connect(
        ENDPOINT, subprotocols=[LEGACY_WS, TRANSPORT_WS]
    ) as socket:
        socket.send_json(_init(server.token))
        reply = socket.receive_json()

    # then
    assert socket.accepted_subprotocol == TRANSPORT_WS
    assert reply["type"] == "connection_ack"


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(None, id="no-token"),
        pytest.param("sf_not-a-token-anyone-was-given", id="unknown"),
        pytest.param("not-even-shaped-like-one", id="malformed"),
    ],
)
def test_without_a_valid_token_the_connection_is_closed(server: Server, token: str | None) -> None:
    # given
    with server.client.websocket_connect(ENDPOINT, subprotocols=[TRANSPORT_WS]) as socket:
        socket.send_json(_init(token))

        # when
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_json()

    # then
    assert closed.value.code == 4403


def test_a_revoked_token_is_closed(server: Server) -> None:
    # given
    headers = {"Authorization": f"Bearer {server.token}"}
    assert server.client.post(ENDPOINT, json={"query": LOG_OUT}, headers=headers).json() == {
        "data": {"logOut": {"revoked": True, "userErrors": []}}
    }
    with server.client.websocket_connect(ENDPOINT, subprotocols=[TRANSPORT_WS]) as socket:
        socket.send_json(_init(server.token))

        # when
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_json()

    # then
    assert closed.value.code == 4403


def test_the_legacy_subprotocol_is_refused(server: Server) -> None:
    # when
    with (
        server.client.websocket_connect(ENDPOINT, subprotocols=[LEGACY_WS]) as socket,
        pytest.raises(WebSocketDisconnect) as closed,
    ):
        socket.receive_json()

    # then
    assert socket.accepted_subprotocol is None
    assert closed.value.code == 4406


def test_no_subprotocol_is_refused(server: Server) -> None:
    # when
    with (
        server.client.websocket_connect(ENDPOINT) as socket,
        pytest.raises(WebSocketDisconnect) as closed,
    ):
        socket.receive_json()

    # then
    assert closed.value.code == 4406


def test_a_foreign_origin_is_refused_before_the_handshake(server: Server) -> None:
    # when
    with (
        pytest.raises(WebSocketDisconnect) as closed,
        server.client.websocket_connect(
            ENDPOINT, subprotocols=[TRANSPORT_WS], headers={"Origin": FOREIGN_ORIGIN}
        ),
    ):
        pytest.fail("the handshake was accepted")

    # then
    assert closed.value.code == 4403


def test_an_allowed_origin_is_acknowledged(server: Server) -> None:
    # given
    with server.client.websocket_connect(
        ENDPOINT, subprotocols=[TRANSPORT_WS], headers={"Origin": ALLOWED_ORIGIN}
    ) as socket:
        # when
        socket.send_json(_init(server.token))
        reply = socket.receive_json()

    # then
    assert reply["type"] == "connection_ack"


def test_the_servers_own_origin_is_acknowledged(server: Server) -> None:
    # given: a page the server itself serves (GraphiQL, the diagnostics page), whatever
    # CORS_ORIGINS lists
    with server.client.websocket_connect(
        ENDPOINT, subprotocols=[TRANSPORT_WS], headers={"Origin": "http://testserver"}
    ) as socket:
        # when
        socket.send_json(_init(server.token))
        reply = socket.receive_json()

    # then
    assert reply["type"] == "connection_ack"
