//! Speed measurement: generates a tree of Python workflow modules (default 100,000 lines) and times a full lint.
//!
//! Run with `cargo run --release --example bench -- [LINES]`. Not part of `cargo test`.

use std::fmt::Write as _;
use std::time::Instant;

use uhrwerk_lint::{Config, lint_paths};

fn module(index: usize) -> String {
    let mut text = String::new();
    let _ = write!(
        text,
        r#""""Generated workflow module {index}."""
import asyncio
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import List, Optional

from temporalio import activity, workflow
from temporalio.common import RetryPolicy


@dataclass
class OrderInput{index}:
    order_id: str
    items: List[str]
    discount_code: Optional[str] = None


def helper_{index}(value: int) -> int:
    return value * 2 + len(str(value))


def jitter_{index}() -> float:
    return random.random()


@activity.defn
async def charge_{index}(input: OrderInput{index}) -> str:
    activity.logger.info("charging %s at %s", input.order_id, datetime.now())
    return f"charged-{{input.order_id}}-{{random.randint(1, 10)}}"


@activity.defn
async def ship_{index}(order_id: str) -> str:
    await asyncio.sleep(0)
    return f"tracking-{{order_id}}"


@workflow.defn
class OrderWorkflow{index}:
    def __init__(self) -> None:
        self.status = "pending"
        self.processed = 0
        self.pending: List[str] = []

    @workflow.run
    async def run(self, input: OrderInput{index}) -> str:
        charged = await workflow.execute_activity(
            charge_{index},
            input,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(maximum_attempts=3),
        )
        for item in sorted(set(input.items)):
            await workflow.execute_activity(
                ship_{index},
                item,
                start_to_close_timeout=timedelta(minutes=5),
            )
            self.processed += helper_{index}(1)
        while True:
            await workflow.wait_condition(lambda: bool(self.pending))
            self.pending.pop()
            if workflow.info().is_continue_as_new_suggested():
                workflow.continue_as_new(input)
        return charged

    @workflow.signal
    def add(self, item: str) -> None:
        self.pending.append(item)

    @workflow.query
    def get_status(self) -> str:
        return self.status

    @workflow.update
    async def set_status(self, status: str) -> str:
        self.status = status
        return self.status

    @set_status.validator
    def validate_status(self, status: str) -> None:
        if not status:
            raise ValueError("empty status")

    async def _slow(self) -> float:
        # Deliberate findings so the measurement includes reporting work.
        return jitter_{index}() + datetime.now().timestamp()
"#
    );
    text
}

fn main() {
    let target_lines: usize = std::env::args().nth(1).and_then(|arg| arg.parse().ok()).unwrap_or(100_000);
    let dir = tempfile::tempdir().expect("create temporary directory");
    let mut lines = 0;
    let mut files = 0;
    while lines < target_lines {
        let text = module(files);
        lines += text.lines().count();
        let sub = dir.path().join(format!("pkg{}", files / 100));
        std::fs::create_dir_all(&sub).expect("create package directory");
        std::fs::write(sub.join(format!("workflow_{files}.py")), text).expect("write module");
        files += 1;
    }
    let config = Config::default();
    let paths = vec![dir.path().to_path_buf()];
    // One warm-up run fills the page cache, then the best of five is reported.
    let _ = lint_paths(&paths, &config).expect("lint works");
    let mut best = f64::MAX;
    let mut findings = 0;
    for _ in 0..5 {
        let start = Instant::now();
        let (diagnostics, checked) = lint_paths(&paths, &config).expect("lint works");
        best = best.min(start.elapsed().as_secs_f64());
        findings = diagnostics.len();
        assert_eq!(checked, files);
    }
    println!(
        "linted {lines} lines in {files} files with {} threads: best of 5 = {:.1} ms ({findings} findings)",
        rayon::current_num_threads(),
        best * 1000.0
    );
}
