"""GenerationService on the fake unit of work: accepting a request (checked, saved QUEUED,
handed to the job queue, or replayed for its idempotency key), running it (the pipeline that
describes references, calls the provider and stores each call's images as it ends, and the
outcome it records), cancelling it, handing a run stopped by a shutdown back to the queue and
resuming it, the events it publishes, the sweep of generations a stopped process left, and
questions asked about images.

The provider is the offline placeholder one, or `ScriptedProvider`, whose answers each test
writes; a call a test must hold is paused on an event (`Pause`). The job queue is a recording
fake (`RecordingQueue`): nothing runs a generation unless the test runs it. Images are stored
on a temporary disk.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from storyframe.db.tables import PROMPT_MAX, Generation, Image, MainChat, Message, Project, Video
from storyframe.domain.errors import DomainError, ErrorCode
from storyframe.domain.image_provider import (
    CallResult,
    Description,
    Failure,
    ImageCall,
    ImageProvider,
    PartialSink,
    Produced,
    ProviderError,
    Reference,
    RemoteModel,
    Usage,
)
from storyframe.domain.jobs import EventKind, GenerationEvent, Subscription, Ticket
from storyframe.domain.places import Place, PlaceKind
from storyframe.domain.ports import Blob
from storyframe.events import EventHub
from storyframe.providers.placeholder import PlaceholderProvider
from storyframe.services.decoding import DecodeSlots
from storyframe.services.generation import (
    GenerationRequest,
    GenerationService,
    Generator,
    ImageDefaults,
    ImageFailure,
    Sweep,
)
from storyframe.services.generation.requests import IDEMPOTENCY_KEY_MAX
from storyframe.services.generation.service import MAX_ATTEMPTS
from storyframe.services.generation.types import (
    INTERRUPTED,
    MAX_ANALYZED,
    QUESTION_MAX,
    SWEEP_MARGIN_SECONDS,
)
from storyframe.services.image_files import ImageLimits, inspect_image_async
from storyframe.services.image_places import StoredImage
from storyframe.services.media import Media
from storyframe.services.temporaries import Temporaries
from storyframe.storage.local import LocalStorage
from tests.support.builders import Domain, VideoScene, a_frame, a_video, an_image, domain
from tests.support.clock import Clock
from tests.support.fakes import FAKE_OWNER_ID
from tests.support.ids import known
from tests.support.images import image_bytes

DEFAULTS = ImageDefaults(
    image_model="gpt-image-2", vision_model="gpt-5.4-mini", size="1024x1024", quality="medium"
)
TODAY = date(2026, 6, 1)
STRANGER = FAKE_OWNER_ID + 1
CONTEXT = "A lighthouse keeper and her grey cat, in watercolour."
FRAME_TITLE = "Harbour at dawn"

T = TypeVar("T")

_shades = itertools.count(1)


def png() -> bytes:
    """A small PNG of a colour of its own."""
    n = next(_shades)
    return image_bytes(color=((n * 53) % 256, (n * 97) % 256, (n * 193) % 256), size=(48, 32))


Answer = Callable[[ImageCall], Awaitable[CallResult]]


class ScriptedProvider:
    """An image provider whose answers the test writes. A call with no answer in `answers` (by
    its first index) makes the images asked for, reporting `usage`. The service asks one image
    a call unless the generator is built with more `images_per_call` (and the model takes
    them)."""

    def __init__(self, *, placeholder: bool = False, usage: Usage | None = None) -> None:
        self._placeholder = placeholder
        self.usage = usage
        self.answers: dict[int, Answer] = {}
        self.calls: list[ImageCall] = []
        self.tasks: dict[int, asyncio.Task[Any]] = {}
        """The task of each call, by its first index."""
        self.description: Description | Exception = Description(
            "a grey cat on a red boat", "gpt-5.4-mini"
        )
        self.described: list[tuple[list[Reference], str]] = []
        self.analysis: Description | Exception = Description(
            "The boat is red.", "gpt-5.4-mini", Usage(120, 800, 40)
        )
        self.analyzed: list[tuple[list[Reference], str, str]] = []

    @property
    def placeholder(self) -> bool:
        return self._placeholder

    @property
    def name(self) -> str:
        return "placeholder" if self._placeholder else "openai"

    async def generate(self, call: ImageCall, on_partial: PartialSink | None = None) -> CallResult:
        self.calls.append(call)
        task = asyncio.current_task()
        assert task is not None
        self.tasks[call.first_index] = task
        return await self.answers.get(call.first_index, self.make)(call)

    async def make(self, call: ImageCall) -> CallResult:
        return CallResult([Produced(png()) for _ in range(call.count)], self.usage)

    async def describe_references(self, images: Sequence[Reference], model: str) -> Description:
        self.described.append((list(images), model))
        if isinstance(self.description, Exception):
            raise self.description
        return self.description

    async def analyze(self, images: Sequence[Reference], question: str, model: str) -> Description:
        self.analyzed.append((list(images), question, model))
        if isinstance(self.analysis, Exception):
            raise self.analysis
        return self.analysis

    async def complete(self, prompt: str, model: str) -> Description:
        return Description("A clear sky is blue.", model)

    async def models(self) -> list[RemoteModel]:
        return [RemoteModel(DEFAULTS.image_model)]

    async def aclose(self) -> None:
        return None


def failing(error: BaseException) -> Answer:
    async def answer(call: ImageCall) -> CallResult:
        raise error

    return answer


def answering(*images: bytes, usage: Usage | None = None) -> Answer:
    async def answer(call: ImageCall) -> CallResult:
        return CallResult([Produced(data) for data in images], usage)

    return answer


class Pause:
    """A call held until the test lets it `go`; `reached` is set once the call is made."""

    def __init__(self, then: Answer) -> None:
        self.reached = asyncio.Event()
        self.go = asyncio.Event()
        self._then = then

    async def __call__(self, call: ImageCall) -> CallResult:
        self.reached.set()
        await self.go.wait()
        return await self._then(call)

    async def start(self, work: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """`work` running in a task of its own, once it has made the held call."""
        task = asyncio.create_task(work)
        await self.reached.wait()
        return task


class HeldStorage(LocalStorage):
    """Local storage whose puts can be held: once `go` is set to an event, a put sets
    `reached` and waits for `go` before storing."""

    def __init__(self, root: Path, base_url: str) -> None:
        super().__init__(root, base_url)
        self.reached = asyncio.Event()
        self.go: asyncio.Event | None = None

    async def put(
        self, source: Path, *, checksum: str, content_type: str, thumbnail: bytes
    ) -> Blob:
        if self.go is not None:
            self.reached.set()
            await self.go.wait()
        return await super().put(
            source, checksum=checksum, content_type=content_type, thumbnail=thumbnail
        )


class RecordingQueue:
    """A job queue that runs nothing itself: it remembers what it was given and what it was
    asked to cancel, and holds what waits. With `work`, an enqueued generation starts at once
    (as a runner with a free slot starts it), in a task of `tasks`."""

    def __init__(self) -> None:
        self.enqueued: list[Ticket] = []
        self.waiting: list[Ticket] = []
        self.cancelled: list[int] = []
        self.work: Callable[[int], Coroutine[Any, Any, None]] | None = None
        self.tasks: dict[int, asyncio.Task[None]] = {}

    def enqueue(self, ticket: Ticket) -> None:
        self.enqueued.append(ticket)
        if self.work is not None:
            self.tasks[ticket.row_id] = asyncio.create_task(self.work(ticket.row_id))
        else:
            self.waiting.append(ticket)

    def cancel(self, generation_id: int) -> bool:
        self.cancelled.append(generation_id)
        held = [t for t in self.waiting if t.row_id == generation_id]
        for ticket in held:
            self.waiting.remove(ticket)
        return bool(held)

    async def positions(self, generation_ids: Sequence[int]) -> dict[int, int]:
        ids = [ticket.row_id for ticket in self.waiting]
        return {i: ids.index(i) + 1 for i in generation_ids if i in ids}


MARK = GenerationEvent(EventKind.STATE, 0, 0, 0)
"""Published by a test to mark the end of the events it reads."""


class Watch:
    """The events published since the watch began, as a subscriber gets them."""

    def __init__(self, hub: EventHub, stream: Subscription) -> None:
        self._hub = hub
        self._stream = stream

    async def events(self) -> list[GenerationEvent]:
        """Those published since the last call (up to a mark published now)."""
        self._hub.publish(MARK)
        seen: list[GenerationEvent] = []
        while (event := await anext(self._stream)) is not MARK:
            assert isinstance(event, GenerationEvent)
            seen.append(event)
        return seen

    async def kinds(self) -> list[tuple[EventKind, int | None, int | None]]:
        """The events since the last call, as (kind, image index, image id)."""
        return [(event.kind, event.index, event.image_id) for event in await self.events()]


@dataclass(frozen=True)
class Env:
    d: Domain
    storage: HeldStorage
    generator: Generator
    service: GenerationService
    clock: Clock
    queue: RecordingQueue
    hub: EventHub

    @asynccontextmanager
    async def watching(self) -> AsyncIterator[Watch]:
        async with self.hub.subscribe(lambda event: True) as stream:
            yield Watch(self.hub, stream)


def build(
    tmp_path: Path,
    provider: ImageProvider,
    *,
    defaults: ImageDefaults = DEFAULTS,
    budget_seconds: float = 600,
    images_per_call: int = 1,
    idempotency_ttl: timedelta = timedelta(hours=24),
) -> Env:
    d = domain()
    storage = HeldStorage(tmp_path / "media", "http://storyframe.test")
    media = Media(
        storage, d.files, ImageLimits(), 10, Temporaries(tmp_path / "tmp"), DecodeSlots(2)
    )
    clock = Clock()
    clock.set_day(TODAY)
    queue = RecordingQueue()
    hub = EventHub()
    generator = Generator(
        provider,
        media,
        defaults,
        concurrency=4,
        budget_seconds=budget_seconds,
        clock=clock,
        jobs=queue,
        events=hub,
        images_per_call=images_per_call,
        idempotency_ttl=idempotency_ttl,
    )
    return Env(d, storage, generator, GenerationService(d.uow, generator), clock, queue, hub)


async def holding(
    tmp_path: Path, call: int = 0, *, placeholder: bool = False
) -> tuple[Env, ScriptedProvider, Pause, Place]:
    """An env whose provider holds its call `call` (by first index), the others answered, and a
    frame to generate in."""
    provider = ScriptedProvider(placeholder=placeholder)
    pause = Pause(provider.make)
    provider.answers[call] = pause
    e = build(tmp_path, provider)
    _, frame = await a_frame_scene(e)
    return e, provider, pause, frame


async def a_frame_scene(e: Env, context: str = CONTEXT) -> tuple[VideoScene, Place]:
    """A video whose context has `context`, and a frame of it."""
    scene = await a_video(e.d)
    await e.d.contexts.update(scene.context.id, context)
    return scene, await a_frame(e.d, scene.video_id, FRAME_TITLE)


async def a_stored_image(e: Env, place: Place) -> tuple[int, bytes]:
    """An image uploaded to the place, its file in storage: its id and bytes."""
    data = png()
    path = e.generator.media.temporaries.write(data, "test-")
    facts = await inspect_image_async(path, ImageLimits())
    blob = await e.storage.put(
        path, checksum=facts.checksum, content_type=facts.content_type, thumbnail=facts.thumbnail
    )
    path.unlink()
    image = await e.d.seeds.add_image(place, StoredImage.of(blob, facts))
    return known(image.id), data


@dataclass(frozen=True)
class Theirs:
    chat: Place
    image: int
    generation: int


async def another_users_chat(d: Domain) -> Theirs:
    """Another user's main chat, with an image of theirs and a generation queued there."""
    async with d.uow(owner_id=STRANGER) as repo:
        project = Project(name="Theirs", owner_id=STRANGER)
        await repo.add(project)
        video = Video(project_id=known(project.id), name="Theirs")
        await repo.add(video)
        chat = MainChat(video_id=known(video.id), name="Theirs")
        await repo.add(chat)
        image = Image(
            project_id=known(project.id),
            url="https://media.test/theirs.png",
            storage_key="theirs.png",
            width=48,
            height=32,
            content_type="image/png",
            byte_size=100,
        )
        await repo.add(image)
        message = Message(video_id=known(video.id), main_chat_id=known(chat.id), prompt="theirs")
        await repo.add(message)
        generation = Generation(
            message_id=known(message.id),
            video_id=known(video.id),
            status="QUEUED",
            provider="placeholder",
            model="placeholder",
            size="1024x1024",
            quality="auto",
            requested_count=1,
        )
        await repo.add(generation)
        await repo.commit()
    return Theirs(Place(PlaceKind.MAIN_CHAT, known(chat.id)), known(image.id), known(generation.id))


