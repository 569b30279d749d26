"""Bad input is refused with a user error naming the field, never a 500, and changes nothing."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from storyframe.db.tables import CONTENT_MAX, NAME_MAX, TITLE_MAX
from storyframe.schema.ids import encode_id
from tests.support.clients import GraphQLClient
from tests.support.documents import (
    CLEAR_CONTEXT_HISTORY,
    CLEAR_FRAME_HISTORY,
    CLEAR_MAIN_CHAT_HISTORY,
    COPY_IMAGE,
    CREATE_FRAME,
    CREATE_MAIN_CHAT,
    CREATE_PROJECT,
    CREATE_VIDEO,
    DELETE_FRAME,
    DELETE_IMAGE,
    DELETE_MAIN_CHAT,
    DELETE_PROJECT,
    DELETE_VIDEO,
    MOVE_IMAGE,
    REMOVE_IMAGE,
    REORDER_FRAME,
    SELECT_FRAME_IMAGE,
    UPDATE_CONTEXT,
    UPDATE_FRAME,
    UPDATE_MAIN_CHAT,
    UPDATE_PROJECT,
    UPDATE_VIDEO,
)
from tests.support.ids import unknown_id
from tests.support.scenes import (
    SeededVideo,
    create_frames,
    refused,
    seed_video,
    select_image,
    state,
)
from tests.support.seeds import Seeds, add_image, generate
from tests.support.sql import StatementCounter

# --- documents --------------------------------------------------------------------------------

BY_ID = {
    field: f"query($id: ID!) {{ {field}(id: $id) {{ id }} }}"
    for field in ("project", "video", "context", "frame", "mainChat", "image", "node")
}
"""A query of each field reading an object by its `$id`, by the field's name."""
NODES = "query($ids: [ID!]!) { nodes(ids: $ids) { id } }"
PROJECTS_PAGE = """
query($first: Int, $after: String) { projects(first: $first, after: $after) { totalCount } }
"""


def _page_of(owner: str, connection: str) -> str:
    """A query of the `totalCount` of a page of the `connection` of `owner`, found by `$id`."""
    return (
        "query($id: ID!, $first: Int, $after: String) {\n"
        f"  {owner}(id: $id) {{ {connection}(first: $first, after: $after) {{ totalCount }} }}\n"
        "}\n"
    )


PROJECT_VIDEOS = _page_of("project", "videos")
PROJECT_GALLERY = _page_of("project", "gallery")
PROJECT_IMAGES = """
query($id: ID!, $videoId: ID, $first: Int) {
  project(id: $id) { images(videoId: $videoId, first: $first) { totalCount } }
}
"""
FRAME_MESSAGES = _page_of("frame", "messages")
CONTEXT_IMAGES = _page_of("context", "images")
UNKNOWN_FIELD = "{ projects { nope } }"
SYNTAX_ERROR = "mutation { createProject("


# --- the world every refused mutation runs against --------------------------------------------


@dataclass(frozen=True, slots=True)
class World:
    video: SeededVideo
    frame: str
    other_frame: str
    image: str
    other_image: str
    message: str

    @property
    def project(self) -> str:
        return self.video.project_id


async def _world(gql: GraphQLClient, seeds: Seeds) -> World:
    video = await seed_video(gql, "World")
    frame, other_frame = await create_frames(gql, video.id, ["first", "second"])
    message, (image,) = await generate(seeds, frame)
    _, (other_image,) = await generate(seeds, other_frame)
    await select_image(gql, frame, image)
    await add_image(seeds, video.project_id)
    await generate(seeds, video.main_chat_id)
    return World(video, frame, other_frame, image, other_image, message)


def _b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


Vars = Callable[[World], dict[str, Any]]
Pick = Callable[[World], str]


@dataclass(frozen=True, slots=True)
class Refusal:
    document: str
    variables: Vars
    code: str
    field: list[str]


@dataclass(frozen=True, slots=True)
class TextInput:
    """A mutation's text field: a valid call, and what the field may hold."""

    document: str
    field: str
    valid: Vars
    limit: int
    blank_allowed: bool = False


