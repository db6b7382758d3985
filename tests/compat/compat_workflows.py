"""Workflows and activities used by the compat tests.

They live in their own module, free of pytest imports, so the SDK's workflow
sandbox can re-import it cheaply.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

FAST_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=100), backoff_coefficient=1.0)


# --- hello world -------------------------------------------------------------


@activity.defn
async def say_hello(name: str) -> str:
    return f"Hello, {name}!"


@workflow.defn
class HelloWorkflow:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity(say_hello, name, start_to_close_timeout=timedelta(seconds=10))


@activity.defn
async def say_goodbye(name: str) -> str:
    return f"Goodbye, {name}!"


@workflow.defn(name="HelloWorkflow")
class HelloWorkflowChanged:
    """The same workflow type with different commands: replaying HelloWorkflow's history must fail."""

    @workflow.run
    async def run(self, name: str) -> str:
        await workflow.sleep(timedelta(seconds=1))
        return await workflow.execute_activity(say_goodbye, name, start_to_close_timeout=timedelta(seconds=10))


# --- the chapter's OrderWorkflow --------------------------------------------


@dataclass
class OrderInput:
    """Single object input pattern."""

    user_id: str
    cart_items: list[str]
    discount_code: str | None = None


@dataclass
class PaymentInput:
    user_id: str
    amount_cents: int
    discount: int


@dataclass
class PaymentResult:
    order_id: str
    charged_cents: int


@dataclass
class OrderResult:
    order_id: str
    tracking_number: str
    charged_cents: int
    payment_attempts: int = 0
    items: list[str] = field(default_factory=list)


PAYMENT_FAILURES = 2


@activity.defn
async def calculate_discount(code: str | None) -> int:
    return 10 if code == "SAVE10" else 0


@activity.defn
async def process_payment(input: PaymentInput) -> PaymentResult:
    attempt = activity.info().attempt
    if attempt <= PAYMENT_FAILURES:
        raise ApplicationError(f"payment declined (attempt {attempt})", type="PaymentDeclined")
    charged = input.amount_cents * (100 - input.discount) // 100
    return PaymentResult(order_id=f"order-{input.user_id}-a{attempt}", charged_cents=charged)


@activity.defn
async def create_shipment(order_id: str) -> str:
    return f"track-{order_id}"


@workflow.defn
class OrderWorkflow:
    """Orchestrates, does not implement (the chapter's best-practice shape)."""

    @workflow.run
    async def run(self, input: OrderInput) -> OrderResult:
        discount = await workflow.execute_activity(
            calculate_discount,
            input.discount_code,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=FAST_RETRY,
        )
        payment = await workflow.execute_activity(
            process_payment,
            PaymentInput(user_id=input.user_id, amount_cents=1000 * len(input.cart_items), discount=discount),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(milliseconds=100),
                backoff_coefficient=1.0,
                maximum_attempts=5,
            ),
        )
        tracking = await workflow.execute_activity(
            create_shipment,
            payment.order_id,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=FAST_RETRY,
        )
        return OrderResult(
            order_id=payment.order_id,
            tracking_number=tracking,
            charged_cents=payment.charged_cents,
            items=list(input.cart_items),
        )


# --- activity failures -------------------------------------------------------


@activity.defn
async def fail_non_retryable(msg: str) -> str:
    raise ApplicationError(msg, type="Fatal", non_retryable=True)


@activity.defn
async def always_fail(msg: str) -> str:
    raise ApplicationError(f"{msg} (attempt {activity.info().attempt})", type="Flaky")


@dataclass
class ActivityErrorReport:
    error: str
    retry_state: str
    cause_type: str
    cause_message: str


@workflow.defn
class NonRetryableActivityWorkflow:
    @workflow.run
    async def run(self, msg: str) -> ActivityErrorReport:
        try:
            await workflow.execute_activity(
                fail_non_retryable, msg, start_to_close_timeout=timedelta(seconds=10), retry_policy=FAST_RETRY
            )
        except ActivityError as e:
            return _report(e)
        raise ApplicationError("activity unexpectedly succeeded")


@workflow.defn
class ExhaustedRetriesWorkflow:
    @workflow.run
    async def run(self, msg: str) -> ActivityErrorReport:
        try:
            await workflow.execute_activity(
                always_fail,
                msg,
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(milliseconds=100), backoff_coefficient=1.0, maximum_attempts=3
                ),
            )
        except ActivityError as e:
            return _report(e)
        raise ApplicationError("activity unexpectedly succeeded")


