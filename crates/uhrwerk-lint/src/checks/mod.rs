//! The checks and the call classification tables they share (non-deterministic, I/O, workflow APIs).

mod activities;
mod handlers;
mod state;
mod workers;
mod workflow_code;

use crate::config::Config;
use crate::lint::Reporter;
use crate::semantic::Module;

/// Runs every check over one module.
pub fn run_all(module: &Module<'_>, reporter: &mut Reporter<'_>) {
    workflow_code::check(module, reporter);
    handlers::check(module, reporter);
    activities::check(module, reporter);
    state::check(module, reporter);
    workers::check(module, reporter);
}

/// Why a call is unsafe in workflow code, with the replacement to suggest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hazard {
    /// UW101 with a suggestion.
    Nondeterministic(&'static str),
    /// UW102 with a suggestion.
    Io(&'static str),
}

impl Hazard {
    pub fn code(self) -> &'static str {
        match self {
            Hazard::Nondeterministic(_) => "UW101",
            Hazard::Io(_) => "UW102",
        }
    }

    pub fn advice(self) -> &'static str {
        match self {
            Hazard::Nondeterministic(advice) | Hazard::Io(advice) => advice,
        }
    }
}

const IO_PREFIXES: &[(&str, &str)] = &[
    ("httpx.", "network I/O"),
    ("requests.", "network I/O"),
    ("aiohttp.", "network I/O"),
    ("urllib.request.", "network I/O"),
    ("urllib3.", "network I/O"),
    ("http.client.", "network I/O"),
    ("socket.", "network I/O"),
    ("smtplib.", "network I/O"),
    ("ftplib.", "network I/O"),
    ("grpc.", "network I/O"),
    ("sqlite3.", "database I/O"),
    ("psycopg.", "database I/O"),
    ("psycopg2.", "database I/O"),
    ("asyncpg.", "database I/O"),
    ("pymysql.", "database I/O"),
    ("aiomysql.", "database I/O"),
    ("pymongo.", "database I/O"),
    ("motor.", "database I/O"),
    ("redis.", "database I/O"),
    ("sqlalchemy.", "database I/O"),
    ("boto3.", "cloud API I/O"),
    ("subprocess.", "a subprocess"),
    ("threading.", "threads"),
    ("multiprocessing.", "a process"),
    ("concurrent.futures.", "a thread or process pool"),
    ("shutil.", "file I/O"),
    ("tempfile.", "file I/O"),
];

/// Classifies a call by its qualified name; `None` when it is harmless in workflow code.
pub fn classify_call(qualified: &str, config: &Config) -> Option<(Hazard, &'static str)> {
    use Hazard::{Io, Nondeterministic};
    const CLOCK: &str = "use `workflow.now()` (replay-safe time) or move the logic into an activity";
    const RANDOM: &str = "use `workflow.random()` (seeded, replay-safe) or move the logic into an activity";
    const UUID: &str = "use `workflow.uuid4()` or generate the id in an activity";
    const SLEEP: &str = "use `await workflow.sleep(...)`, a durable timer";
    const ENV: &str = "pass configuration in the workflow input or read it in an activity";
    const IO: &str = "move the I/O into an activity";
    let hit = match qualified {
        "random.Random" => return None,
        q if q.starts_with("random.") => (Nondeterministic(RANDOM), "a random number"),
        q if q.starts_with("secrets.") => (Nondeterministic(RANDOM), "a random number"),
        "uuid.uuid1" | "uuid.uuid4" | "uuid.uuid7" => (Nondeterministic(UUID), "a random UUID"),
        "datetime.datetime.now"
        | "datetime.datetime.utcnow"
        | "datetime.datetime.today"
        | "datetime.now"
        | "datetime.utcnow"
        | "datetime.today"
        | "datetime.date.today"
        | "date.today" => (Nondeterministic(CLOCK), "wall-clock time"),
        "time.time"
        | "time.time_ns"
        | "time.monotonic"
        | "time.monotonic_ns"
        | "time.perf_counter"
        | "time.perf_counter_ns"
        | "time.process_time"
        | "time.process_time_ns"
        | "time.localtime"
        | "time.ctime" => (Nondeterministic(CLOCK), "wall-clock time"),
        "time.sleep" => (Nondeterministic(SLEEP), "a blocking sleep"),
        "os.urandom" => (Nondeterministic(RANDOM), "random bytes"),
        "os.getenv" | "os.getenvb" => (Nondeterministic(ENV), "the process environment"),
        "open" | "input" | "io.open" | "builtins.open" => (Io(IO), "file I/O"),
        q => {
            if let Some((_, what)) = IO_PREFIXES.iter().find(|(prefix, _)| q.starts_with(prefix)) {
                (Io(IO), *what)
            } else if config.extra_nondeterministic.iter().any(|extra| matches_pattern(extra, q)) {
                (Nondeterministic("move it into an activity"), "configured as non-deterministic")
            } else {
                return None;
            }
        }
    };
    Some(hit)
}

fn matches_pattern(pattern: &str, qualified: &str) -> bool {
    match pattern.strip_suffix(".*") {
        Some(prefix) => qualified.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('.')),
        None => pattern == qualified,
    }
}

/// `temporalio.workflow` functions that schedule activities.
pub const ACTIVITY_APIS: &[&str] = &[
    "execute_activity",
    "start_activity",
    "execute_activity_method",
    "start_activity_method",
    "execute_activity_class",
    "start_activity_class",
    "execute_local_activity",
    "start_local_activity",
    "execute_local_activity_method",
    "start_local_activity_method",
    "execute_local_activity_class",
    "start_local_activity_class",
];

/// `temporalio.workflow` coroutine functions whose result must be awaited.
pub const AWAITABLE_APIS: &[&str] = &[
    "execute_activity",
    "execute_activity_method",
    "execute_activity_class",
    "execute_local_activity",
    "execute_local_activity_method",
    "execute_local_activity_class",
    "execute_child_workflow",
    "start_child_workflow",
    "sleep",
    "wait_condition",
];

/// `temporalio.workflow` functions a query handler must not call.
pub const COMMAND_APIS: &[&str] = &[
    "execute_activity",
    "start_activity",
    "execute_activity_method",
    "start_activity_method",
    "execute_activity_class",
    "start_activity_class",
    "execute_local_activity",
    "start_local_activity",
    "execute_local_activity_method",
    "start_local_activity_method",
    "execute_local_activity_class",
    "start_local_activity_class",
    "execute_child_workflow",
    "start_child_workflow",
    "sleep",
    "wait_condition",
    "continue_as_new",
    "get_external_workflow_handle",
    "upsert_search_attributes",
    "upsert_memo",
    "patched",
    "deprecate_patch",
    "signal_external_workflow",
];