def generation_of(e: Env, generation_id: int) -> Generation:
    generation = e.d.uow.get(Generation, generation_id)
    assert generation is not None
    return generation


def message_of(e: Env, generation_id: int) -> Message:
    message = e.d.uow.get(Message, generation_of(e, generation_id).message_id)
    assert message is not None
    return message


def failures(generation: Generation) -> list[tuple[int | None, ErrorCode, str]]:
    """The generation's recorded errors, read back as `ImageFailure`s."""
    read = [ImageFailure.of_json(stored) for stored in generation.errors]
    return [(failure.index, failure.code, failure.message) for failure in read]


def images_of(e: Env, generation_id: int) -> list[Image]:
    message_id = generation_of(e, generation_id).message_id
    return [image for image in e.d.uow.all(Image) if image.message_id == message_id]


def slots_of(e: Env, generation_id: int) -> list[int]:
    return sorted(image.slot for image in images_of(e, generation_id) if image.slot is not None)


async def change(e: Env, generation_id: int, **values: Any) -> None:
    """Write `values` on the generation's row, as another process would have left it."""
    async with e.d.uow() as repo:
        generation = await repo.get(Generation, generation_id)
        assert generation is not None
        for name, value in values.items():
            setattr(generation, name, value)
        await repo.save(generation)
        await repo.commit()


# prepare


async def test_prepare_saves_the_message_and_a_queued_generation_and_runs_nothing(
    tmp_path: Path,
) -> None:
    # given
    provider = ScriptedProvider()
    e = build(tmp_path, provider)
    scene, frame = await a_frame_scene(e)
    first = await an_image(e.d, scene.gallery)
    second = await an_image(e.d, scene.gallery)

    # when
    generation_id = await e.service.prepare(
        GenerationRequest(
            chat=frame,
            prompt="  three owls on a mast \n",
            image_count=3,
            reference_ids=[second, first, second],
            with_context=True,
            size="1536x1024",
        )
    )

    # then
    generation = generation_of(e, generation_id)
    assert generation.status == "QUEUED"
    assert (generation.provider, generation.model) == ("openai", "gpt-image-2")
    assert (generation.size, generation.quality) == ("1536x1024", "medium")
    assert (generation.requested_count, generation.completed_count) == (3, 0)
    assert generation.video_id == scene.video_id
    assert (generation.started_at, generation.finished_at, generation.errors) == (None, None, [])
    message = message_of(e, generation_id)
    assert (message.frame_id, message.prompt) == (frame.id, "three owls on a mast")
    assert (message.with_context, message.final_prompt) == (True, None)
    assert e.d.uow.attachments_of(known(message.id)) == [second, first]
    assert provider.calls == []
    assert provider.described == []
    assert await e.storage.keys() == []
    assert e.queue.enqueued == []


@pytest.mark.parametrize("kind", [PlaceKind.CONTEXT, PlaceKind.MAIN_CHAT])
async def test_prepare_marks_with_context_only_for_a_frame(tmp_path: Path, kind: PlaceKind) -> None:
    # given
    e = build(tmp_path, ScriptedProvider())
    scene = await a_video(e.d)
    chat = scene.context if kind is PlaceKind.CONTEXT else scene.main_chat

    # when
    generation_id = await e.service.prepare(
        GenerationRequest(chat=chat, prompt="owls", with_context=True)
    )

    # then
    message = message_of(e, generation_id)
    assert getattr(message, kind.column) == chat.id
    assert message.with_context is False


BAD_REQUESTS: dict[str, tuple[dict[str, Any], ErrorCode, list[str]]] = {
    "no image": ({"image_count": 0}, ErrorCode.INVALID, ["imageCount"]),
    "five images": ({"image_count": 5}, ErrorCode.INVALID, ["imageCount"]),
    "a blank prompt": ({"prompt": " \n "}, ErrorCode.BLANK, ["prompt"]),
    "a prompt too long": ({"prompt": "o" * (PROMPT_MAX + 1)}, ErrorCode.TOO_LONG, ["prompt"]),
    "seventeen references": (
        {"reference_ids": list(range(1, 18))},
        ErrorCode.INVALID,
        ["contextImageIds"],
    ),
    "an unknown model": ({"model": "dall-e-3"}, ErrorCode.INVALID, ["model"]),
    "a size the model lacks": ({"size": "640x480"}, ErrorCode.INVALID, ["size"]),
    "a quality the model lacks": ({"quality": "ultra"}, ErrorCode.INVALID, ["quality"]),
}


@pytest.mark.parametrize(
    ("changes", "code", "field"), BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys()
)
async def test_prepare_refuses_bad_input_and_saves_nothing(
    tmp_path: Path, changes: dict[str, Any], code: ErrorCode, field: list[str]
) -> None:
    # given
    e = build(tmp_path, ScriptedProvider())
    _, frame = await a_frame_scene(e)
    before = e.d.uow.snapshot()
    request: dict[str, Any] = {"chat": frame, "prompt": "owls", **changes}

    # when
    with pytest.raises(DomainError) as refused:
        await e.service.prepare(GenerationRequest(**request))

    # then
    assert (refused.value.code, refused.value.field) == (code, field)
    assert e.d.uow.snapshot() == before


NOT_THE_USERS = [
    "an unknown frame",
    "an unknown main chat",
    "another user's chat",
    "an unknown reference",
    "a reference of another project",
    "another user's image as reference",
]


@pytest.mark.parametrize("case", NOT_THE_USERS)
async def test_prepare_refuses_a_chat_or_reference_the_user_does_not_have(
    tmp_path: Path, case: str
) -> None:
    # given
    e = build(tmp_path, ScriptedProvider())
    scene, frame = await a_frame_scene(e)
    mine = await an_image(e.d, scene.gallery)
    other = await a_video(e.d)
    other_projects = await an_image(e.d, other.gallery)
    theirs = await another_users_chat(e.d)
    requests = {
        "an unknown frame": (Place(PlaceKind.FRAME, 999), [], "frameId"),
        "an unknown main chat": (Place(PlaceKind.MAIN_CHAT, 999), [], "mainChatId"),
        "another user's chat": (theirs.chat, [], "mainChatId"),
        "an unknown reference": (frame, [mine, 999], "contextImageIds"),
        "a reference of another project": (frame, [mine, other_projects], "contextImageIds"),
        "another user's image as reference": (frame, [theirs.image], "contextImageIds"),
    }
    chat, references, field = requests[case]
    before = e.d.uow.snapshot()

    # when
    with pytest.raises(DomainError) as refused:
        await e.service.prepare(GenerationRequest(chat, "owls", reference_ids=references))

    # then
    assert (refused.value.code, refused.value.field) == (ErrorCode.NOT_FOUND, [field])
    assert e.d.uow.snapshot() == before


