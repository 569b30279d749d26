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
from tests.conftest import GraphQLClient
from tests.integration.scenes import Ids, a_full_project, client_of, dump, sign_up

INTRUDER_EMAIL = "intruder@storyframe.test"
INTRUDER_PASSWORD = "another long and quiet river"

# --- queries ----------------------------------------------------------------------------------

PROJECT = "query($id: ID!) { project(id: $id) { id name videoCount imageCount } }"
VIDEO = "query($id: ID!) { video(id: $id) { id name frameCount } }"
CONTEXT = "query($id: ID!) { context(id: $id) { id content messageCount } }"
FRAME = "query($id: ID!) { frame(id: $id) { id title selectedImage { id } } }"
MAIN_CHAT = "query($id: ID!) { mainChat(id: $id) { id name messageCount } }"
IMAGE = "query($id: ID!) { image(id: $id) { id url appearsIn { __typename } } }"
NODE = "query($id: ID!) { node(id: $id) { __typename id } }"
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

# --- mutations --------------------------------------------------------------------------------

ERRORS = "userErrors { field message code }"
DELETED = "deleted { videos frames messages images }"
UPDATE_PROJECT = f"""
mutation($input: UpdateProjectInput!) {{
  updateProject(input: $input) {{ project {{ id name }} {ERRORS} }}
}}
"""
DELETE_PROJECT = f"""
mutation($input: DeleteInput!) {{ deleteProject(input: $input) {{ deletedId {DELETED} {ERRORS} }} }}
"""
CREATE_VIDEO = f"""
mutation($input: CreateVideoInput!) {{ createVideo(input: $input) {{ video {{ id }} {ERRORS} }} }}
"""
UPDATE_VIDEO = f"""
mutation($input: UpdateVideoInput!) {{
  updateVideo(input: $input) {{ video {{ id name }} {ERRORS} }}
}}
"""
DELETE_VIDEO = f"""
mutation($input: DeleteInput!) {{ deleteVideo(input: $input) {{ deletedId {DELETED} {ERRORS} }} }}
"""
UPDATE_CONTEXT = f"""
mutation($input: UpdateContextInput!) {{
  updateContext(input: $input) {{ context {{ id content }} {ERRORS} }}
}}
"""
CREATE_FRAME = f"""
mutation($input: CreateFrameInput!) {{ createFrame(input: $input) {{ frame {{ id }} {ERRORS} }} }}
"""
UPDATE_FRAME = f"""
mutation($input: UpdateFrameInput!) {{
  updateFrame(input: $input) {{ frame {{ id title }} {ERRORS} }}
}}
"""
REORDER_FRAME = f"""
mutation($input: ReorderFrameInput!) {{
  reorderFrame(input: $input) {{ frame {{ id order }} video {{ id }} {ERRORS} }}
}}
"""
SELECT_FRAME_IMAGE = f"""
mutation($input: SelectFrameImageInput!) {{
  selectFrameImage(input: $input) {{ frame {{ id selectedImage {{ id }} }} {ERRORS} }}
}}
"""
DELETE_FRAME = f"""
mutation($input: DeleteInput!) {{
  deleteFrame(input: $input) {{ deletedId {DELETED} video {{ id }} {ERRORS} }}
}}
"""
CREATE_MAIN_CHAT = f"""
mutation($input: CreateMainChatInput!) {{
  createMainChat(input: $input) {{ mainChat {{ id }} {ERRORS} }}
}}
"""
UPDATE_MAIN_CHAT = f"""
mutation($input: UpdateMainChatInput!) {{
  updateMainChat(input: $input) {{ mainChat {{ id name }} {ERRORS} }}
}}
"""
DELETE_MAIN_CHAT = f"""
mutation($input: DeleteInput!) {{
  deleteMainChat(input: $input) {{ deletedId {DELETED} {ERRORS} }}
}}
"""
CLEAR_FRAME_HISTORY = f"""
mutation($input: ClearHistoryInput!) {{
  clearFrameHistory(input: $input) {{ frame {{ id }} {DELETED} {ERRORS} }}
}}
"""
CLEAR_CONTEXT_HISTORY = f"""
mutation($input: ClearHistoryInput!) {{
  clearContextHistory(input: $input) {{ context {{ id }} {DELETED} {ERRORS} }}
}}
"""
CLEAR_MAIN_CHAT_HISTORY = f"""
mutation($input: ClearHistoryInput!) {{
  clearMainChatHistory(input: $input) {{ mainChat {{ id }} {DELETED} {ERRORS} }}
}}
"""
COPY_IMAGE = f"""
mutation($input: CopyImageInput!) {{
  copyImage(input: $input) {{ image {{ id }} target {{ __typename }} {ERRORS} }}
}}
"""
MOVE_IMAGE = f"""
mutation($input: MoveImageInput!) {{
  moveImage(input: $input) {{
    image {{ id project {{ id }} }} source {{ __typename }} target {{ __typename }} {ERRORS}
  }}
}}
"""
REMOVE_IMAGE = f"""
mutation($input: RemoveImageInput!) {{
  removeImage(input: $input) {{ image {{ id }} source {{ __typename }} {ERRORS} }}
}}
"""
DELETE_IMAGE = f"""
mutation($input: DeleteInput!) {{ deleteImage(input: $input) {{ deletedId {DELETED} {ERRORS} }} }}
"""
GENERATE = {
    kind: f"""
mutation($input: Generate{kind}ImagesInput!) {{
  generate{kind}Images(input: $input) {{ message {{ id }} generation {{ id }} {ERRORS} }}
}}
"""
    for kind in ("Frame", "Context", "MainChat")
}
ANALYZE_IMAGES = f"""
mutation($input: AnalyzeImagesInput!) {{
  analyzeImages(input: $input) {{ analysis {{ text }} {ERRORS} }}
}}
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
async def intruder_services(runtime: Runtime, intruder_token: str) -> Services:
    viewer = await runtime.accounts.authenticate(intruder_token)
    assert viewer is not None
    return runtime.services_for(viewer.user_id)


@pytest.fixture
async def scene(
    app: Starlette, services: Services, intruder_services: Services, intruder_token: str
) -> AsyncIterator[Scene]:
    theirs = await a_full_project(services, "A")
    mine = await a_full_project(intruder_services, "B")
    other = await intruder_services.projects.create("B's second")
    assert other.id is not None
    async with client_of(app, intruder_token) as intruder:
        yield Scene(theirs, Ids.missing(), mine, encode_id("Project", other.id), intruder)


# --- queries: null, exactly as for an ID that names nothing -----------------------------------

Variables = Callable[[Ids, Ids], dict[str, Any]]
"""The variables of an attempt: (the IDs tried — A's or made-up —, B's own IDs) → variables."""

QUERIES = [
    pytest.param(PROJECT, lambda t, _: {"id": t.project}, id="project"),
    pytest.param(VIDEO, lambda t, _: {"id": t.video}, id="video"),
    pytest.param(CONTEXT, lambda t, _: {"id": t.context}, id="context"),
    pytest.param(FRAME, lambda t, _: {"id": t.frame}, id="frame"),
    pytest.param(MAIN_CHAT, lambda t, _: {"id": t.main_chat}, id="mainChat"),
    pytest.param(IMAGE, lambda t, _: {"id": t.image}, id="image"),
    pytest.param(NODE, lambda t, _: {"id": t.project}, id="node-project"),
    pytest.param(NODE, lambda t, _: {"id": t.video}, id="node-video"),
    pytest.param(NODE, lambda t, _: {"id": t.context}, id="node-context"),
    pytest.param(NODE, lambda t, _: {"id": t.frame}, id="node-frame"),
    pytest.param(NODE, lambda t, _: {"id": t.main_chat}, id="node-mainChat"),
    pytest.param(NODE, lambda t, _: {"id": t.message}, id="node-message"),
    pytest.param(NODE, lambda t, _: {"id": t.image}, id="node-image"),
    pytest.param(NODES, lambda t, _: {"ids": list(t.variables().values())}, id="nodes"),
    pytest.param(
        NODES, lambda t, mine: {"ids": [mine.project, t.image, mine.frame]}, id="nodes-mixed"
    ),
    pytest.param(
        PROJECT_IMAGES, lambda t, _: {"id": t.project, "videoId": t.video}, id="project-images"
    ),
    pytest.param(
        PROJECT_IMAGES,
        lambda t, mine: {"id": mine.project, "videoId": t.video},
        id="own-project-images-of-their-video",
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


def _update(field: str, **extra: Any) -> Variables:
    return lambda t, _: {"input": {"id": getattr(t, field), **extra}}


MUTATIONS = [
    pytest.param(UPDATE_PROJECT, _update("project", name="Mine now"), id="updateProject"),
    pytest.param(DELETE_PROJECT, _update("project"), id="deleteProject"),
    pytest.param(
        CREATE_VIDEO,
        lambda t, _: {"input": {"projectId": t.project, "name": "Cuckoo"}},
        id="createVideo",
    ),
    pytest.param(UPDATE_VIDEO, _update("video", name="Mine now"), id="updateVideo"),
    pytest.param(DELETE_VIDEO, _update("video"), id="deleteVideo"),
    pytest.param(UPDATE_CONTEXT, _update("context", content="Mine now"), id="updateContext"),
    pytest.param(
        CREATE_FRAME,
        lambda t, _: {"input": {"videoId": t.video, "title": "Cuckoo", "order": 0}},
        id="createFrame",
    ),
    pytest.param(UPDATE_FRAME, _update("frame", title="Mine now"), id="updateFrame"),
    pytest.param(REORDER_FRAME, _update("frame", newOrder=1), id="reorderFrame"),
    pytest.param(
        SELECT_FRAME_IMAGE,
        lambda t, _: {"input": {"frameId": t.frame, "imageId": None}},
        id="selectFrameImage-clear-theirs",
    ),
    pytest.param(
        SELECT_FRAME_IMAGE,
        lambda t, _: {"input": {"frameId": t.frame, "imageId": t.image}},
        id="selectFrameImage-theirs",
    ),
    pytest.param(
        SELECT_FRAME_IMAGE,
        lambda t, mine: {"input": {"frameId": mine.frame, "imageId": t.image}},
        id="selectFrameImage-their-image-in-my-frame",
    ),
    pytest.param(DELETE_FRAME, _update("frame"), id="deleteFrame"),
    pytest.param(
        CREATE_MAIN_CHAT,
        lambda t, _: {"input": {"videoId": t.video, "name": "Cuckoo"}},
        id="createMainChat",
    ),
    pytest.param(UPDATE_MAIN_CHAT, _update("main_chat", name="Mine now"), id="updateMainChat"),
    pytest.param(DELETE_MAIN_CHAT, _update("main_chat"), id="deleteMainChat"),
    pytest.param(CLEAR_FRAME_HISTORY, _update("frame"), id="clearFrameHistory"),
    pytest.param(CLEAR_CONTEXT_HISTORY, _update("context"), id="clearContextHistory"),
    pytest.param(CLEAR_MAIN_CHAT_HISTORY, _update("main_chat"), id="clearMainChatHistory"),
    pytest.param(
        COPY_IMAGE,
        lambda t, mine: {"input": {"imageId": t.image, "targetId": mine.project}},
        id="copyImage-theirs-into-my-gallery",
    ),
    pytest.param(
        COPY_IMAGE,
        lambda t, mine: {"input": {"imageId": t.image, "targetId": mine.frame}},
        id="copyImage-theirs-into-my-frame",
    ),
    pytest.param(
        COPY_IMAGE,
        lambda t, _: {"input": {"imageId": t.image, "targetId": t.context}},
        id="copyImage-theirs-within-theirs",
    ),
    pytest.param(
        COPY_IMAGE,
        lambda t, mine: {"input": {"imageId": mine.image, "targetId": t.project}},
        id="copyImage-mine-into-their-gallery",
    ),
    pytest.param(
        COPY_IMAGE,
        lambda t, mine: {"input": {"imageId": mine.image, "targetId": t.frame}},
        id="copyImage-mine-into-their-frame",
    ),
    pytest.param(
        COPY_IMAGE,
        lambda t, mine: {"input": {"imageId": mine.image, "targetId": t.context}},
        id="copyImage-mine-into-their-context",
    ),
    pytest.param(
        COPY_IMAGE,
        lambda t, mine: {"input": {"imageId": mine.image, "targetId": t.main_chat}},
        id="copyImage-mine-into-their-mainChat",
    ),
    pytest.param(
        MOVE_IMAGE,
        lambda t, mine: {
            "input": {"imageId": t.image, "sourceId": t.frame, "targetId": mine.project}
        },
        id="moveImage-theirs-into-my-project",
    ),
    pytest.param(
        MOVE_IMAGE,
        lambda t, mine: {
            "input": {"imageId": t.image, "sourceId": t.project, "targetId": mine.frame}
        },
        id="moveImage-theirs-from-their-gallery-into-my-frame",
    ),
    pytest.param(
        MOVE_IMAGE,
        lambda t, _: {"input": {"imageId": t.image, "sourceId": t.frame, "targetId": t.context}},
        id="moveImage-theirs-within-theirs",
    ),
    pytest.param(
        MOVE_IMAGE,
        lambda t, mine: {
            "input": {"imageId": mine.image, "sourceId": mine.frame, "targetId": t.project}
        },
        id="moveImage-mine-into-their-project",
    ),
    pytest.param(
        MOVE_IMAGE,
        lambda t, mine: {
            "input": {"imageId": mine.image, "sourceId": mine.frame, "targetId": t.frame}
        },
        id="moveImage-mine-into-their-frame",
    ),
    pytest.param(
        MOVE_IMAGE,
        lambda t, mine: {
            "input": {"imageId": mine.image, "sourceId": mine.frame, "targetId": t.context}
        },
        id="moveImage-mine-into-their-context",
    ),
    pytest.param(
        MOVE_IMAGE,
        lambda t, mine: {
            "input": {"imageId": mine.image, "sourceId": mine.frame, "targetId": t.main_chat}
        },
        id="moveImage-mine-into-their-mainChat",
    ),
    pytest.param(
        MOVE_IMAGE,
        lambda t, mine: {
            "input": {"imageId": mine.image, "sourceId": t.frame, "targetId": mine.context}
        },
        id="moveImage-mine-from-their-frame",
    ),
    pytest.param(
        REMOVE_IMAGE,
        lambda t, _: {"input": {"imageId": t.image, "sourceId": t.frame}},
        id="removeImage-theirs",
    ),
    pytest.param(
        REMOVE_IMAGE,
        lambda t, _: {"input": {"imageId": t.image, "sourceId": t.project}},
        id="removeImage-theirs-from-their-gallery",
    ),
    pytest.param(
        REMOVE_IMAGE,
        lambda t, mine: {"input": {"imageId": mine.image, "sourceId": t.frame}},
        id="removeImage-mine-from-their-frame",
    ),
    pytest.param(DELETE_IMAGE, _update("image"), id="deleteImage"),
    pytest.param(
        GENERATE["Frame"],
        lambda t, _: {"input": {"frameId": t.frame, "prompt": "p", "imageCount": 2}},
        id="generateFrameImages-their-frame",
    ),
    pytest.param(
        GENERATE["Frame"],
        lambda t, mine: {
            "input": {"frameId": mine.frame, "prompt": "p", "contextImageIds": [t.image]}
        },
        id="generateFrameImages-their-reference",
    ),
    pytest.param(
        GENERATE["Context"],
        lambda t, _: {"input": {"contextId": t.context, "prompt": "p"}},
        id="generateContextImages-their-context",
    ),
    pytest.param(
        GENERATE["MainChat"],
        lambda t, _: {"input": {"mainChatId": t.main_chat, "prompt": "p"}},
        id="generateMainChatImages-their-main-chat",
    ),
    pytest.param(
        GENERATE["MainChat"],
        lambda t, mine: {
            "input": {"mainChatId": mine.main_chat, "prompt": "p", "contextImageIds": [t.image]}
        },
        id="generateMainChatImages-their-reference",
    ),
    pytest.param(
        ANALYZE_IMAGES,
        lambda t, mine: {"input": {"imageIds": [mine.image, t.image], "question": "what?"}},
        id="analyzeImages-theirs",
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
    payload = await scene.intruder.mutate(MOVE_IMAGE, {"input": move})
    projects = await scene.intruder.data(PROJECTS)

    # then
    assert payload["image"] == {"id": scene.mine.image, "project": {"id": scene.my_other_project}}
    counts = {p["id"]: (p["imageCount"], p["galleryCount"]) for p in projects["projects"]["nodes"]}
    assert counts == {scene.mine.project: (3, 1), scene.my_other_project: (1, 1)}
    assert await gql.data(PROJECTS) == theirs_before


async def test_copying_between_two_own_projects_works(scene: Scene) -> None:
    # given
    copy = {"imageId": scene.mine.image, "targetId": scene.my_other_project}

    # when
    payload = await scene.intruder.mutate(COPY_IMAGE, {"input": copy})
    projects = await scene.intruder.data(PROJECTS)

    # then: the copy is a new image of the other project
    assert payload["target"] == {"__typename": "Project"}
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
