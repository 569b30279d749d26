"""The schema's objects built from rows without their dataclass `__init__` (`building.built`) are
what `__init__` makes, whether the row is an ORM entity or a plain row of any column order
(`nodes.Columns`); their `id` and their edges' cursors are worked out when read."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
import strawberry
from sqlmodel import SQLModel

from storyframe.db import tables
from storyframe.domain.pages import PageRequest
from storyframe.schema.chats import Frame, Message
from storyframe.schema.connection import Connection
from storyframe.schema.generation import Generation
from storyframe.schema.ids import encode_cursor, encode_id, parse_id
from storyframe.schema.images import Image
from storyframe.schema.projects import Project

NOW = datetime(2026, 12, 2, 10, 30, tzinfo=UTC)

ENTITIES: list[tuple[Callable[[Any], Any], SQLModel]] = [
    (
        Image.from_row,
        tables.Image(
            id=7,
            project_id=1,
            message_id=3,
            url="https://media.example/a.png",
            thumbnail_url=None,
            storage_key="a.png",
            width=640,
            height=480,
            content_type="image/png",
            byte_size=1234,
            placeholder=True,
            created_at=NOW,
        ),
    ),
    (
        Message.from_row,
        tables.Message(
            id=3, video_id=2, frame_id=5, prompt="a fox", final_prompt="a red fox", created_at=NOW
        ),
    ),
    (
        Frame.from_row,
        tables.Frame(
            id=5,
            video_id=2,
            title="Opening",
            order=0,
            duration_ms=1500,
            caption="Dawn",
            selected_image_id=7,
            created_at=NOW,
            updated_at=NOW,
        ),
    ),
    (
        Generation.from_row,
        tables.Generation(
            id=9,
            message_id=3,
            video_id=2,
            status="SUCCEEDED",
            provider="openai",
            model="gpt-image-1",
            size="1024x1024",
            quality="low",
            requested_count=2,
            completed_count=2,
            errors=[],
            input_text_tokens=10,
            output_tokens=20,
            estimated_cost_usd=0.02,
            created_at=NOW,
            started_at=NOW,
            finished_at=NOW,
        ),
    ),
]
IDS = [type(entity).__name__ for _, entity in ENTITIES]


@pytest.fixture(scope="module")
def database() -> Iterator[sa.Engine]:
    engine = sa.create_engine("sqlite://")
    SQLModel.metadata.create_all(engine)
    with engine.begin() as connection:
        for _, entity in ENTITIES:
            table = type(entity).__table__  # type: ignore[attr-defined]
            connection.execute(sa.insert(table).values(entity.model_dump()))
    yield engine
    engine.dispose()


def made_by_init(made: Any) -> Any:
    """The same object again through its dataclass `__init__`, which refuses a field it does
    not know and sets any default left out."""
    return type(made)(**vars(made))


@pytest.mark.parametrize(("from_row", "entity"), ENTITIES, ids=IDS)
def test_an_object_built_from_an_entity_is_what_init_makes(
    from_row: Callable[[Any], Any], entity: SQLModel
) -> None:
    made = from_row(entity)

    assert vars(made) == vars(made_by_init(made))
    assert made.pk == entity.id  # type: ignore[attr-defined]


@pytest.mark.parametrize(("from_row", "entity"), ENTITIES, ids=IDS)
def test_plain_rows_in_any_column_order_build_the_same_object(
    database: sa.Engine, from_row: Callable[[Any], Any], entity: SQLModel
) -> None:
    table = type(entity).__table__  # type: ignore[attr-defined]
    columns = list(table.columns)
    with database.connect() as connection:
        in_order = connection.execute(sa.select(*columns)).one()
        reversed_order = connection.execute(sa.select(*reversed(columns))).one()
        again = connection.execute(sa.select(*columns)).one()

    expected = vars(from_row(entity))
    assert vars(from_row(in_order)) == expected
    assert vars(from_row(reversed_order)) == expected  # another shape, read by its own positions
    assert vars(from_row(again)) == expected


def test_a_node_id_is_worked_out_when_read_and_cannot_be_given() -> None:
    image = Image.from_row(ENTITIES[0][1])  # type: ignore[arg-type]
    project = Project.from_row(tables.Project(id=1, owner_id=1, name="P", created_at=NOW))

    assert "id" not in vars(image)  # not encoded when built
    assert image.id == encode_id("Image", 7)
    assert parse_id(project.id) == ("Project", 1)
    with pytest.raises(AttributeError, match="made from its type's name and its pk"):
        image.id = strawberry.ID("SW1hZ2U6OA")


def test_a_page_is_what_init_makes_and_its_cursors_are_encoded_when_read() -> None:
    images = [Image.from_row(ENTITIES[0][1])]  # type: ignore[arg-type]
    page = Connection.of(images, PageRequest(1))

    for made in (page, page.edges[0], page.page_info):
        assert vars(made) == vars(made_by_init(made))
    assert "cursor" not in vars(page.edges[0])
    assert page.edges[0].cursor == encode_cursor(7)
    assert page.page_info.start_cursor == page.page_info.end_cursor == encode_cursor(7)
