//! Behaviour of each rule on small sources: what fires, and the look-alikes that must stay silent.

use uhrwerk_lint::{Config, Diagnostic, lint_source};

fn lint(source: &str) -> Vec<Diagnostic> {
    lint_source("test.py", source, &Config::default())
}

fn lint_all(source: &str) -> Vec<Diagnostic> {
    let mut config = Config::default();
    config.select(&["ALL".to_string()]).expect("valid selector");
    lint_source("test.py", source, &config)
}

fn codes(diagnostics: &[Diagnostic]) -> Vec<&'static str> {
    diagnostics.iter().map(|d| d.code).collect()
}

const HEADER: &str = "from datetime import timedelta\nfrom temporalio import workflow, activity\n";

fn workflow_with(body: &str) -> String {
    format!(
        "{HEADER}\n@workflow.defn\nclass W:\n    @workflow.run\n    async def run(self, input: str) -> None:\n{body}"
    )
}

#[test]
fn uw101_flags_random_time_uuid_and_environment() {
    let source = workflow_with(
        "        import os, uuid, random, time\n        a = random.randint(1, 6)\n        b = time.time()\n        c = uuid.uuid4()\n        d = os.environ[\"HOME\"]\n        e = os.getenv(\"X\")\n",
    );
    let found = lint(&source);
    assert_eq!(codes(&found), vec!["UW101"; 5], "{found:#?}");
    assert!(found[0].message.contains("workflow.random()"));
    assert!(found[1].message.contains("workflow.now()"));
    assert!(found[2].message.contains("workflow.uuid4()"));
}

#[test]
fn uw101_resolves_import_aliases() {
    let source = "from datetime import datetime as dt\nimport random as r\nfrom temporalio import workflow as wf\n\n@wf.defn\nclass W:\n    @wf.run\n    async def run(self) -> None:\n        x = dt.now()\n        y = r.random()\n";
    let found = lint(source);
    assert_eq!(codes(&found), vec!["UW101", "UW101"], "{found:#?}");
    assert!(found[0].message.contains("datetime.datetime.now"));
    assert!(found[1].message.contains("random.random"));
}

#[test]
fn uw101_follows_helper_chain_and_names_it() {
    let source = format!(
        "import random\n{HEADER}\ndef roll():\n    return random.random()\n\ndef compute_discount():\n    return roll() * 2\n\n@workflow.defn\nclass W:\n    @workflow.run\n    async def run(self) -> float:\n        return compute_discount()\n"
    );
    let found = lint(&source);
    assert_eq!(codes(&found), vec!["UW101"], "{found:#?}");
    assert!(found[0].message.contains("compute_discount → roll"), "{}", found[0].message);
    assert!(found[0].message.contains("random.random()"));
    assert_eq!(found[0].line, 15);
}

