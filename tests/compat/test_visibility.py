"""Visibility: custom search attributes of every type, list queries, GROUP BY counts, paging, scan, delete, retention.

Results, codes and messages were recorded against the real dev server (temporal CLI 1.9.1,
server 1.32.0, SQLite visibility). Every query is scoped to runs that carry a per-module or
per-test unique `UwKeyword` tag, so runs of other tests never show up.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import IndexedValueType, WorkflowTaskFailedCause
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.api.workflowservice.v1 import (
    DeleteWorkflowExecutionRequest,
    DescribeNamespaceRequest,
    ListWorkflowExecutionsRequest,
    RegisterNamespaceRequest,
    ScanWorkflowExecutionsRequest,
)
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

import compat_visibility as cv
from compat_util import events_of, eventually, result_of

WORKFLOWS = [cv.VisWorkflow, cv.VisUpsertWorkflow]

CUSTOM_ATTRIBUTES = {
    "UwKeyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "UwText": IndexedValueType.INDEXED_VALUE_TYPE_TEXT,
    "UwInt": IndexedValueType.INDEXED_VALUE_TYPE_INT,
    "UwDouble": IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
    "UwBool": IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
    "UwDatetime": IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
    "UwKeywordList": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
}


@pytest.fixture(scope="module")
async def search_attributes(client: Client) -> None:
    """Registers the Uw* attributes; adding names that already exist with the same type succeeds."""
    req = AddSearchAttributesRequest(namespace=client.namespace, search_attributes=CUSTOM_ATTRIBUTES)
    await client.operator_service.add_search_attributes(req)


def uhrwerk_only(reason: str) -> pytest.MarkDecorator:
    """Skips a test of something only Uhrwerk offers when the suite runs against the reference server."""
    return pytest.mark.skipif("config.getoption('--reference-server')", reason=reason)


def tagged(tag: str, **values: Any) -> TypedSearchAttributes:
    """UwKeyword = tag plus the given Uw* values, keyed by the suffix after `UW_` in compat_visibility."""
    pairs: list[SearchAttributePair[Any]] = [SearchAttributePair(cv.UW_KEYWORD, tag)]
    for name, value in values.items():
        pairs.append(SearchAttributePair(getattr(cv, "UW_" + name.upper()), value))
    return TypedSearchAttributes(pairs)


def uw_attributes(attrs: TypedSearchAttributes) -> dict[str, tuple[Any, Any]]:
    """The Uw* attributes as name -> (indexed value type, value); system ones such as BuildIds are dropped."""
    return {p.key.name: (p.key.indexed_value_type, p.value) for p in attrs if p.key.name.startswith("Uw")}


async def list_ids(client: Client, query: str) -> list[str]:
    return [w.id async for w in client.list_workflows(query)]


async def _list(client: Client, query: str) -> list:
    return [w async for w in client.list_workflows(query)]


async def wait_visible(client: Client, query: str, expected: set[str], what: str) -> None:
    await eventually(lambda: list_ids(client, query), lambda ids: set(ids) == expected, what=what)


# --- search attribute registry ------------------------------------------------------------------


async def test_list_search_attributes(client: Client, search_attributes: None) -> None:
    resp = await client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace=client.namespace))
    custom = {k: v for k, v in resp.custom_attributes.items() if k in CUSTOM_ATTRIBUTES}
    assert custom == CUSTOM_ATTRIBUTES
    system = dict(resp.system_attributes)
    assert system["WorkflowId"] == IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
    assert system["ExecutionStatus"] == IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
    assert system["StartTime"] == IndexedValueType.INDEXED_VALUE_TYPE_DATETIME
    assert system["CloseTime"] == IndexedValueType.INDEXED_VALUE_TYPE_DATETIME
    assert system["ExecutionDuration"] == IndexedValueType.INDEXED_VALUE_TYPE_INT
    assert system["TemporalScheduledById"] == IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
    assert not set(system) & set(CUSTOM_ATTRIBUTES)

    # Registering the same names again is idempotent.
    again = AddSearchAttributesRequest(namespace=client.namespace, search_attributes=CUSTOM_ATTRIBUTES)
    await client.operator_service.add_search_attributes(again)
    relisted = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    assert dict(relisted.custom_attributes) == dict(resp.custom_attributes)


async def test_add_system_search_attribute_fails(client: Client) -> None:
    req = AddSearchAttributesRequest(
        namespace=client.namespace, search_attributes={"WorkflowId": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD}
    )
    with pytest.raises(RPCError) as info:
        await client.operator_service.add_search_attributes(req)
    assert info.value.status == RPCStatusCode.INVALID_ARGUMENT
    assert info.value.message == "Search attribute WorkflowId is reserved by system."


async def test_start_with_every_type_describe_and_list(
    client: Client, search_attributes: None, task_queue: str, new_id
) -> None:
    tag = str(uuid.uuid4())
    attrs = tagged(
        tag,
        text="the quick brown fox",
        int=1234567890123,
        double=2.75,
        bool=False,
        datetime=datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=timezone(timedelta(hours=2))),
        keyword_list=["alpha", "beta"],
    )
    # Nobody polls the task queue: the run stays as started, without system attributes a worker adds.
    handle = await client.start_workflow(
        cv.VisWorkflow.run, "wait", id=new_id("sa-types"), task_queue=task_queue, search_attributes=attrs
    )
    desc = await handle.describe()
    assert uw_attributes(desc.typed_search_attributes) == uw_attributes(attrs)
    assert len(uw_attributes(attrs)) == 7
    assert desc.typed_search_attributes.get(cv.UW_DATETIME) == datetime(2024, 5, 6, 5, 8, 9, 123000, tzinfo=UTC)

    listed = await eventually(
        lambda: _list(client, f"UwKeyword = '{tag}'"), lambda r: len(r) == 1, what="typed run visible"
    )
    assert listed[0].id == handle.id
    assert uw_attributes(listed[0].typed_search_attributes) == uw_attributes(attrs)
    await handle.terminate()


async def test_start_with_unregistered_attribute_fails(client: Client, task_queue: str, new_id) -> None:
    wid = new_id("sa-unregistered")
    with pytest.raises(RPCError) as info:
        await client.start_workflow(
            cv.VisWorkflow.run,
            id=wid,
            task_queue=task_queue,
            search_attributes=TypedSearchAttributes([SearchAttributePair(cv.UNREGISTERED, "x")]),
        )
    assert info.value.status == RPCStatusCode.INVALID_ARGUMENT
    assert info.value.message == (
        f"Namespace {client.namespace} has no mapping defined for search attribute UwNeverRegistered"
    )
    with pytest.raises(RPCError) as info:
        await client.get_workflow_handle(wid).describe()
    assert info.value.status == RPCStatusCode.NOT_FOUND


# --- upserts ------------------------------------------------------------------------------------


async def test_upsert_is_listed(client: Client, search_attributes: None, task_queue: str, new_id) -> None:
    tag = str(uuid.uuid4())
    wid = new_id("upsert")
    when = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    async with Worker(client, task_queue=task_queue, workflows=WORKFLOWS):
        # Started with UwInt = 1; the upsert replaces it and adds a keyword list and a datetime.
        handle = await client.start_workflow(
            cv.VisUpsertWorkflow.run,
            cv.UpsertInput(int_value=7, keyword_list=["x", "y"], datetime_value=when),
            id=wid,
            task_queue=task_queue,
            search_attributes=tagged(tag, int=1),
        )
        await wait_visible(
            client,
            f"UwKeyword = '{tag}' AND UwInt = 7 AND UwKeywordList = 'y' AND UwDatetime > '2025-01-01T00:00:00Z'",
            {wid},
            "upserted attributes listed",
        )
        assert await list_ids(client, f"UwKeyword = '{tag}' AND UwInt = 1") == []
        desc = await handle.describe()
        assert uw_attributes(desc.typed_search_attributes) == uw_attributes(
            tagged(tag, int=7, keyword_list=["x", "y"], datetime=when)
        )
        upserts = events_of(await handle.fetch_history(), "UPSERT_WORKFLOW_SEARCH_ATTRIBUTES")
        assert len(upserts) == 1
        await handle.signal(cv.VisUpsertWorkflow.finish)
        assert await result_of(handle.result()) == "upserted"


async def test_upsert_without_a_value_removes_the_attribute(
    client: Client, search_attributes: None, task_queue: str, new_id
) -> None:
    """As Temporal: an upserted attribute with no value (`[]`, `null` or no data) is removed from
    the run, its description and its list index."""
    tag = str(uuid.uuid4())
    wid = new_id("unset")
    async with Worker(client, task_queue=task_queue, workflows=WORKFLOWS):
        handle = await client.start_workflow(
            cv.VisUpsertWorkflow.run,
            cv.UpsertInput(unset_int=True),
            id=wid,
            task_queue=task_queue,
            search_attributes=tagged(tag, int=1),
        )
        await eventually(
            lambda: handle.fetch_history(),
            lambda h: bool(events_of(h, "UPSERT_WORKFLOW_SEARCH_ATTRIBUTES")),
            what="the upsert",
        )
        desc = await handle.describe()
        assert uw_attributes(desc.typed_search_attributes) == uw_attributes(tagged(tag))
        await wait_visible(client, f"UwKeyword = '{tag}'", {wid}, "listed by its keyword")
        await wait_visible(client, f"UwKeyword = '{tag}' AND UwInt = 1", set(), "no longer listed by UwInt")
        await handle.signal(cv.VisUpsertWorkflow.finish)
        assert await result_of(handle.result()) == "upserted"


async def test_upsert_of_unregistered_attribute_fails_the_workflow_task(
    client: Client, task_queue: str, new_id
) -> None:
    async with Worker(client, task_queue=task_queue, workflows=WORKFLOWS):
        handle = await client.start_workflow(
            cv.VisUpsertWorkflow.run, cv.UpsertInput(unregistered=True), id=new_id("upsert-bad"), task_queue=task_queue
        )
        history = await eventually(
            handle.fetch_history,
            lambda h: bool(events_of(h, "WORKFLOW_TASK_FAILED")),
            what="workflow task failed",
        )
        failed = events_of(history, "WORKFLOW_TASK_FAILED")[0].workflow_task_failed_event_attributes
        assert failed.cause == WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_BAD_SEARCH_ATTRIBUTES
        assert failed.failure.message == (
            f"BadSearchAttributes: Namespace {client.namespace} has no mapping defined "
            "for search attribute UwNeverRegistered"
        )
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
        await handle.terminate()


async def test_failed_upsert_retries_are_transient(client: Client, task_queue: str, new_id) -> None:
    """After the first BAD_SEARCH_ATTRIBUTES failure the task is retried as a transient attempt:
    describe shows attempt 2 while the history keeps only the first failure."""
    async with Worker(client, task_queue=task_queue, workflows=WORKFLOWS):
        handle = await client.start_workflow(
            cv.VisUpsertWorkflow.run, cv.UpsertInput(unregistered=True), id=new_id("upsert-bad"), task_queue=task_queue
        )
        desc = await eventually(
            handle.describe,
            lambda d: d.raw_description.pending_workflow_task.attempt >= 2,
            what="workflow task retried",
        )
        assert desc.status == WorkflowExecutionStatus.RUNNING
        history = await handle.fetch_history()
        assert len(events_of(history, "WORKFLOW_TASK_FAILED")) == 1
        await handle.terminate()


# --- the query language, on one tagged data set -------------------------------------------------


@dataclass
class DataSet:
    tag: str
    ids: dict[str, str]  # letter -> workflow id
    start_a: str  # RFC3339 with the server's full precision
    start_b: str
    close_a: str
    close_b: str


def _ts(desc) -> tuple[str, str]:
    info = desc.raw_description.workflow_execution_info
    return info.start_time.ToJsonString(), info.close_time.ToJsonString()


@pytest.fixture(scope="module")
async def dataset(client: Client, search_attributes: None) -> AsyncIterator[DataSet]:
    """Five tagged runs:

    a: completed at once    Text 'quick brown fox', Int 1, Double 1.5, Bool true,  Datetime 2024-01-01, [red, green]
    b: completed after 1.5s Text 'lazy dog',        Int 2, Double 2.5, Bool false, Datetime 2024-02-01, [green]
    c: running              Int 3, Double 3.5, Bool true, Datetime 2024-03-01, [blue]
    d: terminated           Int 4
    e: running              (only the tag)
    """
    tag = str(uuid.uuid4())
    tq = f"tq-{tag}"
    ids = {n: f"{tag}-{n}" for n in "abcde"}

    def d(month: int) -> datetime:
        return datetime(2024, month, 1, tzinfo=UTC)

    handles: dict[str, WorkflowHandle] = {}
    async with Worker(client, task_queue=tq, workflows=WORKFLOWS):

        async def start(n: str, mode: str, sleep_ms: int, attrs: TypedSearchAttributes) -> None:
            handles[n] = await client.start_workflow(
                cv.VisWorkflow.run, args=[mode, sleep_ms], id=ids[n], task_queue=tq, search_attributes=attrs
            )

        await start(
            "a",
            "now",
            0,
            tagged(
                tag, text="quick brown fox", int=1, double=1.5, bool=True, datetime=d(1), keyword_list=["red", "green"]
            ),
        )
        assert await result_of(handles["a"].result()) == "now"
        await start(
            "b",
            "now",
            1500,
            tagged(tag, text="lazy dog", int=2, double=2.5, bool=False, datetime=d(2), keyword_list=["green"]),
        )
        await start("c", "wait", 0, tagged(tag, int=3, double=3.5, bool=True, datetime=d(3), keyword_list=["blue"]))
        await start("d", "wait", 0, tagged(tag, int=4))
        await handles["d"].terminate()
        await start("e", "wait", 0, tagged(tag))
        assert await result_of(handles["b"].result()) == "now"

        start_a, close_a = _ts(await handles["a"].describe())
        start_b, close_b = _ts(await handles["b"].describe())
        want = {
            ids["a"]: WorkflowExecutionStatus.COMPLETED,
            ids["b"]: WorkflowExecutionStatus.COMPLETED,
            ids["c"]: WorkflowExecutionStatus.RUNNING,
            ids["d"]: WorkflowExecutionStatus.TERMINATED,
            ids["e"]: WorkflowExecutionStatus.RUNNING,
        }
        await eventually(
            lambda: _list(client, f"UwKeyword = '{tag}'"),
            lambda r: {w.id: w.status for w in r} == want,
            what="data set visible with final states",
        )
        yield DataSet(tag, ids, start_a, start_b, close_a, close_b)
        for n in "ce":
            await handles[n].terminate()


# (query, letters of the expected runs). `{...}` placeholders are DataSet fields.
QUERIES: list[tuple[str, str]] = [
    # comparison operators on Int; a NULL never satisfies a comparison, not even !=
    ("UwInt = 2", "b"),
    ("UwInt != 2", "acd"),
    ("UwInt > 2", "cd"),
    ("UwInt >= 2", "bcd"),
    ("UwInt < 2", "a"),
    ("UwInt <= 2", "ab"),
    ("UwInt IN (1, 3)", "ac"),
    ("UwInt NOT IN (1, 3)", "bd"),
    ("UwInt BETWEEN 2 AND 3", "bc"),
    ("UwInt NOT BETWEEN 2 AND 3", "ad"),
    # Double and Bool
    ("UwDouble = 1.5", "a"),
    ("UwDouble > 2.0", "bc"),
    ("UwDouble <= 2.5", "ab"),
    ("UwBool = true", "ac"),
    ("UwBool = false", "b"),
    ("UwBool != true", "b"),
    # IS NULL / IS NOT NULL
    ("UwBool IS NULL", "de"),
    ("UwBool IS NOT NULL", "abc"),
    ("UwText IS NULL", "cde"),
    # STARTS_WITH on keywords
    ("WorkflowId STARTS_WITH '{tag}-a'", "a"),
    ("UwKeyword STARTS_WITH '{tag_prefix}'", "abcde"),
    # Text is matched by words; != on Text and KeywordList also matches runs without a value
    ("UwText = 'fox'", "a"),
    ("UwText = 'quick brown fox'", "a"),
    ("UwText != 'fox'", "bcde"),
    # KeywordList matches any element
    ("UwKeywordList = 'green'", "ab"),
    ("UwKeywordList IN ('red', 'blue')", "ac"),
    ("UwKeywordList != 'green'", "cde"),
    ("UwKeywordList NOT IN ('green')", "cde"),
    # AND, OR, NOT, parentheses and precedence (AND binds tighter than OR)
    ("UwInt >= 2 AND UwBool = true", "c"),
    ("UwInt = 1 OR UwInt = 4", "ad"),
    ("NOT UwInt = 2", "acd"),
    ("NOT (UwInt = 2 OR UwInt = 3)", "ad"),
    ("(UwInt = 1 OR UwInt = 2) AND UwBool = false", "b"),
    ("UwInt = 1 OR UwInt = 2 AND UwBool = false", "ab"),
    ("((UwInt = 1) OR (UwInt = 3 AND (UwBool = true)))", "ac"),
    # backquoted names
    ("`UwInt` = 3", "c"),
    ("`WorkflowId` = '{tag}-d'", "d"),
    # datetime literals on the custom Datetime attribute, with and without an offset
    ("UwDatetime > '2024-01-15T00:00:00Z'", "bc"),
    ("UwDatetime < '2024-02-01T00:00:00+01:00'", "a"),
    ("UwDatetime BETWEEN '2023-12-01T00:00:00Z' AND '2024-02-15T12:30:00Z'", "ab"),
    # StartTime / CloseTime, at the exact timestamps the server reported
    ("StartTime = '{start_a}'", "a"),
    ("StartTime >= '{start_a}'", "abcde"),
    ("StartTime > '{start_a}'", "bcde"),
    ("StartTime <= '{start_a}'", "a"),
    ("StartTime < '{start_b}'", "a"),
    ("CloseTime >= '{close_a}'", "abd"),
    ("CloseTime > '{close_a}'", "bd"),
    ("CloseTime <= '{close_a}'", "a"),
    ("CloseTime < '{close_b}'", "ad"),
    ("CloseTime IS NULL", "ce"),
    ("CloseTime IS NOT NULL", "abd"),
    # ExecutionStatus by name
    ("ExecutionStatus = 'Running'", "ce"),
    ("ExecutionStatus = 'Completed'", "ab"),
    ("ExecutionStatus = 'Terminated'", "d"),
    ("ExecutionStatus != 'Running'", "abd"),
    ("ExecutionStatus IN ('Running', 'Terminated')", "cde"),
    # ExecutionDuration as a duration string, as clock time or in nanoseconds; NULL while running
    ("ExecutionDuration > '1s'", "b"),
    ("ExecutionDuration < '1s'", "ad"),
    ("ExecutionDuration >= '00:00:01'", "b"),
    ("ExecutionDuration > 1000000000", "b"),
    ("ExecutionDuration IS NULL", "ce"),
]


@pytest.mark.parametrize(("query", "expected"), QUERIES, ids=[q for q, _ in QUERIES])
async def test_list_query(client: Client, dataset: DataSet, query: str, expected: str) -> None:
    fields = {**vars(dataset), "tag_prefix": dataset.tag[:20]}
    scoped = f"UwKeyword = '{dataset.tag}' AND ({query.format(**fields)})"
    got = sorted(wid.removeprefix(dataset.tag + "-") for wid in await list_ids(client, scoped))
    assert "".join(got) == expected, scoped
    assert (await client.count_workflows(scoped)).count == len(expected)


async def test_count_group_by_execution_status(client: Client, dataset: DataSet) -> None:
    count = await client.count_workflows(f"UwKeyword = '{dataset.tag}' GROUP BY ExecutionStatus")
    assert count.count == 5
    groups = {tuple(g.group_values): g.count for g in count.groups}
    assert groups == {("Running",): 2, ("Completed",): 2, ("Terminated",): 1}
    # Without GROUP BY there are no groups.
    plain = await client.count_workflows(f"UwKeyword = '{dataset.tag}'")
    assert plain.count == 5 and plain.groups == []


@uhrwerk_only("the dev server's SQL visibility rejects ORDER BY ('operation is not supported')")
async def test_order_by(client: Client, dataset: DataSet) -> None:
    base = f"UwKeyword = '{dataset.tag}' AND UwInt IS NOT NULL"
    asc = await list_ids(client, f"{base} ORDER BY UwInt ASC")
    assert [w.removeprefix(dataset.tag + "-") for w in asc] == ["a", "b", "c", "d"]
    desc = await list_ids(client, f"{base} ORDER BY UwInt DESC")
    assert [w.removeprefix(dataset.tag + "-") for w in desc] == ["d", "c", "b", "a"]
    by_double = await list_ids(client, f"UwKeyword = '{dataset.tag}' AND UwDouble > 0 ORDER BY UwDouble DESC")
    assert [w.removeprefix(dataset.tag + "-") for w in by_double] == ["c", "b", "a"]


# (query, message, exact): exact messages unless they carry a position in the server's SQL.
EXPR = "invalid query: invalid expression: "
UNSUPPORTED = "invalid query: operation is not supported: "
INVALID_QUERIES: list[tuple[str, str, bool]] = [
    ("WorkflowId = ", "invalid query: malformed SQL query: syntax error", False),
    ("WorkflowId = 'x' AND", "invalid query: malformed SQL query: syntax error", False),
    ("(WorkflowId = 'x'", "invalid query: malformed SQL query: syntax error", False),
    ("WorkflowId == 'x'", "invalid query: malformed SQL query: syntax error", False),
    ("NoSuchAttr = 'x'", "invalid query: invalid search attribute: NoSuchAttr", True),
    ("UwNeverRegistered = 'x'", "invalid query: invalid search attribute: UwNeverRegistered", True),
    ("StartTime > 'yesterday'", EXPR + "unable to parse datetime 'yesterday'", True),
    (
        "StartTime > '2024-13-01T00:00:00Z'",
        EXPR + "unable to parse datetime '2024-13-01T00:00:00Z'",
        True,
    ),
    ("UwDatetime > 'not a date'", EXPR + "unable to parse datetime 'not a date'", True),
    ("ExecutionStatus = 'Bogus'", EXPR + "invalid ExecutionStatus value 'Bogus'", True),
    # Status names are case sensitive.
    ("ExecutionStatus = 'running'", EXPR + "invalid ExecutionStatus value 'running'", True),
    (
        "ExecutionDuration > 'forever'",
        EXPR + "invalid duration value for search attribute ExecutionDuration: forever",
        True,
    ),
    # A value of the wrong type, even one that could be converted.
    (
        "UwInt = 'abc'",
        EXPR + 'invalid value type for search attribute UwInt of type Int: "abc" (type: string)',
        True,
    ),
    (
        "UwInt = '2'",
        EXPR + 'invalid value type for search attribute UwInt of type Int: "2" (type: string)',
        True,
    ),
    (
        "UwKeyword = 1",
        EXPR + "invalid value type for search attribute UwKeyword of type Keyword: 1 (type: int64)",
        True,
    ),
    # Operators a type does not support.
    (
        "WorkflowId LIKE 'x%'",
        UNSUPPORTED + "operator 'LIKE' not supported for Keyword type search attribute 'WorkflowId'",
        True,
    ),
    (
        "UwText STARTS_WITH 'a'",
        UNSUPPORTED + "operator 'STARTS_WITH' not supported for Text type search attribute 'UwText'",
        True,
    ),
    (
        "UwText > 'a'",
        UNSUPPORTED + "operator '>' not supported for Text type search attribute 'UwText'",
        True,
    ),
    (
        "UwKeywordList > 'a'",
        UNSUPPORTED + "operator '>' not supported for KeywordList type search attribute 'UwKeywordList'",
        True,
    ),
    ("UwInt STARTS_WITH 'a'", "invalid query: ", False),
    ("WorkflowId = 'x' LIMIT 5", UNSUPPORTED + "'LIMIT' clause", True),
    (
        "WorkflowId = 'x' GROUP BY WorkflowType",
        UNSUPPORTED + "'GROUP BY' clause is not supported for search attribute WorkflowType",
        True,
    ),
]


@pytest.mark.parametrize(("query", "message", "exact"), INVALID_QUERIES, ids=[q for q, _, _ in INVALID_QUERIES])
async def test_invalid_query(client: Client, search_attributes: None, query: str, message: str, exact: bool) -> None:
    for call in (lambda: list_ids(client, query), lambda: client.count_workflows(query)):
        with pytest.raises(RPCError) as info:
            await call()
        assert info.value.status == RPCStatusCode.INVALID_ARGUMENT, info.value.message
        if exact:
            assert info.value.message == message
        else:
            assert info.value.message.startswith(message), info.value.message


# --- paging and scan ----------------------------------------------------------------------------


async def _start_tagged_runs(client: Client, task_queue: str, tag: str, n: int) -> list[str]:
    """n runs that stay RUNNING (nobody polls the queue), started one after another."""
    ids = []
    for i in range(n):
        h = await client.start_workflow(
            cv.VisWorkflow.run, id=f"{tag}-{i}", task_queue=task_queue, search_attributes=tagged(tag)
        )
        ids.append(h.id)
    await wait_visible(client, f"UwKeyword = '{tag}'", set(ids), "tagged runs visible")
    return ids


async def test_list_paging(client: Client, search_attributes: None, task_queue: str) -> None:
    tag = str(uuid.uuid4())
    ids = await _start_tagged_runs(client, task_queue, tag, 5)
    pages: list[list[str]] = []
    start_times: list[int] = []
    token = b""
    while True:
        resp = await client.workflow_service.list_workflow_executions(
            ListWorkflowExecutionsRequest(
                namespace=client.namespace, page_size=2, next_page_token=token, query=f"UwKeyword = '{tag}'"
            )
        )
        pages.append([e.execution.workflow_id for e in resp.executions])
        start_times += [e.start_time.ToNanoseconds() for e in resp.executions]
        token = resp.next_page_token
        if not token:
            break
        assert len(pages) < 10, pages
    assert [len(p) for p in pages] == [2, 2, 1]
    assert sorted(w for p in pages for w in p) == sorted(ids)
    # Open runs come newest first.
    assert start_times == sorted(start_times, reverse=True)


async def test_scan(client: Client, search_attributes: None, task_queue: str) -> None:
    tag = str(uuid.uuid4())
    ids = await _start_tagged_runs(client, task_queue, tag, 5)
    seen: list[str] = []
    token = b""
    while True:
        resp = await client.workflow_service.scan_workflow_executions(
            ScanWorkflowExecutionsRequest(
                namespace=client.namespace, page_size=2, next_page_token=token, query=f"UwKeyword = '{tag}'"
            )
        )
        assert len(resp.executions) <= 2
        seen += [e.execution.workflow_id for e in resp.executions]
        token = resp.next_page_token
        if not token:
            break
        assert len(seen) <= 10, seen
    assert sorted(seen) == sorted(ids)


# --- delete and retention -----------------------------------------------------------------------


async def delete_workflow(client: Client, wid: str) -> None:
    execution = WorkflowExecution(workflow_id=wid)
    req = DeleteWorkflowExecutionRequest(namespace=client.namespace, workflow_execution=execution)
    await client.workflow_service.delete_workflow_execution(req)


async def _describe_error(client: Client, wid: str) -> RPCError | None:
    try:
        await client.get_workflow_handle(wid).describe()
    except RPCError as e:
        return e
    return None


# The dev server deletes a closed run asynchronously; it took 18 to 35 seconds.
@pytest.mark.timeout(120)
async def test_delete_completed_workflow(client: Client, search_attributes: None, task_queue: str, new_id) -> None:
    tag = str(uuid.uuid4())
    wid, keep = new_id("del-done"), new_id("del-keep")
    async with Worker(client, task_queue=task_queue, workflows=WORKFLOWS):
        for w in (wid, keep):
            await result_of(
                client.execute_workflow(cv.VisWorkflow.run, id=w, task_queue=task_queue, search_attributes=tagged(tag))
            )
    await wait_visible(client, f"UwKeyword = '{tag}'", {wid, keep}, "both runs visible")

    await delete_workflow(client, wid)
    err = await eventually(
        lambda: _describe_error(client, wid), lambda e: e is not None, timeout=90, interval=0.5, what="run deleted"
    )
    assert err is not None and err.status == RPCStatusCode.NOT_FOUND
    assert err.message == f"workflow not found for ID: {wid}"
    await wait_visible(client, f"UwKeyword = '{tag}'", {keep}, "deleted run gone from list")
    assert (await client.count_workflows(f"UwKeyword = '{tag}'")).count == 1
    with pytest.raises(RPCError) as info:
        await client.get_workflow_handle(wid).fetch_history()
    assert info.value.status == RPCStatusCode.NOT_FOUND
    assert (await client.get_workflow_handle(keep).describe()).status == WorkflowExecutionStatus.COMPLETED


async def test_delete_running_workflow(client: Client, search_attributes: None, task_queue: str, new_id) -> None:
    tag = str(uuid.uuid4())
    wid = new_id("del-running")
    attrs = tagged(tag)
    await client.start_workflow(cv.VisWorkflow.run, "wait", id=wid, task_queue=task_queue, search_attributes=attrs)
    await wait_visible(client, f"UwKeyword = '{tag}'", {wid}, "running run visible")
    await delete_workflow(client, wid)
    err = await eventually(lambda: _describe_error(client, wid), lambda e: e is not None, what="running run deleted")
    assert err is not None and err.status == RPCStatusCode.NOT_FOUND
    await wait_visible(client, f"UwKeyword = '{tag}'", set(), "deleted run gone from list")


async def test_delete_missing_workflow(client: Client, new_id) -> None:
    wid = new_id("del-missing")
    with pytest.raises(RPCError) as info:
        await delete_workflow(client, wid)
    assert info.value.status == RPCStatusCode.NOT_FOUND
    assert info.value.message == f"workflow not found for ID: {wid}"


@uhrwerk_only("the dev server refuses a retention under one day")
async def test_retention_removes_closed_runs(client: Client, server, task_queue: str, new_id) -> None:
    ns = f"retention-{uuid.uuid4().hex[:12]}"
    await client.workflow_service.register_namespace(
        RegisterNamespaceRequest(namespace=ns, workflow_execution_retention_period=Duration(seconds=1))
    )
    described = await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=ns))
    assert described.config.workflow_execution_retention_ttl.ToSeconds() == 1
    ns_client = await Client.connect(server.address, namespace=ns)
    wid = new_id("retained")
    async with Worker(ns_client, task_queue=task_queue, workflows=WORKFLOWS):
        assert await result_of(ns_client.execute_workflow(cv.VisWorkflow.run, id=wid, task_queue=task_queue)) == "now"
    err = await eventually(
        lambda: _describe_error(ns_client, wid), lambda e: e is not None, timeout=15, interval=0.2, what="retention"
    )
    assert err is not None and err.status == RPCStatusCode.NOT_FOUND
    await wait_visible(ns_client, f"WorkflowId = '{wid}'", set(), "retained run gone from list")
