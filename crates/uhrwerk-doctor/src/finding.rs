//! The doctor's findings: severities, the catalog of checks (stable codes, titles, chapter
//! sections, fixes) and the worst-first order.

use std::cmp::Ordering;

use serde::Serialize;

/// How bad a finding is; `Error` makes `uhrwerk doctor` exit 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// One check of the doctor. The code (`DR101`...) is stable; the severity is fixed per check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Check {
    HistoryHardLimit,
    HistoryWarnLimit,
    ContinueAsNewIgnored,
    TerminatedByHistoryLimit,
    NonDeterminism,
    WorkflowTaskFailing,
    BacklogWithoutPollers,
    SinglePoller,
    SlowScheduleToStart,
    NoStartToCloseTimeout,
    UnlimitedRetries,
    PositionalInputs,
    LargePayloads,
}

impl Check {
    pub const ALL: [Check; 13] = [
        Check::HistoryHardLimit,
        Check::HistoryWarnLimit,
        Check::ContinueAsNewIgnored,
        Check::TerminatedByHistoryLimit,
        Check::NonDeterminism,
        Check::WorkflowTaskFailing,
        Check::BacklogWithoutPollers,
        Check::SinglePoller,
        Check::SlowScheduleToStart,
        Check::NoStartToCloseTimeout,
        Check::UnlimitedRetries,
        Check::PositionalInputs,
        Check::LargePayloads,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Check::HistoryHardLimit => "DR101",
            Check::HistoryWarnLimit => "DR102",
            Check::ContinueAsNewIgnored => "DR103",
            Check::TerminatedByHistoryLimit => "DR104",
            Check::NonDeterminism => "DR201",
            Check::WorkflowTaskFailing => "DR202",
            Check::BacklogWithoutPollers => "DR301",
            Check::SinglePoller => "DR302",
            Check::SlowScheduleToStart => "DR303",
            Check::NoStartToCloseTimeout => "DR401",
            Check::UnlimitedRetries => "DR402",
            Check::PositionalInputs => "DR501",
            Check::LargePayloads => "DR601",
        }
    }

    pub fn from_code(code: &str) -> Option<Check> {
        Check::ALL.into_iter().find(|c| c.code().eq_ignore_ascii_case(code.trim()))
    }

    pub fn severity(self) -> Severity {
        match self {
            Check::HistoryHardLimit
            | Check::TerminatedByHistoryLimit
            | Check::NonDeterminism
            | Check::BacklogWithoutPollers => Severity::Error,
            Check::HistoryWarnLimit
            | Check::ContinueAsNewIgnored
            | Check::WorkflowTaskFailing
            | Check::SinglePoller
            | Check::SlowScheduleToStart
            | Check::NoStartToCloseTimeout
            | Check::UnlimitedRetries
            | Check::LargePayloads => Severity::Warning,
            Check::PositionalInputs => Severity::Info,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Check::HistoryHardLimit => "History will reach the hard limit and the run will be terminated",
            Check::HistoryWarnLimit => "History is over the warn limit",
            Check::ContinueAsNewIgnored => "Continue-as-new was suggested but ignored",
            Check::TerminatedByHistoryLimit => "Run was terminated by a history limit",
            Check::NonDeterminism => "Non-determinism error",
            Check::WorkflowTaskFailing => "Workflow task keeps failing",
            Check::BacklogWithoutPollers => "Task queue has a backlog and no pollers",
            Check::SinglePoller => "Task queue has a single worker",
            Check::SlowScheduleToStart => "Schedule-to-start latency above the threshold",
            Check::NoStartToCloseTimeout => "Activity scheduled without a start-to-close timeout",
            Check::UnlimitedRetries => "Activity retries without limit",
            Check::PositionalInputs => "Several positional input payloads instead of one input object",
            Check::LargePayloads => "Large payloads in the workflow's history (workflow state)",
        }
    }

    /// The section of the best-practices chapter (chapter 13) the check comes from.
    pub fn section(self) -> &'static str {
        match self {
            Check::HistoryHardLimit | Check::HistoryWarnLimit | Check::TerminatedByHistoryLimit => "13.6",
            Check::ContinueAsNewIgnored => "13.1",
            Check::NonDeterminism => "13.2",
            Check::WorkflowTaskFailing => "13.1",
            Check::BacklogWithoutPollers | Check::SinglePoller | Check::SlowScheduleToStart => "13.5",
            Check::NoStartToCloseTimeout | Check::UnlimitedRetries => "13.9",
            Check::PositionalInputs => "13.1",
            Check::LargePayloads => "13.3",
        }
    }

    pub fn fix(self) -> &'static str {
        match self {
            Check::HistoryHardLimit => {
                "Continue-as-new now (the server terminates the run at the error limit): check \
                 workflow.info().is_continue_as_new_suggested() or get_current_history_length() in the loop and call \
                 workflow.continue_as_new() with the minimal state; move bulky data out of the history (13.3)."
            }
            Check::HistoryWarnLimit => {
                "Add continue-as-new on workflow.info().is_continue_as_new_suggested() (or at a fixed history length \
                 such as 10,000 events) and monitor the history size per workflow type (13.6)."
            }
            Check::ContinueAsNewIgnored => {
                "Check workflow.info().is_continue_as_new_suggested() in the workflow's loop and call \
                 workflow.continue_as_new() with the carried-over state when it is true."
            }
            Check::TerminatedByHistoryLimit => {
                "The run's work is lost past this point: start it again (or reset it to an earlier workflow task) \
                 after adding continue-as-new on workflow.info().is_continue_as_new_suggested(), and keep bulky \
                 data out of the history (13.3)."
            }
            Check::NonDeterminism => {
                "The deployed workflow code no longer replays the run's history: roll back, or guard the changed \
                 commands with workflow.patched() (13.2); move random/time/uuid/IO into activities; add replay tests \
                 of production histories to CI (13.8)."
            }
            Check::WorkflowTaskFailing => {
                "The workflow code raises on every attempt and the run makes no progress: fix the code and redeploy \
                 the workers; keep failing work in activities with a retry policy, and raise ApplicationError to \
                 fail the workflow deliberately."
            }
            Check::BacklogWithoutPollers => {
                "Start workers for this task queue (at least two, 13.5), or check that the workers' task_queue \
                 matches the name the workflows and activities use."
            }
            Check::SinglePoller => {
                "Run at least two worker processes per task queue (three replicas in production, 13.8) so a crash \
                 or a rolling update does not stop the queue."
            }
            Check::SlowScheduleToStart => {
                "Add workers or raise max_concurrent_workflow_tasks / max_concurrent_activities (13.5 tuning \
                 table); target below 100 ms."
            }
            Check::NoStartToCloseTimeout => {
                "Pass start_to_close_timeout to workflow.execute_activity (a little above the activity's longest \
                 expected run), so a hung attempt is detected and retried."
            }
            Check::UnlimitedRetries => {
                "Give the activity a RetryPolicy with maximum_attempts (e.g. RetryPolicy(maximum_attempts=5)) or a \
                 schedule_to_close_timeout, and mark permanent errors non_retryable."
            }
            Check::PositionalInputs => {
                "Pass a single dataclass (one input object with optional fields) instead of several positional \
                 arguments, so new fields do not break running workflows."
            }
            Check::LargePayloads => {
                "Keep workflow state small (< 1 KB): store IDs instead of data, counters instead of lists, and let \
                 activities write large data to S3/DB/Redis and return a reference."
            }
        }
    }
}

