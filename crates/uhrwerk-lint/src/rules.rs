//! The rule registry: stable codes, names, default severities, chapter sections and `--explain` pages.

use crate::diagnostic::Severity;

/// Static description of one rule.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// Stable code, e.g. `UW101`.
    pub code: &'static str,
    /// Kebab-case name, e.g. `nondeterministic-call`.
    pub name: &'static str,
    /// Severity used unless the configuration overrides it.
    pub default_severity: Severity,
    /// Whether the rule runs without being selected explicitly.
    pub enabled_by_default: bool,
    /// Section of chapter 13 the rule enforces.
    pub section: &'static str,
    /// One-line summary for tables, SARIF and the summary block.
    pub summary: &'static str,
    /// The `--explain` page (markdown).
    pub doc: &'static str,
}

macro_rules! rule {
    ($code:literal, $name:literal, $sev:ident, $default:literal, $section:literal, $summary:literal) => {
        Rule {
            code: $code,
            name: $name,
            default_severity: Severity::$sev,
            enabled_by_default: $default,
            section: $section,
            summary: $summary,
            doc: include_str!(concat!("../docs/rules/", $code, ".md")),
        }
    };
}

/// Every rule, ordered by code.
pub const RULES: &[Rule] = &[
    rule!("UW000", "syntax-error", Error, true, "-", "File could not be parsed as Python"),
    rule!(
        "UW001",
        "suppression-without-reason",
        Warning,
        true,
        "-",
        "`# uhrwerk: ignore[...]` needs codes and a reason"
    ),
    rule!(
        "UW002",
        "unreadable-file",
        Warning,
        true,
        "-",
        "File is binary, not UTF-8 or unreadable and was not checked"
    ),
    rule!(
        "UW101",
        "nondeterministic-call",
        Error,
        true,
        "13.2",
        "Non-deterministic call (random, time, uuid, environment) in workflow code"
    ),
    rule!(
        "UW102",
        "io-in-workflow",
        Error,
        true,
        "13.2",
        "File, network, database, thread or subprocess use in workflow code"
    ),
    rule!("UW103", "set-iteration", Error, true, "13.2", "Iteration over a set or frozenset in workflow code"),
    rule!("UW104", "asyncio-wait", Warning, true, "13.2", "`asyncio.wait`/`asyncio.as_completed` in workflow code"),
    rule!(
        "UW105",
        "asyncio-sleep",
        Warning,
        false,
        "13.2",
        "`asyncio.sleep` in workflow code instead of `workflow.sleep` (opt-in)"
    ),
    rule!(
        "UW106",
        "print-or-logging",
        Warning,
        true,
        "13.2",
        "`print`/`logging` in workflow code instead of `workflow.logger`"
    ),
    rule!(
        "UW107",
        "unawaited-workflow-call",
        Error,
        true,
        "13.1",
        "Activity, child workflow, timer or condition call whose coroutine is never awaited"
    ),
    rule!(
        "UW108",
        "patch-id",
        Warning,
        true,
        "13.2",
        "`workflow.patched()` id that is not a string literal, or is both patched and deprecated in one workflow"
    ),
    rule!(
        "UW201",
        "query-side-effect",
        Error,
        true,
        "13.3",
        "Query handler or update validator that mutates state, awaits or calls workflow APIs"
    ),
    rule!(
        "UW301",
        "activity-timeout",
        Error,
        true,
        "13.1, 13.9",
        "Activity call without `start_to_close_timeout` or `schedule_to_close_timeout`"
    ),
    rule!(
        "UW302",
        "local-activity-idempotency",
        Warning,
        true,
        "13.7.2",
        "Local activity without idempotency key and with unbounded retries"
    ),
    rule!(
        "UW401",
        "multiple-positional-params",
        Warning,
        true,
        "13.1",
        "Workflow run method or activity with several positional parameters"
    ),
    rule!(
        "UW501",
        "loop-without-continue-as-new",
        Warning,
        true,
        "13.1, 13.6",
        "Endless waiting loop without a reachable `workflow.continue_as_new`"
    ),
    rule!(
        "UW502",
        "unbounded-state",
        Warning,
        true,
        "13.3",
        "Workflow state that only grows (append/insert in loops or handlers)"
    ),
    rule!("UW601", "heavy-computation", Warning, true, "13.1", "CPU-heavy work in workflow code"),
    rule!(
        "UW701",
        "worker-with-web-app",
        Warning,
        true,
        "13.7.3",
        "Module constructs both a Worker and a web application"
    ),
    rule!("UW702", "monolith-worker", Warning, true, "13.4", "One Worker registering many workflows or activities"),
    rule!(
        "UW703",
        "worker-without-tuning",
        Warning,
        false,
        "13.5",
        "Worker without any `max_concurrent_*` setting (opt-in)"
    ),
];

/// Looks a rule up by its code (case-insensitive).
pub fn by_code(code: &str) -> Option<&'static Rule> {
    RULES.iter().find(|rule| rule.code.eq_ignore_ascii_case(code))
}