async def test_prepare_offers_the_models_not_shut_down_and_their_own_sizes(
    tmp_path: Path,
) -> None:
    # given a model shutting down on 2026-12-01
    e = build(tmp_path, ScriptedProvider())
    _, frame = await a_frame_scene(e)
    request = GenerationRequest(frame, "owls", model="gpt-image-1.5", quality="high")
    wide = GenerationRequest(frame, "owls", model="gpt-image-2.6-flare", size="2560x1440")

    # when
    before_shutdown = await e.service.prepare(request)
    wide_id = await e.service.prepare(wide)
    e.clock.set_day(date(2026, 12, 1))
    with pytest.raises(DomainError) as refused:
        await e.service.prepare(request)

    # then
    assert (generation_of(e, before_shutdown).model, generation_of(e, before_shutdown).quality) == (
        "gpt-image-1.5",
        "high",
    )
    assert generation_of(e, wide_id).size == "2560x1440"
    assert (refused.value.code, refused.value.field) == (ErrorCode.INVALID, ["model"])


async def test_with_placeholders_only_the_placeholder_model_and_its_quality_are_used(
    tmp_path: Path,
) -> None:
    # given defaults naming an OpenAI model and a quality placeholders do not have
    e = build(tmp_path, PlaceholderProvider())
    _, frame = await a_frame_scene(e)

    # when
    by_default = await e.service.prepare(GenerationRequest(frame, "owls"))
    by_name = await e.service.prepare(GenerationRequest(frame, "owls", model="placeholder"))
    with pytest.raises(DomainError) as refused:
        await e.service.prepare(GenerationRequest(frame, "owls", model="gpt-image-2"))

    # then
    for generation_id in (by_default, by_name):
        generation = generation_of(e, generation_id)
        assert (generation.provider, generation.model) == ("placeholder", "placeholder")
        assert (generation.size, generation.quality) == ("1024x1024", "auto")
    assert (refused.value.code, refused.value.field) == (ErrorCode.INVALID, ["model"])


# submit: accepted, queued and told


async def test_submit_saves_a_queued_generation_hands_it_to_the_queue_and_tells_it(
    tmp_path: Path,
) -> None:
    # given
    provider = ScriptedProvider()
    e = build(tmp_path, provider)
    scene, frame = await a_frame_scene(e)

    # when
    async with e.watching() as watch:
        submitted = await e.service.submit(GenerationRequest(frame, "owls", image_count=2))
        events = await watch.events()

    # then
    generation_id = known(submitted.generation.id)
    assert submitted.replayed is False
    assert submitted.generation.status == generation_of(e, generation_id).status == "QUEUED"
    assert submitted.generation.owner_id == FAKE_OWNER_ID
    assert submitted.message.id == generation_of(e, generation_id).message_id
    assert e.queue.enqueued == [Ticket(generation_id, FAKE_OWNER_ID)]
    assert [(ev.kind, ev.generation_id, ev.video_id, ev.owner_id) for ev in events] == [
        (EventKind.QUEUED, generation_id, scene.video_id, FAKE_OWNER_ID)
    ]
    assert provider.calls == []


async def test_submit_refuses_bad_input_and_queues_and_tells_nothing(tmp_path: Path) -> None:
    # given
    e = build(tmp_path, ScriptedProvider())
    _, frame = await a_frame_scene(e)
    before = e.d.uow.snapshot()

    # when
    async with e.watching() as watch:
        with pytest.raises(DomainError) as refused:
            await e.service.submit(GenerationRequest(frame, "owls", image_count=0))
        events = await watch.events()

    # then
    assert (refused.value.code, refused.value.field) == (ErrorCode.INVALID, ["imageCount"])
    assert e.d.uow.snapshot() == before
    assert (e.queue.enqueued, events) == ([], [])


async def test_submit_waits_for_the_end_when_asked(tmp_path: Path) -> None:
    # given a queue that starts what it is given at once
    e = build(tmp_path, PlaceholderProvider())
    e.queue.work = e.service.run_job
    _, frame = await a_frame_scene(e)

    # when
    submitted = await e.service.submit(
        GenerationRequest(frame, "owls", image_count=2), wait_seconds=600
    )

    # then
    generation = submitted.generation
    assert (generation.status, generation.completed_count) == ("SUCCEEDED", 2)
    assert submitted.message.final_prompt == "owls"
    images = images_of(e, known(generation.id))
    assert e.d.uow.images_in(frame) == {known(image.id) for image in images}
    assert len(images) == 2


async def test_submit_answers_the_generation_as_it_stands_when_the_wait_ends(
    tmp_path: Path,
) -> None:
    # given a queue that runs nothing
    e = build(tmp_path, ScriptedProvider())
    _, frame = await a_frame_scene(e)

    # when
    submitted = await e.service.submit(GenerationRequest(frame, "owls"), wait_seconds=0)

    # then
    assert submitted.generation.status == "QUEUED"
    assert len(e.queue.enqueued) == 1


async def test_the_work_goes_on_when_a_waiting_caller_is_cancelled(tmp_path: Path) -> None:
    # given a queue that starts what it is given at once, and a call held
    e, _, pause, frame = await holding(tmp_path)
    e.queue.work = e.service.run_job
    request = await pause.start(
        e.service.submit(GenerationRequest(frame, "owls"), wait_seconds=600)
    )

    # when the caller goes away, then the provider answers
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    pause.go.set()
    (ticket,) = e.queue.enqueued
    await e.queue.tasks[ticket.row_id]

    # then
    (generation,) = e.d.uow.all(Generation)
    assert (generation.status, generation.completed_count) == ("SUCCEEDED", 1)
    assert len(e.d.uow.all(Image)) == 1


# idempotency keys


async def test_the_same_key_with_the_same_request_answers_the_first_generation_again(
    tmp_path: Path,
) -> None:
    # given
    e = build(tmp_path, ScriptedProvider())
    _, frame = await a_frame_scene(e)
    first = await e.service.submit(
        GenerationRequest(frame, "owls", image_count=2), idempotency_key="key-1"
    )

    # when the request comes again (its prompt spaced otherwise), by submit and by prepare
    async with e.watching() as watch:
        again = await e.service.submit(
            GenerationRequest(frame, "  owls \n", image_count=2), idempotency_key="key-1"
        )
        prepared = await e.service.prepare(
            GenerationRequest(frame, "owls", image_count=2), idempotency_key="key-1"
        )
        events = await watch.events()

    # then
    assert (first.replayed, again.replayed) == (False, True)
    assert (again.message.id, again.generation.id) == (first.message.id, first.generation.id)
    assert prepared == first.generation.id
    assert len(e.d.uow.all(Generation)) == len(e.d.uow.all(Message)) == 1
    assert e.queue.enqueued == [Ticket(known(first.generation.id), FAKE_OWNER_ID)]
    assert events == []


async def test_a_replay_answers_the_generation_as_it_stands(tmp_path: Path) -> None:
    # given a generation with a key, run to its end
    e = build(tmp_path, PlaceholderProvider())
    _, frame = await a_frame_scene(e)
    first = await e.service.submit(GenerationRequest(frame, "owls"), idempotency_key="key-1")
    await e.service.run(known(first.generation.id))

    # when
    again = await e.service.submit(
        GenerationRequest(frame, "owls"), idempotency_key="key-1", wait_seconds=600
    )

    # then
    assert again.replayed is True
    assert again.generation.id == first.generation.id
    assert (again.generation.status, again.generation.completed_count) == ("SUCCEEDED", 1)
    assert len(e.queue.enqueued) == 1


KEY_CONFLICTS = ["another prompt", "another count", "another size", "another chat", "context"]


@pytest.mark.parametrize("case", KEY_CONFLICTS)
async def test_the_same_key_with_another_request_is_a_conflict(tmp_path: Path, case: str) -> None:
    # given
    e = build(tmp_path, ScriptedProvider())
    scene, frame = await a_frame_scene(e)
    other_frame = await a_frame(e.d, scene.video_id, "Another frame")
    await e.service.submit(GenerationRequest(frame, "owls"), idempotency_key="key-1")
    requests = {
        "another prompt": GenerationRequest(frame, "cats"),
        "another count": GenerationRequest(frame, "owls", image_count=2),
        "another size": GenerationRequest(frame, "owls", size="1536x1024"),
        "another chat": GenerationRequest(other_frame, "owls"),
        "context": GenerationRequest(frame, "owls", with_context=True),
    }
    before = e.d.uow.snapshot()

    # when
    with pytest.raises(DomainError) as refused:
        await e.service.submit(requests[case], idempotency_key="key-1")

    # then
    assert (refused.value.code, refused.value.field) == (
        ErrorCode.IDEMPOTENCY_CONFLICT,
        ["idempotencyKey"],
    )
    assert e.d.uow.snapshot() == before
    assert len(e.queue.enqueued) == 1


async def test_an_expired_key_makes_a_new_generation(tmp_path: Path) -> None:
    # given a key kept an hour
    e = build(tmp_path, ScriptedProvider(), idempotency_ttl=timedelta(hours=1))
    _, frame = await a_frame_scene(e)
    request = GenerationRequest(frame, "owls")
    first = await e.service.submit(request, idempotency_key="key-1")
    first_id = known(first.generation.id)
    created = generation_of(e, first_id).created_at

    # when
    e.clock.set(created + timedelta(minutes=59))
    before_expiry = await e.service.submit(request, idempotency_key="key-1")
    e.clock.set(created + timedelta(hours=1))
    expired = await e.service.submit(request, idempotency_key="key-1")
    later_id = known(expired.generation.id)
    e.clock.set(generation_of(e, later_id).created_at)
    again = await e.service.submit(request, idempotency_key="key-1")

    # then
    assert (before_expiry.replayed, before_expiry.generation.id) == (True, first_id)
    assert expired.replayed is False
    assert later_id != first_id
    assert expired.message.id != first.message.id
    assert (again.replayed, again.generation.id) == (True, later_id)
    assert generation_of(e, first_id).idempotency_key is None
    assert generation_of(e, later_id).idempotency_key == "key-1"
    assert [ticket.row_id for ticket in e.queue.enqueued] == [first_id, later_id]


