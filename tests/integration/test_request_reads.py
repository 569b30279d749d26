"""A request's reads: one connection for the token lookup and every read, checked out only when
something is read, with no transaction around a read; and what happens to that connection when
the request ends, is cancelled, or leaves a task behind."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import event, text

from storyframe.runtime import Runtime
from tests.support.clients import GraphQLClient
from tests.support.scenes import create_project
from tests.support.uploading import image_file, multipart

SMALL = "{ viewer { id } projects(first: 5) { nodes { id name } } }"
WIDE = """
{ viewer { id email }
  projects(first: 5) {
    totalCount
    nodes { id videoCount videos(first: 3) { nodes { id frameCount frames { id } } } }
  }
}
"""
RENAME = """
mutation Rename($id: ID!) { updateProject(input: {id: $id, name: "Renamed"}) {
  project { id name } userErrors { code } } }
"""


@dataclass
class Watch:
    """What the runtime's engines did: connections checked out, and for each statement whether
    it ran inside a transaction."""

    checkouts: int = 0
    statements: list[tuple[str, bool]] = field(default_factory=list)

    def clear(self) -> None:
        self.checkouts = 0
        self.statements.clear()


def _in_transaction(connection: Any) -> bool:
    """Whether the DBAPI connection runs its next statement inside a transaction: on SQLite, one
    opened by `BEGIN`; with asyncpg, whenever it is not in autocommit (it opens one itself)."""
    adapted = connection.connection.dbapi_connection
    if connection.dialect.name == "sqlite":  # the standard library's, or aiosqlite's around it
        return bool(getattr(adapted, "_connection", adapted).in_transaction)
    return not adapted.autocommit


@contextmanager
def watching(runtime: Runtime) -> Iterator[Watch]:
    watch = Watch()

    def checked_out(*_: Any) -> None:
        watch.checkouts += 1

    def executing(connection: Any, _cursor: Any, statement: str, *_: Any) -> None:
        watch.statements.append((statement.strip().split()[0].upper(), _in_transaction(connection)))

    engines = runtime.engines
    for engine in engines:
        event.listen(engine, "checkout", checked_out)
        event.listen(engine, "before_cursor_execute", executing)
    try:
        yield watch
    finally:
        for engine in engines:
            event.remove(engine, "checkout", checked_out)
            event.remove(engine, "before_cursor_execute", executing)


async def test_a_request_that_reads_nothing_checks_out_no_connection(
    runtime: Runtime, anonymous_gql: GraphQLClient
) -> None:
    with watching(runtime) as watch:
        data = await anonymous_gql.data("{ __typename viewer { id } }")

    assert data == {"__typename": "Query", "viewer": None}
    assert (watch.checkouts, watch.statements) == (0, [])


async def test_the_token_lookup_and_every_read_share_one_connection(
    runtime: Runtime, gql: GraphQLClient
) -> None:
    # given
    for name in ("One", "Two"):
        await create_project(gql, name)

    # when
    with watching(runtime) as watch:
        typename = await gql.data("{ __typename }")
        alone = watch.checkouts
        watch.clear()
        wide = await gql.data(WIDE)

    # then: nothing for `{ __typename }`, which needs no viewer (`Identify`); then the token,
    # the projects, their count, their videos' counts and their videos (none, so no frames are
    # read): each request on one connection
    assert typename == {"__typename": "Query"}
    assert alone == 0
    assert wide["projects"]["totalCount"] == 2
    assert watch.checkouts == 1
    assert len(watch.statements) == 5


LOG_OUT = "mutation { logOut { userErrors { code } } }"


@pytest.mark.parametrize(
    ("query", "reads_the_token"),
    [
        ("{ __typename }", False),
        (
            "query M { ...M } fragment M on Query { __typename ... on Query { __typename } }",
            False,
        ),
        ("{ __schema { queryType { name } } }", False),
        ("query Meta { ...Meta } fragment Meta on Query { __typename viewer { id } }", True),
        ("{ __typename viewer { id } }", True),
        ("mutation { __typename }", False),
    ],
    ids=["typename", "fragments", "introspection", "fragment-with-viewer", "viewer", "mutation"],
)
async def test_the_token_is_read_only_by_an_operation_that_needs_a_viewer(
    runtime: Runtime, gql: GraphQLClient, query: str, reads_the_token: bool
) -> None:
    # when
    with watching(runtime) as watch:
        data = await gql.data(query)

    # then
    assert ("viewer" in data) is reads_the_token
    assert (watch.checkouts, len(watch.statements)) == ((1, 1) if reads_the_token else (0, 0))
    if reads_the_token:
        assert data["viewer"]["id"]


async def test_a_revoked_token_is_no_ones_on_the_next_request_that_needs_a_viewer(
    runtime: Runtime, gql: GraphQLClient
) -> None:
    # given: a token logged out
    assert (await gql.data(LOG_OUT))["logOut"]["userErrors"] == []

    # when: a request that needs no viewer, then one that does
    with watching(runtime) as watch:
        meta = await gql.data("{ __typename }")
        looked_up = watch.checkouts
        viewer = await gql.data("{ viewer { id } }")
        projects = await gql.execute("{ projects { totalCount } }")

    # then: the first answers without a lookup; the next ones find the token no one's
    assert meta == {"__typename": "Query"}
    assert looked_up == 0
    assert viewer == {"viewer": None}
    assert projects["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_request_makes_only_the_loaders_its_fields_use(runtime: Runtime) -> None:
    # given
    _, loaders = runtime.scope(1)

    # when
    projects = loaders.project
    connection = loaders.videos_of_project
    counted = loaders.video_count

    # then: the page's count loader is the one the connection uses, made once
    assert sorted(loaders.made()) == ["project", "video_count", "videos_of_project"]
    assert loaders.project is projects
    assert loaders.video_count is counted
    assert connection is loaders.videos_of_project
    with pytest.raises(AttributeError):
        getattr(loaders, "no_such_loader")  # noqa: B009 - a name no loader has


async def test_reads_run_outside_any_transaction_and_writes_inside_one(
    runtime: Runtime, gql: GraphQLClient
) -> None:
    # given
    project = await create_project(gql, "One")

    # when
    with watching(runtime) as watch:
        await gql.data(SMALL)
        reads = list(watch.statements)
        watch.clear()
        await gql.mutate(RENAME, {"id": project})
        writes = [(verb, inside) for verb, inside in watch.statements if verb == "UPDATE"]

    # then
    assert [verb for verb, _ in reads] == ["SELECT", "SELECT"]
    assert not any(inside for _, inside in reads)
    assert writes == [("UPDATE", True)]


async def test_an_upload_holds_no_read_connection_while_its_body_arrives(
    runtime: Runtime, gql: GraphQLClient, http: httpx.AsyncClient
) -> None:
    # given: an upload whose body stops halfway until the test lets it go on
    project = await create_project(gql, "Gallery")
    data, parts = multipart(project, [image_file("late.png")])
    prepared = http.build_request("POST", "/graphql", data=data, files=parts)
    body = prepared.read()
    halfway, go = asyncio.Event(), asyncio.Event()

    async def slowly() -> AsyncIterator[bytes]:
        yield body[: len(body) // 2]
        halfway.set()
        await go.wait()
        yield body[len(body) // 2 :]

    headers = {**prepared.headers, "Apollo-Require-Preflight": "true"}
    del headers["content-length"]
    pool = runtime.reads.sync_engine.pool
    sending = asyncio.create_task(http.post("/graphql", content=slowly(), headers=headers))
    await halfway.wait()

    # when: the token is read, and the rest of the body is still to come
    waiting = pool.checkedout()  # type: ignore[attr-defined]
    go.set()
    response = await sending

    # then
    assert waiting == 0
    assert response.json()["data"]["uploadImages"]["userErrors"] == []


async def test_more_requests_than_a_pool_keeps_hold_their_read_connections_at_once(
    runtime: Runtime, dialect: str
) -> None:
    # given: more requests holding their read connection than a pool keeps (5, and 10 more
    # on PostgreSQL before a checkout waits); SQLite's checkout blocks the event loop, so it
    # must never wait
    reads = runtime.reads
    requests = 12 if dialect == "postgresql" else 25
    all_read, go = asyncio.Event(), asyncio.Event()
    read: list[int] = []

    async def request(number: int) -> None:
        async with reads.held():
            read.append(int((await reads.rows(text(f"SELECT {number}")))[0][0]))
            if len(read) == requests:
                all_read.set()
            await go.wait()

    tasks = [asyncio.create_task(request(n)) for n in range(requests)]

    # when
    async with asyncio.timeout(30):
        await all_read.wait()
    held = reads.sync_engine.pool.checkedout()  # type: ignore[attr-defined]
    go.set()
    await asyncio.gather(*tasks)

    # then
    assert sorted(read) == list(range(requests))
    assert held == requests


async def test_a_task_that_outlives_its_request_reads_on_a_connection_of_its_own(
    runtime: Runtime,
) -> None:
    # given: a read held open by a request, and a task it started that reads after it ends
    reads = runtime.reads
    pool = reads.sync_engine.pool
    go = asyncio.Event()

    async def later() -> int:
        await go.wait()
        return int((await reads.rows(text("SELECT 2")))[0][0])

    async with reads.held():
        assert (await reads.rows(text("SELECT 1")))[0][0] == 1
        assert pool.checkedout() == 1  # type: ignore[attr-defined]
        task = asyncio.create_task(later())

    # when: the request has ended
    returned = pool.checkedout()  # type: ignore[attr-defined]
    go.set()
    answer = await task

    # then
    assert returned == 0
    assert answer == 2
    assert pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_a_request_cancelled_while_it_holds_its_connection_gives_it_back(
    runtime: Runtime,
) -> None:
    # given: a request that has read, and now waits on something else
    reads = runtime.reads
    pool = reads.sync_engine.pool
    waiting = asyncio.Event()

    async def request() -> None:
        async with reads.held():
            await reads.rows(text("SELECT 1"))
            waiting.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(request())
    await waiting.wait()
    held = pool.checkedout()  # type: ignore[attr-defined]

    # when
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    # then
    assert held == 1
    assert pool.checkedout() == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize("dialect", ["postgresql"])
async def test_a_request_cancelled_mid_statement_gives_its_connection_back(
    runtime: Runtime,
) -> None:
    # given: a statement the server is still running (SQLite's run on the loop, whole)
    reads = runtime.reads
    pool = reads.sync_engine.pool
    started = asyncio.Event()

    @event.listens_for(reads.sync_engine, "before_cursor_execute")
    def _started(*_: Any) -> None:
        started.set()

    async def request() -> None:
        async with reads.held():
            await reads.rows(text("SELECT pg_sleep(30)"))

    task = asyncio.create_task(request())
    await started.wait()

    # when
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    # then: the connection is back, and the next read works
    assert pool.checkedout() == 0  # type: ignore[attr-defined]
    assert (await reads.rows(text("SELECT 3")))[0][0] == 3
