"""A `graphql-transport-ws` client over a real WebSocket (the `websockets` library), for the
subscription tests: connect with a token, subscribe, read each message as it comes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

PROTOCOL = "graphql-transport-ws"
MESSAGE_SECONDS = 60.0
"""A generous bound for one message on a loaded machine; reached only when something is wrong."""


class Subscriptions:
    def __init__(self, socket: ClientConnection) -> None:
        self._socket = socket
        self._ids = 0

    async def subscribe(self, query: str, variables: dict[str, Any]) -> str:
        self._ids += 1
        operation = str(self._ids)
        payload = {"query": query, "variables": variables}
        await self._send({"id": operation, "type": "subscribe", "payload": payload})
        return operation

    async def stop(self, operation: str) -> None:
        await self._send({"id": operation, "type": "complete"})

    async def message(self) -> dict[str, Any]:
        """The next message that is not a ping (pings are answered)."""
        while True:
            raw = await asyncio.wait_for(self._socket.recv(), MESSAGE_SECONDS)
            message: dict[str, Any] = json.loads(raw)
            if message["type"] == "ping":
                await self._send({"type": "pong"})
                continue
            return message

    async def events(self, operation: str) -> AsyncIterator[dict[str, Any]]:
        """The data of each `next` of the operation, until it completes; an `error` fails."""
        while True:
            message = await self.message()
            assert message.get("id") == operation, message
            if message["type"] == "complete":
                return
            assert message["type"] == "next", message
            assert "errors" not in message["payload"], message["payload"]
            yield message["payload"]["data"]

    async def _send(self, message: dict[str, Any]) -> None:
        await self._socket.send(json.dumps(message))


@asynccontextmanager
async def subscriptions(base_url: str, token: str) -> AsyncIterator[Subscriptions]:
    """A connection to the server's `/graphql` WebSocket, initialised with the token."""
    url = base_url.replace("http://", "ws://", 1) + "/graphql"
    async with connect(url, subprotocols=[PROTOCOL], proxy=None) as socket:  # type: ignore[list-item]
        client = Subscriptions(socket)
        await client._send(
            {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
        )
        ack = await client.message()
        assert ack["type"] == "connection_ack", ack
        yield client