BAD_KEYS = {
    "an empty key": "",
    "a blank key": " \t ",
    "a key too long": "k" * (IDEMPOTENCY_KEY_MAX + 1),
}


@pytest.mark.parametrize("key", BAD_KEYS.values(), ids=BAD_KEYS.keys())
async def test_a_blank_or_too_long_key_is_refused(tmp_path: Path, key: str) -> None:
    # given
    e = build(tmp_path, ScriptedProvider())
    _, frame = await a_frame_scene(e)
    before = e.d.uow.snapshot()

    # when
    with pytest.raises(DomainError) as refused:
        await e.service.submit(GenerationRequest(frame, "owls"), idempotency_key=key)

    # then
    assert (refused.value.code, refused.value.field) == (ErrorCode.INVALID, ["idempotencyKey"])
    assert e.d.uow.snapshot() == before
    assert e.queue.enqueued == []


async def test_the_longest_key_is_taken(tmp_path: Path) -> None:
    # given
    e = build(tmp_path, ScriptedProvider())
    _, frame = await a_frame_scene(e)
    key = "k" * IDEMPOTENCY_KEY_MAX

    # when
    submitted = await e.service.submit(GenerationRequest(frame, "owls"), idempotency_key=key)

    # then
    assert generation_of(e, known(submitted.generation.id)).idempotency_key == key


async def test_a_key_is_the_users_own(tmp_path: Path) -> None:
    # given another user's service, and a chat of theirs
    e = build(tmp_path, ScriptedProvider())
    _, frame = await a_frame_scene(e)
    theirs = await another_users_chat(e.d)
    their_service = GenerationService(lambda: e.d.uow(owner_id=STRANGER), e.generator)
    mine = await e.service.submit(GenerationRequest(frame, "owls"), idempotency_key="key-1")

    # when
    their = await their_service.submit(
        GenerationRequest(theirs.chat, "owls"), idempotency_key="key-1"
    )

    # then
    assert their.replayed is False
    assert their.generation.id != mine.generation.id
    assert their.generation.owner_id == STRANGER
    assert e.queue.enqueued == [
        Ticket(known(mine.generation.id), FAKE_OWNER_ID),
        Ticket(known(their.generation.id), STRANGER),
    ]


# run: what is made and recorded


async def test_run_stores_the_images_in_the_chat_and_records_success(tmp_path: Path) -> None:
    # given
    e = build(tmp_path, PlaceholderProvider())
    scene, frame = await a_frame_scene(e)
    generation_id = await e.service.prepare(GenerationRequest(frame, "two owls", image_count=2))

    # when
    generated = await e.service.run(generation_id)

    # then
    generation = generation_of(e, generation_id)
    assert (generation.status, generation.completed_count, generation.errors) == (
        "SUCCEEDED",
        2,
        [],
    )
    assert generation.started_at is not None
    assert generation.finished_at is not None
    assert generation.started_at <= generation.finished_at
    assert (generation.output_tokens, generation.estimated_cost_usd) == (None, None)
    assert generated.error is None
    assert generated.generation.status == "SUCCEEDED"
    images = images_of(e, generation_id)
    assert sorted(known(i.id) for i in generated.images) == sorted(known(i.id) for i in images)
    assert len(images) == 2
    for image in images:
        assert (image.project_id, image.video_id) == (scene.project_id, scene.video_id)
        assert image.placeholder is True
        assert (image.width, image.height, image.content_type) == (1024, 1024, "image/png")
        assert await e.storage.exists(image.storage_key)
    assert len({image.storage_key for image in images}) == 2
    assert e.d.uow.images_in(frame) == {known(image.id) for image in images}
    assert message_of(e, generation_id).final_prompt == "two owls"


PROMPTS = [
    pytest.param(PlaceKind.FRAME, False, False, id="frame"),
    pytest.param(PlaceKind.FRAME, True, True, id="frame with context"),
    pytest.param(PlaceKind.CONTEXT, False, True, id="context"),
    pytest.param(PlaceKind.MAIN_CHAT, False, True, id="main chat"),
]


@pytest.mark.parametrize(("kind", "with_context", "carries_context"), PROMPTS)
async def test_the_final_prompt_carries_the_context_where_the_chat_says(
    tmp_path: Path, kind: PlaceKind, with_context: bool, carries_context: bool
) -> None:
    # given
    provider = ScriptedProvider()
    e = build(tmp_path, provider)
    scene, frame = await a_frame_scene(e)
    chats = {PlaceKind.FRAME: frame, PlaceKind.CONTEXT: scene.context}
    chat = chats.get(kind, scene.main_chat)
    main_chat = e.d.uow.get(MainChat, scene.main_chat.id)
    assert main_chat is not None
    captions = {PlaceKind.FRAME: FRAME_TITLE, PlaceKind.CONTEXT: "Context"}
    generation_id = await e.service.prepare(
        GenerationRequest(chat, " three owls ", with_context=with_context)
    )

    # when
    generated = await e.service.run(generation_id)

    # then
    expected = "three owls" + (f"\n\nContext of the story: {CONTEXT}" if carries_context else "")
    (call,) = provider.calls
    assert call.prompt == expected
    assert call.caption == captions.get(kind, main_chat.name)
    assert (call.model, call.size, call.quality, call.count) == (
        "gpt-image-2",
        "1024x1024",
        "medium",
        1,
    )
    assert generated.message.final_prompt == expected
    assert message_of(e, generation_id).final_prompt == expected


async def test_references_are_described_sent_and_paid_for(tmp_path: Path) -> None:
    # given two uploaded references, attached in the order given
    provider = ScriptedProvider(usage=Usage(50, 400, 1056))
    provider.description = Description(
        "a grey cat on a red boat", "gpt-5.4-mini-2026-03-17", Usage(300, 1200, 80)
    )
    e = build(tmp_path, provider)
    scene, frame = await a_frame_scene(e)
    first, first_bytes = await a_stored_image(e, scene.gallery)
    second, second_bytes = await a_stored_image(e, scene.gallery)
    generation_id = await e.service.prepare(
        GenerationRequest(frame, "the cat sails", reference_ids=[second, first])
    )

    # when
    await e.service.run(generation_id)

    # then both went to the vision model, then to the image model
    references = [
        Reference(second_bytes, "image/png", f"reference-{second}.png"),
        Reference(first_bytes, "image/png", f"reference-{first}.png"),
    ]
    assert provider.described == [(references, "gpt-5.4-mini")]
    (call,) = provider.calls
    assert list(call.references) == references
    assert call.prompt == "the cat sails\n\nReference images: a grey cat on a red boat"
    # and the usage and cost of both calls are summed
    generation = generation_of(e, generation_id)
    assert generation.status == "SUCCEEDED"
    assert generation.vision_model == "gpt-5.4-mini-2026-03-17"
    tokens = (generation.input_text_tokens, generation.input_image_tokens)
    assert tokens == (350, 1600)
    assert generation.output_tokens == 1136
    # vision: (300 + 1200) x $0.75 + 80 x $4.50; image: 50 x $5 + 400 x $8 + 1056 x $30 (per 1M)
    assert generation.estimated_cost_usd == pytest.approx(0.001485 + 0.03513)


async def test_a_model_that_takes_no_references_still_gets_their_description(
    tmp_path: Path,
) -> None:
    # given a model Storyframe does not know: one image a call, no reference images, no prices
    provider = ScriptedProvider(usage=Usage(10, 0, 500))
    provider.description = Description("a grey cat", "gpt-5.4-mini", Usage(100, 100, 10))
    house = ImageDefaults("house-image-model", "gpt-5.4-mini", "1024x1024", "medium")
    e = build(tmp_path, provider, defaults=house)
    scene, frame = await a_frame_scene(e)
    reference, _ = await a_stored_image(e, scene.gallery)
    generation_id = await e.service.prepare(
        GenerationRequest(frame, "the cat", image_count=2, reference_ids=[reference])
    )

    # when
    await e.service.run(generation_id)

    # then
    assert len(provider.described) == 1
    calls = sorted(provider.calls, key=lambda call: call.first_index)
    assert [(c.first_index, c.count, tuple(c.references)) for c in calls] == [
        (0, 1, ()),
        (1, 1, ()),
    ]
    assert {c.prompt for c in calls} == {"the cat\n\nReference images: a grey cat"}
    generation = generation_of(e, generation_id)
    assert (generation.model, generation.status, generation.completed_count) == (
        "house-image-model",
        "SUCCEEDED",
        2,
    )
    # the tokens of the two image calls and the description; a cost for the description only
    assert (generation.input_text_tokens, generation.output_tokens) == (120, 1010)
    assert generation.estimated_cost_usd == pytest.approx(
        (100 * 0.75 + 100 * 0.75 + 10 * 4.5) / 1e6
    )


async def test_without_reported_usage_the_cost_is_estimated_from_the_images_made(
    tmp_path: Path,
) -> None:
    # given
    provider = ScriptedProvider(usage=None)
    e = build(tmp_path, provider)
    _, frame = await a_frame_scene(e)
    generation_id = await e.service.prepare(
        GenerationRequest(frame, "owls", image_count=2, quality="high")
    )

    # when
    await e.service.run(generation_id)

    # then two high-quality images: 4160 output tokens each at $30 per 1M
    generation = generation_of(e, generation_id)
    assert generation.output_tokens is None
    assert generation.estimated_cost_usd == pytest.approx(2 * 4160 * 30 / 1e6)


