"""The API's schema, assembled from the resolvers' roots, with the checks every document passes
before it runs."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

import strawberry
from graphql import GraphQLError, GraphQLSchema
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import DEFAULT_ALLOWED_OPERATION_TYPES
from strawberry.tools import merge_types
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from storyframe.domain.model_catalogue import IMAGE_MODELS
from storyframe.domain.pages import MAX_PAGE
from storyframe.resolvers.accounts import AccountMutation, AccountQuery
from storyframe.resolvers.chats import ChatMutation
from storyframe.resolvers.diagnostics import DiagnosticsMutation
from storyframe.resolvers.exports import ExportMutation, ExportQuery
from storyframe.resolvers.generation import GenerationMutation, GenerationQuery
from storyframe.resolvers.images import ImageMutation
from storyframe.resolvers.projects import ProjectMutation
from storyframe.resolvers.query import Query
from storyframe.resolvers.subscriptions import Subscription
from storyframe.resolvers.uploads import UploadMutation
from storyframe.schema.cost import ListBound, length_of
from storyframe.schema.errors import CodedErrors
from storyframe.schema.identify import Identify
from storyframe.schema.leaves import LeafExecutor, fast_leaves
from storyframe.schema.limits import (
    CheckDocuments,
    DocumentChecks,
    Limits,
)
from storyframe.schema.relations import resolve_relations_directly
from storyframe.services.chats import MAX_ATTACHMENTS
from storyframe.services.diagnostics.suites import SUITES
from storyframe.services.generation import MAX_IMAGES
from storyframe.settings import Settings

MAX_USER_ERROR_PATH = 4
"""The longest `UserError.field`: an input field, an index, and a field of that item."""


MUTATIONS = (
    AccountMutation,
    ProjectMutation,
    ChatMutation,
    ImageMutation,
    UploadMutation,
    GenerationMutation,
    ExportMutation,
    DiagnosticsMutation,
)
"""The Mutation root's parts, one per domain, in the order of the schema's fields."""


class Schema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        """CodedErrors logs the unexpected errors with their ids; expected ones are not news."""

    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        """As Strawberry's, but a subscription is refused: it runs over a WebSocket
        (`subscribe`), and executed once over HTTP it could only fail (its field answers a
        stream). The HTTP view answers 400 `BAD_REQUEST`: "subscriptions are not allowed when
        using POST"."""
        allowed = (
            _ONCE
            if allowed_operation_types is None
            else set(allowed_operation_types) - {OperationType.SUBSCRIPTION}
        )
        return await super().execute(
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            allowed,
            operation_extensions,
        )


_ONCE = frozenset(DEFAULT_ALLOWED_OPERATION_TYPES - {OperationType.SUBSCRIPTION})
"""What an operation executed once may be: a query or a mutation."""


def build_schema(
    settings: Settings | None = None, *, direct_relations: bool = True
) -> strawberry.Schema:
    """The schema; `direct_relations=False` leaves relation fields to Strawberry's resolver
    wrappers and leaf fields to graphql-core's completion (the same answers, slower), for
    comparison."""
    settings = settings or Settings()
    checks_of = document_checks(settings)
    extensions: list[Callable[[], SchemaExtension] | type[SchemaExtension]] = [
        CodedErrors,
        lambda: CheckDocuments(checks=checks_of),
        Identify,
    ]
    schema = Schema(
        query=merge_types("Query", (Query, AccountQuery, GenerationQuery, ExportQuery)),
        mutation=merge_types("Mutation", MUTATIONS),
        subscription=Subscription,
        extensions=extensions,
        execution_context_class=LeafExecutor if direct_relations else None,
    )
    return fast_leaves(resolve_relations_directly(schema)) if direct_relations else schema


def document_checks(settings: Settings) -> Callable[[GraphQLSchema], DocumentChecks]:
    """The document checks of a schema, built on its first request and kept with it."""
    limits = Limits(
        max_tokens=settings.max_tokens,
        max_depth=settings.max_query_depth,
        max_aliases=settings.max_aliases,
        max_cost=settings.max_query_cost,
        introspection=settings.introspection,
    )
    bounds = list_bounds(settings)

    @functools.cache
    def checks_of(schema: GraphQLSchema) -> DocumentChecks:
        return DocumentChecks(schema, limits, bounds)

    return checks_of


def list_bounds(settings: Settings) -> dict[tuple[str, str], ListBound]:
    """The longest each plain (not paginated) list of the schema can be: the cost limit
    multiplies by these, so each is enforced where the list grows."""
    return {
        ("Video", "frames"): settings.max_frames_per_video,
        ("Video", "mainChats"): settings.max_main_chats_per_video,
        ("Image", "appearsIn"): settings.max_image_places,
        ("Message", "images"): MAX_IMAGES,
        ("Message", "attachedImages"): MAX_ATTACHMENTS,
        ("Generation", "errors"): MAX_IMAGES,
        ("DiagnosticsRun", "checks"): max(len(checks) for checks in SUITES.values()),
        # A check sends at most one image, and receives what one generation makes.
        ("DiagnosticCheck", "inputImages"): 1,
        ("DiagnosticCheck", "outputImages"): MAX_IMAGES,
        ("Query", "nodes"): length_of("ids", MAX_PAGE),
        # The catalogue, and the configured model when the catalogue does not know it.
        ("Query", "imageModels"): len(IMAGE_MODELS) + 1,
        ("ImageModel", "sizes"): MAX_PAGE,
        ("ImageModel", "qualities"): MAX_PAGE,
        ("UploadImagesPayload", "images"): settings.max_upload_files,
        # A refusal names the input at fault: one error, or one per file of an upload.
        ("*", "userErrors"): settings.max_upload_files,
        ("UserError", "field"): MAX_USER_ERROR_PATH,
    }
