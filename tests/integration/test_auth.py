"""Accounts through the API: signing up, logging in and out, tokens, passwords, rate limits."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlmodel import col
from starlette.applications import Starlette

from storyframe.api_schema import build_schema
from storyframe.db.tables import AccessToken, User, utcnow
from storyframe.runtime import Runtime
from storyframe.schema.ids import encode_id
from storyframe.services.accounts import Session as AccountSession
from storyframe.services.container import Services
from storyframe.settings import Settings
from tests.support import documents as doc
from tests.support.apps import OWNER_EMAIL, OWNER_PASSWORD, app_with
from tests.support.clients import GraphQLClient, client_of, http_client, sign_up
from tests.support.generating import generate_document
from tests.support.ids import unknown_id
from tests.support.scenes import Ids, Their, a_full_project, with_ids
from tests.support.seeds import Seeds
from tests.support.sql import dump
from tests.support.uploading import UPLOAD_IMAGES

NEW_EMAIL = "new.person@storyframe.test"
NEW_PASSWORD = "paper boats on a pond"
NEW_PASSWORD_2 = "lanterns along the harbour"

VIEWER = "query { viewer { id email } }"
PROJECTS = "query { projects { totalCount } }"
INTROSPECTION = "{ __schema { queryType { name } } }"


def _error_codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


async def _viewer_refused(gql: GraphQLClient) -> bool:
    """Whether the client's token counts for nothing: no viewer, and what needs one refused."""
    viewer = await gql.execute(VIEWER)
    projects = await gql.execute(PROJECTS)
    return viewer == {"data": {"viewer": None}} and (
        projects["data"] is None and _error_codes(projects) == ["UNAUTHENTICATED"]
    )


async def _log_in(gql: GraphQLClient, email: str, password: str) -> dict[str, Any]:
    data = await gql.data(doc.LOG_IN, {"input": {"email": email, "password": password}})
    payload: dict[str, Any] = data["logIn"]
    return payload


# --- signing up -------------------------------------------------------------------------------


async def test_sign_up_returns_a_token_for_the_new_user(
    anonymous_gql: GraphQLClient, app: Starlette
) -> None:
    # when
    payload = await anonymous_gql.mutate(
        doc.SIGN_UP, {"input": {"email": NEW_EMAIL, "password": NEW_PASSWORD}}
    )

    # then
    assert payload["token"].startswith("sf_")
    assert payload["user"]["email"] == NEW_EMAIL
    async with client_of(app, payload["token"]) as new_user:
        assert await new_user.data(VIEWER) == {"viewer": payload["user"]}


async def test_sign_up_normalises_the_email(anonymous_gql: GraphQLClient) -> None:
    # when
    payload = await anonymous_gql.mutate(
        doc.SIGN_UP, {"input": {"email": "  New.Person@StoryFrame.TEST ", "password": NEW_PASSWORD}}
    )

    # then
    assert payload["user"]["email"] == NEW_EMAIL


@pytest.mark.parametrize(
    "email", [OWNER_EMAIL, OWNER_EMAIL.upper(), f"  {OWNER_EMAIL.title()}  "], ids=str
)
async def test_an_email_has_one_account_whatever_its_case(
    anonymous_gql: GraphQLClient, owner: AccountSession, runtime: Runtime, email: str
) -> None:
    # given
    before = await dump(runtime.engine)

    # when
    data = await anonymous_gql.data(
        doc.SIGN_UP, {"input": {"email": email, "password": NEW_PASSWORD}}
    )

    # then
    assert data["signUp"] == {
        "token": None,
        "user": None,
        "userErrors": [
            {"field": ["email"], "message": "an account with this email exists", "code": "TAKEN"}
        ],
    }
    assert await dump(runtime.engine) == before