async def test_a_failed_description_is_reported_and_the_images_still_made(
    tmp_path: Path,
) -> None:
    # given
    provider = ScriptedProvider()
    provider.description = ProviderError(Failure.TIMEOUT, "the vision model took too long")
    e = build(tmp_path, provider)
    scene, frame = await a_frame_scene(e)
    reference, _ = await a_stored_image(e, scene.gallery)
    generation_id = await e.service.prepare(
        GenerationRequest(frame, "the cat", reference_ids=[reference])
    )

    # when
    generated = await e.service.run(generation_id)

    # then
    generation = generation_of(e, generation_id)
    assert (generation.status, generation.completed_count) == ("SUCCEEDED", 1)
    assert generation.vision_model is None
    assert failures(generation) == [
        (
            None,
            ErrorCode.PROVIDER_TIMEOUT,
            "the reference images could not be described: the vision model took too long",
        )
    ]
    (call,) = provider.calls
    assert call.prompt == "the cat"
    assert len(call.references) == 1
    assert generated.error is None


def failed_call(failure: Failure, code: ErrorCode, message: str) -> tuple[Answer, ErrorCode, str]:
    """A call the provider fails with `failure` saying `message`, and the code and message
    recorded for its image."""
    return failing(ProviderError(failure, message)), code, message


FAILED_SECOND_IMAGE: dict[str, tuple[Answer, ErrorCode, str]] = {
    "refused": failed_call(Failure.REFUSED, ErrorCode.CONTENT_REFUSED, "the prompt was refused"),
    "rate limited": failed_call(Failure.RATE_LIMITED, ErrorCode.RATE_LIMITED, "slow down"),
    "timed out": failed_call(Failure.TIMEOUT, ErrorCode.PROVIDER_TIMEOUT, "no answer"),
    "misconfigured": failed_call(
        Failure.MISCONFIGURED, ErrorCode.PROVIDER_MISCONFIGURED, "bad key"
    ),
    "unavailable": failed_call(Failure.UNAVAILABLE, ErrorCode.PROVIDER_UNAVAILABLE, "502"),
    "a bad response": failed_call(
        Failure.BAD_RESPONSE, ErrorCode.PROVIDER_ERROR, "no image in the answer"
    ),
    "an unforeseen fault": (
        failing(RuntimeError("boom")),
        ErrorCode.PROVIDER_ERROR,
        "the image call failed unexpectedly",
    ),
    "bytes that are no image": (
        answering(b"<html>not an image</html>"),
        ErrorCode.PROVIDER_ERROR,
        "unusable image: the file is not an image: upload a PNG, JPEG or WebP image",
    ),
    "no image at all": (
        answering(),
        ErrorCode.PROVIDER_ERROR,
        "the provider returned fewer images",
    ),
}


@pytest.mark.parametrize(
    ("answer", "code", "message"), FAILED_SECOND_IMAGE.values(), ids=FAILED_SECOND_IMAGE.keys()
)
async def test_an_image_that_fails_is_recorded_with_its_typed_failure_and_the_rest_kept(
    tmp_path: Path, answer: Answer, code: ErrorCode, message: str
) -> None:
    # given one image a call, the second call failing
    provider = ScriptedProvider(placeholder=True)
    provider.answers[1] = answer
    e = build(tmp_path, provider)
    _, frame = await a_frame_scene(e)
    generation_id = await e.service.prepare(GenerationRequest(frame, "owls", image_count=3))

    # when
    generated = await e.service.run(generation_id)

    # then
    generation = generation_of(e, generation_id)
    assert (generation.status, generation.completed_count) == ("PARTIAL", 2)
    assert failures(generation) == [(1, code, message)]
    assert generated.error is None
    assert len(generated.images) == len(images_of(e, generation_id)) == 2
    assert len(await e.storage.keys()) == 2


async def test_fewer_images_than_asked_of_one_call_is_partial(tmp_path: Path) -> None:
    # given a model asked all four images in one call, which answers with two
    provider = ScriptedProvider()
    provider.answers[0] = answering(png(), png(), usage=Usage(20, 0, 2112))
    e = build(tmp_path, provider, images_per_call=4)
    _, frame = await a_frame_scene(e)
    generation_id = await e.service.prepare(GenerationRequest(frame, "owls", image_count=4))

    # when
    await e.service.run(generation_id)

    # then
    (call,) = provider.calls
    assert call.count == 4
    generation = generation_of(e, generation_id)
    assert (generation.status, generation.completed_count) == ("PARTIAL", 2)
    assert failures(generation) == [
        (2, ErrorCode.PROVIDER_ERROR, "the provider returned fewer images"),
        (3, ErrorCode.PROVIDER_ERROR, "the provider returned fewer images"),
    ]
    assert generation.estimated_cost_usd == pytest.approx((20 * 5 + 2112 * 30) / 1e6)


async def test_failures_are_recorded_by_position_not_by_when_they_happened(
    tmp_path: Path,
) -> None:
    # given a failed description, and the second image failing before the first
    provider = ScriptedProvider(placeholder=True)
    provider.description = ProviderError(Failure.UNAVAILABLE, "vision is down")
    second_failed = asyncio.Event()

    async def first(call: ImageCall) -> CallResult:
        await second_failed.wait()
        raise ProviderError(Failure.TIMEOUT, "too slow")

    async def second(call: ImageCall) -> CallResult:
        second_failed.set()
        raise ProviderError(Failure.REFUSED, "refused")

    provider.answers.update({0: first, 1: second})
    e = build(tmp_path, provider)
    scene, frame = await a_frame_scene(e)
    reference, _ = await a_stored_image(e, scene.gallery)
    generation_id = await e.service.prepare(
        GenerationRequest(frame, "owls", image_count=3, reference_ids=[reference])
    )

    # when
    generated = await e.service.run(generation_id)

    # then
    generation = generation_of(e, generation_id)
    assert (generation.status, generation.completed_count) == ("PARTIAL", 1)
    assert failures(generation) == [
        (
            None,
            ErrorCode.PROVIDER_UNAVAILABLE,
            "the reference images could not be described: vision is down",
        ),
        (0, ErrorCode.PROVIDER_TIMEOUT, "too slow"),
        (1, ErrorCode.CONTENT_REFUSED, "refused"),
    ]
    assert [image.id for image in generated.images] == [i.id for i in images_of(e, generation_id)]


@pytest.mark.parametrize(
    ("failure", "code", "field"),
    [
        (Failure.REFUSED, ErrorCode.CONTENT_REFUSED, ["prompt"]),
        (Failure.UNAVAILABLE, ErrorCode.PROVIDER_UNAVAILABLE, None),
    ],
)
async def test_a_generation_that_made_nothing_fails_keeps_its_message_and_what_it_cost(
    tmp_path: Path, failure: Failure, code: ErrorCode, field: list[str] | None
) -> None:
    # given every call (one an image) answered without a usable image, billed all the same
    provider = ScriptedProvider()
    for index in (0, 1):
        provider.answers[index] = failing(
            ProviderError(failure, "nothing for you", usage=Usage(40, 0, 0))
        )
    e = build(tmp_path, provider)
    _, frame = await a_frame_scene(e)
    generation_id = await e.service.prepare(
        GenerationRequest(frame, "owls", image_count=2, with_context=True)
    )

    # when
    generated = await e.service.run(generation_id)

    # then the user is told why
    assert generated.error is not None
    assert (generated.error.code, generated.error.message, generated.error.field) == (
        code,
        "nothing for you",
        field,
    )
    assert generated.images == []
    # and the record says it all
    generation = generation_of(e, generation_id)
    assert (generation.status, generation.completed_count) == ("FAILED", 0)
    assert failures(generation) == [(0, code, "nothing for you"), (1, code, "nothing for you")]
    assert generation.input_text_tokens == 2 * 40
    assert generation.estimated_cost_usd == pytest.approx(2 * 40 * 5 / 1e6)
    assert generation.finished_at is not None
    message = message_of(e, generation_id)
    assert message.prompt == "owls"
    assert message.final_prompt == f"owls\n\nContext of the story: {CONTEXT}"
    assert images_of(e, generation_id) == []
    assert await e.storage.keys() == []
    assert e.d.uow.images_in(frame) == set()


async def test_what_is_not_made_within_the_budget_is_reported_as_timed_out(
    tmp_path: Path,
) -> None:
    # given a budget already spent, and a call that would never answer
    provider = ScriptedProvider()
    provider.answers[0] = Pause(provider.make)
    e = build(tmp_path, provider, budget_seconds=0)
    _, frame = await a_frame_scene(e)
    generation_id = await e.service.prepare(GenerationRequest(frame, "owls", image_count=2))

    # when
    generated = await e.service.run(generation_id)

    # then
    generation = generation_of(e, generation_id)
    assert (generation.status, generation.completed_count) == ("FAILED", 0)
    assert failures(generation) == [
        (0, ErrorCode.PROVIDER_TIMEOUT, "no image within 0 s"),
        (1, ErrorCode.PROVIDER_TIMEOUT, "no image within 0 s"),
    ]
    assert generated.error is not None
    assert generated.error.code is ErrorCode.PROVIDER_TIMEOUT
    assert message_of(e, generation_id).final_prompt == "owls"


# run: once, and only the user's


async def test_a_generation_runs_once(tmp_path: Path) -> None:
    # given
    provider = ScriptedProvider()
    e = build(tmp_path, provider)
    _, frame = await a_frame_scene(e)
    generation_id = await e.service.prepare(GenerationRequest(frame, "owls"))
    await e.service.run(generation_id)

    # when
    with pytest.raises(DomainError) as again:
        await e.service.run(generation_id)

    # then
    assert (again.value.code, again.value.message) == (
        ErrorCode.INVALID,
        "the generation is succeeded already",
    )
    assert len(provider.calls) == 1
    assert generation_of(e, generation_id).status == "SUCCEEDED"
    assert len(images_of(e, generation_id)) == 1


