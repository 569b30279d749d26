"""Exports as jobs, on both databases: held while they read their images, they can be
cancelled (queued or running), are limited per user, and a stopping app puts a running one back
in the queue for the next; none leaves a file or a work folder behind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from sqlmodel import col

from storyframe.db.engine import create_engine
from storyframe.db.tables import Export
from storyframe.settings import Settings
from storyframe.storage.local import LocalStorage
from tests.support.apps import owned_app, settings_with
from tests.support.exporting import (
    CANCEL_EXPORT,
    HeldReads,
    a_storyboard,
    export_of,
    export_video,
    finished,
)
from tests.support.ids import pk_of
from tests.support.polling import until


def _storage(settings: Settings) -> HeldReads:
    return HeldReads(LocalStorage(settings.media_dir, "http://storyframe.test"))


def _leftovers(settings: Settings) -> list[str]:
    """Work folders of exports, and exported files."""
    work = [p.name for p in settings.temp_dir.glob("export-*")]
    stored = settings.media_dir / "exports"
    return work + ([p.name for p in stored.iterdir()] if stored.is_dir() else [])


async def test_a_queued_and_a_running_export_are_cancelled(settings: Settings) -> None:
    storage = _storage(settings)
    async with owned_app(settings, storage=storage) as owned:
        gql = owned.gql
        board = await a_storyboard(gql, ["One", "Two"])
        # given: one export running (held reading its first image), another queued behind it
        running = (await export_video(gql, board.video_id, format="PDF"))["export"]
        await until(lambda: storage.waiting == 1)
        queued = (await export_video(gql, board.video_id, format="ZIP"))["export"]
        assert (await export_of(gql, running["id"]) or {})["status"] == "RUNNING"
        assert (await export_of(gql, queued["id"]) or {})["status"] == "QUEUED"
        # when: the queued one is cancelled, it ends at once
        data = await gql.data(CANCEL_EXPORT, {"id": queued["id"]})
        assert data["cancelExport"]["export"]["status"] == "CANCELLED"
        assert data["cancelExport"]["export"]["error"]["code"] == "CANCELLED"
        # and the running one ends soon, cancelled, without being let go
        data = await gql.data(CANCEL_EXPORT, {"id": running["id"]})
        assert data["cancelExport"]["export"]["cancelRequested"] is True
        ended = await finished(gql, running["id"])
        assert ended["status"] == "CANCELLED"
        assert ended["url"] is None
        assert storage.waiting == 0
        assert _leftovers(settings) == []


async def test_a_user_has_at_most_so_many_unfinished_exports(settings: Settings) -> None:
    storage = _storage(settings)
    limited = settings_with(settings, export_unfinished_per_user=2)
    async with owned_app(limited, storage=storage) as owned:
        gql = owned.gql
        board = await a_storyboard(gql, ["One"])
        first = (await export_video(gql, board.video_id, format="PDF"))["export"]
        second = (await export_video(gql, board.video_id, format="PDF"))["export"]
        refused = await export_video(gql, board.video_id, format="PDF")
        assert refused["export"] is None
        assert [e["code"] for e in refused["userErrors"]] == ["LIMIT_REACHED"]
        # once they are done, more may be asked
        storage.released.set()
        for export in (first, second):
            assert (await finished(gql, export["id"]))["status"] == "SUCCEEDED"
        accepted = await export_video(gql, board.video_id, format="PDF")
        assert accepted["userErrors"] == []


async def test_a_stopping_app_puts_a_running_export_back_for_the_next(
    settings: Settings,
) -> None:
    storage = _storage(settings)
    async with owned_app(settings, storage=storage) as owned:
        board = await a_storyboard(owned.gql, ["One"])
        export = (await export_video(owned.gql, board.video_id, format="MP4", fps=2))["export"]
        await until(lambda: storage.waiting == 1)
    # the app stopped with the export held: it is queued again, with nothing left behind
    assert _leftovers(settings) == []
    async with owned_app(settings, new_owner=False) as owned:
        done = await finished(owned.gql, export["id"])
        assert done["status"] == "SUCCEEDED"
        assert done["durationMs"] == 3000
    assert len(_leftovers(settings)) == 1  # the file, no work folder


@pytest.mark.parametrize("dialect", ["sqlite"])
async def test_an_export_whose_images_cannot_be_read_fails_with_the_frame(
    settings: Settings,
) -> None:
    storage = _storage(settings)
    async with owned_app(settings, storage=storage) as owned:
        board = await a_storyboard(owned.gql, ["One", "Two"])
        # the second frame's file is gone from storage
        image = await owned.gql.data(
            "query($id: ID!) { node(id: $id) { ... on Image { url } } }",
            {"id": board.image_ids[1]},
        )
        key = image["node"]["url"].split("/media/", 1)[1]
        (settings.media_dir / key).unlink()
        storage.released.set()
        export = (await export_video(owned.gql, board.video_id, format="PDF"))["export"]
        failed = await finished(owned.gql, export["id"])
        assert failed["status"] == "FAILED"
        assert failed["error"]["code"] == "EXPORT_FAILED"
        assert "frame 2" in failed["error"]["message"]
        assert _leftovers(settings) == []


# PostgreSQL only: these write the row from a second connection, as another process would; on
# SQLite that write can meet the lock of the app's last round under way at its shutdown.
@pytest.mark.parametrize("dialect", ["postgresql"])
async def test_a_cancelled_export_left_running_by_a_dead_process_ends_cancelled(
    settings: Settings,
) -> None:
    storage = _storage(settings)
    async with owned_app(settings, storage=storage) as owned:
        board = await a_storyboard(owned.gql, ["One"])
        export = (await export_video(owned.gql, board.video_id, format="PDF"))["export"]
        await until(lambda: storage.waiting == 1)
    # given: the row as a process killed after its cancelling was asked leaves it: RUNNING,
    # cancel requested, its heartbeat long stale
    engine = create_engine(settings.resolved_database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                update(Export)
                .where(col(Export.id) == pk_of(export["id"]))
                .values(
                    status="RUNNING",
                    cancel_requested=True,
                    heartbeat_at=datetime.now(UTC) - timedelta(hours=1),
                )
            )
    finally:
        await engine.dispose()
    # when the next process starts, it does not run it: it ends cancelled
    async with owned_app(settings, new_owner=False) as owned:
        ended = await finished(owned.gql, export["id"])
    assert ended["status"] == "CANCELLED"
    assert ended["url"] is None
    assert _leftovers(settings) == []


# PostgreSQL only: these write the row from a second connection, as another process would; on
# SQLite that write can meet the lock of the app's last round under way at its shutdown.
@pytest.mark.parametrize("dialect", ["postgresql"])
async def test_a_run_whose_export_another_run_has_started_records_nothing(
    settings: Settings,
) -> None:
    storage = _storage(settings)
    async with owned_app(settings, storage=storage) as owned:
        board = await a_storyboard(owned.gql, ["One"])
        export = (await export_video(owned.gql, board.video_id, format="PDF"))["export"]
        await until(lambda: storage.waiting == 1)
        # given: another process has started the export meanwhile (this one was thought dead)
        engine = create_engine(settings.resolved_database_url)
        try:
            async with engine.begin() as connection:
                await connection.execute(
                    update(Export)
                    .where(col(Export.id) == pk_of(export["id"]))
                    .values(attempts=Export.attempts + 1)
                )
        finally:
            await engine.dispose()
        # when this run goes on to its end
        storage.released.set()
        await until(lambda: owned.runtime.exports_runner.running == 0, seconds=60)
        # then it recorded nothing: the export is the other run's, and its file is released
        now = await export_of(owned.gql, export["id"])
        assert now is not None
        assert (now["status"], now["attempts"], now["url"]) == ("RUNNING", 2, None)
        assert _leftovers(settings) == []