@pytest.mark.parametrize(
    ("email", "password", "field", "code"),
    [
        pytest.param(NEW_EMAIL, "password123", "password", "WEAK_PASSWORD", id="common"),
        pytest.param(NEW_EMAIL, "short one", "password", "WEAK_PASSWORD", id="short"),
        pytest.param(NEW_EMAIL, "abababababab", "password", "WEAK_PASSWORD", id="few-letters"),
        pytest.param(NEW_EMAIL, "my new.person pw", "password", "WEAK_PASSWORD", id="has-email"),
        pytest.param(NEW_EMAIL, "river stones " * 10, "password", "TOO_LONG", id="over-long"),
        pytest.param("not-an-email", NEW_PASSWORD, "email", "INVALID", id="no-at"),
        pytest.param("a@@storyframe.test", NEW_PASSWORD, "email", "INVALID", id="two-ats"),
        pytest.param("someone@localhost", NEW_PASSWORD, "email", "INVALID", id="no-dot"),
        pytest.param("some one@storyframe.test", NEW_PASSWORD, "email", "INVALID", id="space"),
        pytest.param("@storyframe.test", NEW_PASSWORD, "email", "INVALID", id="no-local-part"),
        pytest.param("x" * 250 + "@storyframe.test", NEW_PASSWORD, "email", "TOO_LONG", id="long"),
    ],
)
async def test_a_refused_sign_up_creates_nothing(
    anonymous_gql: GraphQLClient,
    runtime: Runtime,
    email: str,
    password: str,
    field: str,
    code: str,
) -> None:
    # given
    before = await dump(runtime.engine)

    # when
    data = await anonymous_gql.data(doc.SIGN_UP, {"input": {"email": email, "password": password}})

    # then
    payload = data["signUp"]
    assert (payload["token"], payload["user"]) == (None, None)
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [([field], code)]
    assert await dump(runtime.engine) == before


# --- logging in -------------------------------------------------------------------------------


@pytest.mark.parametrize("email", [OWNER_EMAIL, f" {OWNER_EMAIL.upper()} "], ids=str)
async def test_log_in_with_the_right_password_gives_a_new_token(
    anonymous_gql: GraphQLClient, owner: AccountSession, app: Starlette, email: str
) -> None:
    # when
    payload = await _log_in(anonymous_gql, email, OWNER_PASSWORD)

    # then
    assert payload["userErrors"] == []
    assert payload["token"].startswith("sf_")
    assert payload["token"] != owner.token
    assert payload["user"]["email"] == OWNER_EMAIL
    async with client_of(app, payload["token"]) as logged_in:
        assert await logged_in.data(VIEWER) == {"viewer": payload["user"]}


async def test_a_wrong_password_and_an_unknown_email_are_refused_alike(
    anonymous_gql: GraphQLClient, owner: AccountSession
) -> None:
    # when
    wrong_password = await _log_in(anonymous_gql, OWNER_EMAIL, "not the right password")
    unknown_email = await _log_in(anonymous_gql, "nobody@storyframe.test", OWNER_PASSWORD)

    # then
    assert wrong_password == unknown_email
    assert wrong_password == {
        "token": None,
        "user": None,
        "userErrors": [
            {
                "field": ["password"],
                "message": "email or password is incorrect",
                "code": "INVALID_CREDENTIALS",
            }
        ],
    }


# --- using, revoking and expiring tokens ------------------------------------------------------


async def test_the_viewer_is_the_tokens_user(gql: GraphQLClient, owner: AccountSession) -> None:
    # when
    data = await gql.data(VIEWER)

    # then
    assert owner.user.id is not None
    assert data == {"viewer": {"id": encode_id("User", owner.user.id), "email": OWNER_EMAIL}}


async def test_log_out_revokes_the_token_and_only_it(
    gql: GraphQLClient, anonymous_gql: GraphQLClient, app: Starlette
) -> None:
    # given
    other_token = (await _log_in(anonymous_gql, OWNER_EMAIL, OWNER_PASSWORD))["token"]

    # when
    payload = await gql.mutate(doc.LOG_OUT)

    # then
    assert payload["revoked"] is True
    assert await _viewer_refused(gql)
    body = await gql.execute(doc.LOG_OUT)
    assert _error_codes(body) == ["UNAUTHENTICATED"]
    async with client_of(app, other_token) as other:
        assert (await other.data(VIEWER))["viewer"]["email"] == OWNER_EMAIL


async def test_an_expired_token_is_refused(
    gql: GraphQLClient, owner: AccountSession, runtime: Runtime
) -> None:
    # given
    digest = hashlib.sha256(owner.token.encode()).hexdigest()
    async with runtime.engine.begin() as connection:
        await connection.execute(
            update(AccessToken)
            .where(col(AccessToken.token_hash) == digest)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )

    # when
    refused = await _viewer_refused(gql)

    # then
    assert refused