async def test_a_generation_in_flight_is_not_run_again(tmp_path: Path) -> None:
    # given a run whose call is held
    e, provider, pause, frame = await holding(tmp_path)
    generation_id = await e.service.prepare(GenerationRequest(frame, "owls"))
    first = await pause.start(e.service.run(generation_id))
    running = generation_of(e, generation_id)

    # when
    with pytest.raises(DomainError) as again:
        await e.service.run(generation_id)
    pause.go.set()
    generated = await first

    # then
    assert (running.status, running.started_at is not None) == ("RUNNING", True)
    assert (again.value.code, again.value.message) == (
        ErrorCode.INVALID,
        "the generation is running already",
    )
    assert len(provider.calls) == 1
    assert generated.generation.status == "SUCCEEDED"


async def test_an_unknown_or_another_users_generation_is_not_found(tmp_path: Path) -> None:
    # given
    provider = ScriptedProvider()
    e = build(tmp_path, provider)
    theirs = await another_users_chat(e.d)

    # when
    with pytest.raises(DomainError) as unknown:
        await e.service.run(999)
    with pytest.raises(DomainError) as foreign:
        await e.service.run(theirs.generation)

    # then
    assert unknown.value.code is foreign.value.code is ErrorCode.NOT_FOUND
    their_generation = generation_of(e, theirs.generation)
    assert (their_generation.status, their_generation.started_at) == ("QUEUED", None)
    assert provider.calls == []


# run: each call recorded as it ends, and told


async def test_each_calls_images_are_recorded_as_soon_as_they_are_stored(tmp_path: Path) -> None:
    # given one image a call, the second call held
    provider = ScriptedProvider(usage=Usage(20, 0, 1056))
    pause = Pause(provider.make)
    provider.answers[1] = pause
    e = build(tmp_path, provider)
    _, frame = await a_frame_scene(e)
    generation_id = await e.service.prepare(GenerationRequest(frame, "owls", image_count=2))
    run = await pause.start(e.service.run(generation_id))

    # when the first call has ended
    await asyncio.wait([provider.tasks[0]])

    # then its image, its usage and its cost are recorded while the second call renders
    midway = generation_of(e, generation_id)
    assert (midway.status, midway.completed_count, midway.finished_at) == ("RUNNING", 1, None)
    assert (midway.input_text_tokens, midway.output_tokens) == (20, 1056)
    assert midway.estimated_cost_usd == pytest.approx((20 * 5 + 1056 * 30) / 1e6)
    (first,) = images_of(e, generation_id)
    assert first.slot == 0
    assert e.d.uow.images_in(frame) == {known(first.id)}

    # and when the second call ends, it is added
    pause.go.set()
    generated = await run
    generation = generation_of(e, generation_id)
    assert (generation.status, generation.completed_count) == ("SUCCEEDED", 2)
    assert (generation.input_text_tokens, generation.output_tokens) == (40, 2112)
    assert generation.estimated_cost_usd == pytest.approx(2 * (20 * 5 + 1056 * 30) / 1e6)
    assert slots_of(e, generation_id) == [0, 1]
    assert sorted((call.first_index, call.count) for call in provider.calls) == [(0, 1), (1, 1)]
    assert {known(image.id) for image in generated.images} == e.d.uow.images_in(frame)


async def test_a_run_tells_its_start_each_image_stored_or_failed_and_its_end_in_order(
    tmp_path: Path,
) -> None:
    # given two images, the second call refused once the first image is stored
    provider = ScriptedProvider()
    pause = Pause(failing(ProviderError(Failure.REFUSED, "refused")))
    provider.answers[1] = pause
    e = build(tmp_path, provider)
    scene, frame = await a_frame_scene(e)

    # when
    async with e.watching() as watch:
        submitted = await e.service.submit(GenerationRequest(frame, "owls", image_count=2))
        generation_id = known(submitted.generation.id)
        run = await pause.start(e.service.run(generation_id))
        await asyncio.wait([provider.tasks[0]])
        pause.go.set()
        generated = await run
        events = await watch.events()

    # then
    (image,) = generated.images
    assert [(event.kind, event.index, event.image_id) for event in events] == [
        (EventKind.QUEUED, None, None),
        (EventKind.STARTED, None, None),
        (EventKind.IMAGE_STORED, 0, image.id),
        (EventKind.IMAGE_FAILED, 1, None),
        (EventKind.FINISHED, None, None),
    ]
    assert {(ev.generation_id, ev.video_id, ev.owner_id) for ev in events} == {
        (generation_id, scene.video_id, FAKE_OWNER_ID)
    }
    assert generation_of(e, generation_id).status == "PARTIAL"


# cancel


async def test_cancelling_a_queued_generation_ends_it_at_once(tmp_path: Path) -> None:
    # given
    provider = ScriptedProvider()
    e = build(tmp_path, provider)
    _, frame = await a_frame_scene(e)
    submitted = await e.service.submit(GenerationRequest(frame, "owls", image_count=2))
    generation_id = known(submitted.generation.id)

    # when
    async with e.watching() as watch:
        cancelled = await e.service.cancel(generation_id)
        events = await watch.kinds()

    # then
    generation = generation_of(e, generation_id)
    assert cancelled.status == generation.status == "CANCELLED"
    assert (generation.cancel_requested, generation.completed_count) == (True, 0)
    assert (generation.started_at, generation.finished_at) == (None, e.clock())
    assert failures(generation) == [
        (0, ErrorCode.CANCELLED, "cancelled"),
        (1, ErrorCode.CANCELLED, "cancelled"),
    ]
    assert (e.queue.cancelled, e.queue.waiting) == ([generation_id], [])
    assert events == [(EventKind.FINISHED, None, None)]
    # and nothing runs it any more
    with pytest.raises(DomainError) as refused:
        await e.service.run(generation_id)
    assert (refused.value.code, refused.value.message) == (
        ErrorCode.INVALID,
        "the generation is cancelled already",
    )
    await e.service.run_job(generation_id)  # as the queue would, had it started it meanwhile
    assert provider.calls == []
    assert generation_of(e, generation_id).status == "CANCELLED"


async def test_cancelling_a_running_generation_stops_its_run_which_records_it_cancelled(
    tmp_path: Path,
) -> None:
    # given a run whose call is held
    e, _, pause, frame = await holding(tmp_path)
    generation_id = await e.service.prepare(GenerationRequest(frame, "owls", with_context=True))
    run = await pause.start(e.service.run(generation_id))

    # when
    async with e.watching() as watch:
        asked = await e.service.cancel(generation_id)
        while_running = generation_of(e, generation_id)
        asked_events = await watch.kinds()
        run.cancel()  # as the runner holding its task does
        with pytest.raises(asyncio.CancelledError):
            await run
        events = await watch.kinds()

    # then it is asked to stop: still running until its run stops
    assert (asked.status, asked.cancel_requested) == ("RUNNING", True)
    assert (while_running.status, while_running.cancel_requested) == ("RUNNING", True)
    assert e.queue.cancelled == [generation_id]
    # and whoever runs it (in any process) and its subscribers are told at once
    assert asked_events == [(EventKind.CANCEL_REQUESTED, None, None)]
    # and the run records its end
    generation = generation_of(e, generation_id)
    assert (generation.status, generation.completed_count) == ("CANCELLED", 0)
    assert (generation.finished_at, generation.heartbeat_at) == (e.clock(), None)
    assert failures(generation) == [(0, ErrorCode.CANCELLED, "cancelled")]
    assert events == [(EventKind.FINISHED, None, None)]
    # what was sent is kept on the message
    assert message_of(e, generation_id).final_prompt == f"owls\n\nContext of the story: {CONTEXT}"
    assert images_of(e, generation_id) == []


async def test_a_run_cancelled_after_an_image_was_stored_keeps_it(tmp_path: Path) -> None:
    # given one image a call: the first answered, the second held
    e, provider, pause, frame = await holding(tmp_path, 1, placeholder=True)
    generation_id = await e.service.prepare(GenerationRequest(frame, "owls", image_count=2))
    run = await pause.start(e.service.run(generation_id))
    await asyncio.wait([provider.tasks[0]])  # the first call made and stored its image

    # when its user cancels it
    await e.service.cancel(generation_id)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run

    # then the image paid for is kept, the other reported as cancelled
    generation = generation_of(e, generation_id)
    assert (generation.status, generation.completed_count) == ("PARTIAL", 1)
    assert failures(generation) == [(1, ErrorCode.CANCELLED, "cancelled")]
    (image,) = images_of(e, generation_id)
    assert image.slot == 0
    assert e.d.uow.images_in(frame) == {image.id}
    assert await e.storage.keys() == [image.storage_key]
    assert all(image.storage_key not in keys for keys in e.d.files.released)


async def test_a_cancel_that_comes_after_the_last_image_changes_nothing(tmp_path: Path) -> None:
    # given a run whose only call is held, asked to stop, but whose task nothing cancels
    e, _, pause, frame = await holding(tmp_path)
    generation_id = await e.service.prepare(GenerationRequest(frame, "owls"))
    run = await pause.start(e.service.run(generation_id))
    await e.service.cancel(generation_id)

    # when the call answers all the same
    pause.go.set()
    generated = await run

    # then every image was made: it succeeded
    assert (generated.generation.status, generated.generation.completed_count) == (
        "SUCCEEDED",
        1,
    )
    assert generated.error is None


async def test_an_ended_generation_cannot_be_cancelled(tmp_path: Path) -> None:
    # given
    e = build(tmp_path, PlaceholderProvider())
    _, frame = await a_frame_scene(e)
    generation_id = await e.service.prepare(GenerationRequest(frame, "owls"))
    await e.service.run(generation_id)
    before = e.d.uow.snapshot()

    # when
    with pytest.raises(DomainError) as refused:
        await e.service.cancel(generation_id)

    # then
    assert (refused.value.code, refused.value.message, refused.value.field) == (
        ErrorCode.INVALID,
        "the generation has ended (succeeded)",
        ["id"],
    )
    assert e.d.uow.snapshot() == before
    assert e.queue.cancelled == []