@dataclass(frozen=True, slots=True)
class IdInput:
    """A mutation's ID field: a valid call, the type it wants, and an ID of another type."""

    document: str
    field: str
    type_name: str
    valid: Vars
    wrong: Pick


TEXT_INPUTS = {
    "createProject": TextInput(CREATE_PROJECT, "name", lambda w: {"name": "x"}, NAME_MAX),
    "updateProject": TextInput(
        UPDATE_PROJECT, "name", lambda w: {"id": w.project, "name": "x"}, NAME_MAX
    ),
    "createVideo": TextInput(
        CREATE_VIDEO, "name", lambda w: {"projectId": w.project, "name": "x"}, NAME_MAX
    ),
    "updateVideo": TextInput(
        UPDATE_VIDEO, "name", lambda w: {"id": w.video.id, "name": "x"}, NAME_MAX
    ),
    "createMainChat": TextInput(
        CREATE_MAIN_CHAT, "name", lambda w: {"videoId": w.video.id, "name": "x"}, NAME_MAX
    ),
    "updateMainChat": TextInput(
        UPDATE_MAIN_CHAT, "name", lambda w: {"id": w.video.main_chat_id, "name": "x"}, NAME_MAX
    ),
    "createFrame": TextInput(
        CREATE_FRAME, "title", lambda w: {"videoId": w.video.id, "title": "x"}, TITLE_MAX, True
    ),
    "updateFrame": TextInput(
        UPDATE_FRAME, "title", lambda w: {"id": w.frame, "title": "x"}, TITLE_MAX, True
    ),
    "updateContext": TextInput(
        UPDATE_CONTEXT,
        "content",
        lambda w: {"id": w.video.context_id, "content": "x"},
        CONTENT_MAX,
        True,
    ),
}

