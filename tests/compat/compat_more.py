"""Workflows and activities for the phase 2/3 feature tests: child workflows, external signals,
patching (chapter 13.2), local activities (13.7), memo, cron and workflow-task heartbeats.

Kept free of pytest imports so the SDK's workflow sandbox can re-import the module.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError, ChildWorkflowError, WorkflowAlreadyStartedError

# --- child workflows -----------------------------------------------------------------------------


@workflow.defn
class DoubleChildWorkflow:
    @workflow.run
    async def run(self, n: int) -> int:
        return n * 2


@workflow.defn
class FanOutParentWorkflow:
    """Starts `count` children with ids derived from its own id and sums their results."""

    @workflow.run
    async def run(self, count: int) -> int:
        wid = workflow.info().workflow_id
        results = await asyncio.gather(
            *(workflow.execute_child_workflow(DoubleChildWorkflow.run, i, id=f"{wid}-child-{i}") for i in range(count))
        )
        return sum(results)


@workflow.defn
class FailingChildWorkflow:
    @workflow.run
    async def run(self, reason: str) -> str:
        raise ApplicationError(reason, type="ChildBroke", non_retryable=True)


@workflow.defn
class ParentOfFailingChildWorkflow:
    @workflow.run
    async def run(self) -> str:
        try:
            await workflow.execute_child_workflow(
                FailingChildWorkflow.run, "child says no", id=f"{workflow.info().workflow_id}-child"
            )
        except ChildWorkflowError as err:
            cause = err.cause
            assert isinstance(cause, ApplicationError)
            return f"{type(err).__name__}: {cause.type}: {cause.message}"
        return "child did not fail"


@workflow.defn
class WaitForReleaseWorkflow:
    """Runs until it receives `release`; a child that outlives its parent in the close policy tests."""

    def __init__(self) -> None:
        self.released: str | None = None

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.released is not None)
        return f"released by {self.released}"

    @workflow.signal
    def release(self, by: str) -> None:
        self.released = by


@workflow.defn
class DuplicateChildParentWorkflow:
    """Starts a child whose id is already taken by a running workflow."""

    @workflow.run
    async def run(self, child_id: str) -> str:
        try:
            await workflow.execute_child_workflow(WaitForReleaseWorkflow.run, id=child_id)
        except WorkflowAlreadyStartedError as err:
            return f"{type(err).__name__}: {err.workflow_id}"
        return "child ran"


@dataclass
class AbandonInput:
    child_id: str
    policy: str  # a workflow.ParentClosePolicy member name, or "" for the default


@workflow.defn
class LeaveChildBehindWorkflow:
    """Starts a child, waits until it has started, and completes without awaiting it."""

    @workflow.run
    async def run(self, inp: AbandonInput) -> str:
        kwargs = {}
        if inp.policy:
            kwargs["parent_close_policy"] = workflow.ParentClosePolicy[inp.policy]
        handle = await workflow.start_child_workflow(WaitForReleaseWorkflow.run, id=inp.child_id, **kwargs)
        return handle.first_execution_run_id or ""


# --- external signals ----------------------------------------------------------------------------


@workflow.defn
class SignalReceiverWorkflow:
    def __init__(self) -> None:
        self.got: list[str] = []

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.wait_condition(lambda: bool(self.got))
        return self.got

    @workflow.signal
    def ping(self, text: str) -> None:
        self.got.append(text)


@workflow.defn
class SignalSenderWorkflow:
    @workflow.run
    async def run(self, target_id: str) -> str:
        try:
            target = workflow.get_external_workflow_handle(target_id)
            await target.signal(SignalReceiverWorkflow.ping, "hello from afar")
        except Exception as err:  # the failure type is what the test asserts
            return f"failed: {type(err).__name__}: {err}"
        return "sent"


CHILD_WORKFLOWS: list[type] = [
    DoubleChildWorkflow,
    FanOutParentWorkflow,
    FailingChildWorkflow,
    ParentOfFailingChildWorkflow,
    WaitForReleaseWorkflow,
    DuplicateChildParentWorkflow,
    LeaveChildBehindWorkflow,
    SignalReceiverWorkflow,
    SignalSenderWorkflow,
]


# --- patching: the chapter's onboarding example (13.2 "Workflow-Code-Order nie ändern") ------------

ONBOARDING = "OnboardingWorkflow"
REORDER_PATCH = "reorder-validation-v2"


@activity.defn
async def validate_user(user_id: str) -> str:
    return f"validated {user_id}"


@activity.defn
async def create_account(user_id: str) -> str:
    return f"account for {user_id}"


def _step(fn, user_id: str):
    return workflow.execute_activity(fn, user_id, start_to_close_timeout=timedelta(seconds=30))


@workflow.defn(name=ONBOARDING)
class OnboardingWorkflowV1:
    @workflow.run
    async def run(self, user_id: str) -> list[str]:
        return [await _step(validate_user, user_id), await _step(create_account, user_id)]


@workflow.defn(name=ONBOARDING)
class OnboardingWorkflowV2Bad:
    """The order changed without a patch: replaying a v1 history must fail."""

    @workflow.run
    async def run(self, user_id: str) -> list[str]:
        return [await _step(create_account, user_id), await _step(validate_user, user_id)]


@workflow.defn(name=ONBOARDING)
class OnboardingWorkflowV2Good:
    """The order changed behind `workflow.patched()`: old histories take the old path."""

    @workflow.run
    async def run(self, user_id: str) -> list[str]:
        if workflow.patched(REORDER_PATCH):
            return [await _step(create_account, user_id), await _step(validate_user, user_id)]
        return [await _step(validate_user, user_id), await _step(create_account, user_id)]


ONBOARDING_ACTIVITIES = [validate_user, create_account]


# --- local activities with idempotency keys (13.7.2) ------------------------------------------------

# Charges by idempotency key, as a payment API that remembers duplicates would keep them.
CHARGES: dict[str, float] = {}


@activity.defn
async def charge_credit_card_idempotent(amount: float, idempotency_key: str) -> str:
    CHARGES.setdefault(idempotency_key, amount)
    return idempotency_key


@workflow.defn
class PaymentWorkflow:
    @workflow.run
    async def run(self, amount: float) -> str:
        idempotency_key = f"{workflow.info().workflow_id}-payment"
        return await workflow.execute_local_activity(
            charge_credit_card_idempotent,
            args=[amount, idempotency_key],
            start_to_close_timeout=timedelta(seconds=5),
        )


@activity.defn
async def slow_local_step(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return f"slept {seconds}"


@workflow.defn
class SlowLocalActivityWorkflow:
    """A local activity longer than the workflow task timeout: core keeps the task alive with
    heartbeat completions (force_create_new_workflow_task)."""

    @workflow.run
    async def run(self, seconds: float) -> str:
        return await workflow.execute_local_activity(
            slow_local_step,
            seconds,
            start_to_close_timeout=timedelta(seconds=seconds + 10),
            retry_policy=RetryPolicy(maximum_attempts=1),
        )


# --- the chapter's FraudCheckWorkflowGood (13.2 "Alles Non-Deterministische in Activities") --------


@dataclass
class FraudCheckInput:
    transaction_id: str
    check_name: str


@dataclass
class FraudCheckResult:
    approved: bool
    audit_id: str
    workflow_uuid: str
    checked_at: str
    checks: list[str] = field(default_factory=list)


@activity.defn
async def calculate_risk_score(transaction_id: str) -> float:
    return random.random() * 0.3


@activity.defn
async def get_time_based_modifier() -> float:
    return 0.1


@activity.defn
async def generate_audit_id() -> str:
    return str(uuid.uuid4())


@activity.defn
async def run_fraud_check(inp: FraudCheckInput) -> str:
    return f"{inp.check_name}:ok"


@workflow.defn
class FraudCheckWorkflow:
    @workflow.run
    async def run(self, transaction_id: str) -> FraudCheckResult:
        risk_score = await workflow.execute_activity(
            calculate_risk_score, transaction_id, start_to_close_timeout=timedelta(seconds=30)
        )
        time_modifier = await workflow.execute_activity(
            get_time_based_modifier, start_to_close_timeout=timedelta(seconds=5)
        )
        audit_id = await workflow.execute_activity(generate_audit_id, start_to_close_timeout=timedelta(seconds=5))
        checks = []
        for check_name in sorted(["ip", "device", "location"]):
            checks.append(
                await workflow.execute_activity(
                    run_fraud_check,
                    FraudCheckInput(transaction_id, check_name),
                    start_to_close_timeout=timedelta(seconds=30),
                )
            )
        return FraudCheckResult(
            approved=risk_score + time_modifier < 0.5,
            audit_id=audit_id,
            workflow_uuid=str(workflow.uuid4()),
            checked_at=workflow.now().isoformat(),
            checks=checks,
        )


FRAUD_ACTIVITIES = [calculate_risk_score, get_time_based_modifier, generate_audit_id, run_fraud_check]


# --- memo and cron ----------------------------------------------------------------------------------


@workflow.defn
class MemoWorkflow:
    @workflow.run
    async def run(self, stage: str) -> dict[str, str]:
        workflow.upsert_memo({"stage": stage, "obsolete": None})
        return {k: workflow.memo_value(k, type_hint=str) for k in sorted(workflow.memo())}


@workflow.defn
class CronCounterWorkflow:
    """Each cron run returns one more than the previous run's result."""

    @workflow.run
    async def run(self) -> int:
        last = workflow.get_last_completion_result(type_hint=int) if workflow.has_last_completion_result() else 0
        return (last or 0) + 1


MORE_WORKFLOWS: list[type] = [
    PaymentWorkflow,
    SlowLocalActivityWorkflow,
    FraudCheckWorkflow,
    MemoWorkflow,
    CronCounterWorkflow,
]
MORE_ACTIVITIES = [charge_credit_card_idempotent, slow_local_step, *FRAUD_ACTIVITIES]