async def test_an_unknown_or_another_users_generation_cannot_be_cancelled(tmp_path: Path) -> None:
    # given
    e = build(tmp_path, ScriptedProvider())
    theirs = await another_users_chat(e.d)
    before = e.d.uow.snapshot()

    # when
    with pytest.raises(DomainError) as unknown:
        await e.service.cancel(999)
    with pytest.raises(DomainError) as foreign:
        await e.service.cancel(theirs.generation)

    # then
    for refused in (unknown, foreign):
        assert (refused.value.code, refused.value.field) == (ErrorCode.NOT_FOUND, ["id"])
    assert e.d.uow.snapshot() == before
    assert e.queue.cancelled == []


# run: stopped by a shutdown, handed back to the queue, resumed


async def stopped_by_a_shutdown(run: asyncio.Task[Any]) -> None:
    """Cancel a run as a runner stopping at shutdown does: nobody asked to cancel it."""
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run


async def handed_back(tmp_path: Path) -> tuple[Env, ScriptedProvider, Place, int]:
    """A generation of three images whose first run stored image 0, had image 1 refused, and
    was stopped by a shutdown while the call for image 2 was held; that call is answered
    from now on."""
    e, provider, pause, frame = await holding(tmp_path, 2)
    provider.answers[1] = failing(ProviderError(Failure.REFUSED, "refused"))
    generation_id = await e.service.prepare(GenerationRequest(frame, "owls", image_count=3))
    run = await pause.start(e.service.run(generation_id))
    await asyncio.wait([provider.tasks[0], provider.tasks[1]])
    await stopped_by_a_shutdown(run)
    del provider.answers[2]
    return e, provider, frame, generation_id


async def test_a_run_stopped_by_a_shutdown_hands_its_generation_back_to_the_queue(
    tmp_path: Path,
) -> None:
    # given three images: the first stored, the second refused, the third's call held
    e, provider, pause, frame = await holding(tmp_path, 2)
    provider.answers[1] = failing(ProviderError(Failure.REFUSED, "refused"))
    generation_id = await e.service.prepare(GenerationRequest(frame, "owls", image_count=3))

    # when
    async with e.watching() as watch:
        run = await pause.start(e.service.run(generation_id))
        await asyncio.wait([provider.tasks[0], provider.tasks[1]])
        await stopped_by_a_shutdown(run)
        events = await watch.kinds()

    # then it waits again, this attempt not counted, with what it stored and learnt
    generation = generation_of(e, generation_id)
    assert (generation.status, generation.attempts, generation.cancel_requested) == (
        "QUEUED",
        0,
        False,
    )
    assert (generation.heartbeat_at, generation.finished_at) == (None, None)
    assert generation.started_at is not None
    assert generation.completed_count == 1
    assert failures(generation) == [(1, ErrorCode.CONTENT_REFUSED, "refused")]
    (image,) = images_of(e, generation_id)
    assert image.slot == 0
    assert e.d.uow.images_in(frame) == {image.id}
    assert await e.storage.keys() == [image.storage_key]
    assert events[0] == (EventKind.STARTED, None, None)
    assert sorted(events[1:3]) == [
        (EventKind.IMAGE_FAILED, 1, None),
        (EventKind.IMAGE_STORED, 0, image.id),
    ]
    assert events[3:] == [(EventKind.QUEUED, None, None)]


@pytest.mark.parametrize(
    "attempted",
    [None, 1],
    ids=["handed-back", "crashed-once"],
)
async def test_a_resumed_generation_asks_only_for_the_images_left(
    tmp_path: Path, attempted: int | None
) -> None:
    # given a generation handed back at a shutdown; or then counted as attempted once (as a
    # process that crashed while running it leaves it, once recovered)
    e, provider, frame, generation_id = await handed_back(tmp_path)
    if attempted is not None:
        await change(e, generation_id, attempts=attempted)
    asked_before = len(provider.calls)

    # when
    generated = await e.service.run(generation_id)

    # then
    assert [call.first_index for call in provider.calls[asked_before:]] == [2]
    generation = generation_of(e, generation_id)
    assert (generation.status, generation.completed_count, generation.attempts) == (
        "PARTIAL",
        2,
        (attempted or 0) + 1,
    )
    assert failures(generation) == [(1, ErrorCode.CONTENT_REFUSED, "refused")]
    assert slots_of(e, generation_id) == [0, 2]
    assert [image.slot for image in generated.images] == [2]
    assert e.d.uow.images_in(frame) == {known(image.id) for image in images_of(e, generation_id)}


async def test_past_the_attempts_allowed_the_images_left_fail_as_interrupted(
    tmp_path: Path,
) -> None:
    # given a generation handed back, already attempted as often as allowed
    e, provider, _, generation_id = await handed_back(tmp_path)
    await change(e, generation_id, attempts=MAX_ATTEMPTS)
    asked_before = len(provider.calls)

    # when
    generated = await e.service.run(generation_id)

    # then nothing more is asked; what was made is kept
    assert provider.calls[asked_before:] == []
    generation = generation_of(e, generation_id)
    assert (generation.status, generation.completed_count, generation.attempts) == (
        "PARTIAL",
        1,
        MAX_ATTEMPTS + 1,
    )
    assert failures(generation) == [
        (1, ErrorCode.CONTENT_REFUSED, "refused"),
        (2, ErrorCode.INTERRUPTED, INTERRUPTED),
    ]
    assert generated.error is None


async def test_a_generation_that_made_nothing_in_its_attempts_fails_as_interrupted(
    tmp_path: Path,
) -> None:
    # given
    provider = ScriptedProvider()
    e = build(tmp_path, provider)
    _, frame = await a_frame_scene(e)
    generation_id = await e.service.prepare(GenerationRequest(frame, "owls", image_count=2))
    await change(e, generation_id, attempts=MAX_ATTEMPTS)

    # when
    generated = await e.service.run(generation_id)

    # then
    assert provider.calls == []
    generation = generation_of(e, generation_id)
    assert (generation.status, generation.completed_count) == ("FAILED", 0)
    assert failures(generation) == [
        (0, ErrorCode.INTERRUPTED, INTERRUPTED),
        (1, ErrorCode.INTERRUPTED, INTERRUPTED),
    ]
    assert generated.error is not None
    assert (generated.error.code, generated.error.message) == (ErrorCode.INTERRUPTED, INTERRUPTED)


async def test_an_image_still_being_stored_when_its_run_is_stopped_is_kept(
    tmp_path: Path,
) -> None:
    # given a run whose image, made, is being put in storage
    e = build(tmp_path, ScriptedProvider())
    _, frame = await a_frame_scene(e)
    generation_id = await e.service.prepare(GenerationRequest(frame, "owls"))
    e.storage.go = asyncio.Event()
    run = asyncio.create_task(e.service.run(generation_id))
    await e.storage.reached.wait()

    # when a shutdown stops the run, and the put ends
    run.cancel()
    e.storage.go.set()
    with pytest.raises(asyncio.CancelledError):
        await run
    await e.generator.drain(600)  # what was kept to record late

    # then the image paid for is kept, and not asked for again
    generation = generation_of(e, generation_id)
    assert (generation.status, generation.completed_count) == ("QUEUED", 1)
    (image,) = images_of(e, generation_id)
    assert image.slot == 0
    assert e.d.files.released == []


async def test_cancelling_a_generation_handed_back_keeps_what_it_stored(tmp_path: Path) -> None:
    # given
    e, provider, _, generation_id = await handed_back(tmp_path)
    asked_before = len(provider.calls)

    # when
    cancelled = await e.service.cancel(generation_id)

    # then
    assert cancelled.status == generation_of(e, generation_id).status == "PARTIAL"
    assert failures(generation_of(e, generation_id)) == [
        (1, ErrorCode.CONTENT_REFUSED, "refused"),
        (2, ErrorCode.CANCELLED, "cancelled"),
    ]
    assert slots_of(e, generation_id) == [0]
    assert provider.calls[asked_before:] == []


async def references_described_then_handed_back(
    tmp_path: Path,
) -> tuple[Env, ScriptedProvider, int]:
    """A generation with a reference, whose first run described it, then was stopped by a
    shutdown while its image call was held; that call is answered from now on."""
    provider = ScriptedProvider()
    provider.description = Description(
        "a grey cat on a red boat", "gpt-5.4-mini-2026-03-17", Usage(300, 1200, 80)
    )
    pause = Pause(provider.make)
    provider.answers[0] = pause
    e = build(tmp_path, provider)
    scene, frame = await a_frame_scene(e)
    reference, _ = await a_stored_image(e, scene.gallery)
    generation_id = await e.service.prepare(
        GenerationRequest(frame, "the cat sails", reference_ids=[reference], with_context=True)
    )
    run = await pause.start(e.service.run(generation_id))
    await stopped_by_a_shutdown(run)
    del provider.answers[0]
    return e, provider, generation_id


async def test_the_prompt_sent_is_kept_so_a_resumed_run_does_not_describe_again(
    tmp_path: Path,
) -> None:
    # given
    e, provider, generation_id = await references_described_then_handed_back(tmp_path)
    sent = (
        f"the cat sails\n\nContext of the story: {CONTEXT}"
        "\n\nReference images: a grey cat on a red boat"
    )
    handed = generation_of(e, generation_id)

    # when
    await e.service.run(generation_id)

    # then the description was asked (and paid for) once, and the same prompt sent twice
    assert message_of(e, generation_id).final_prompt == sent
    assert (handed.status, handed.input_text_tokens, handed.output_tokens) == ("QUEUED", 300, 80)
    assert len(provider.described) == 1
    assert [call.prompt for call in provider.calls] == [sent, sent]
    assert [len(call.references) for call in provider.calls] == [1, 1]
    generation = generation_of(e, generation_id)
    assert (generation.status, generation.completed_count) == ("SUCCEEDED", 1)
    tokens = (generation.input_text_tokens, generation.input_image_tokens)
    assert (tokens, generation.output_tokens) == ((300, 1200), 80)