/// One finding about one subject (a run, a workflow type, an activity type or a task queue).
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub code: &'static str,
    pub title: &'static str,
    /// The subject in one line: `namespace/workflow-id/run-id`, `task queue NAME (workflow)`...
    pub subject: String,
    /// What was seen, with numbers.
    pub detail: String,
    /// The chapter section, e.g. "13.5".
    pub section: &'static str,
    pub fix: &'static str,
    pub namespace: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_queue: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_queue_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activity_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<i64>,
    /// The numbers behind the detail, for machines.
    pub data: serde_json::Map<String, serde_json::Value>,
    /// Orders findings of one check: higher is worse.
    #[serde(skip)]
    pub score: f64,
    #[serde(skip)]
    pub check: Check,
}

impl Finding {
    pub fn new(check: Check, namespace: &str, subject: impl Into<String>, detail: impl Into<String>) -> Self {
        Finding {
            severity: check.severity(),
            code: check.code(),
            title: check.title(),
            subject: subject.into(),
            detail: detail.into(),
            section: check.section(),
            fix: check.fix(),
            namespace: namespace.to_string(),
            workflow_type: None,
            workflow_id: None,
            run_id: None,
            task_queue: None,
            task_queue_type: None,
            activity_type: None,
            event_id: None,
            data: serde_json::Map::new(),
            score: 0.0,
            check,
        }
    }

    pub fn with_data(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.data.insert(key.to_string(), value.into());
        self
    }

    pub fn with_score(mut self, score: f64) -> Self {
        self.score = score;
        self
    }
}

/// Worst first: severity, then check, then score (higher first), then subject.
pub fn sort_worst_first(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.check.cmp(&b.check))
            .then_with(|| b.score.partial_cmp(&a.score).unwrap_or(Ordering::Equal))
            .then_with(|| a.subject.cmp(&b.subject))
    });
}

/// The exit code for a finished scan: 1 when any error-level finding remains, else 0.
pub fn exit_code(findings: &[Finding]) -> u8 {
    u8::from(findings.iter().any(|f| f.severity == Severity::Error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_round_trip() {
        let mut codes: Vec<_> = Check::ALL.iter().map(|c| c.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), Check::ALL.len());
        for c in Check::ALL {
            assert_eq!(Check::from_code(&c.code().to_lowercase()), Some(c));
            assert!(c.section().starts_with("13."));
            assert!(!c.fix().is_empty());
        }
        assert_eq!(Check::from_code("DR999"), None);
    }

    #[test]
    fn worst_first_then_score() {
        let mut f = vec![
            Finding::new(Check::PositionalInputs, "default", "a", ""),
            Finding::new(Check::SinglePoller, "default", "b", ""),
            Finding::new(Check::HistoryHardLimit, "default", "c", "").with_score(1.0),
            Finding::new(Check::HistoryHardLimit, "default", "d", "").with_score(5.0),
            Finding::new(Check::BacklogWithoutPollers, "default", "e", ""),
        ];
        sort_worst_first(&mut f);
        let subjects: Vec<_> = f.iter().map(|f| f.subject.as_str()).collect();
        assert_eq!(subjects, ["d", "c", "e", "b", "a"]);
        assert_eq!(exit_code(&f), 1);
        assert_eq!(exit_code(&f[3..]), 0);
    }
}