async def test_a_token_lives_as_long_as_the_settings_say(
    settings: Settings, runtime: Runtime
) -> None:
    # given
    async with app_with(settings, token_ttl_days=2) as app, client_of(app) as gql:
        # when
        token = await sign_up(gql, NEW_EMAIL, NEW_PASSWORD)

    # then
    digest = hashlib.sha256(token.encode()).hexdigest()
    async with runtime.engine.connect() as connection:
        row = (
            await connection.execute(
                select(col(AccessToken.created_at), col(AccessToken.expires_at)).where(
                    col(AccessToken.token_hash) == digest
                )
            )
        ).one()
    lifetime = row.expires_at - row.created_at
    assert abs(lifetime - timedelta(days=2)) < timedelta(minutes=1)


# --- changing the password --------------------------------------------------------------------


async def test_a_wrong_current_password_changes_nothing(
    gql: GraphQLClient, runtime: Runtime
) -> None:
    # given
    before = await dump(runtime.engine)

    # when
    data = await gql.data(
        doc.CHANGE_PASSWORD,
        {"input": {"currentPassword": "not the right password", "newPassword": NEW_PASSWORD}},
    )

    # then
    assert data["changePassword"] == {
        "user": None,
        "userErrors": [
            {
                "field": ["currentPassword"],
                "message": "current password is incorrect",
                "code": "INVALID_CREDENTIALS",
            }
        ],
    }
    assert await dump(runtime.engine) == before


async def test_a_weak_new_password_changes_nothing(gql: GraphQLClient, runtime: Runtime) -> None:
    # given
    before = await dump(runtime.engine)

    # when
    data = await gql.data(
        doc.CHANGE_PASSWORD,
        {"input": {"currentPassword": OWNER_PASSWORD, "newPassword": "password123"}},
    )

    # then
    errors = data["changePassword"]["userErrors"]
    assert [(e["field"], e["code"]) for e in errors] == [(["newPassword"], "WEAK_PASSWORD")]
    assert await dump(runtime.engine) == before


async def test_changing_the_password_revokes_the_other_tokens_only(
    gql: GraphQLClient, anonymous_gql: GraphQLClient, app: Starlette
) -> None:
    # given
    other_token = (await _log_in(anonymous_gql, OWNER_EMAIL, OWNER_PASSWORD))["token"]

    # when
    payload = await gql.mutate(
        doc.CHANGE_PASSWORD,
        {"input": {"currentPassword": OWNER_PASSWORD, "newPassword": NEW_PASSWORD_2}},
    )

    # then
    assert payload["user"]["email"] == OWNER_EMAIL
    assert (await gql.data(VIEWER))["viewer"]["email"] == OWNER_EMAIL
    async with client_of(app, other_token) as other:
        assert await _viewer_refused(other)
    new = await _log_in(anonymous_gql, OWNER_EMAIL, NEW_PASSWORD_2)
    assert new["userErrors"] == []
    old = await _log_in(anonymous_gql, OWNER_EMAIL, OWNER_PASSWORD)
    assert [e["code"] for e in old["userErrors"]] == ["INVALID_CREDENTIALS"]


# --- without a token --------------------------------------------------------------------------

# Every operation but signUp and logIn, on the owner's real objects: its document and variables,
# in which `Their(kind)` stands for the owner's ID of that kind.
Call = tuple[str, dict[str, Any]]


def _by_id(field: str, kind: str) -> Call:
    return f"query($id: ID!) {{ {field}(id: $id) {{ id }} }}", {"id": Their(kind)}


def _generate(kind: str, chat: str, field: str) -> Call:
    return generate_document(kind), {"input": {field: Their(chat), "prompt": "p"}}