#[test]
fn workflow_apis_and_activities_are_not_flagged() {
    let source = format!(
        "import random\nfrom datetime import datetime\n{HEADER}\n@activity.defn\nasync def pick() -> float:\n    print(datetime.now())\n    return random.random()\n\n@workflow.defn\nclass W:\n    @workflow.run\n    async def run(self) -> None:\n        a = workflow.random().random()\n        b = workflow.now()\n        c = workflow.uuid4()\n        await workflow.sleep(5)\n        for item in sorted(set([\"b\", \"a\"])):\n            pass\n        rng = random.Random(1)\n        workflow.logger.info(\"ok\")\n"
    );
    let found = lint(&source);
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn uw102_flags_io_threads_and_subprocesses() {
    let source = workflow_with(
        "        import httpx, subprocess, threading, sqlite3\n        f = open(\"x\")\n        httpx.get(\"https://x\")\n        subprocess.run([\"ls\"])\n        threading.Thread(target=print)\n        sqlite3.connect(\"db\")\n",
    );
    assert_eq!(codes(&lint(&source)), vec!["UW102"; 5]);
}

#[test]
fn local_variables_shadowing_module_names_are_not_flagged() {
    let source = workflow_with(
        "        requests = []\n        requests.append(1)\n        random = workflow.random()\n        random.randint(1, 2)\n",
    );
    assert!(lint(&source).is_empty(), "{:#?}", lint(&source));
}

#[test]
fn uw103_flags_set_iteration_but_not_sorted() {
    let source = workflow_with(
        "        names = {\"a\", \"b\"}\n        for n in names:\n            pass\n        for n in list(set(input)):\n            pass\n        ok = [x for x in sorted(names)]\n        bad = [x for x in frozenset(input)]\n",
    );
    let found = lint(&source);
    assert_eq!(codes(&found), vec!["UW103"; 3], "{found:#?}");
}

#[test]
fn uw103_tracks_set_attributes() {
    let source = format!(
        "{HEADER}\n@workflow.defn\nclass W:\n    def __init__(self) -> None:\n        self.pending: set[str] = set()\n\n    @workflow.run\n    async def run(self) -> None:\n        for p in self.pending:\n            pass\n"
    );
    assert_eq!(codes(&lint(&source)), vec!["UW103"]);
}

#[test]
fn uw104_asyncio_wait_and_opt_in_uw105_asyncio_sleep() {
    let source = format!(
        "import asyncio\n{}",
        workflow_with("        await asyncio.wait([])\n        await asyncio.sleep(1)\n")
    );
    assert_eq!(codes(&lint(&source)), vec!["UW104"]);
    assert_eq!(codes(&lint_all(&source)), vec!["UW104", "UW105"]);
}

#[test]
fn uw106_print_and_logging() {
    let source = format!(
        "import logging\nlogger = logging.getLogger(__name__)\n{}",
        workflow_with(
            "        print(\"x\")\n        logging.info(\"x\")\n        logger.warning(\"x\")\n        workflow.logger.info(\"fine\")\n"
        )
    );
    assert_eq!(codes(&lint(&source)), vec!["UW106"; 3]);
}

#[test]
fn uw107_unawaited_calls() {
    let source = workflow_with(
        "        workflow.execute_activity(act, start_to_close_timeout=timedelta(seconds=1))\n        workflow.sleep(3)\n        await workflow.execute_child_workflow(Child.run)\n        handle = workflow.start_activity(act, start_to_close_timeout=timedelta(seconds=1))\n",
    );
    assert_eq!(codes(&lint(&source)), vec!["UW107", "UW107"]);
}

#[test]
fn uw108_patch_ids() {
    let source = workflow_with(
        "        if workflow.patched(\"v2\"):\n            pass\n        if workflow.patched(\"v2\"):\n            pass\n        workflow.deprecate_patch(\"v2\")\n        pid = \"v3\"\n        workflow.patched(pid)\n",
    );
    let found = lint(&source);
    assert_eq!(codes(&found), vec!["UW108", "UW108"], "{found:#?}");
    assert!(found[0].message.contains("both"));
    assert!(found[1].message.contains("string literal"));
}

#[test]
fn uw201_query_mutation_await_api_and_async() {
    let source = format!(
        "{HEADER}\n@workflow.defn\nclass W:\n    @workflow.query\n    def a(self) -> int:\n        self.count += 1\n        return self.count\n\n    @workflow.query\n    async def b(self) -> int:\n        await workflow.sleep(1)\n        return 1\n\n    @workflow.query(name=\"c\")\n    def c(self) -> list:\n        self.items.append(1)\n        workflow.execute_activity(act, start_to_close_timeout=timedelta(seconds=1))\n        return self.items\n"
    );
    let found = lint(&source);
    let query_findings: Vec<_> = found.iter().filter(|d| d.code == "UW201").collect();
    assert_eq!(query_findings.len(), 6, "{found:#?}");
}

#[test]
fn uw201_read_only_query_and_signal_mutation_are_fine() {
    let source = format!(
        "{HEADER}\n@workflow.defn\nclass W:\n    @workflow.query\n    def status(self) -> str:\n        local = [1]\n        local.append(2)\n        return f\"{{self.status_text}} {{len(self.items)}}\"\n\n    @workflow.signal\n    def track(self) -> None:\n        self.count += 1\n"
    );
    assert!(lint(&source).is_empty());
}

#[test]
fn uw201_update_validator_must_not_mutate() {
    let source = format!(
        "{HEADER}\n@workflow.defn\nclass W:\n    @workflow.update\n    async def add(self, item: str) -> None:\n        self.last = item\n\n    @add.validator\n    def check_add(self, item: str) -> None:\n        self.checked = True\n"
    );
    let found = lint(&source);
    assert_eq!(codes(&found), vec!["UW201"]);
    assert!(found[0].message.contains("update validator"));
}

#[test]
fn uw301_missing_timeouts_by_function_and_by_name() {
    let source = workflow_with(
        "        await workflow.execute_activity(act, input)\n        await workflow.execute_activity(\"act_by_name\", input)\n        await workflow.start_local_activity(act, input, schedule_to_close_timeout=timedelta(seconds=5))\n        await workflow.execute_activity(act, input, start_to_close_timeout=timedelta(seconds=5))\n        await workflow.execute_activity(act, input, **options)\n",
    );
    assert_eq!(codes(&lint(&source)), vec!["UW301", "UW301"]);
}

#[test]
fn uw302_local_activity_idempotency() {
    let source = workflow_with(
        "        await workflow.execute_local_activity(charge, input, start_to_close_timeout=timedelta(seconds=5))\n        await workflow.execute_local_activity(charge, args=[input, idempotency_key], start_to_close_timeout=timedelta(seconds=5))\n        await workflow.execute_local_activity(charge, input, start_to_close_timeout=timedelta(seconds=5), retry_policy=RetryPolicy(maximum_attempts=3))\n        await workflow.execute_local_activity(charge, ChargeInput(request_id=workflow.info().workflow_id), start_to_close_timeout=timedelta(seconds=5))\n",
    );
    assert_eq!(codes(&lint(&source)), vec!["UW302"]);
}

#[test]
fn uw302_key_in_activity_signature_counts() {
    let source = format!(
        "{HEADER}\n@activity.defn\nasync def charge(idempotency_key: str) -> None:\n    pass\n\n@workflow.defn\nclass W:\n    @workflow.run\n    async def run(self, key: str) -> None:\n        await workflow.execute_local_activity(charge, key, start_to_close_timeout=timedelta(seconds=5))\n"
    );
    assert!(lint(&source).is_empty(), "{:#?}", lint(&source));
}

#[test]
fn uw401_positional_parameters_respect_threshold() {
    let source = format!(
        "{HEADER}\n@activity.defn\nasync def act(a: int, b: int, c: int) -> None:\n    pass\n\n@activity.defn\nasync def ok(a: int, b: int) -> None:\n    pass\n\n@workflow.defn\nclass W:\n    @workflow.run\n    async def run(self, a: int, b: int, c: int = 0) -> None:\n        pass\n"
    );
    assert_eq!(codes(&lint(&source)), vec!["UW401", "UW401"]);
    let mut strict = Config::default();
    strict.max_positional_params = 1;
    assert_eq!(codes(&lint_source("t.py", &source, &strict)), vec!["UW401"; 3]);
}

#[test]
fn uw501_endless_loop_but_not_with_continue_as_new_or_exit() {
    let endless = workflow_with("        while True:\n            await workflow.wait_condition(lambda: self.ready)\n");
    assert_eq!(codes(&lint(&endless)), vec!["UW501"]);
    let with_can = workflow_with(
        "        while True:\n            await workflow.wait_condition(lambda: self.ready)\n            if workflow.info().is_continue_as_new_suggested():\n                workflow.continue_as_new(input)\n",
    );
    assert!(lint(&with_can).is_empty());
    let with_break = workflow_with(
        "        while True:\n            await workflow.sleep(1)\n            if self.done:\n                break\n",
    );
    assert!(lint(&with_break).is_empty());
    let via_method = format!(
        "{}\n    def _maybe_continue(self) -> None:\n        workflow.continue_as_new(self.state)\n",
        workflow_with("        while True:\n            await workflow.sleep(1)\n            self._maybe_continue()\n")
    );
    assert!(lint(&via_method).is_empty(), "{:#?}", lint(&via_method));
}

#[test]
fn uw502_growth_without_bound() {
    let source = format!(
        "{HEADER}\n@workflow.defn\nclass W:\n    def __init__(self) -> None:\n        self.events = []\n        self.queue = []\n\n    @workflow.signal\n    def add(self, e: str) -> None:\n        self.events.append(e)\n        self.queue.append(e)\n\n    @workflow.run\n    async def run(self) -> None:\n        while self.queue:\n            self.queue.pop(0)\n            await workflow.sleep(1)\n"
    );
    let found = lint(&source);
    assert_eq!(codes(&found), vec!["UW502"], "{found:#?}");
    assert!(found[0].message.contains("self.events"));
}

#[test]
fn uw601_heavy_loops_and_libraries() {
    let source = format!(
        "import numpy as np\n{}",
        workflow_with(
            "        for i in range(10**6):\n            x = i * 2\n        for i in range(100):\n            pass\n        for i in range(1_000_000):\n            await workflow.sleep(0)\n        m = np.linalg.inv(input)\n"
        )
    );
    assert_eq!(codes(&lint(&source)), vec!["UW601", "UW601"]);
}

#[test]
fn uw70x_worker_rules() {
    let source = "from fastapi import FastAPI\nfrom temporalio.worker import Worker\napp = FastAPI()\nworker = Worker(client, task_queue=\"q\", workflows=[A, B, C, D, E], activities=[a])\n";
    let found = lint_all(source);
    assert_eq!(codes(&found), vec!["UW701", "UW702", "UW703"], "{found:#?}");
    let tuned = "from temporalio.worker import Worker\nworker = Worker(client, task_queue=\"q\", workflows=[A], activities=[a], max_concurrent_activities=10)\n";
    assert!(lint_all(tuned).is_empty());
}

#[test]
fn code_outside_workflows_is_not_workflow_code() {
    let source = "import random, time\nasync def main():\n    time.sleep(1)\n    print(random.random())\n";
    assert!(lint(source).is_empty());
}