async def test_a_resumed_run_keeps_the_vision_model_that_described_its_references(
    tmp_path: Path,
) -> None:
    # given
    e, _, generation_id = await references_described_then_handed_back(tmp_path)

    # when
    await e.service.run(generation_id)

    # then
    assert generation_of(e, generation_id).vision_model == "gpt-5.4-mini-2026-03-17"


# run: its chat deleted meanwhile


async def test_a_chat_deleted_while_its_generation_works_gets_no_image(tmp_path: Path) -> None:
    # given a run whose call is held
    e, _, pause, frame = await holding(tmp_path)
    generation_id = await e.service.prepare(GenerationRequest(frame, "owls"))
    run = await pause.start(e.service.run(generation_id))

    # when the frame goes meanwhile
    await e.d.frames.delete(frame.id)
    pause.go.set()
    with pytest.raises(DomainError) as gone:
        await run

    # then the stored file is released, as no image holds it
    assert (gone.value.code, gone.value.message) == (ErrorCode.NOT_FOUND, "frame not found")
    assert e.d.uow.all(Image) == []
    assert e.d.uow.get(Generation, generation_id) is None
    (stored,) = await e.storage.keys()
    assert {stored} in e.d.files.released


# the sweep (which rows it marks, RUNNING ones only, is the store's query: not tested here)


class RecordingStale:
    """Stale generations as the test says: each call answers the next of `answers` (ids, or an
    error raised); once they are spent, a call waits until cancelled."""

    def __init__(self, *answers: list[int] | Exception) -> None:
        self._answers = list(answers)
        self.calls: list[tuple[datetime, datetime, list[dict[str, object]]]] = []
        self.spent = asyncio.Event()

    async def interrupt(
        self, unchanged_since: datetime, now: datetime, errors: list[dict[str, object]]
    ) -> list[tuple[int, int, int | None]]:
        self.calls.append((unchanged_since, now, errors))
        if not self._answers:
            self.spent.set()
            await asyncio.Event().wait()
        answer = self._answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return [(generation_id, 100 + generation_id, FAKE_OWNER_ID) for generation_id in answer]


INTERRUPTED_ERROR: dict[str, object] = {
    "index": None,
    "code": "INTERRUPTED",
    "message": INTERRUPTED,
}


async def test_the_sweep_interrupts_what_has_not_changed_for_longer_than_any_work_takes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # given a generation budget of 600 s and a drain of 30 s
    e = build(tmp_path, PlaceholderProvider(), budget_seconds=600)
    stale = RecordingStale([3, 5])
    sweep = Sweep(stale, e.generator, drain_seconds=30)
    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)

    # when
    finished = e.generator.events.subscribe(lambda event: event.kind is EventKind.FINISHED)  # type: ignore[union-attr]
    async with finished as events:
        with caplog.at_level(logging.WARNING, logger="storyframe.generation"):
            swept = await sweep.once(now=now)
        # then their subscribers hear they ended
        heard = [await anext(events), await anext(events)]
    told = [h for h in heard if isinstance(h, GenerationEvent)]
    assert [(h.generation_id, h.video_id, h.owner_id) for h in told] == [
        (3, 103, FAKE_OWNER_ID),
        (5, 105, FAKE_OWNER_ID),
    ]
    assert sweep.stale_after == timedelta(seconds=600 + 30 + SWEEP_MARGIN_SECONDS)
    assert stale.calls == [(now - sweep.stale_after, now, [INTERRUPTED_ERROR])]
    assert ImageFailure.of_json(INTERRUPTED_ERROR).code is ErrorCode.INTERRUPTED
    assert swept == [3, 5]
    (record,) = [
        r for r in caplog.records if r.getMessage() == "unfinished generations interrupted"
    ]
    assert (record.__dict__["generation_ids"], record.__dict__["count"]) == ([3, 5], 2)


async def test_the_sweep_reads_its_clock_and_logs_nothing_when_nothing_is_stale(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # given
    e = build(tmp_path, PlaceholderProvider(), budget_seconds=100)
    stale = RecordingStale([])
    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    e.clock.set(now)
    sweep = Sweep(stale, e.generator, drain_seconds=0)

    # when
    with caplog.at_level(logging.INFO, logger="storyframe.generation"):
        swept = await sweep.once()

    # then
    assert swept == []
    assert stale.calls == [
        (now - timedelta(seconds=100 + SWEEP_MARGIN_SECONDS), now, [INTERRUPTED_ERROR])
    ]
    assert caplog.records == []


async def test_the_sweep_goes_on_after_a_failed_round(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # given a store that fails once, then answers
    e = build(tmp_path, PlaceholderProvider())
    stale = RecordingStale(ConnectionError("the database is away"), [7])
    sweep = Sweep(stale, e.generator, drain_seconds=30)

    # when
    with caplog.at_level(logging.WARNING, logger="storyframe.generation"):
        sweeping = asyncio.create_task(sweep.forever(0))
        spent = asyncio.create_task(stale.spent.wait())
        await asyncio.wait([sweeping, spent], return_when=asyncio.FIRST_COMPLETED)
        still_sweeping = not sweeping.done()
        for task in (sweeping, spent):
            task.cancel()
        await asyncio.gather(spent, return_exceptions=True)
        with pytest.raises(asyncio.CancelledError):
            await sweeping

    # then
    assert still_sweeping
    assert len(stale.calls) == 3
    messages = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert messages == [
        (logging.ERROR, "the sweep of unfinished generations failed"),
        (logging.WARNING, "unfinished generations interrupted"),
    ]


# questions about images


async def test_analyze_asks_the_vision_model_about_each_image_once(tmp_path: Path) -> None:
    # given
    provider = ScriptedProvider()
    e = build(tmp_path, provider)
    scene = await a_video(e.d)
    first, first_bytes = await a_stored_image(e, scene.gallery)
    second, second_bytes = await a_stored_image(e, scene.main_chat)

    # when
    analysis = await e.service.analyze([second, first, second], "  What colour is the boat?  ")

    # then
    assert provider.analyzed == [
        (
            [
                Reference(second_bytes, "image/png", f"image-{second}"),
                Reference(first_bytes, "image/png", f"image-{first}"),
            ],
            "What colour is the boat?",
            "gpt-5.4-mini",
        )
    ]
    assert (analysis.text, analysis.model, analysis.placeholder) == (
        "The boat is red.",
        "gpt-5.4-mini",
        False,
    )
    assert analysis.usage == Usage(120, 800, 40)
    assert analysis.estimated_cost_usd == pytest.approx((120 * 0.75 + 800 * 0.75 + 40 * 4.5) / 1e6)


async def test_analyze_without_a_vision_model_says_so_offline(tmp_path: Path) -> None:
    # given
    e = build(tmp_path, PlaceholderProvider())
    scene = await a_video(e.d)
    image, _ = await a_stored_image(e, scene.gallery)

    # when
    analysis = await e.service.analyze([image], "What is it?")

    # then
    assert (analysis.model, analysis.placeholder, analysis.estimated_cost_usd) == (
        "placeholder",
        True,
        None,
    )
    assert "Question: What is it?" in analysis.text
    assert "Image 1: 48\N{MULTIPLICATION SIGN}32 PNG" in analysis.text


ANALYSIS_REFUSALS: dict[str, tuple[ErrorCode, list[str] | None]] = {
    "a blank question": (ErrorCode.BLANK, ["question"]),
    "a question too long": (ErrorCode.TOO_LONG, ["question"]),
    "no image": (ErrorCode.INVALID, ["imageIds"]),
    "too many images": (ErrorCode.INVALID, ["imageIds"]),
    "an unknown image": (ErrorCode.NOT_FOUND, ["imageIds"]),
    "another user's image": (ErrorCode.NOT_FOUND, ["imageIds"]),
    "an image whose file is gone": (ErrorCode.NOT_FOUND, ["imageIds"]),
    "an image whose file is no image": (ErrorCode.STORAGE_FAILED, ["imageIds"]),
    "a refusal of the provider": (ErrorCode.CONTENT_REFUSED, None),
}


@pytest.mark.parametrize("case", ANALYSIS_REFUSALS)
async def test_analyze_refuses(tmp_path: Path, case: str) -> None:
    # given
    provider = ScriptedProvider()
    provider.analysis = ProviderError(Failure.REFUSED, "not this image")
    e = build(tmp_path, provider)
    scene = await a_video(e.d)
    image, _ = await a_stored_image(e, scene.gallery)
    no_file = await an_image(e.d, scene.gallery)
    path = e.generator.media.temporaries.write(b"not an image", "test-")
    blob = await e.storage.put(path, checksum="0" * 64, content_type="image/png", thumbnail=b"")
    not_an_image = await e.d.seeds.add_image(
        scene.gallery,
        StoredImage(blob.url, blob.key, 48, 32, "image/png", blob.byte_size),
    )
    theirs = await another_users_chat(e.d)
    asked: dict[str, tuple[list[int], str]] = {
        "a blank question": ([image], "   "),
        "a question too long": ([image], "?" * (QUESTION_MAX + 1)),
        "no image": ([], "What is it?"),
        "too many images": (list(range(1, MAX_ANALYZED + 2)), "What is it?"),
        "an unknown image": ([image, 999], "What is it?"),
        "another user's image": ([image, theirs.image], "What is it?"),
        "an image whose file is gone": ([image, no_file], "What is it?"),
        "an image whose file is no image": ([known(not_an_image.id)], "What is it?"),
        "a refusal of the provider": ([image], "What is it?"),
    }
    image_ids, question = asked[case]

    # when
    with pytest.raises(DomainError) as refused:
        await e.service.analyze(image_ids, question)

    # then
    assert (refused.value.code, refused.value.field) == ANALYSIS_REFUSALS[case]
    assert len(provider.analyzed) == (1 if case == "a refusal of the provider" else 0)