ANONYMOUS: dict[str, Call] = {
    "projects": ("query { projects { totalCount nodes { id } } }", {}),
    "generations": (
        "query($id: ID) { generations(videoId: $id) { totalCount } }",
        {"id": unknown_id("Video")},
    ),
    "exports": (
        "query($id: ID!) { exports(videoId: $id) { totalCount } }",
        {"id": unknown_id("Video")},
    ),
    **{
        field: _by_id(field, kind)
        for field, kind in [
            ("project", "project"),
            ("video", "video"),
            ("context", "context"),
            ("frame", "frame"),
            ("mainChat", "main_chat"),
            ("image", "image"),
        ]
    },
    "node": (doc.NODE, {"id": Their("message")}),
    "nodes": (
        "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
        {"ids": [Their("project"), Their("image")]},
    ),
    "logOut": (doc.LOG_OUT, {}),
    "changePassword": (
        doc.CHANGE_PASSWORD,
        {"input": {"currentPassword": OWNER_PASSWORD, "newPassword": "taken by a stranger"}},
    ),
    "createProject": (doc.CREATE_PROJECT, {"name": "Cuckoo"}),
    "updateProject": (doc.UPDATE_PROJECT, {"id": Their("project"), "name": "Cuckoo"}),
    "deleteProject": (doc.DELETE_PROJECT, {"id": Their("project")}),
    "createVideo": (doc.CREATE_VIDEO, {"projectId": Their("project"), "name": "Cuckoo"}),
    "updateVideo": (doc.UPDATE_VIDEO, {"id": Their("video"), "name": "Cuckoo"}),
    "deleteVideo": (doc.DELETE_VIDEO, {"id": Their("video")}),
    "updateContext": (doc.UPDATE_CONTEXT, {"id": Their("context"), "content": "Cuckoo"}),
    "createFrame": (doc.CREATE_FRAME, {"videoId": Their("video"), "title": "Cuckoo"}),
    "updateFrame": (doc.UPDATE_FRAME, {"id": Their("frame"), "title": "Cuckoo"}),
    "reorderFrame": (doc.REORDER_FRAME, {"id": Their("frame"), "newOrder": 1}),
    "selectFrameImage": (doc.SELECT_FRAME_IMAGE, {"frameId": Their("frame"), "imageId": None}),
    "deleteFrame": (doc.DELETE_FRAME, {"id": Their("frame")}),
    "createMainChat": (doc.CREATE_MAIN_CHAT, {"videoId": Their("video"), "name": "Cuckoo"}),
    "updateMainChat": (doc.UPDATE_MAIN_CHAT, {"id": Their("main_chat"), "name": "Cuckoo"}),
    "deleteMainChat": (doc.DELETE_MAIN_CHAT, {"id": Their("main_chat")}),
    "clearFrameHistory": (doc.CLEAR_FRAME_HISTORY, {"id": Their("frame")}),
    "clearContextHistory": (doc.CLEAR_CONTEXT_HISTORY, {"id": Their("context")}),
    "clearMainChatHistory": (doc.CLEAR_MAIN_CHAT_HISTORY, {"id": Their("main_chat")}),
    "copyImage": (doc.COPY_IMAGE, {"imageId": Their("image"), "targetId": Their("context")}),
    "moveImage": (
        doc.MOVE_IMAGE,
        {"imageId": Their("image"), "sourceId": Their("frame"), "targetId": Their("context")},
    ),
    "removeImage": (doc.REMOVE_IMAGE, {"imageId": Their("image"), "sourceId": Their("frame")}),
    "deleteImage": (doc.DELETE_IMAGE, {"id": Their("image")}),
    "uploadImages": (UPLOAD_IMAGES, {"input": {"targetId": Their("frame"), "files": []}}),
    "generateFrameImages": _generate("Frame", "frame", "frameId"),
    "generateContextImages": _generate("Context", "context", "contextId"),
    "generateMainChatImages": _generate("MainChat", "main_chat", "mainChatId"),
    "runDiagnostics": (
        "mutation { runDiagnostics(input: {suite: OPENAI}) { run { id } userErrors { code } } }",
        {},
    ),
    "exportVideo": (
        "mutation($input: ExportVideoInput!) {"
        " exportVideo(input: $input) { export { id } userErrors { code } } }",
        {"input": {"videoId": unknown_id("Video"), "format": "PDF"}},
    ),
    "cancelExport": (
        "mutation($id: ID!) {"
        " cancelExport(input: {id: $id}) { export { id } userErrors { code } } }",
        {"id": unknown_id("Export")},
    ),
    "deleteExport": (
        "mutation($id: ID!) { deleteExport(input: {id: $id}) { deletedId userErrors { code } } }",
        {"id": unknown_id("Export")},
    ),
    "cancelGeneration": (
        "mutation($input: CancelGenerationInput!) {"
        " cancelGeneration(input: $input) { generation { id } userErrors { code } } }",
        {"input": {"id": unknown_id("Generation")}},
    ),
    "analyzeImages": (
        "mutation($input: AnalyzeImagesInput!) {"
        " analyzeImages(input: $input) { analysis { text } } }",
        {"input": {"imageIds": [Their("image")], "question": "q"}},
    ),
    "imageModels": ("query { imageModels { name } }", {}),
    "openAIStatus": ("query { openAIStatus { configured } }", {}),
}
# Edge cases of the fetches by ID: a type that is no Node of the viewer's, and no IDs at all.
ANONYMOUS_EDGES: dict[str, Call] = {
    "node of a user": ("query($user: ID!) { node(id: $user) { id } }", {}),
    "nodes of nothing": ("query { nodes(ids: []) { id } }", {}),
    "node of an unknown type": ('query { node(id: "VW5rbm93bjox") { id } }', {}),
    "node of a malformed ID": ('query { node(id: "not an ID") { id } }', {}),
    "nodes of a malformed ID": ('query { nodes(ids: ["not an ID"]) { id } }', {}),
}
OPEN_TO_ALL = {"signUp", "logIn"}
NULL_WITHOUT_A_TOKEN = {"viewer"}