def _report(e: ActivityError) -> ActivityErrorReport:
    cause = e.cause
    return ActivityErrorReport(
        error=type(e).__name__,
        retry_state=e.retry_state.name if e.retry_state is not None else "",
        cause_type=getattr(cause, "type", "") or "",
        cause_message=getattr(cause, "message", "") or "",
    )


# --- workflow failure --------------------------------------------------------


@workflow.defn
class FailingWorkflow:
    @workflow.run
    async def run(self, reason: str) -> str:
        raise ApplicationError(f"order rejected: {reason}", {"reason": reason}, type="OrderRejected")


# --- async activity completion (stale task token test) ----------------------

# Filled by the test before starting the workflow: workflow id -> future for the task token.
TASK_TOKENS: dict[str, asyncio.Future[bytes]] = {}


@activity.defn
async def complete_later(key: str) -> str:
    fut = TASK_TOKENS.get(key)
    if fut is not None and not fut.done():
        fut.set_result(activity.info().task_token)
    activity.raise_complete_async()


@workflow.defn
class AsyncCompletionWorkflow:
    @workflow.run
    async def run(self, key: str) -> str:
        first = await workflow.execute_activity(complete_later, key, start_to_close_timeout=timedelta(seconds=30))
        second = await workflow.execute_activity(
            complete_later, key + "-2", start_to_close_timeout=timedelta(seconds=30)
        )
        return f"{first}+{second}"


# --- crash test --------------------------------------------------------------


@dataclass
class StepInput:
    path: str
    workflow_id: str
    step: int
    delay_ms: int = 50


@dataclass
class CrashInput:
    path: str
    steps: int
    delay_ms: int = 50


@activity.defn
async def record_step(input: StepInput) -> str:
    """Appends `workflow_id,step,attempt` to a file the test owns (the side effect)."""
    line = f"{input.workflow_id},{input.step},{activity.info().attempt}\n"
    # O_APPEND writes of one short line are atomic, so concurrent activities do not interleave.
    fd = os.open(input.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
    # Keep each step running briefly so that kills land while work is in flight.
    await asyncio.sleep(input.delay_ms / 1000)
    return f"s{input.step}"


@workflow.defn
class CrashWorkflow:
    @workflow.run
    async def run(self, input: CrashInput) -> str:
        wid = workflow.info().workflow_id
        parts = []
        for step in range(input.steps):
            parts.append(
                await workflow.execute_activity(
                    record_step,
                    StepInput(path=input.path, workflow_id=wid, step=step, delay_ms=input.delay_ms),
                    start_to_close_timeout=timedelta(seconds=5),
                    retry_policy=RetryPolicy(
                        initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=1)
                    ),
                )
            )
        return f"{wid}:" + "-".join(parts)


# --- crash test with timers and signals in flight ------------------------------


@dataclass
class TimerSignalInput:
    steps: int
    min_sleep_ms: int = 100
    max_sleep_ms: int = 600


@dataclass
class TimerSignalResult:
    workflow_id: str
    # Step values in the order the workflow processed them (each distinct signal value once).
    processed: list[int] = field(default_factory=list)
    # Every signal delivery, duplicates included (the test may re-send a signal across a restart).
    deliveries: list[int] = field(default_factory=list)
    slept_ms: list[int] = field(default_factory=list)


@workflow.defn
class TimerSignalCrashWorkflow:
    """Each step sleeps a random-but-deterministic time (workflow.random() is seeded by the
    server), then waits for signal `step`; a value delivered twice is processed once."""

    def __init__(self) -> None:
        self.deliveries: list[int] = []
        self.received: set[int] = set()
        self.processed: list[int] = []

    @workflow.run
    async def run(self, input: TimerSignalInput) -> TimerSignalResult:
        slept = []
        for step in range(input.steps):
            ms = workflow.random().randint(input.min_sleep_ms, input.max_sleep_ms)
            slept.append(ms)
            await workflow.sleep(timedelta(milliseconds=ms))
            await workflow.wait_condition(lambda step=step: step in self.received)
            self.processed.append(step)
        return TimerSignalResult(
            workflow_id=workflow.info().workflow_id,
            processed=self.processed,
            deliveries=self.deliveries,
            slept_ms=slept,
        )

    @workflow.signal
    def step_done(self, value: int) -> None:
        self.deliveries.append(value)
        self.received.add(value)

    @workflow.query
    def progress(self) -> int:
        return len(self.processed)
