"""The per-request context every resolver receives."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from starlette.requests import Request
from starlette.websockets import WebSocket
from strawberry import Info
from strawberry.dataloader import DataLoader

from storyframe.domain.errors import Unauthenticated
from storyframe.domain.jobs import JobQueue
from storyframe.domain.pages import PageRequest
from storyframe.domain.places import Place
from storyframe.domain.ports import Reader, Viewer
from storyframe.schema.loader import Loader
from storyframe.services.accounts import AccountService
from storyframe.services.container import Services

if TYPE_CHECKING:
    from storyframe.schema.chats import Context as ContextNode
    from storyframe.schema.chats import Frame, MainChat, Message
    from storyframe.schema.connection import Connection
    from storyframe.schema.diagnostics import DiagnosticsRun
    from storyframe.schema.exports import Export
    from storyframe.schema.generation import Generation
    from storyframe.schema.images import Image
    from storyframe.schema.projects import Project, Video
    from storyframe.services.diagnostics import DiagnosticsEnv

ProjectImagesKey = tuple[int, int | None]


LoaderFactory = Callable[["Reader", "Loaders"], DataLoader[Any, Any]]


class Loaders:
    """DataLoaders for every relation a query can reach; one set per request, each made the
    first time the request asks for it (most requests use a few of them)."""

    project: DataLoader[int, Project | None]
    video: DataLoader[int, Video | None]
    context: DataLoader[int, ContextNode | None]
    frame: DataLoader[int, Frame | None]
    main_chat: DataLoader[int, MainChat | None]
    message: DataLoader[int, Message | None]
    image: DataLoader[int, Image | None]
    generation: DataLoader[int, Generation | None]
    export: DataLoader[int, Export | None]
    diagnostics_run: DataLoader[int, DiagnosticsRun | None]
    generation_of_message: DataLoader[int, Generation | None]
    videos_of_project: DataLoader[tuple[int, PageRequest], Connection[Video]]
    context_of_video: DataLoader[int, ContextNode | None]
    frames_of_video: DataLoader[int, list[Frame]]
    main_chats_of_video: DataLoader[int, list[MainChat]]
    messages_of_chat: DataLoader[tuple[Place, PageRequest], Connection[Message]]
    images_of_message: DataLoader[int, list[Image]]
    attachments_of_message: DataLoader[int, list[Image]]
    images_of_place: DataLoader[tuple[Place, PageRequest], Connection[Image]]
    images_of_project: DataLoader[tuple[ProjectImagesKey, PageRequest], Connection[Image]]
    places_of_image: DataLoader[int, list[Place]]
    project_count: DataLoader[int, int]
    video_count: DataLoader[int, int]
    project_image_count: DataLoader[ProjectImagesKey, int]
    frame_count: DataLoader[int, int]
    message_count: DataLoader[Place, int]
    place_image_count: DataLoader[Place, int]
    queue_position: DataLoader[int, int | None]

    def __init__(
        self,
        reader: Reader,
        factories: Mapping[str, LoaderFactory],
        jobs: JobQueue | None = None,
    ) -> None:
        self._reader = reader
        self._factories = factories
        self.jobs = jobs
        """Where queued generations wait (their positions), when this process can tell."""

    if not TYPE_CHECKING:  # for the type checker, only the loaders declared above exist

        def __getattr__(self, name: str) -> DataLoader[Any, Any]:
            factory = self.__dict__.get("_factories", {}).get(name)
            if factory is None:
                raise AttributeError(name)
            loader = factory(self._reader, self)
            setattr(self, name, loader)
            return loader

    def made(self) -> list[str]:
        """The loaders the request has asked for so far."""
        return [name for name in vars(self) if name in self._factories]

    def clear_all(self) -> None:
        for name in self.made():
            getattr(self, name).clear_all()

    def close(self) -> None:
        """The request is over: stop the reads still under way (a request cancelled in the
        middle of a batch) and let go of the loaders made so far, with everything they loaded.
        They reach each other (a page's loader makes its count's), so left to themselves they
        would wait for the cyclic garbage collector, holding every object the request read."""
        for name in self.made():
            loader = self.__dict__.pop(name)
            if isinstance(loader, Loader):
                loader.cancel()

    def of_type(self, type_name: str) -> DataLoader[int, Any]:
        """The loader of a node type's objects by primary key (`Frame`, `Project`, …)."""
        loader: DataLoader[int, Any] = getattr(self, _NODE_LOADERS[type_name])
        return loader


_NODE_LOADERS = {
    "Export": "export",
    "Project": "project",
    "Video": "video",
    "Context": "context",
    "Frame": "frame",
    "MainChat": "main_chat",
    "Message": "message",
    "Image": "image",
    "Generation": "generation",
    "DiagnosticsRun": "diagnostics_run",
}


class Scopes(Protocol):
    """What the app offers a request: accounts, and data scoped to one user."""

    @property
    def accounts(self) -> AccountService: ...

    def scope(self, user_id: int) -> tuple[Services, Loaders]: ...

    async def release_reads(self) -> None:
        """Give the request's read connection back while it does something else."""

    @property
    def max_subscriptions(self) -> int:
        """The subscriptions one WebSocket may hold at once."""
        ...

    def diagnostics_env(self, services: Services) -> DiagnosticsEnv:
        """What the diagnostics' checks run with, as the user of `services`."""
        ...


@dataclass(slots=True)
class RequestContext:
    """The request's context. `services` and `loaders` see only the viewer's data, and asking
    for them without a viewer raises `Unauthenticated`."""

    app: Scopes
    request: Request | WebSocket | None = None
    viewer: Viewer | None = None
    token: str | None = None
    """A bearer token not read yet (`identify`): read before an operation that needs a viewer."""
    unread: Exception | None = None
    """Why the token could not be read (the database unreachable, say), if it could not."""
    connection_params: dict[str, object] | None = None  # set from a WebSocket's connection_init
    subscriptions: int = 0
    """The subscriptions a WebSocket holds now."""
    _scoped: tuple[Services, Loaders] | None = None

    @property
    def services(self) -> Services:
        return self._scope()[0]

    @property
    def loaders(self) -> Loaders:
        return self._scope()[1]

    async def identify(self) -> None:
        """Who the bearer token given names, if it has not been read yet: `viewer` (None for
        a token that is unknown, expired or revoked)."""
        token, self.token = self.token, None
        if token is not None:
            self.viewer = await self.app.accounts.authenticate(token)

    def release(self) -> None:
        """The request has been answered: its loaders and what they loaded can go at once."""
        if self._scoped is not None:
            self._scoped[1].close()
            self._scoped = None

    def _scope(self) -> tuple[Services, Loaders]:
        if self._scoped is None:
            if self.viewer is None:
                raise Unauthenticated
            self._scoped = self.app.scope(self.viewer.user_id)
        return self._scoped

    @property
    def client_address(self) -> str:
        client = self.request.client if self.request is not None else None
        return client.host if client is not None else "unknown"


Info_ = Info[RequestContext, None]
"""What a resolver is handed: the request's context, no root value."""