ID_INPUTS = {
    "updateProject.id": IdInput(
        UPDATE_PROJECT, "id", "Project", lambda w: {"id": w.project, "name": "x"}, lambda w: w.frame
    ),
    "deleteProject.id": IdInput(
        DELETE_PROJECT, "id", "Project", lambda w: {"id": w.project}, lambda w: w.video.id
    ),
    "createVideo.projectId": IdInput(
        CREATE_VIDEO,
        "projectId",
        "Project",
        lambda w: {"projectId": w.project, "name": "x"},
        lambda w: w.video.id,
    ),
    "updateVideo.id": IdInput(
        UPDATE_VIDEO, "id", "Video", lambda w: {"id": w.video.id, "name": "x"}, lambda w: w.project
    ),
    "deleteVideo.id": IdInput(
        DELETE_VIDEO, "id", "Video", lambda w: {"id": w.video.id}, lambda w: w.video.context_id
    ),
    "updateContext.id": IdInput(
        UPDATE_CONTEXT,
        "id",
        "Context",
        lambda w: {"id": w.video.context_id, "content": "x"},
        lambda w: w.video.id,
    ),
    "createFrame.videoId": IdInput(
        CREATE_FRAME,
        "videoId",
        "Video",
        lambda w: {"videoId": w.video.id, "title": "x"},
        lambda w: w.frame,
    ),
    "updateFrame.id": IdInput(
        UPDATE_FRAME, "id", "Frame", lambda w: {"id": w.frame, "title": "x"}, lambda w: w.video.id
    ),
    "reorderFrame.id": IdInput(
        REORDER_FRAME, "id", "Frame", lambda w: {"id": w.frame, "newOrder": 1}, lambda w: w.image
    ),
    "selectFrameImage.frameId": IdInput(
        SELECT_FRAME_IMAGE,
        "frameId",
        "Frame",
        lambda w: {"frameId": w.other_frame, "imageId": w.other_image},
        lambda w: w.video.context_id,
    ),
    "selectFrameImage.imageId": IdInput(
        SELECT_FRAME_IMAGE,
        "imageId",
        "Image",
        lambda w: {"frameId": w.other_frame, "imageId": w.other_image},
        lambda w: w.message,
    ),
    "deleteFrame.id": IdInput(
        DELETE_FRAME, "id", "Frame", lambda w: {"id": w.frame}, lambda w: w.image
    ),
    "createMainChat.videoId": IdInput(
        CREATE_MAIN_CHAT,
        "videoId",
        "Video",
        lambda w: {"videoId": w.video.id, "name": "x"},
        lambda w: w.project,
    ),
    "updateMainChat.id": IdInput(
        UPDATE_MAIN_CHAT,
        "id",
        "MainChat",
        lambda w: {"id": w.video.main_chat_id, "name": "x"},
        lambda w: w.frame,
    ),
    "deleteMainChat.id": IdInput(
        DELETE_MAIN_CHAT,
        "id",
        "MainChat",
        lambda w: {"id": w.video.main_chat_id},
        lambda w: w.video.context_id,
    ),
    "clearFrameHistory.id": IdInput(
        CLEAR_FRAME_HISTORY,
        "id",
        "Frame",
        lambda w: {"id": w.frame},
        lambda w: w.video.main_chat_id,
    ),
    "clearContextHistory.id": IdInput(
        CLEAR_CONTEXT_HISTORY,
        "id",
        "Context",
        lambda w: {"id": w.video.context_id},
        lambda w: w.frame,
    ),
    "clearMainChatHistory.id": IdInput(
        CLEAR_MAIN_CHAT_HISTORY,
        "id",
        "MainChat",
        lambda w: {"id": w.video.main_chat_id},
        lambda w: w.video.context_id,
    ),
    "copyImage.imageId": IdInput(
        COPY_IMAGE,
        "imageId",
        "Image",
        lambda w: {"imageId": w.image, "targetId": w.project},
        lambda w: w.frame,
    ),
    "copyImage.targetId": IdInput(
        COPY_IMAGE,
        "targetId",
        "Frame",
        lambda w: {"imageId": w.image, "targetId": w.project},
        lambda w: w.video.id,
    ),
    "moveImage.imageId": IdInput(
        MOVE_IMAGE,
        "imageId",
        "Image",
        lambda w: {"imageId": w.image, "sourceId": w.frame, "targetId": w.project},
        lambda w: w.message,
    ),
    "moveImage.sourceId": IdInput(
        MOVE_IMAGE,
        "sourceId",
        "MainChat",
        lambda w: {"imageId": w.image, "sourceId": w.frame, "targetId": w.project},
        lambda w: w.message,
    ),
    "moveImage.targetId": IdInput(
        MOVE_IMAGE,
        "targetId",
        "Project",
        lambda w: {"imageId": w.image, "sourceId": w.frame, "targetId": w.project},
        lambda w: w.other_image,
    ),
    "removeImage.imageId": IdInput(
        REMOVE_IMAGE,
        "imageId",
        "Image",
        lambda w: {"imageId": w.image, "sourceId": w.frame},
        lambda w: w.video.id,
    ),
    "removeImage.sourceId": IdInput(
        REMOVE_IMAGE,
        "sourceId",
        "Context",
        lambda w: {"imageId": w.image, "sourceId": w.frame},
        lambda w: w.video.id,
    ),
    "deleteImage.id": IdInput(
        DELETE_IMAGE, "id", "Image", lambda w: {"id": w.image}, lambda w: w.frame
    ),
}


def _replacing(valid: Vars, field: str, value: Pick) -> Vars:
    return lambda world: {**valid(world), field: value(world)}


def _always(value: str) -> Pick:
    return lambda _world: value


def _text_refusals() -> list[Any]:
    params = []
    for name, spec in TEXT_INPUTS.items():
        bad: list[tuple[str, str, str]] = [
            ("too-long", "x" * (spec.limit + 1), "TOO_LONG"),
            ("control-character", "bell\x07", "INVALID"),
            ("nul-character", "nul\x00byte", "INVALID"),
        ]
        if not spec.blank_allowed:
            bad += [("empty", "", "BLANK"), ("blank", " \t\n ", "BLANK")]
        for label, value, code in bad:
            variables = _replacing(spec.valid, spec.field, _always(value))
            refusal = Refusal(spec.document, variables, code, [spec.field])
            params.append(pytest.param(refusal, id=f"{name}.{spec.field}-{label}"))
    return params


