"""Documents and helpers for the generation tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from storyframe.runtime import Runtime
from storyframe.settings import Settings
from tests.support.apps import OwnedApp, owned_app
from tests.support.clients import GraphQLClient
from tests.support.clock import Clock
from tests.support.documents import UPDATE_CONTEXT
from tests.support.fake_openai import FakeOpenAI
from tests.support.uploading import originals

GENERATION = """
  id status provider placeholder model visionModel size quality
  requestedCount completedCount failedCount
  errors { index code message }
  usage { inputTextTokens inputImageTokens outputTokens totalTokens }
  estimatedCostUsd createdAt startedAt finishedAt durationMs
"""
MESSAGE = f"""
  id prompt withContext finalPrompt
  images {{ id url thumbnailUrl width height contentType byteSize placeholder }}
  attachedImages {{ id }}
  generation {{ {GENERATION} }}
"""
_CHAT_FIELD = {"Frame": "frameId", "Context": "contextId", "MainChat": "mainChatId"}


def generate_document(kind: str) -> str:
    return f"""
mutation($input: Generate{kind}ImagesInput!) {{
  generate{kind}Images(input: $input) {{
    message {{ {MESSAGE} }}
    generation {{ {GENERATION} }}
    userErrors {{ field message code }}
  }}
}}
"""


async def generate(
    gql: GraphQLClient, kind: str, chat_id: str, prompt: str, **extra: Any
) -> dict[str, Any]:
    """The payload of a generate mutation, whatever its user errors. It waits for the
    generation to end unless `wait=False` is given."""
    variables = {"input": {_CHAT_FIELD[kind]: chat_id, "prompt": prompt, "wait": True, **extra}}
    data = await gql.data(generate_document(kind), variables)
    (payload,) = data.values()
    result: dict[str, Any] = payload
    return result


async def generate_ok(
    gql: GraphQLClient, kind: str, chat_id: str, prompt: str, **extra: Any
) -> dict[str, Any]:
    payload = await generate(gql, kind, chat_id, prompt, **extra)
    assert payload["userErrors"] == [], payload["userErrors"]
    return payload


CHAT_MESSAGES = f"""
query($id: ID!) {{
  node(id: $id) {{
    ... on Frame {{ messages {{ nodes {{ {MESSAGE} }} }} images {{ nodes {{ id }} }} }}
    ... on Context {{ messages {{ nodes {{ {MESSAGE} }} }} images {{ nodes {{ id }} }} }}
    ... on MainChat {{ messages {{ nodes {{ {MESSAGE} }} }} images {{ nodes {{ id }} }} }}
  }}
}}
"""


async def chat_messages(gql: GraphQLClient, chat_id: str) -> list[dict[str, Any]]:
    """The chat's messages, newest first, as the API lists them."""
    data = await gql.data(CHAT_MESSAGES, {"id": chat_id})
    nodes: list[dict[str, Any]] = data["node"]["messages"]["nodes"]
    return nodes


async def chat_image_ids(gql: GraphQLClient, chat_id: str) -> list[str]:
    data = await gql.data(CHAT_MESSAGES, {"id": chat_id})
    return [image["id"] for image in data["node"]["images"]["nodes"]]


async def set_context(gql: GraphQLClient, context_id: str, content: str) -> None:
    await gql.mutate(UPDATE_CONTEXT, {"id": context_id, "content": content})


@dataclass
class OpenAIStack:
    runtime: Runtime
    http: httpx.AsyncClient
    gql: GraphQLClient
    fake: FakeOpenAI
    clock: Clock
    """The app's clock: the real time until a test sets it."""

    def media(self) -> list[str]:
        return originals(self.runtime.settings.media_dir)


Start = Callable[..., Any]


@pytest.fixture(name="start")
async def start_fixture(
    settings: Settings, fake_openai: FakeOpenAI
) -> AsyncIterator[Callable[..., Any]]:
    """Starts the app against the fake OpenAI, with setting overrides; signs the owner up (or, for
    a second app on the same database, in)."""
    launched: list[OwnedApp] = []
    async with AsyncExitStack() as apps:

        async def launch(**overrides: Any) -> OpenAIStack:
            clock = Clock()
            changes: dict[str, Any] = {
                "clock": clock,
                "openai_api_key": SecretStr(fake_openai.api_key),
                "openai_base_url": fake_openai.base_url,
                "openai_max_retry_wait_seconds": 1.0,
                **overrides,
            }
            owned = await apps.enter_async_context(
                owned_app(settings, new_owner=not launched, **changes)
            )
            launched.append(owned)
            return OpenAIStack(owned.runtime, owned.http, owned.gql, fake_openai, clock)

        yield launch


@pytest.fixture(name="stack")
async def openai_stack_fixture(start: Callable[..., Any]) -> OpenAIStack:
    launched: OpenAIStack = await start()
    return launched
