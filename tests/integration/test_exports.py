"""Exports through the API, on both databases: a video's selected frames become an MP4, a PDF
storyboard and a ZIP, as jobs run by the app's own runner, read back from where the API says
they are; what is refused changes nothing; a cancelled or deleted export leaves no file."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import av
from pypdf import PdfReader

from storyframe.settings import Settings
from tests.support.apps import OwnedApp, owned_app
from tests.support.clients import GraphQLClient, http_client, sign_up
from tests.support.exporting import (
    CANCEL_EXPORT,
    DELETE_EXPORT,
    EXPORTS,
    UPDATE_FRAME,
    a_storyboard,
    export_of,
    export_video,
    exported,
)
from tests.support.scenes import seed_video


async def _download(owned: OwnedApp, url: str) -> bytes:
    """The bytes at a URL the API gave (the app's own /media route)."""
    path = url.split("://", 1)[1].split("/", 1)[1]
    response = await owned.http.get(f"/{path}")
    assert response.status_code == 200, response.text
    return response.content


def _media_files(settings: Settings) -> set[str]:
    root = settings.media_dir / "exports"
    return {p.name for p in root.iterdir()} if root.is_dir() else set()


async def test_the_selected_frames_become_an_mp4_with_timing_and_subtitles(
    settings: Settings,
) -> None:
    async with owned_app(settings) as owned:
        gql = owned.gql
        # given: three frames with selected images, one with its own duration and a caption
        board = await a_storyboard(gql, ["Opening", "Middle", "End"])
        changed = await gql.mutate(
            UPDATE_FRAME,
            {"input": {"id": board.frame_ids[1], "durationMs": 2500, "caption": "Hello there"}},
        )
        assert changed["frame"] == {
            "id": board.frame_ids[1],
            "title": "Middle",
            "durationMs": 2500,
            "caption": "Hello there",
        }
        # when: it is exported as an MP4 with subtitles
        export = await exported(
            gql,
            board.video_id,
            format="MP4",
            resolution="P720",
            fps=6,
            secondsPerFrame=1.0,
            captions="SUBTITLES",
        )
        # then: the file is where the API says, with the frames' timing
        assert export["contentType"] == "video/mp4"
        assert export["durationMs"] == 4500
        assert export["frameCount"] == 3
        assert export["progress"] == {"done": 6, "total": 6, "fraction": 1.0}  # fetched, rendered
        data = await _download(owned, export["url"])
        assert len(data) == export["byteSize"]
        with av.open(io.BytesIO(data), mode="r") as container:
            stream = container.streams.video[0]
            assert (stream.codec_context.name, stream.codec_context.pix_fmt) == ("h264", "yuv420p")
            assert (stream.codec_context.width, stream.codec_context.height) == (1280, 720)
            assert stream.average_rate == 6
            decoded = sum(1 for _ in container.decode(stream))
        assert decoded == 27  # 4.5 s at 6 fps
        # and the subtitles carry the caption at the middle frame's time
        vtt = (await _download(owned, export["subtitlesUrl"])).decode()
        assert vtt.startswith("WEBVTT")
        assert "00:00:01.000 --> 00:00:03.500" in vtt
        assert "Hello there" in vtt


async def test_a_pdf_storyboard_and_a_zip_of_the_originals(settings: Settings) -> None:
    async with owned_app(settings) as owned:
        gql = owned.gql
        board = await a_storyboard(gql, ["Opening", "End"])
        await gql.mutate(UPDATE_FRAME, {"input": {"id": board.frame_ids[0], "caption": "Dawn"}})
        pdf = await exported(gql, board.video_id, format="PDF", layout="ONE")
        reader = PdfReader(io.BytesIO(await _download(owned, pdf["url"])))
        assert len(reader.pages) == 2
        text = "\n".join(page.extract_text() for page in reader.pages)
        for expected in ("Export video", "Opening", "End", "Dawn", "prompt of frame 2"):
            assert expected in text
        assert all(len(page.images) == 1 for page in reader.pages)

        archive = await exported(gql, board.video_id, format="ZIP")
        with zipfile.ZipFile(io.BytesIO(await _download(owned, archive["url"]))) as zipped:
            names = zipped.namelist()
            manifest = json.loads(zipped.read("manifest.json"))
            first_image = zipped.read(names[0]) if names[0].startswith("frames/") else b""
        assert "storyboard.pdf" in names
        frames = [name for name in names if name.startswith("frames/")]
        assert [name.split("/")[1][:3] for name in frames] == ["001", "002"]
        assert [f["title"] for f in manifest["frames"]] == ["Opening", "End"]
        assert manifest["frames"][0]["caption"] == "Dawn"
        assert manifest["frames"][1]["prompt"] == "prompt of frame 2"
        # the originals, as stored
        image = await gql.data(
            "query($id: ID!) { node(id: $id) { ... on Image { url byteSize } } }",
            {"id": board.image_ids[0]},
        )
        original = await _download(owned, image["node"]["url"])
        assert first_image == original


async def test_frames_without_a_selection_are_named_unless_skipped(settings: Settings) -> None:
    async with owned_app(settings) as owned:
        gql = owned.gql
        board = await a_storyboard(gql, ["One", "Two", "Three"], selected=[True, False, True])
        refused = await export_video(gql, board.video_id, format="PDF")
        assert refused["export"] is None
        (error,) = refused["userErrors"]
        assert error["code"] == "MISSING_SELECTION"
        assert "2 (Two)" in error["message"]
        assert "1 (One)" not in error["message"]
        listed = await gql.data(EXPORTS, {"videoId": board.video_id})
        assert listed["exports"]["totalCount"] == 0  # nothing was queued
        # skipping them exports the others
        export = await exported(gql, board.video_id, format="ZIP", skipMissing=True)
        assert export["frameCount"] == 2
        assert export["settings"]["skipMissing"] is True


async def test_an_empty_video_and_bad_options_are_user_errors(settings: Settings) -> None:
    async with owned_app(settings) as owned:
        gql = owned.gql
        video = await seed_video(gql, "Empty")
        empty = await export_video(gql, video.id, format="MP4")
        assert [e["code"] for e in empty["userErrors"]] == ["EMPTY_VIDEO"]
        board = await a_storyboard(gql, ["One"])
        for options, field in (
            ({"fps": 0}, "fps"),
            ({"fps": 61}, "fps"),
            ({"secondsPerFrame": 0.01}, "secondsPerFrame"),
            ({"transitionMs": 60_000}, "transitionMs"),
            ({"idempotencyKey": "k" * 256}, "idempotencyKey"),
            ({"idempotencyKey": "   "}, "idempotencyKey"),
        ):
            payload = await export_video(gql, board.video_id, format="MP4", **options)
            assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [
                ("INVALID", [field])
            ]
        bad_duration = await gql.data(
            UPDATE_FRAME, {"input": {"id": board.frame_ids[0], "durationMs": 5}}
        )
        assert bad_duration["updateFrame"]["userErrors"][0]["field"] == ["durationMs"]
        listed = await gql.data(EXPORTS, {"videoId": board.video_id})
        assert listed["exports"]["totalCount"] == 0


async def test_frame_timing_is_cleared_with_null_and_kept_when_absent(settings: Settings) -> None:
    async with owned_app(settings) as owned:
        gql = owned.gql
        board = await a_storyboard(gql, ["One"])
        frame = board.frame_ids[0]
        await gql.mutate(UPDATE_FRAME, {"input": {"id": frame, "durationMs": 800, "caption": "x"}})
        kept = await gql.mutate(UPDATE_FRAME, {"input": {"id": frame, "title": "Renamed"}})
        assert kept["frame"] == {"id": frame, "title": "Renamed", "durationMs": 800, "caption": "x"}
        cleared = await gql.mutate(
            UPDATE_FRAME, {"input": {"id": frame, "durationMs": None, "caption": None}}
        )
        assert cleared["frame"]["durationMs"] is None
        assert cleared["frame"]["caption"] is None
        assert cleared["frame"]["title"] == "Renamed"


async def test_the_same_idempotency_key_answers_the_same_export(settings: Settings) -> None:
    async with owned_app(settings) as owned:
        gql = owned.gql
        board = await a_storyboard(gql, ["One"])
        first = await export_video(gql, board.video_id, format="PDF", idempotencyKey="k-1")
        again = await export_video(gql, board.video_id, format="PDF", idempotencyKey="k-1")
        assert again["export"]["id"] == first["export"]["id"]
        other = await export_video(gql, board.video_id, format="ZIP", idempotencyKey="k-1")
        assert [e["code"] for e in other["userErrors"]] == ["IDEMPOTENCY_CONFLICT"]
        listed = await gql.data(EXPORTS, {"videoId": board.video_id})
        assert listed["exports"]["totalCount"] == 1


async def test_deleting_an_export_or_its_video_removes_the_file(settings: Settings) -> None:
    async with owned_app(settings) as owned:
        gql = owned.gql
        board = await a_storyboard(gql, ["One"])
        pdf = await exported(gql, board.video_id, format="PDF")
        mp4 = await exported(gql, board.video_id, format="MP4", resolution="P720", fps=2)
        assert len(_media_files(settings)) == 2
        deleted = await gql.mutate(DELETE_EXPORT, {"id": pdf["id"]})
        assert deleted["deletedId"] == pdf["id"]
        assert await export_of(gql, pdf["id"]) is None
        assert len(_media_files(settings)) == 1
        # the video's deletion takes its exports' files with it
        await gql.mutate(
            "mutation($id: ID!) { deleteVideo(input: {id: $id}) { userErrors { code } } }",
            {"id": board.video_id},
        )
        assert await export_of(gql, mp4["id"]) is None
        assert _media_files(settings) == set()


async def test_another_users_video_and_exports_are_not_found(
    settings: Settings, tmp_path: Path
) -> None:
    async with owned_app(settings) as owned:
        board = await a_storyboard(owned.gql, ["One"])
        export = await exported(owned.gql, board.video_id, format="PDF")
        token = await sign_up(owned.gql, "other@storyframe.test", "seven mossy kettles hum at noon")
        async with http_client(owned.app, token) as http:
            other = GraphQLClient(http)
            refused = await export_video(other, board.video_id, format="PDF")
            assert [e["code"] for e in refused["userErrors"]] == ["NOT_FOUND"]
            assert await export_of(other, export["id"]) is None
            for document in (CANCEL_EXPORT, DELETE_EXPORT):
                data = await other.data(document, {"id": export["id"]})
                (payload,) = data.values()
                assert [e["code"] for e in payload["userErrors"]] == ["NOT_FOUND"]
            listed = await other.execute(EXPORTS, {"videoId": board.video_id})
            assert listed["errors"][0]["extensions"]["code"] == "NOT_FOUND"
        assert (await export_of(owned.gql, export["id"])) == export  # untouched


async def test_exports_are_listed_newest_first_in_pages(settings: Settings) -> None:
    async with owned_app(settings) as owned:
        gql = owned.gql
        board = await a_storyboard(gql, ["One"])
        made: list[dict[str, Any]] = [
            await exported(gql, board.video_id, format=fmt) for fmt in ("PDF", "ZIP", "PDF")
        ]
        page = await gql.data(EXPORTS, {"videoId": board.video_id, "first": 2})
        assert [n["id"] for n in page["exports"]["nodes"]] == [made[2]["id"], made[1]["id"]]
        assert page["exports"]["pageInfo"]["hasNextPage"] is True
        rest = await gql.data(
            EXPORTS,
            {"videoId": board.video_id, "after": page["exports"]["pageInfo"]["endCursor"]},
        )
        assert [n["id"] for n in rest["exports"]["nodes"]] == [made[0]["id"]]
        assert page["exports"]["totalCount"] == 3


async def test_a_finished_export_cannot_be_cancelled(settings: Settings) -> None:
    async with owned_app(settings) as owned:
        board = await a_storyboard(owned.gql, ["One"])
        export = await exported(owned.gql, board.video_id, format="PDF")
        data = await owned.gql.data(CANCEL_EXPORT, {"id": export["id"]})
        assert [e["code"] for e in data["cancelExport"]["userErrors"]] == ["INVALID"]