def _id_refusals() -> list[Any]:
    params = []
    for name, spec in ID_INPUTS.items():
        bad: list[tuple[str, Pick, str]] = [
            ("malformed", _always("not-an-id"), "INVALID_ID"),
            ("empty", _always(""), "INVALID_ID"),
            ("wrong-type", spec.wrong, "WRONG_TYPE"),
            ("unknown", _always(unknown_id(spec.type_name)), "NOT_FOUND"),
        ]
        for label, value, code in bad:
            variables = _replacing(spec.valid, spec.field, value)
            refusal = Refusal(spec.document, variables, code, [spec.field])
            params.append(pytest.param(refusal, id=f"{name}-{label}"))
    return params


def _unknown_place(document: str, field: str, type_name: str, valid: Vars) -> Any:
    variables = _replacing(valid, field, _always(unknown_id(type_name)))
    refusal = Refusal(document, variables, "NOT_FOUND", [field])
    return pytest.param(refusal, id=f"{field}-unknown-{type_name}")


COPY_VALID = ID_INPUTS["copyImage.targetId"].valid
MOVE_VALID = ID_INPUTS["moveImage.targetId"].valid


def _conflict(name: str, document: str, code: str, field: str, variables: Vars) -> Any:
    return pytest.param(Refusal(document, variables, code, [field]), id=name)


CONFLICTS = [
    _conflict(
        "selectFrameImage-not-in-frame",
        SELECT_FRAME_IMAGE,
        "NOT_IN_PLACE",
        "imageId",
        lambda w: {"frameId": w.frame, "imageId": w.other_image},
    ),
    _conflict(
        "moveImage-not-in-source",
        MOVE_IMAGE,
        "NOT_IN_PLACE",
        "sourceId",
        lambda w: {"imageId": w.image, "sourceId": w.other_frame, "targetId": w.project},
    ),
    _conflict(
        "moveImage-same-place",
        MOVE_IMAGE,
        "SAME_PLACE",
        "targetId",
        lambda w: {"imageId": w.image, "sourceId": w.frame, "targetId": w.frame},
    ),
    _conflict(
        "removeImage-not-in-source",
        REMOVE_IMAGE,
        "NOT_IN_PLACE",
        "sourceId",
        lambda w: {"imageId": w.image, "sourceId": w.video.context_id},
    ),
    *[
        _unknown_place(COPY_IMAGE, "targetId", type_name, COPY_VALID)
        for type_name in ["Context", "MainChat", "Project"]
    ],
    *[
        _unknown_place(MOVE_IMAGE, field, type_name, MOVE_VALID)
        for field in ["sourceId", "targetId"]
        for type_name in ["Frame", "Context", "MainChat", "Project"]
    ],
]

REFUSALS = [*_text_refusals(), *_id_refusals(), *CONFLICTS]


@pytest.mark.parametrize("name", list(ID_INPUTS))
async def test_the_valid_call_behind_each_id_refusal_is_accepted(
    gql: GraphQLClient, seeds: Seeds, name: str
) -> None:
    # given
    world = await _world(gql, seeds)

    # when
    data = await gql.data(ID_INPUTS[name].document, ID_INPUTS[name].valid(world))

    # then only the replaced ID made the refusals refused
    (payload,) = data.values()
    assert payload["userErrors"] == []


@pytest.mark.parametrize("refusal", REFUSALS)
async def test_a_refused_mutation_reports_why_and_changes_nothing(
    gql: GraphQLClient, seeds: Seeds, refusal: Refusal
) -> None:
    # given
    world = await _world(gql, seeds)

    # when
    payload, error = await refused(gql, refusal.document, refusal.variables(world))

    # then
    assert (error["code"], error["field"]) == (refusal.code, refusal.field)
    assert error["message"]
    assert all(value is None for key, value in payload.items() if key != "userErrors")