@pytest.fixture
async def owned(services: Services, seeds: Seeds) -> Ids:
    return await a_full_project(services, seeds, "Owned")


def test_every_operation_is_tried_without_a_token() -> None:
    # given
    schema = build_schema()._schema
    assert schema.query_type is not None
    assert schema.mutation_type is not None

    # when
    fields = set(schema.query_type.fields) | set(schema.mutation_type.fields)

    # then
    assert fields - OPEN_TO_ALL - NULL_WITHOUT_A_TOKEN == set(ANONYMOUS)


@pytest.mark.parametrize(
    "call", [*ANONYMOUS.values(), *ANONYMOUS_EDGES.values()], ids=[*ANONYMOUS, *ANONYMOUS_EDGES]
)
async def test_without_a_token_an_operation_is_unauthenticated_and_changes_nothing(
    anonymous_gql: GraphQLClient,
    owned: Ids,
    owner: AccountSession,
    runtime: Runtime,
    call: Call,
) -> None:
    # given
    assert owner.user.id is not None
    document, variables = call
    variables = {**with_ids(variables, owned), "user": encode_id("User", owner.user.id)}
    before = await dump(runtime.engine)

    # when
    body = await anonymous_gql.execute(document, variables)

    # then
    assert _error_codes(body) == ["UNAUTHENTICATED"]
    assert body["errors"][0]["message"].startswith("log in to do this")
    assert body["data"] is None or set(body["data"].values()) == {None}
    assert await dump(runtime.engine) == before


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer sf_not-a-token-anyone-was-given"],
    ids=["no-token", "unknown-token"],
)
async def test_without_a_valid_token_the_viewer_is_null_and_the_rest_is_answered(
    app: Starlette, authorization: str | None
) -> None:
    # given
    headers = {"Authorization": authorization} if authorization else {}
    query = "query { __typename viewer { id email } imageModels { name } }"

    # when
    async with http_client(app, headers=headers) as http:
        alone = await GraphQLClient(http).execute(VIEWER)
        with_others = await GraphQLClient(http).execute("query { __typename viewer { id email } }")
        with_a_refused_field = await GraphQLClient(http).execute(query)

    # then: no error for the viewer, and the other fields keep their data
    assert alone == {"data": {"viewer": None}}
    assert with_others == {"data": {"__typename": "Query", "viewer": None}}
    assert _error_codes(with_a_refused_field) == ["UNAUTHENTICATED"]
    assert with_a_refused_field["errors"][0]["path"] == ["imageModels"]


async def test_introspection_needs_no_token(anonymous_gql: GraphQLClient) -> None:
    # when
    data = await anonymous_gql.data(INTROSPECTION)

    # then
    assert data == {"__schema": {"queryType": {"name": "Query"}}}


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param("Bearer", id="no-token"),
        pytest.param("Bearer    ", id="blank-token"),
        pytest.param("Bearer sf_not-a-token-anyone-was-given", id="unknown"),
        pytest.param("Bearer not-even-shaped-like-one", id="malformed"),
        pytest.param("Bearer sf_" + "x" * 500, id="over-long"),
        pytest.param("Basic b3duZXI6cGFzc3dvcmQ=", id="basic-scheme"),
        pytest.param("{token}x", id="no-scheme"),
        pytest.param("Bearer {token}x", id="tampered"),
        pytest.param("Token {token}", id="other-scheme"),
    ],
)
async def test_a_bad_authorization_header_is_unauthenticated(
    app: Starlette, owner: AccountSession, authorization: str
) -> None:
    # given
    headers = {"Authorization": authorization.format(token=owner.token)}

    # when
    async with http_client(app, headers=headers) as http:
        refused = await _viewer_refused(GraphQLClient(http))

    # then
    assert refused


