"""The floor for this stack: the storyboard's data as a plain Starlette JSON endpoint.

`create_bench_app` is the real app of `storyframe.app.create_app` with, beside `/graphql`:

- `GET /plain/storyboard?id=<Video ID>`: the same document the storyboard query answers
  (`{"data": {"video": {"frames": [...]}}}`), read through the same `Reader` methods in the same
  rounds as the GraphQL prefetch and encoded with orjson, with no GraphQL execution at all;
- `POST /plain/small`, `/plain/typename`, `/plain/viewer`, `/plain/update-frame`: the floors of
  `bench.small`, which answer precomputed bytes (whatever the request) with the content type they
  were given, set beforehand with `PUT /bench/answers/<name>` (the body and its content type);
- `GET /bench/stats`: how many SQL statements the app's engine has executed so far (BEGIN and
  PRAGMA left out, as the test suite counts them), the CPU time the server process has used (all
  its threads, aiosqlite's included) and the time its garbage collector has taken, per generation.

Run it with uvicorn: `uvicorn bench.plain:create_bench_app --factory` (settings from the
environment, as `storyframe serve` reads them). Like `storyframe serve`, it tunes the garbage
collector once the app is built (`storyframe.cli.tune_collector`: `gc.freeze()` and a higher
threshold for the youngest generation); STORYFRAME_BENCH_GC_FREEZE=0 leaves that out, to measure
what it is worth.
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import event
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from storyframe.app import create_app
from storyframe.cli import tune_collector
from storyframe.db.tables import Frame, Image, Message, Video
from storyframe.domain.pages import PageRequest
from storyframe.domain.places import Place, PlaceKind
from storyframe.domain.ports import Reader
from storyframe.runtime import Runtime
from storyframe.schema.ids import decode_pk
from storyframe.settings import Settings
from storyframe.view import bearer_token

MESSAGES_PER_FRAME = 3  # the storyboard query's `messages(first: 3)`
GC_FREEZE = "STORYFRAME_BENCH_GC_FREEZE"


class StatementCount:
    """SQL statements an engine has executed since it was attached."""

    def __init__(self) -> None:
        self.total = 0

    def attach(self, runtime: Runtime) -> None:
        for engine in runtime.engines:
            event.listen(engine, "before_cursor_execute", self._count)

    def _count(self, *args: Any) -> None:
        statement: str = args[2]
        if not statement.lstrip().upper().startswith(("BEGIN", "PRAGMA")):
            self.total += 1


class GcTime:
    """Wall time the server's garbage collector has spent in collections, per generation."""

    def __init__(self) -> None:
        self.seconds = [0.0, 0.0, 0.0]
        self._started = 0.0

    def attach(self) -> None:
        gc.callbacks.append(self._track)

    def _track(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds[info["generation"]] += time.perf_counter() - self._started


def _json(body: object) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


def _urls(images: Sequence[Image]) -> list[dict[str, str]]:
    return [{"url": image.url} for image in images]


async def storyboard(reads: Reader, video_pk: int) -> dict[str, Any]:
    """The storyboard query's `data`, read in the rounds the GraphQL prefetch uses."""
    videos = await reads.get_many(Video, [video_pk])
    if video_pk not in videos:
        return {"video": None}
    frames: list[Frame] = list((await reads.frames_of_videos([video_pk])).get(video_pk, []))
    places = [Place(PlaceKind.FRAME, _pk(frame.id)) for frame in frames]
    selected_ids = [f.selected_image_id for f in frames if f.selected_image_id is not None]
    page = PageRequest(MESSAGES_PER_FRAME)
    messages_of, selected = await asyncio.gather(
        reads.messages_of_chats(places, page), reads.get_many(Image, selected_ids)
    )
    shown: dict[Place, list[Message]] = {
        place: list(messages_of.get(place, ()))[: page.first] for place in places
    }
    message_ids = [_pk(message.id) for rows in shown.values() for message in rows]
    images_of, attachments_of = await asyncio.gather(
        reads.images_of_messages(message_ids), reads.attachments_of_messages(message_ids)
    )
    return {
        "video": {
            "frames": [
                {
                    "selectedImage": _selected(selected, frame.selected_image_id),
                    "messages": {
                        "edges": [
                            {
                                "node": {
                                    "images": _urls(images_of.get(_pk(m.id), ())),
                                    "attachedImages": _urls(attachments_of.get(_pk(m.id), ())),
                                }
                            }
                            for m in shown[place]
                        ]
                    },
                }
                for frame, place in zip(frames, places, strict=True)
            ]
        }
    }


def _pk(value: int | None) -> int:
    assert value is not None
    return value


def _selected(selected: Mapping[int, Image], image_id: int | None) -> dict[str, str] | None:
    image = selected.get(image_id) if image_id is not None else None
    return None if image is None else {"url": image.url}


def bench_routes(runtime: Runtime, count: StatementCount, gc_time: GcTime) -> list[Route]:
    async def plain_storyboard(request: Request) -> Response:
        # The same work as /graphql before its query: the bearer token, then the owner's reads.
        token = bearer_token(request.headers.get("authorization")) or ""
        viewer = await runtime.accounts.authenticate(token)
        if viewer is None:
            return _json({"errors": [{"message": "unauthenticated"}]})
        reads = runtime.services_for(viewer.user_id).reads
        video_pk = decode_pk(request.query_params.get("id", ""), "Video", "id")
        return _json({"data": await storyboard(reads, video_pk)})

    async def stats(_: Request) -> Response:
        return _json(
            {
                "statements": count.total,
                "cpu_seconds": time.process_time(),
                "gc_seconds": gc_time.seconds,
            }
        )

    return [Route("/plain/storyboard", plain_storyboard), Route("/bench/stats", stats)]


SMALL_CASES = ("small", "typename", "viewer", "update-frame")
"""The floors of `bench.small`: `POST /plain/<name>` answers what `PUT /bench/answers/<name>`
set."""


def small_routes() -> list[Route]:
    """`PUT /bench/answers/<name>` keeps its body and content type; `POST /plain/<name>` reads
    the request's body (as the GraphQL endpoint must) and answers them, with no other work."""
    answers: dict[str, tuple[bytes, str]] = {}

    def floor(name: str) -> Route:
        async def answer(request: Request) -> Response:
            await request.body()
            if name not in answers:
                return Response(status_code=404)
            body, media_type = answers[name]
            return Response(body, media_type=media_type)

        return Route(f"/plain/{name}", answer, methods=["POST"])

    async def set_answer(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in SMALL_CASES:
            return Response(status_code=404)
        media_type = request.headers.get("content-type", "application/json")
        answers[name] = (await request.body(), media_type)
        return Response(status_code=204)

    return [
        *(floor(name) for name in SMALL_CASES),
        Route("/bench/answers/{name}", set_answer, methods=["PUT"]),
    ]


def create_bench_app(settings: Settings | None = None) -> Starlette:
    """The real app, plus the plain endpoints and the statement counter beside `/graphql`."""
    app = create_app(settings)
    runtime: Runtime = app.state.runtime
    count, gc_time = StatementCount(), GcTime()
    count.attach(runtime)
    gc_time.attach()
    app.router.routes.extend([*bench_routes(runtime, count, gc_time), *small_routes()])
    if os.environ.get(GC_FREEZE) != "0":
        tune_collector()  # as `storyframe serve` does
    return app
