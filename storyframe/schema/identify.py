"""Who asks is read from the bearer token just before an operation runs, and only when the
operation needs to know: one that selects nothing but meta-fields (`{ __typename }`, the
schema's introspection) answers without a connection to the database."""

from __future__ import annotations

from collections.abc import AsyncIterator

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    SelectionSetNode,
    get_operation_ast,
)
from strawberry.extensions import SchemaExtension
from strawberry.types.execution import PreExecutionError

from storyframe.schema.request_context import RequestContext

META_FIELDS = frozenset({"__typename", "__schema", "__type"})
"""Root fields whose answers do not depend on who asks."""


class Identify(SchemaExtension):
    """Reads the request's bearer token (`RequestContext.identify`) before its operation runs,
    unless the operation selects meta-fields only. A token read is refused as it would be at
    any other time: a revoked one is no one's on the very next request that needs it."""

    async def on_execute(self) -> AsyncIterator[None]:
        execution = self.execution_context
        context = execution.context
        document = execution.graphql_document
        if (
            isinstance(context, RequestContext)
            and context.token is not None
            and (document is None or needs_viewer(document, execution.operation_name))
        ):
            try:
                await context.identify()
            except Exception as error:  # the database unreachable, say: nothing runs, and the
                context.unread = error  # view answers as it does a request refused before it
                execution.result = PreExecutionError(None, [GraphQLError(_UNREAD)])
        yield


_UNREAD = "the bearer token could not be read"


def needs_viewer(document: DocumentNode, operation_name: str | None) -> bool:
    """Whether the operation selects a root field other than a meta-field (through fragments
    too, whatever their directives say). An operation that cannot be found does: graphql-core
    says why, as the viewer it would have had."""
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return True
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    return _selects_data(operation.selection_set, fragments, set())


def _selects_data(
    selections: SelectionSetNode, fragments: dict[str, FragmentDefinitionNode], seen: set[str]
) -> bool:
    for selection in selections.selections:
        if isinstance(selection, FieldNode):
            if selection.name.value not in META_FIELDS:
                return True
        elif isinstance(selection, InlineFragmentNode):
            if _selects_data(selection.selection_set, fragments, seen):
                return True
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is None:
                return True
            if name not in seen:
                seen.add(name)
                if _selects_data(fragment.selection_set, fragments, seen):
                    return True
        else:
            return True
    return False
