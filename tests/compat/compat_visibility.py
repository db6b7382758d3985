"""Workflows for the visibility tests: search attributes, upserts, list queries and deletion.

Kept free of pytest imports so the SDK's workflow sandbox can re-import the module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import SearchAttributeKey

# The custom search attributes the tests register. The dev server maps custom
# attributes onto a fixed set of columns per type, so the names are fixed too.
UW_KEYWORD = SearchAttributeKey.for_keyword("UwKeyword")
UW_TEXT = SearchAttributeKey.for_text("UwText")
UW_INT = SearchAttributeKey.for_int("UwInt")
UW_DOUBLE = SearchAttributeKey.for_float("UwDouble")
UW_BOOL = SearchAttributeKey.for_bool("UwBool")
UW_DATETIME = SearchAttributeKey.for_datetime("UwDatetime")
UW_KEYWORD_LIST = SearchAttributeKey.for_keyword_list("UwKeywordList")
# Never registered.
UNREGISTERED = SearchAttributeKey.for_keyword("UwNeverRegistered")


@workflow.defn
class VisWorkflow:
    """Completes at once, after a workflow timer of `sleep_ms`, or when signalled `finish`."""

    def __init__(self) -> None:
        self.done = False

    @workflow.run
    async def run(self, mode: str = "now", sleep_ms: int = 0) -> str:
        if sleep_ms:
            await workflow.sleep(timedelta(milliseconds=sleep_ms))
        if mode == "wait":
            await workflow.wait_condition(lambda: self.done)
        return mode

    @workflow.signal
    def finish(self) -> None:
        self.done = True


@dataclass
class UpsertInput:
    keyword: str | None = None
    int_value: int | None = None
    keyword_list: list[str] = field(default_factory=list)
    datetime_value: datetime | None = None
    # Upserts the never registered attribute, which the server must refuse.
    unregistered: bool = False
    # Upserts UwInt without a value (an empty payload list), which removes it.
    unset_int: bool = False


@workflow.defn
class VisUpsertWorkflow:
    """Upserts the requested search attributes, then waits for `finish`."""

    def __init__(self) -> None:
        self.done = False

    @workflow.run
    async def run(self, inp: UpsertInput) -> str:
        updates = []
        if inp.keyword is not None:
            updates.append(UW_KEYWORD.value_set(inp.keyword))
        if inp.int_value is not None:
            updates.append(UW_INT.value_set(inp.int_value))
        if inp.keyword_list:
            updates.append(UW_KEYWORD_LIST.value_set(inp.keyword_list))
        if inp.datetime_value is not None:
            updates.append(UW_DATETIME.value_set(inp.datetime_value))
        if inp.unregistered:
            updates.append(UNREGISTERED.value_set("nope"))
        if inp.unset_int:
            updates.append(UW_INT.value_unset())
        workflow.upsert_search_attributes(updates)
        await workflow.wait_condition(lambda: self.done)
        return "upserted"

    @workflow.signal
    def finish(self) -> None:
        self.done = True