MALFORMED_IDS = {
    "empty": "",
    "not-base64": "not-an-id",
    "punctuation": "!!!!",
    "no-colon": _b64("Video"),
    "no-key": _b64("Video:"),
    "no-type": _b64(":12"),
    "key-not-a-number": _b64("Video:abc"),
    "negative-key": _b64("Video:-1"),
    "fractional-key": _b64("Video:1.5"),
    "key-too-large": _b64("Video:1" + "0" * 30),
    "type-with-a-space": _b64("Vid eo:1"),
    "very-long": "V" * 500,
    "not-utf8": base64.urlsafe_b64encode(b"\xff\xfe:1").decode(),
}


@pytest.mark.parametrize("malformed", MALFORMED_IDS.values(), ids=MALFORMED_IDS.keys())
async def test_every_malformed_id_is_refused_as_invalid(
    gql: GraphQLClient, seeds: Seeds, malformed: str
) -> None:
    # given
    await _world(gql, seeds)
    before = await state(gql)

    # when
    data = await gql.data(CREATE_FRAME, {"videoId": malformed, "title": "x"})
    node = await gql.execute(BY_ID["node"], {"id": malformed})

    # then
    (error,) = data["createFrame"]["userErrors"]
    assert (error["code"], error["field"]) == ("INVALID_ID", ["videoId"])
    assert node["data"] == {"node": None}
    assert [e["extensions"]["code"] for e in node["errors"]] == ["INVALID_ID"]
    assert await state(gql) == before


@pytest.mark.parametrize("char", ["x", "é", "🎬"])
@pytest.mark.parametrize(
    ("field", "limit"),
    [("name", NAME_MAX), ("title", TITLE_MAX), ("content", CONTENT_MAX)],
)
async def test_text_at_its_limit_is_accepted_even_with_surrounding_blanks(
    gql: GraphQLClient, field: str, limit: int, char: str
) -> None:
    # given
    video = await seed_video(gql)
    frame_id = (await create_frames(gql, video.id, ["frame"]))[0]
    text = "  " + char * limit + "  "
    document, variables = {
        "name": (UPDATE_VIDEO, {"id": video.id, "name": text}),
        "title": (UPDATE_FRAME, {"id": frame_id, "title": text}),
        "content": (UPDATE_CONTEXT, {"id": video.context_id, "content": text}),
    }[field]

    # when
    data = await gql.data(document, variables)

    # then
    (payload,) = data.values()
    assert payload["userErrors"] == []
    stored = (await state(gql))["projects"]["nodes"][0]["videos"]["nodes"][0]
    value = {
        "name": stored["name"],
        "title": stored["frames"][0]["title"],
        "content": stored["context"]["content"],
    }[field]
    assert value == char * limit


async def test_a_refused_mutation_does_not_stop_the_next_one(gql: GraphQLClient) -> None:
    # given
    video = await seed_video(gql)

    # when
    first = await gql.data(UPDATE_VIDEO, {"id": video.id, "name": ""})
    second = await gql.data(UPDATE_VIDEO, {"id": video.id, "name": "Renamed"})

    # then
    assert first["updateVideo"]["userErrors"][0]["code"] == "BLANK"
    assert second["updateVideo"] == {"video": {"id": video.id, "name": "Renamed"}, "userErrors": []}


# --- queries ----------------------------------------------------------------------------------


def _codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


async def _refused_pages(
    gql: GraphQLClient, pages: list[tuple[str, dict[str, Any]]], argument: str, value: Any
) -> list[dict[str, Any]]:
    """The one error of each page query (its document, and the variables naming its owner) asked
    with `argument` set to `value`, each checked to be INVALID and to name the argument."""
    errors = []
    for document, owner in pages:
        (error,) = (await gql.execute(document, {**owner, argument: value}))["errors"]
        assert error["extensions"] == {"code": "INVALID", "field": [argument]}
        assert argument in error["message"]
        errors.append(error)
    return errors


