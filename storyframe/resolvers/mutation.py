"""What every mutation shares: the request's DataLoaders are emptied before it runs, and the
`DomainError` that stops it is answered as its payload carrying that user error. A mutation
itself only decodes its input, calls a service and shapes the payload."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol, cast

import strawberry
from strawberry import Info
from strawberry.extensions import FieldExtension
from strawberry.types.field import StrawberryField

from storyframe.domain.errors import DomainError
from storyframe.resolvers.places import chat_of
from storyframe.schema.errors import UserError
from storyframe.schema.ids import decode_pk
from storyframe.schema.inputs import ClearHistoryInput, DeleteInput
from storyframe.schema.payloads import DeletedCounts, DeletePayload, Payload
from storyframe.schema.request_context import Info_, RequestContext
from storyframe.services.container import Services
from storyframe.services.deletion import Deleted


def mutation(description: str, *, fresh_loaders: bool = True) -> Any:
    """`strawberry.mutation` for a resolver returning a payload, run through `UserErrors`."""
    return strawberry.mutation(
        description=description, extensions=[UserErrors(fresh_loaders=fresh_loaders)]
    )


class UserErrors(FieldExtension):
    """Runs a mutation, with the request's read connection given back meanwhile. With
    `fresh_loaders`, the request's DataLoaders are cleared first: mutations run one after
    another, and what an earlier one loaded may be stale now (asking for them also refuses a
    request without a viewer). Without it, the mutation needs no viewer (signing up, logging
    in), or clears them itself once it has written."""

    def __init__(self, *, fresh_loaders: bool = True) -> None:
        self.fresh_loaders = fresh_loaders
        self.payload: type[Payload] = Payload

    def apply(self, field: StrawberryField) -> None:
        payload = field.type
        if not (isinstance(payload, type) and issubclass(payload, Payload)):
            raise TypeError(f"mutation {field.python_name} must return a payload")
        self.payload = payload

    async def resolve_async(
        self,
        next_: Callable[..., Awaitable[Any]],
        source: Any,
        info: Info[RequestContext, Any],
        **kwargs: Any,
    ) -> Any:
        if self.fresh_loaders:
            info.context.loaders.clear_all()
        # A mutation writes through units of work of its own, and may wait long (a provider,
        # storage): the request's read connection goes back meanwhile.
        await info.context.app.release_reads()
        try:
            return await next_(source, info, **kwargs)
        except DomainError as error:
            return self.payload(user_errors=[UserError.of(error)])


class _Deletes(Protocol):
    async def delete(self, pk: int, /) -> Deleted: ...


def deleting(type_name: str, service: Callable[[Services], _Deletes], description: str) -> Any:
    """The mutation deleting the `type_name` whose ID is `input.id`, with what went with it."""

    async def delete(info: Info_, input: DeleteInput) -> DeletePayload:
        pk = decode_pk(input.id, type_name, "id")
        return DeletePayload.of(input.id, await service(info.context.services).delete(pk))

    return mutation(description)(delete)


class _Renames(Protocol):
    async def rename(self, pk: int, name: str, /) -> Any: ...


class _OfRow(Protocol):
    def of(self, row: Any, /) -> Payload: ...


def renaming(
    type_name: str,
    service: Callable[[Services], _Renames],
    input_type: type[Any],
    payload: type[Payload],
    description: str,
) -> Any:
    """The mutation naming the `type_name` whose ID is `input.id` `input.name`, answered with
    `payload.of` the renamed row."""
    shape = cast(_OfRow, payload)

    async def rename(info: Info_, input: Any) -> Payload:
        pk = decode_pk(input.id, type_name, "id")
        return shape.of(await service(info.context.services).rename(pk, input.name))

    # Strawberry reads the argument's and the field's types from the annotations.
    rename.__annotations__ |= {"input": input_type, "return": payload}
    return mutation(description)(rename)


def clearing(type_name: str, payload: type[Payload], field: str, description: str) -> Any:
    """The mutation deleting the messages of the chat (`type_name`) whose ID is `input.id`,
    answered with the chat as it is now under `field` and what went with its messages."""

    async def clear(info: Info_, input: ClearHistoryInput) -> Payload:
        chat = chat_of(input.id, type_name)
        deleted = await info.context.services.chats.clear_history(chat)
        node = await info.context.loaders.of_type(type_name).load(chat.id)
        return payload(**{field: node, "deleted": DeletedCounts.of(deleted)})

    clear.__annotations__["return"] = payload
    return mutation(description)(clear)