async def test_the_bearer_scheme_is_case_insensitive(app: Starlette, owner: AccountSession) -> None:
    # given
    headers = {"Authorization": f"bearer {owner.token}"}

    # when
    async with http_client(app, headers=headers) as http:
        data = await GraphQLClient(http).data(VIEWER)

    # then
    assert data["viewer"]["email"] == OWNER_EMAIL


# --- rate limits ------------------------------------------------------------------------------


async def test_log_ins_are_limited_per_email(settings: Settings, owner: AccountSession) -> None:
    # given
    async with (
        app_with(settings, login_attempts_per_email=2) as app,
        client_of(app) as gql,
        client_of(app, address="10.0.0.9") as elsewhere,
    ):
        for _ in range(2):
            refused = await _log_in(gql, OWNER_EMAIL, "not the right password")
            assert [e["code"] for e in refused["userErrors"]] == ["INVALID_CREDENTIALS"]

        # when
        limited = await _log_in(gql, OWNER_EMAIL, OWNER_PASSWORD)
        limited_elsewhere = await _log_in(elsewhere, f" {OWNER_EMAIL.upper()}", OWNER_PASSWORD)
        other_email = await _log_in(gql, "nobody@storyframe.test", "not the right password")

    # then
    rate_limited = {
        "token": None,
        "user": None,
        "userErrors": [
            {"field": None, "message": "too many attempts; try again later", "code": "RATE_LIMITED"}
        ],
    }
    assert limited == rate_limited
    assert limited_elsewhere == rate_limited
    assert [e["code"] for e in other_email["userErrors"]] == ["INVALID_CREDENTIALS"]


async def test_log_ins_are_limited_per_client(settings: Settings, owner: AccountSession) -> None:
    # given
    async with (
        app_with(settings, login_attempts_per_client=3) as app,
        client_of(app) as gql,
        client_of(app, address="10.0.0.9") as elsewhere,
    ):
        for number in range(3):
            refused = await _log_in(gql, f"nobody{number}@storyframe.test", "a wrong password")
            assert [e["code"] for e in refused["userErrors"]] == ["INVALID_CREDENTIALS"]

        # when
        limited = await _log_in(gql, OWNER_EMAIL, OWNER_PASSWORD)
        from_elsewhere = await _log_in(elsewhere, OWNER_EMAIL, OWNER_PASSWORD)

    # then
    assert [e["code"] for e in limited["userErrors"]] == ["RATE_LIMITED"]
    assert limited["token"] is None
    assert from_elsewhere["userErrors"] == []
    assert from_elsewhere["token"].startswith("sf_")


# --- what is stored ---------------------------------------------------------------------------


async def test_tokens_are_stored_only_as_hashes(
    anonymous_gql: GraphQLClient, owner: AccountSession, runtime: Runtime
) -> None:
    # given
    logged_in = (await _log_in(anonymous_gql, OWNER_EMAIL, OWNER_PASSWORD))["token"]
    tokens = [owner.token, logged_in]

    # when
    rows = (await dump(runtime.engine))["access_tokens"]
    async with runtime.engine.connect() as connection:
        hashes = set((await connection.execute(select(col(AccessToken.token_hash)))).scalars())

    # then
    stored = " ".join(str(cell) for row in rows for cell in row)
    for token in tokens:
        assert token not in stored
        assert token.removeprefix("sf_") not in stored
    assert hashes == {hashlib.sha256(token.encode()).hexdigest() for token in tokens}


async def test_passwords_are_stored_only_as_argon2id_hashes(
    gql: GraphQLClient, owner: AccountSession, runtime: Runtime
) -> None:
    # given
    await gql.mutate(
        doc.CHANGE_PASSWORD,
        {"input": {"currentPassword": OWNER_PASSWORD, "newPassword": NEW_PASSWORD_2}},
    )

    # when
    rows = (await dump(runtime.engine))["users"]
    async with runtime.engine.connect() as connection:
        (password_hash,) = (await connection.execute(select(col(User.password_hash)))).scalars()

    # then
    stored = " ".join(str(cell) for row in rows for cell in row)
    assert OWNER_PASSWORD not in stored
    assert NEW_PASSWORD_2 not in stored
    # The settings fixture's cheap parameters: the hash follows the settings.
    assert password_hash.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