@pytest.mark.parametrize("key", BY_ID)
async def test_a_query_by_a_malformed_id_is_an_error_with_a_code(
    gql: GraphQLClient, key: str
) -> None:
    # when
    body = await gql.execute(BY_ID[key], {"id": "@@not-an-id@@"})

    # then
    assert body["data"] == {key: None}
    (error,) = body["errors"]
    assert error["extensions"] == {"code": "INVALID_ID", "field": ["id"]}
    assert "@@not-an-id@@" in error["message"]
    assert error["path"] == [key]


@pytest.mark.parametrize(
    ("key", "type_name"),
    [("project", "Video"), ("video", "Frame"), ("frame", "Image"), ("image", "Project")],
)
async def test_a_query_by_an_id_of_the_wrong_type_is_an_error_with_a_code(
    gql: GraphQLClient, key: str, type_name: str
) -> None:
    # when
    body = await gql.execute(BY_ID[key], {"id": encode_id(type_name, 1)})

    # then
    assert body["data"] == {key: None}
    assert _codes(body) == ["WRONG_TYPE"]


@pytest.mark.parametrize(
    ("key", "type_name"),
    [
        ("project", "Project"),
        ("video", "Video"),
        ("context", "Context"),
        ("frame", "Frame"),
        ("mainChat", "MainChat"),
        ("image", "Image"),
        ("node", "Message"),
        ("node", "Unknown"),
    ],
)
async def test_a_query_by_an_unknown_id_is_null_without_error(
    gql: GraphQLClient, key: str, type_name: str
) -> None:
    # when
    body = await gql.execute(BY_ID[key], {"id": unknown_id(type_name)})

    # then
    assert body == {"data": {key: None}}


async def test_nodes_answers_a_malformed_id_with_null_and_an_error_at_its_position(
    gql: GraphQLClient,
) -> None:
    # given
    video = await seed_video(gql)

    # when
    body = await gql.execute(
        NODES, {"ids": [video.id, "garbage!", video.project_id, unknown_id("Frame"), "x"]}
    )

    # then: the other positions keep their answers
    assert body["data"] == {"nodes": [{"id": video.id}, None, {"id": video.project_id}, None, None]}
    assert [(e["path"], e["extensions"]["code"]) for e in body["errors"]] == [
        (["nodes", 1], "INVALID_ID"),
        (["nodes", 4], "INVALID_ID"),
    ]
    assert body["errors"][0]["message"] == "`garbage!` is not a valid ID"
    assert body["errors"][0]["extensions"]["field"] == ["ids", "1"]


async def test_nodes_looks_up_only_the_well_formed_ids(
    gql: GraphQLClient, sql_counter: StatementCounter
) -> None:
    # given
    video = await seed_video(gql)
    with sql_counter:
        await gql.execute(NODES, {"ids": [video.id, video.project_id]})
    good_ones = sorted(sql_counter.statements)

    # when
    with sql_counter:
        body = await gql.execute(NODES, {"ids": ["garbage!", video.id, video.project_id, "x"]})

    # then
    assert _codes(body) == ["INVALID_ID", "INVALID_ID"]
    assert sorted(sql_counter.statements) == good_ones


@pytest.mark.parametrize("first", [101, 1000, -1, -100])
async def test_first_out_of_range_is_refused_with_a_clear_error(
    gql: GraphQLClient, first: int
) -> None:
    # given
    video = await seed_video(gql)
    frame_id = (await create_frames(gql, video.id, ["a"]))[0]

    # when
    errors = await _refused_pages(
        gql,
        [
            (PROJECTS_PAGE, {}),
            (PROJECT_VIDEOS, {"id": video.project_id}),
            (PROJECT_GALLERY, {"id": video.project_id}),
            (PROJECT_IMAGES, {"id": video.project_id}),
            (FRAME_MESSAGES, {"id": frame_id}),
            (CONTEXT_IMAGES, {"id": video.context_id}),
        ],
        "first",
        first,
    )

    # then
    assert all("100" in error["message"] for error in errors)


