"""The access matrix: another user's IDs behave exactly like IDs that name nothing.

User A (the `owner` fixture) has a full project. User B signs up through the API and, with B's
token, tries every query and every mutation that takes an ID with A's IDs. Each answer must
equal the answer for a made-up ID of the same type, and the database must not change.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from starlette.applications import Starlette

from storyframe.runtime import Runtime
from storyframe.schema.ids import encode_id
from storyframe.services.container import Services
from tests.support import documents as doc
from tests.support.clients import GraphQLClient, client_of, sign_up
from tests.support.generating import generate_document
from tests.support.scenes import Ids, My, Their, a_full_project, with_ids
from tests.support.seeds import Seeds, seeds_for
from tests.support.sql import dump

INTRUDER_EMAIL = "intruder@storyframe.test"
INTRUDER_PASSWORD = "another long and quiet river"

# --- queries ----------------------------------------------------------------------------------

PROJECT = "query($id: ID!) { project(id: $id) { id name videoCount imageCount } }"
VIDEO = "query($id: ID!) { video(id: $id) { id name frameCount } }"
CONTEXT = "query($id: ID!) { context(id: $id) { id content messageCount } }"
FRAME = "query($id: ID!) { frame(id: $id) { id title selectedImage { id } } }"
MAIN_CHAT = "query($id: ID!) { mainChat(id: $id) { id name messageCount } }"
IMAGE = "query($id: ID!) { image(id: $id) { id url appearsIn { __typename } } }"
NODES = "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }"
PROJECT_IMAGES = """
query($id: ID!, $videoId: ID!) {
  project(id: $id) { id images(videoId: $videoId) { totalCount nodes { id url } } }
}
"""
PROJECTS = """
query {
  projects { totalCount nodes { id name videoCount imageCount galleryCount } }
}
"""
ANALYZE_IMAGES = """
mutation($input: AnalyzeImagesInput!) {
  analyzeImages(input: $input) { analysis { text } userErrors { field message code } }
}
"""


@dataclass(frozen=True, slots=True)
class Scene:
    """A's IDs, made-up IDs of the same types, and B's own IDs and client."""

    theirs: Ids
    missing: Ids
    mine: Ids
    my_other_project: str
    intruder: GraphQLClient


@pytest.fixture
async def intruder_token(anonymous_gql: GraphQLClient) -> str:
    return await sign_up(anonymous_gql, INTRUDER_EMAIL, INTRUDER_PASSWORD)


@pytest.fixture
async def scene(
    app: Starlette, runtime: Runtime, services: Services, seeds: Seeds, intruder_token: str
) -> AsyncIterator[Scene]:
    viewer = await runtime.accounts.authenticate(intruder_token)
    assert viewer is not None
    intruder_services = runtime.services_for(viewer.user_id)
    theirs = await a_full_project(services, seeds, "A")
    mine = await a_full_project(intruder_services, seeds_for(runtime, viewer.user_id), "B")
    other = await intruder_services.projects.create("B's second")
    assert other.id is not None
    async with client_of(app, intruder_token) as intruder:
        yield Scene(theirs, Ids.missing(), mine, encode_id("Project", other.id), intruder)


# --- the attempts -----------------------------------------------------------------------------

Variables = Callable[[Ids, Ids], dict[str, Any]]
"""The variables of an attempt: (the IDs tried — A's or made-up —, B's own IDs) → variables."""


def _attempt(document: str, name: str, /, *, wrap: bool = False, **fields: Any) -> Any:
    """A parameter of the attempt `name`: the document and its variables `fields`, every
    `Their(kind)` and `My(kind)` in them standing for that ID; under `input` when `wrap`."""

    def variables(tried: Ids, mine: Ids) -> dict[str, Any]:
        resolved: dict[str, Any] = with_ids(fields, tried, mine)
        return {"input": resolved} if wrap else resolved

    return pytest.param(document, variables, id=name)


def _generate(kind: str, name: str, **fields: Any) -> Any:
    return _attempt(generate_document(kind), name, wrap=True, prompt="p", **fields)


# --- queries: null, exactly as for an ID that names nothing -----------------------------------

_BY_ID = [
    (PROJECT, "project", "project"),
    (VIDEO, "video", "video"),
    (CONTEXT, "context", "context"),
    (FRAME, "frame", "frame"),
    (MAIN_CHAT, "mainChat", "main_chat"),
    (IMAGE, "image", "image"),
]
_NODE_KINDS = [
    ("project", "project"),
    ("video", "video"),
    ("context", "context"),
    ("frame", "frame"),
    ("mainChat", "main_chat"),
    ("message", "message"),
    ("image", "image"),
]

QUERIES = [
    *[_attempt(document, name, id=Their(kind)) for document, name, kind in _BY_ID],
    *[_attempt(doc.NODE, f"node-{name}", id=Their(kind)) for name, kind in _NODE_KINDS],
    pytest.param(NODES, lambda t, _: {"ids": list(t.variables().values())}, id="nodes"),
    _attempt(NODES, "nodes-mixed", ids=[My("project"), Their("image"), My("frame")]),
    _attempt(PROJECT_IMAGES, "project-images", id=Their("project"), videoId=Their("video")),
    _attempt(
        PROJECT_IMAGES,
        "own-project-images-of-their-video",
        id=My("project"),
        videoId=Their("video"),
    ),
]


@pytest.mark.parametrize(("document", "variables"), QUERIES)
async def test_their_ids_read_as_ids_that_name_nothing(
    scene: Scene, gql: GraphQLClient, document: str, variables: Variables
) -> None:
    # given: the owner sees their objects through these very IDs
    owner_sees = await gql.data(document, variables(scene.theirs, scene.theirs))

    # when
    with_their_ids = await scene.intruder.data(document, variables(scene.theirs, scene.mine))
    with_missing_ids = await scene.intruder.data(document, variables(scene.missing, scene.mine))

    # then
    assert with_their_ids == with_missing_ids
    assert with_their_ids != owner_sees


async def test_their_ids_are_null_for_the_intruder(scene: Scene) -> None:
    # given
    ids = list(scene.theirs.variables().values())

    # when
    data = await scene.intruder.data(NODES, {"ids": ids})
    project = await scene.intruder.data(PROJECT, {"id": scene.theirs.project})

    # then
    assert data == {"nodes": [None] * len(ids)}
    assert project == {"project": None}


# --- mutations: NOT_FOUND, exactly as for an ID that names nothing, and nothing changes -------

MUTATIONS = [
    _attempt(doc.UPDATE_PROJECT, "updateProject", id=Their("project"), name="Mine now"),
    _attempt(doc.DELETE_PROJECT, "deleteProject", id=Their("project")),
    _attempt(doc.CREATE_VIDEO, "createVideo", projectId=Their("project"), name="Cuckoo"),
    _attempt(doc.UPDATE_VIDEO, "updateVideo", id=Their("video"), name="Mine now"),
    _attempt(doc.DELETE_VIDEO, "deleteVideo", id=Their("video")),
    _attempt(doc.UPDATE_CONTEXT, "updateContext", id=Their("context"), content="Mine now"),
    _attempt(doc.CREATE_FRAME, "createFrame", videoId=Their("video"), title="Cuckoo", order=0),
    _attempt(doc.UPDATE_FRAME, "updateFrame", id=Their("frame"), title="Mine now"),
    _attempt(doc.REORDER_FRAME, "reorderFrame", id=Their("frame"), newOrder=1),
    _attempt(
        doc.SELECT_FRAME_IMAGE,
        "selectFrameImage-clear-theirs",
        frameId=Their("frame"),
        imageId=None,
    ),
    _attempt(
        doc.SELECT_FRAME_IMAGE,
        "selectFrameImage-theirs",
        frameId=Their("frame"),
        imageId=Their("image"),
    ),
    _attempt(
        doc.SELECT_FRAME_IMAGE,
        "selectFrameImage-their-image-in-my-frame",
        frameId=My("frame"),
        imageId=Their("image"),
    ),
    _attempt(doc.DELETE_FRAME, "deleteFrame", id=Their("frame")),
    _attempt(doc.CREATE_MAIN_CHAT, "createMainChat", videoId=Their("video"), name="Cuckoo"),
    _attempt(doc.UPDATE_MAIN_CHAT, "updateMainChat", id=Their("main_chat"), name="Mine now"),
    _attempt(doc.DELETE_MAIN_CHAT, "deleteMainChat", id=Their("main_chat")),
    _attempt(doc.CLEAR_FRAME_HISTORY, "clearFrameHistory", id=Their("frame")),
    _attempt(doc.CLEAR_CONTEXT_HISTORY, "clearContextHistory", id=Their("context")),
    _attempt(doc.CLEAR_MAIN_CHAT_HISTORY, "clearMainChatHistory", id=Their("main_chat")),
    *[
        _attempt(doc.COPY_IMAGE, f"copyImage-{name}", imageId=image, targetId=target)
        for name, image, target in [
            ("theirs-into-my-gallery", Their("image"), My("project")),
            ("theirs-into-my-frame", Their("image"), My("frame")),
            ("theirs-within-theirs", Their("image"), Their("context")),
            ("mine-into-their-gallery", My("image"), Their("project")),
            ("mine-into-their-frame", My("image"), Their("frame")),
            ("mine-into-their-context", My("image"), Their("context")),
            ("mine-into-their-mainChat", My("image"), Their("main_chat")),
        ]
    ],
    *[
        _attempt(doc.MOVE_IMAGE, f"moveImage-{name}", imageId=image, sourceId=from_, targetId=to)
        for name, image, from_, to in [
            ("theirs-into-my-project", Their("image"), Their("frame"), My("project")),
            (
                "theirs-from-their-gallery-into-my-frame",
                Their("image"),
                Their("project"),
                My("frame"),
            ),
            ("theirs-within-theirs", Their("image"), Their("frame"), Their("context")),
            ("mine-into-their-project", My("image"), My("frame"), Their("project")),
            ("mine-into-their-frame", My("image"), My("frame"), Their("frame")),
            ("mine-into-their-context", My("image"), My("frame"), Their("context")),
            ("mine-into-their-mainChat", My("image"), My("frame"), Their("main_chat")),
            ("mine-from-their-frame", My("image"), Their("frame"), My("context")),
        ]
    ],
    *[
        _attempt(doc.REMOVE_IMAGE, f"removeImage-{name}", imageId=image, sourceId=source)
        for name, image, source in [
            ("theirs", Their("image"), Their("frame")),
            ("theirs-from-their-gallery", Their("image"), Their("project")),
            ("mine-from-their-frame", My("image"), Their("frame")),
        ]
    ],
    _attempt(doc.DELETE_IMAGE, "deleteImage", id=Their("image")),
    _generate("Frame", "generateFrameImages-their-frame", frameId=Their("frame"), imageCount=2),
    _generate(
        "Frame",
        "generateFrameImages-their-reference",
        frameId=My("frame"),
        contextImageIds=[Their("image")],
    ),
    _generate("Context", "generateContextImages-their-context", contextId=Their("context")),
    _generate("MainChat", "generateMainChatImages-their-main-chat", mainChatId=Their("main_chat")),
    _generate(
        "MainChat",
        "generateMainChatImages-their-reference",
        mainChatId=My("main_chat"),
        contextImageIds=[Their("image")],
    ),
    _attempt(
        ANALYZE_IMAGES,
        "analyzeImages-theirs",
        wrap=True,
        imageIds=[My("image"), Their("image")],
        question="what?",
    ),
]


@pytest.mark.parametrize(("document", "variables"), MUTATIONS)
async def test_their_ids_are_not_found_and_nothing_changes(
    scene: Scene, runtime: Runtime, document: str, variables: Variables
) -> None:
    # given
    before = await dump(runtime.engine)

    # when
    with_their_ids = await scene.intruder.data(document, variables(scene.theirs, scene.mine))
    with_missing_ids = await scene.intruder.data(document, variables(scene.missing, scene.mine))

    # then
    assert with_their_ids == with_missing_ids
    (payload,) = with_their_ids.values()
    assert [error["code"] for error in payload["userErrors"]] == ["NOT_FOUND"]
    assert await dump(runtime.engine) == before


# --- the intruder's own data ------------------------------------------------------------------


async def test_the_projects_list_and_counts_are_the_viewers_own(
    scene: Scene, gql: GraphQLClient
) -> None:
    # when
    mine = await scene.intruder.data(PROJECTS)
    theirs = await gql.data(PROJECTS)

    # then
    assert mine["projects"]["totalCount"] == 2
    assert {project["id"]: project for project in mine["projects"]["nodes"]} == {
        scene.my_other_project: {
            "id": scene.my_other_project,
            "name": "B's second",
            "videoCount": 0,
            "imageCount": 0,
            "galleryCount": 0,
        },
        scene.mine.project: {
            "id": scene.mine.project,
            "name": "B",
            "videoCount": 1,
            "imageCount": 4,
            "galleryCount": 2,
        },
    }
    assert theirs["projects"]["totalCount"] == 1
    assert [project["id"] for project in theirs["projects"]["nodes"]] == [scene.theirs.project]


async def test_the_viewer_reads_their_own_ids(scene: Scene) -> None:
    # given
    ids = list(scene.mine.variables().values())

    # when
    data = await scene.intruder.data(NODES, {"ids": ids})

    # then
    assert [node["id"] for node in data["nodes"]] == ids


async def test_moving_between_two_own_projects_works(
    scene: Scene, gql: GraphQLClient, runtime: Runtime
) -> None:
    # given
    theirs_before = await gql.data(PROJECTS)
    move = {
        "imageId": scene.mine.image,
        "sourceId": scene.mine.project,
        "targetId": scene.my_other_project,
    }

    # when
    payload = await scene.intruder.mutate(doc.MOVE_IMAGE, move)
    projects = await scene.intruder.data(PROJECTS)

    # then
    moved = payload["image"]
    assert (moved["id"], moved["project"]) == (scene.mine.image, {"id": scene.my_other_project})
    counts = {p["id"]: (p["imageCount"], p["galleryCount"]) for p in projects["projects"]["nodes"]}
    assert counts == {scene.mine.project: (3, 1), scene.my_other_project: (1, 1)}
    assert await gql.data(PROJECTS) == theirs_before


async def test_copying_between_two_own_projects_works(scene: Scene) -> None:
    # given
    copy = {"imageId": scene.mine.image, "targetId": scene.my_other_project}

    # when
    payload = await scene.intruder.mutate(doc.COPY_IMAGE, copy)
    projects = await scene.intruder.data(PROJECTS)

    # then: the copy is a new image of the other project
    assert payload["target"] == {"__typename": "Project", "id": scene.my_other_project}
    assert payload["image"]["id"] != scene.mine.image
    counts = {p["id"]: (p["imageCount"], p["galleryCount"]) for p in projects["projects"]["nodes"]}
    assert counts == {scene.mine.project: (4, 2), scene.my_other_project: (1, 1)}


# --- IDs beyond the id columns' range (32-bit on PostgreSQL) name nothing, like made-up IDs ---

BEYOND_RANGE = Ids(
    project=encode_id("Project", 2**31),
    video=encode_id("Video", 2**31 + 1),
    context=encode_id("Context", 2**32),
    frame=encode_id("Frame", 2**63 // 10),
    main_chat=encode_id("MainChat", 10**18 - 1),  # the most digits an ID may have
    message=encode_id("Message", 2**31),
    image=encode_id("Image", 10**17),
)


@pytest.mark.parametrize(("document", "variables"), QUERIES)
async def test_ids_beyond_the_id_range_read_as_ids_that_name_nothing(
    scene: Scene, document: str, variables: Variables
) -> None:
    # when
    beyond = await scene.intruder.data(document, variables(BEYOND_RANGE, scene.mine))
    missing = await scene.intruder.data(document, variables(scene.missing, scene.mine))

    # then
    assert beyond == missing


@pytest.mark.parametrize(("document", "variables"), MUTATIONS)
async def test_ids_beyond_the_id_range_are_not_found_and_nothing_changes(
    scene: Scene, runtime: Runtime, document: str, variables: Variables
) -> None:
    # given
    before = await dump(runtime.engine)

    # when
    beyond = await scene.intruder.data(document, variables(BEYOND_RANGE, scene.mine))
    missing = await scene.intruder.data(document, variables(scene.missing, scene.mine))

    # then
    assert beyond == missing
    (payload,) = beyond.values()
    assert [error["code"] for error in payload["userErrors"]] == ["NOT_FOUND"]
    assert await dump(runtime.engine) == before