@pytest.mark.parametrize("first", [0, 100])
async def test_first_at_the_bounds_is_accepted(gql: GraphQLClient, first: int) -> None:
    # given
    video = await seed_video(gql)

    # when
    body = await gql.execute(PROJECT_VIDEOS, {"id": video.project_id, "first": first})

    # then
    assert body == {"data": {"project": {"videos": {"totalCount": 1}}}}


MALFORMED_CURSORS = {
    "not-base64": "garbage",
    "empty": "",
    "no-key": _b64("cursor:"),
    "key-not-a-number": _b64("cursor:abc"),
    "negative-key": _b64("cursor:-3"),
    "an-id-not-a-cursor": _b64("Project:1"),
    "key-too-large": _b64("cursor:1" + "0" * 30),
}


@pytest.mark.parametrize("after", MALFORMED_CURSORS.values(), ids=MALFORMED_CURSORS.keys())
async def test_a_malformed_after_cursor_is_refused(gql: GraphQLClient, after: str) -> None:
    # given
    video = await seed_video(gql)
    frame_id = (await create_frames(gql, video.id, ["a"]))[0]

    # when, then
    await _refused_pages(
        gql,
        [
            (PROJECTS_PAGE, {}),
            (PROJECT_VIDEOS, {"id": video.project_id}),
            (FRAME_MESSAGES, {"id": frame_id}),
            (CONTEXT_IMAGES, {"id": video.context_id}),
        ],
        "after",
        after,
    )


@pytest.mark.parametrize(
    ("video_id", "code"),
    [
        pytest.param("garbage", "INVALID_ID", id="malformed"),
        pytest.param(encode_id("Frame", 1), "WRONG_TYPE", id="wrong-type"),
    ],
)
async def test_project_images_refuses_a_bad_video_id(
    gql: GraphQLClient, video_id: str, code: str
) -> None:
    # given
    video = await seed_video(gql)

    # when
    body = await gql.execute(PROJECT_IMAGES, {"id": video.project_id, "videoId": video_id})

    # then
    assert _codes(body) == [code]
    assert body["errors"][0]["extensions"]["field"] == ["videoId"]


async def test_nodes_refuses_more_than_a_page_of_ids(gql: GraphQLClient) -> None:
    # given
    video = await seed_video(gql)

    # when
    body = await gql.execute(NODES, {"ids": [video.id] * 101})

    # then
    assert body["data"] is None
    assert _codes(body) == ["INVALID"]


@pytest.mark.parametrize(
    ("document", "variables"),
    [
        pytest.param(PROJECTS_PAGE, {"first": "ten"}, id="string-as-int"),
        pytest.param(PROJECTS_PAGE, {"first": 2**31}, id="int-overflow"),
        pytest.param(REORDER_FRAME, {"id": "x", "newOrder": 2**40}, id="order-overflow"),
        pytest.param(CREATE_PROJECT, {}, id="missing-variable"),
        pytest.param(CREATE_PROJECT, {"name": None}, id="null-for-non-null"),
        pytest.param(CREATE_PROJECT, {"name": ["a"]}, id="list-for-string"),
        pytest.param(UNKNOWN_FIELD, None, id="unknown-field"),
        pytest.param(SYNTAX_ERROR, None, id="syntax-error"),
    ],
)
async def test_ill_typed_requests_are_refused_without_a_server_error(
    gql: GraphQLClient, document: str, variables: dict[str, Any] | None
) -> None:
    # given
    before = await state(gql)

    # when
    body = await gql.execute(document, variables)

    # then
    assert body["errors"]
    assert body.get("data") is None
    assert "INTERNAL_SERVER_ERROR" not in _codes_or_none(body)
    assert await state(gql) == before


def _codes_or_none(body: dict[str, Any]) -> list[str | None]:
    return [error.get("extensions", {}).get("code") for error in body["errors"]]
